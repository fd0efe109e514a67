#include "registry/credentials.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "registry/credentials_internal.h"

namespace registry {

namespace ci = credentials_internal;
namespace fs = std::filesystem;
using common::Errc;
using common::Error;
using common::MakeError;
using common::Result;
using common::Status;
// Ordered, so that rewriting a user's config.json keeps its key order.
using Json = nlohmann::ordered_json;

namespace credentials_internal {

namespace {

constexpr std::array<std::string_view, 3> kDockerHubHosts = {"docker.io", "index.docker.io",
                                                             "registry-1.docker.io"};
constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::optional<std::string> HostOfKey(std::string_view key) {
  bool had_scheme = false;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.starts_with(scheme)) {
      key.remove_prefix(scheme.size());
      had_scheme = true;
      break;
    }
  }
  size_t slash = key.find('/');
  std::string_view host = key.substr(0, slash);
  if (slash != std::string_view::npos && !had_scheme) {
    // docker writes URL-ish keys ("host/v2/"); anything longer is a
    // repository namespace (podman's "quay.io/org").
    std::string_view rest = key.substr(slash);
    if (rest != "/" && rest != "/v1" && rest != "/v1/" && rest != "/v2" && rest != "/v2/")
      return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  if (std::find(kDockerHubHosts.begin(), kDockerHubHosts.end(), host) != kDockerHubHosts.end())
    return std::string(kDockerHubHosts.front());
  return std::string(host);
}

Result<std::string> CanonicalHost(std::string_view host) {
  auto invalid = [&](std::string_view why) {
    return MakeError(Errc::kInvalidArgument,
                     "registry host `" + std::string(host) + "`: " + std::string(why));
  };
  if (host.empty()) return invalid("empty");
  for (char c : host) {
    // The host is written to a helper's stdin and used as a JSON key; a
    // newline would let it say something else to the helper.
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return invalid("contains whitespace or control characters");
  }
  std::optional<std::string> canonical = HostOfKey(host);
  if (!canonical) return invalid("must be a host[:port], not a repository path");
  return std::move(*canonical);
}

std::string KeyForHost(std::string_view canonical_host) {
  if (canonical_host == kDockerHubHosts.front()) return std::string(kDockerHubKey);
  return std::string(canonical_host);
}

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift : {18, 12, 6, 0}) out.push_back(kBase64Alphabet[(v >> shift) & 63]);
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    size_t v = kBase64Alphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace credentials_internal

namespace {

constexpr size_t kMaxConfigSize = 16u << 20;

// A JSON credentials file: docker's config.json or containers' auth.json.
// `doc` is an empty object when the file is missing or empty.
struct ConfigFile {
  fs::path path;
  Json doc = Json::object();
};

std::string Quoted(const fs::path& p) { return "`" + p.string() + "`"; }

std::unexpected<Error> Malformed(const fs::path& path, std::string_view why) {
  return MakeError(Errc::kInvalidArgument, "parse " + Quoted(path) + ": " + std::string(why));
}

Result<ConfigFile> LoadConfig(const fs::path& path) {
  ConfigFile file{path};
  if (path.empty()) return file;
  auto text = common::ReadFile(path, kMaxConfigSize);
  if (!text) {
    if (text.error().code == Errc::kNotFound) return file;
    return std::unexpected(std::move(text.error()));
  }
  // docker accepts an empty config.json.
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) return file;
  try {
    file.doc = Json::parse(*text);
  } catch (const Json::parse_error& e) {
    // Not e.what(): it quotes the bytes last read, which may be a secret.
    return Malformed(path, "invalid JSON at byte " + std::to_string(e.byte));
  } catch (const Json::exception&) {
    return Malformed(path, "invalid JSON");
  }
  if (!file.doc.is_object()) return Malformed(path, "top level is not a JSON object");
  return file;
}

// Writes `file` atomically with mode 0600, creating its directory 0700. A
// symlinked config.json (dotfile managers do this) is written through, not
// replaced by a regular file.
Status SaveConfig(const ConfigFile& file) {
  if (file.path.empty())
    return MakeError(Errc::kFailedPrecondition, "no docker config path: set DOCKER_CONFIG or HOME");
  fs::path target = file.path;
  std::error_code ec;
  if (fs::is_symlink(target, ec)) {
    fs::path resolved = fs::weakly_canonical(target, ec);
    if (!ec) target = std::move(resolved);
  }
  std::string text;
  try {
    text = file.doc.dump(1, '\t') + "\n";
  } catch (const Json::exception&) {
    return MakeError(Errc::kInvalidArgument, "write " + Quoted(target) + ": not valid UTF-8");
  }
  TRY(common::MkdirAll(target.parent_path(), 0700));
  return common::AtomicWriteFile(target, text, 0600);
}

// The object member `name` of the file, or nullptr when absent or null.
Result<const Json*> ObjectMember(const ConfigFile& file, const char* name) {
  auto it = file.doc.find(name);
  if (it == file.doc.end() || it->is_null()) return nullptr;
  if (!it->is_object()) return Malformed(file.path, "`" + std::string(name) + "` is not an object");
  return &*it;
}

// Keys of `object` naming `host` (canonical), best first: docker's own key
// for the host, the bare host, then other aliases in file order.
std::vector<std::string> MatchingKeys(const Json& object, const std::string& host) {
  std::vector<std::string> keys;
  std::string preferred = ci::KeyForHost(host);
  for (const std::string& exact : {preferred, host}) {
    if (object.contains(exact) && std::find(keys.begin(), keys.end(), exact) == keys.end())
      keys.push_back(exact);
  }
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(keys.begin(), keys.end(), it.key()) != keys.end()) continue;
    if (ci::HostOfKey(it.key()) == host) keys.push_back(it.key());
  }
  return keys;
}

}  // namespace

