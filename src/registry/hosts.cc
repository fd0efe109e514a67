#include "registry/hosts.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <optional>
#include <system_error>
#include <tuple>

#include "common/fs.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;
namespace fs = std::filesystem;

constexpr size_t kMaxHostsTomlSize = 1u << 20;

struct ParsedUrl {
  std::string scheme, host, path;
};

Result<ParsedUrl> ParseHostUrl(std::string_view url) {
  ParsedUrl out;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos)
    return MakeError(Errc::kInvalidArgument,
                     "host URL `" + std::string(url) + "` has no scheme (http:// or https://)");
  out.scheme = std::string(url.substr(0, sep));
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (out.scheme != "http" && out.scheme != "https")
    return MakeError(Errc::kInvalidArgument,
                     "host URL `" + std::string(url) + "`: scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  out.host = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.path = std::string(rest.substr(slash));
  if (out.host.empty() || out.host.find_first_of("@?# ") != std::string::npos ||
      out.path.find_first_of("?# ") != std::string::npos)
    return MakeError(Errc::kInvalidArgument,
                     "host URL `" + std::string(url) + "` must be scheme://host[:port][/path]");
  return out;
}

std::string PathPrefix(std::string path, bool override_path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty()) return "/v2";
  if (override_path) return path;
  if (path.size() >= 3 && path.compare(path.size() - 3, 3, "/v2") == 0) return path;
  return path + "/v2";
}

std::string Where(const fs::path& file, const toml::node& node) {
  return file.string() + ":" + std::to_string(node.source().begin.line);
}