bool ApplyAuthField(std::string_view auth, Credentials& creds) {
  if (auth.empty()) return true;
  // As in docker, `auth` wins over the separate fields.
  std::optional<std::string> decoded = ci::Base64Decode(auth);
  size_t colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) return false;
  creds.username = decoded->substr(0, colon);
  creds.password = decoded->substr(colon + 1);
  return true;
}

namespace {

// Credentials from one `auths` entry; nullopt for an empty entry.
Result<std::optional<Credentials>> ParseAuthEntry(const fs::path& path, const std::string& key,
                                                  const Json& entry) {
  std::string where = "auths entry `" + key + "`";
  if (!entry.is_object()) return Malformed(path, where + " is not an object");
  auto field = [&](const char* name) -> Result<std::string> {
    auto it = entry.find(name);
    if (it == entry.end() || it->is_null()) return std::string();
    if (!it->is_string())
      return Malformed(path, where + ": `" + std::string(name) + "` is not a string");
    return it->get<std::string>();
  };
  Credentials creds;
  ASSIGN_OR_RETURN(std::string auth, field("auth"));
  ASSIGN_OR_RETURN(creds.username, field("username"));
  ASSIGN_OR_RETURN(creds.password, field("password"));
  ASSIGN_OR_RETURN(creds.identity_token, field("identitytoken"));
  ASSIGN_OR_RETURN(creds.registry_token, field("registrytoken"));
  if (!ApplyAuthField(auth, creds))
    return Malformed(path, where + ": `auth` is not base64 of \"user:password\"");
  if (creds == Credentials{}) return std::nullopt;
  return std::optional<Credentials>(std::move(creds));
}

Result<std::optional<Credentials>> FromAuths(const ConfigFile& file, const std::string& host) {
  ASSIGN_OR_RETURN(const Json* auths, ObjectMember(file, "auths"));
  if (auths == nullptr) return std::nullopt;
  for (const std::string& key : MatchingKeys(*auths, host)) {
    ASSIGN_OR_RETURN(std::optional<Credentials> creds,
                     ParseAuthEntry(file.path, key, (*auths)[key]));
    if (creds) return creds;
  }
  return std::nullopt;
}

// The helpers configured for `host`, in lookup order: credHelpers[host],
// then credsStore (when it names a different helper). The first one is the
// one Login and Logout use.
Result<std::vector<ci::CredentialHelper>> HelpersFor(const ConfigFile& file,
                                                     const std::string& host,
                                                     const CredentialStoreOptions& options) {
  std::vector<std::string> names;
  ASSIGN_OR_RETURN(const Json* per_host, ObjectMember(file, "credHelpers"));
  if (per_host != nullptr) {
    std::vector<std::string> keys = MatchingKeys(*per_host, host);
    if (!keys.empty()) {
      const Json& name = (*per_host)[keys.front()];
      if (!name.is_string())
        return Malformed(file.path, "credHelpers entry `" + keys.front() + "` is not a string");
      if (!name.get<std::string>().empty()) names.push_back(name.get<std::string>());
    }
  }
  if (auto it = file.doc.find("credsStore"); it != file.doc.end() && !it->is_null()) {
    if (!it->is_string()) return Malformed(file.path, "`credsStore` is not a string");
    std::string name = it->get<std::string>();
    if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(std::move(name));
  }
  std::vector<ci::CredentialHelper> helpers;
  for (const std::string& name : names) {
    auto helper = ci::CredentialHelper::Create(name, options.helper_dir, options.helper_timeout);
    if (!helper)
      return std::unexpected(std::move(helper.error()).Wrap("parse " + Quoted(file.path)));
    helpers.push_back(std::move(*helper));
  }
  return helpers;
}

// Drops every `auths` entry naming `host`; true when one was there.
Result<bool> EraseAuths(ConfigFile& file, const std::string& host) {
  ASSIGN_OR_RETURN(const Json* auths, ObjectMember(file, "auths"));
  if (auths == nullptr) return false;
  std::vector<std::string> keys = MatchingKeys(*auths, host);
  for (const std::string& key : keys) file.doc["auths"].erase(key);
  return !keys.empty();
}

std::optional<std::string> Getenv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::optional<fs::path> HomeDir() {
  if (auto home = Getenv("HOME")) return fs::path(*home);
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_dir != nullptr && *found->pw_dir != '\0')
    return fs::path(found->pw_dir);
  return std::nullopt;
}

}  // namespace