Result<std::vector<std::string>> StringOrStrings(const toml::node& node, const fs::path& file,
                                                 std::string_view key) {
  std::vector<std::string> out;
  if (auto s = node.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  if (const toml::array* arr = node.as_array()) {
    for (const toml::node& el : *arr) {
      auto s = el.value<std::string>();
      if (!s)
        return MakeError(Errc::kInvalidArgument,
                         Where(file, el) + ": `" + std::string(key) + "` entries must be strings");
      out.push_back(*s);
    }
    return out;
  }
  return MakeError(Errc::kInvalidArgument, Where(file, node) + ": `" + std::string(key) +
                                               "` must be a string or an array of strings");
}

// `client` is "cert" (key in the same file), ["cert", "key"], or a list of
// [cert, key] pairs of which the first is used (curl takes one).
Status ApplyClient(const toml::node& node, const fs::path& file, TlsConfig& tls) {
  if (auto s = node.value<std::string>()) {
    tls.client_cert = *s;
    tls.client_key.clear();
    return {};
  }
  const toml::array* arr = node.as_array();
  if (arr && !arr->empty()) {
    const toml::node& first = *arr->get(0);
    if (const toml::array* pair = first.as_array()) {
      if (pair->empty() || pair->size() > 2 || !pair->get(0)->is_string() ||
          (pair->size() == 2 && !pair->get(1)->is_string()))
        return MakeError(Errc::kInvalidArgument,
                         Where(file, first) + ": `client` pairs must be [cert, key] strings");
      tls.client_cert = *pair->get(0)->value<std::string>();
      tls.client_key = pair->size() == 2 ? *pair->get(1)->value<std::string>() : "";
      return {};
    }
    if (arr->size() <= 2 && first.is_string() && (arr->size() == 1 || arr->get(1)->is_string())) {
      tls.client_cert = *first.value<std::string>();
      tls.client_key = arr->size() == 2 ? *arr->get(1)->value<std::string>() : "";
      return {};
    }
  }
  return MakeError(Errc::kInvalidArgument,
                   Where(file, node) + ": `client` must be \"cert\", [cert, key] or [[cert, key]]");
}

struct HostSettings {
  std::optional<bool> can_pull, can_resolve, can_push;
  std::optional<bool> skip_verify;
  bool override_path = false;
  bool has_tls_material = false;  // ca or client given
  TlsConfig tls;
  std::map<std::string, std::vector<std::string>> headers;
};

// Reads the keys shared by the top level and [host."URL"] tables.
Status ReadHostSettings(const toml::table& table, const fs::path& file, HostSettings& out) {
  if (const toml::node* caps = table.get("capabilities")) {
    const toml::array* arr = caps->as_array();
    if (!arr)
      return MakeError(Errc::kInvalidArgument,
                       Where(file, *caps) + ": `capabilities` must be an array of strings");
    out.can_pull = out.can_resolve = out.can_push = false;
    for (const toml::node& el : *arr) {
      auto s = el.value<std::string>();
      if (!s)
        return MakeError(Errc::kInvalidArgument,
                         Where(file, el) + ": `capabilities` entries must be strings");
      if (*s == "pull") {
        out.can_pull = true;
      } else if (*s == "resolve") {
        out.can_resolve = true;
      } else if (*s == "push") {
        out.can_push = true;
      } else {
        return MakeError(Errc::kInvalidArgument, Where(file, el) + ": unknown capability `" + *s +
                                                     "` (pull, resolve or push)");
      }
    }
  }
  if (const toml::node* ca = table.get("ca")) {
    ASSIGN_OR_RETURN(out.tls.ca_files, StringOrStrings(*ca, file, "ca"));
    out.has_tls_material = true;
  }
  if (const toml::node* client = table.get("client")) {
    TRY(ApplyClient(*client, file, out.tls));
    out.has_tls_material = true;
  }
  if (const toml::node* sv = table.get("skip_verify")) {
    auto b = sv->value<bool>();
    if (!b)
      return MakeError(Errc::kInvalidArgument,
                       Where(file, *sv) + ": `skip_verify` must be a boolean");
    out.skip_verify = *b;
  }
  if (const toml::node* op = table.get("override_path")) {
    auto b = op->value<bool>();
    if (!b)
      return MakeError(Errc::kInvalidArgument,
                       Where(file, *op) + ": `override_path` must be a boolean");
    out.override_path = *b;
  }
  if (const toml::node* hdr = table.get("header")) {
    const toml::table* ht = hdr->as_table();
    if (!ht)
      return MakeError(Errc::kInvalidArgument, Where(file, *hdr) + ": `header` must be a table");
    for (auto&& [k, v] : *ht) {
      std::string name(k.str());
      if (name.empty() || name.find_first_of(":\r\n \t") != std::string::npos)
        return MakeError(Errc::kInvalidArgument,
                         Where(file, v) + ": invalid header name `" + name + "`");
      ASSIGN_OR_RETURN(auto values, StringOrStrings(v, file, "header." + name));
      for (const std::string& value : values)
        if (value.find_first_of("\r\n") != std::string::npos)
          return MakeError(Errc::kInvalidArgument,
                           Where(file, v) + ": header `" + name + "` has a line break");
      out.headers[name] = std::move(values);
    }
  }
  return {};
}

void ApplySettings(const HostSettings& s, RegistryHost& host) {
  if (s.can_pull) host.can_pull = *s.can_pull;
  if (s.can_resolve) host.can_resolve = *s.can_resolve;
  if (s.can_push) host.can_push = *s.can_push;
  if (s.skip_verify) host.tls.verify = !*s.skip_verify;
  for (const std::string& ca : s.tls.ca_files) host.tls.ca_files.push_back(ca);
  if (!s.tls.client_cert.empty()) {
    host.tls.client_cert = s.tls.client_cert;
    host.tls.client_key = s.tls.client_key;
  }
  for (const auto& [k, v] : s.headers) host.headers[k] = v;
}

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Docker's certs.d: *.crt are CAs, *.cert/*.key pairs are client identities.
Status ReadCertsDir(const fs::path& dir, TlsConfig& tls, bool& found_any) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  std::vector<fs::path> entries;
  for (const auto& e : it) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());  // deterministic order
  for (const fs::path& p : entries) {
    std::string ext = p.extension().string();
    if (ext == ".crt") {
      tls.ca_files.push_back(p.string());
      found_any = true;
    } else if (ext == ".cert") {
      fs::path key = p;
      key.replace_extension(".key");
      if (!Exists(key))
        return MakeError(Errc::kInvalidArgument, "client certificate `" + p.string() +
                                                     "` has no key `" + key.string() + "`");
      if (!tls.client_cert.empty()) continue;  // curl takes one identity; first wins
      tls.client_cert = p.string();
      tls.client_key = key.string();
      found_any = true;
    } else if (ext == ".key") {
      fs::path cert = p;
      cert.replace_extension(".cert");
      if (!Exists(cert))
        return MakeError(
            Errc::kInvalidArgument,
            "client key `" + p.string() + "` has no certificate `" + cert.string() + "`");
    }
  }
  return {};
}

std::string DefaultUpstreamHost(std::string_view domain) {
  if (domain == "docker.io" || domain == "index.docker.io") return "registry-1.docker.io";
  return std::string(domain);
}

struct FileConfig {
  std::optional<ParsedUrl> server;
  HostSettings top;
  struct Mirror {
    ParsedUrl url;
    HostSettings settings;
  };
  std::vector<Mirror> hosts;  // file order
};

Result<FileConfig> ParseHostsToml(const fs::path& file, bool is_default) {
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(file, kMaxHostsTomlSize));
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    return MakeError(Errc::kInvalidArgument, "parse `" + file.string() + "`: line " +
                                                 std::to_string(e.source().begin.line) + ": " +
                                                 std::string(e.description()));
  }
  FileConfig cfg;
  if (const toml::node* server = root.get("server"); server && !is_default) {
    auto s = server->value<std::string>();
    if (!s)
      return MakeError(Errc::kInvalidArgument,
                       Where(file, *server) + ": `server` must be a string");
    ASSIGN_OR_RETURN(cfg.server, common::Wrap(ParseHostUrl(*s), Where(file, *server)));
  }
  TRY(common::Wrap(ReadHostSettings(root, file, cfg.top), "read `" + file.string() + "`"));
  if (const toml::node* hosts = root.get("host")) {
    const toml::table* ht = hosts->as_table();
    if (!ht)
      return MakeError(Errc::kInvalidArgument, Where(file, *hosts) + ": `host` must be a table");
    // toml++ keeps tables sorted by key; mirrors go in file order.
    std::vector<std::pair<const toml::key*, const toml::node*>> ordered;
    for (auto&& [k, v] : *ht) ordered.emplace_back(&k, &v);
    std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      const auto& pa = a.first->source().begin;
      const auto& pb = b.first->source().begin;
      return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
    });
    for (const auto& [k, v] : ordered) {
      const toml::table* t = v->as_table();
      if (!t)
        return MakeError(Errc::kInvalidArgument, Where(file, *v) + ": `host.\"" +
                                                     std::string(k->str()) + "\"` must be a table");
      FileConfig::Mirror m;
      ASSIGN_OR_RETURN(m.url, common::Wrap(ParseHostUrl(k->str()), Where(file, *v)));
      TRY(ReadHostSettings(*t, file, m.settings));
      cfg.hosts.push_back(std::move(m));
    }
  }
  return cfg;
}

RegistryHost MakeHost(const ParsedUrl& url, const HostSettings& s) {
  RegistryHost h;
  h.scheme = url.scheme;
  h.host = url.host;
  h.path_prefix = PathPrefix(url.path, s.override_path);
  h.can_push = true;  // containerd's default: every capability unless listed
  h.scheme_configured = true;
  ApplySettings(s, h);
  return h;
}

}  // namespace

std::string RegistryHost::base_url() const { return scheme + "://" + host + path_prefix; }

bool IsLoopbackHost(std::string_view hp) {
  std::string_view host = hp;
  if (!hp.empty() && hp.front() == '[') {
    size_t close = hp.find(']');
    host = close == std::string_view::npos ? hp.substr(1) : hp.substr(1, close - 1);
  } else if (std::count(hp.begin(), hp.end(), ':') == 1) {
    host = hp.substr(0, hp.find(':'));
  }
  if (host == "localhost") return true;
  std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Result<std::vector<RegistryHost>> ResolveHosts(std::string_view domain,
                                               const HostsOptions& options) {
  if (domain.empty() || domain.find('/') != std::string_view::npos || domain == "." ||
      domain == ".." || domain.front() == '_')
    return MakeError(Errc::kInvalidArgument,
                     "resolve hosts: invalid domain `" + std::string(domain) + "`");

  std::vector<std::string> dir_names = {std::string(domain)};
  if (domain == "docker.io") {
    dir_names.push_back("registry-1.docker.io");
    dir_names.push_back("index.docker.io");
  }
  std::optional<fs::path> host_dir;
  for (const fs::path& base : options.config_dirs) {
    for (const std::string& name : dir_names) {
      if (IsDir(base / name)) {
        host_dir = base / name;
        break;
      }
    }
    if (host_dir) break;
  }

  FileConfig cfg;
  bool certs_found = false;
  TlsConfig certs_tls;
  if (host_dir) {
    fs::path toml_file = *host_dir / "hosts.toml";
    if (Exists(toml_file)) {
      ASSIGN_OR_RETURN(cfg, ParseHostsToml(toml_file, false));
    }
    TRY(ReadCertsDir(*host_dir, certs_tls, certs_found));
  } else {
    for (const fs::path& base : options.config_dirs) {
      fs::path toml_file = base / "_default" / "hosts.toml";
      if (Exists(toml_file)) {
        ASSIGN_OR_RETURN(cfg, ParseHostsToml(toml_file, true));
        break;
      }
    }
  }

  ParsedUrl upstream_url;
  if (cfg.server) {
    upstream_url = *cfg.server;
  } else {
    upstream_url.host = DefaultUpstreamHost(domain);
    bool tls_material = certs_found || cfg.top.has_tls_material;
    bool plain = options.plain_http || (IsLoopbackHost(domain) && !tls_material);
    upstream_url.scheme = plain ? "http" : "https";
  }

  std::vector<RegistryHost> out;
  std::optional<size_t> upstream_index;
  for (const FileConfig::Mirror& m : cfg.hosts) {
    RegistryHost h = MakeHost(m.url, m.settings);
    if (h.host == upstream_url.host && h.scheme == upstream_url.scheme && !upstream_index) {
      // The upstream configured through a [host] table: it keeps its place
      // in the list and is not a mirror.
      upstream_index = out.size();
    } else {
      h.is_mirror = true;
    }
    out.push_back(std::move(h));
  }
  if (!upstream_index) {
    HostSettings top = cfg.top;
    out.push_back(MakeHost(upstream_url, top));
    upstream_index = out.size() - 1;
    out.back().scheme_configured = cfg.server.has_value() || options.plain_http;
  } else {
    ApplySettings(cfg.top, out[*upstream_index]);
  }
  RegistryHost& up = out[*upstream_index];
  for (const std::string& ca : certs_tls.ca_files) up.tls.ca_files.push_back(ca);
  if (up.tls.client_cert.empty() && !certs_tls.client_cert.empty()) {
    up.tls.client_cert = certs_tls.client_cert;
    up.tls.client_key = certs_tls.client_key;
  }
  if (!options.tls_verify)
    for (RegistryHost& h : out) h.tls.verify = false;
  return out;
}

}  // namespace registry