CredentialStore::CredentialStore(CredentialStoreOptions options) : options_(std::move(options)) {
  if (options_.docker_config.empty()) {
    if (auto dir = Getenv("DOCKER_CONFIG")) {
      options_.docker_config = fs::path(*dir) / "config.json";
    } else if (auto home = HomeDir()) {
      options_.docker_config = *home / ".docker" / "config.json";
    }
  }
  if (options_.containers_auth.empty()) {
    if (auto run = Getenv("XDG_RUNTIME_DIR"))
      options_.containers_auth = fs::path(*run) / "containers" / "auth.json";
  }
}

Result<std::optional<Credentials>> CredentialStore::Lookup(std::string_view host) const {
  const std::string context = "look up credentials for `" + std::string(host) + "`";
  auto fail = [&](Error e) { return std::unexpected(std::move(e).Wrap(context)); };

  auto canonical = ci::CanonicalHost(host);
  if (!canonical) return fail(std::move(canonical.error()));
  const std::string server_url = ci::KeyForHost(*canonical);

  auto docker = LoadConfig(options_.docker_config);
  if (!docker) return fail(std::move(docker.error()));
  auto helpers = HelpersFor(*docker, *canonical, options_);
  if (!helpers) return fail(std::move(helpers.error()));
  for (const ci::CredentialHelper& helper : *helpers) {
    auto creds = helper.Get(server_url);
    if (!creds) return fail(std::move(creds.error()));
    if (*creds) return creds;
  }
  auto creds = FromAuths(*docker, *canonical);
  if (!creds) return fail(std::move(creds.error()));
  if (*creds) return creds;

  auto containers = LoadConfig(options_.containers_auth);
  if (!containers) return fail(std::move(containers.error()));
  creds = FromAuths(*containers, *canonical);
  if (!creds) return fail(std::move(creds.error()));
  return creds;
}

Status CredentialStore::Login(std::string_view host, const Credentials& credentials) {
  const std::string context = "log in to `" + std::string(host) + "`";
  auto fail = [&](Error e) { return std::unexpected(std::move(e).Wrap(context)); };

  auto canonical = ci::CanonicalHost(host);
  if (!canonical) return fail(std::move(canonical.error()));
  if (credentials.username.empty() && credentials.identity_token.empty())
    return fail(
        MakeError(Errc::kInvalidArgument, "a username or an identity token is required").error());
  if (credentials.username.find(':') != std::string::npos)
    return fail(MakeError(Errc::kInvalidArgument, "username must not contain ':'").error());
  const std::string key = ci::KeyForHost(*canonical);

  auto docker = LoadConfig(options_.docker_config);
  if (!docker) return fail(std::move(docker.error()));
  auto helpers = HelpersFor(*docker, *canonical, options_);
  if (!helpers) return fail(std::move(helpers.error()));
  auto auths = ObjectMember(*docker, "auths");
  if (!auths) return fail(std::move(auths.error()));

  Json entry = Json::object();
  if (!helpers->empty()) {
    // The secret lives in the helper; the empty entry records the login so
    // that tools listing config.json see it, as `docker login` leaves it.
    if (auto st = helpers->front().Store(key, credentials); !st) return fail(std::move(st.error()));
  } else {
    if (!credentials.username.empty())
      entry["auth"] = ci::Base64Encode(credentials.username + ":" + credentials.password);
    if (!credentials.identity_token.empty()) entry["identitytoken"] = credentials.identity_token;
    if (!credentials.registry_token.empty()) entry["registrytoken"] = credentials.registry_token;
  }

  Json& auths_out = docker->doc["auths"];
  if (auths_out.is_null()) auths_out = Json::object();
  // Aliases ("https://host/", "host/v2/") would shadow or outlive the new
  // entry; the canonical key is updated in place to keep the file's order.
  for (const std::string& alias : MatchingKeys(auths_out, *canonical)) {
    if (alias != key) auths_out.erase(alias);
  }
  auths_out[key] = std::move(entry);

  if (auto st = SaveConfig(*docker); !st) return fail(std::move(st.error()));
  return {};
}

Status CredentialStore::Logout(std::string_view host) {
  const std::string context = "log out of `" + std::string(host) + "`";
  auto fail = [&](Error e) { return std::unexpected(std::move(e).Wrap(context)); };

  auto canonical = ci::CanonicalHost(host);
  if (!canonical) return fail(std::move(canonical.error()));
  const std::string server_url = ci::KeyForHost(*canonical);

  auto docker = LoadConfig(options_.docker_config);
  if (!docker) return fail(std::move(docker.error()));
  auto helpers = HelpersFor(*docker, *canonical, options_);
  if (!helpers) return fail(std::move(helpers.error()));

  bool found = false;
  std::optional<Error> helper_error;
  if (!helpers->empty()) {
    auto erased = helpers->front().Erase(server_url);
    if (erased) {
      found = *erased;
    } else {
      // Plain-text entries are still removed: a broken helper must not
      // keep a password on disk.
      helper_error = std::move(erased.error());
    }
  }

  auto erased = EraseAuths(*docker, *canonical);
  if (!erased) return fail(std::move(erased.error()));
  if (*erased) {
    found = true;
    if (auto st = SaveConfig(*docker); !st) return fail(std::move(st.error()));
  }

  auto containers = LoadConfig(options_.containers_auth);
  if (!containers) return fail(std::move(containers.error()));
  erased = EraseAuths(*containers, *canonical);
  if (!erased) return fail(std::move(erased.error()));
  if (*erased) {
    found = true;
    if (auto st = SaveConfig(*containers); !st) return fail(std::move(st.error()));
  }

  if (helper_error) return fail(std::move(*helper_error));
  if (!found) return fail(MakeError(Errc::kNotFound, "not logged in").error());
  return {};
}

Result<Credentials> ParseCredsFlag(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return MakeError(Errc::kInvalidArgument, "parse --creds: expected \"user:password\"");
  if (colon == 0) return MakeError(Errc::kInvalidArgument, "parse --creds: empty user");
  Credentials creds;
  creds.username = std::string(text.substr(0, colon));
  creds.password = std::string(text.substr(colon + 1));
  return creds;
}

}  // namespace registry
