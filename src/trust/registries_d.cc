#include "trust/registries_d.h"

#include <yaml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <system_error>
#include <vector>

#include "common/fs.h"
#include "trust/config_internal.h"
#include "trust/scope.h"

namespace trust {
namespace {

using common::Errc;
using common::Error;
using common::Result;
using internal::MemberPath;
using internal::Quoted;

// A registries.d file holds a few scopes; a larger one is a mistake.
constexpr size_t kMaxRegistriesFileSize = 4u << 20;

// libyaml's parser and the document it loads, released together.
class YamlDocument {
 public:
  YamlDocument() { yaml_parser_initialize(&parser_); }
  ~YamlDocument() {
    if (loaded_) yaml_document_delete(&doc_);
    yaml_parser_delete(&parser_);
  }
  YamlDocument(const YamlDocument&) = delete;
  YamlDocument& operator=(const YamlDocument&) = delete;

  void SetInput(std::string_view text) {
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  // Loads the next document; false on a syntax error (see Problem).
  bool Load() {
    if (loaded_) yaml_document_delete(&doc_);
    loaded_ = yaml_parser_load(&parser_, &doc_) != 0;
    return loaded_;
  }
  // The root node; null at the end of the stream.
  yaml_node_t* Root() { return yaml_document_get_root_node(&doc_); }
  yaml_node_t* Node(int id) { return yaml_document_get_node(&doc_, id); }
  std::string Problem() const {
    std::string why = parser_.problem ? parser_.problem : "invalid YAML";
    return why + " (line " + std::to_string(parser_.problem_mark.line + 1) + ", column " +
           std::to_string(parser_.problem_mark.column + 1) + ")";
  }

 private:
  yaml_parser_t parser_;
  yaml_document_t doc_{};
  bool loaded_ = false;
};

std::string_view ScalarText(const yaml_node_t* n) {
  return {reinterpret_cast<const char*>(n->data.scalar.value), n->data.scalar.length};
}

// YAML's null: an empty or "~"/"null" plain scalar (`lookaside:` alone).
bool IsNull(const yaml_node_t* n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  std::string_view v = ScalarText(n);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

bool IsUrlWeRead(std::string_view url) {
  auto scheme_is = [&](std::string_view scheme) {
    if (url.size() < scheme.size() + 3) return false;
    for (size_t i = 0; i < scheme.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(url[i])) != scheme[i]) return false;
    return url.substr(scheme.size(), 3) == "://";
  };
  if (scheme_is("file")) return url.substr(7).starts_with("/");
  for (std::string_view scheme : {"http", "https"})
    if (scheme_is(scheme)) {
      std::string_view rest = url.substr(scheme.size() + 3);
      return !rest.empty() && rest.front() != '/';
    }
  return false;
}

// Reads one file's document. Every check names the YAML path and line of
// what it refuses; the caller adds the file.
class RegistriesReader {
 public:
  explicit RegistriesReader(YamlDocument& doc) : doc_(doc) {}

  Result<RegistriesD> Read(yaml_node_t* root) {
    RegistriesD out;
    if (root == nullptr || IsNull(root)) return out;
    TRY(ForEachPair(
        root, "$",
        [&](std::string_view key, yaml_node_t* key_node, yaml_node_t* value) -> common::Status {
          std::string at = MemberPath("$", key);
          if (key == "default-docker") {
            ASSIGN_OR_RETURN(out.default_docker, Section(value, at));
            return {};
          }
          if (key != "docker") return Fail(key_node, "$", "unknown key " + Quoted(key));
          if (IsNull(value)) return {};
          return ForEachPair(value, at,
                             [&](std::string_view scope, yaml_node_t* scope_node,
                                 yaml_node_t* section) -> common::Status {
                               std::string scope_at = MemberPath(at, scope);
                               if (std::string why = DockerScopeProblem(scope); !why.empty())
                                 return Fail(scope_node, scope_at, "invalid scope: " + why);
                               ASSIGN_OR_RETURN(RegistrySection s, Section(section, scope_at));
                               out.docker.emplace(std::string(scope), std::move(s));
                               return {};
                             });
        }));
    return out;
  }

 private:
  static std::unexpected<Error> Fail(const yaml_node_t* at, std::string_view path,
                                     std::string_view why) {
    return common::MakeError(Errc::kInvalidArgument, "at " + std::string(path) + " (line " +
                                                         std::to_string(at->start_mark.line + 1) +
                                                         "): " + std::string(why));
  }

  // Calls fn(key, key_node, value) for each pair of the mapping `n`; refuses other
  // nodes, non-scalar keys and repeated keys.
  template <class Fn>
  common::Status ForEachPair(yaml_node_t* n, std::string_view path, Fn&& fn) {
    if (n->type != YAML_MAPPING_NODE) return Fail(n, path, "expected a mapping");
    std::set<std::string_view> seen;
    for (yaml_node_pair_t* p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; ++p) {
      yaml_node_t* key = doc_.Node(p->key);
      yaml_node_t* value = doc_.Node(p->value);
      if (key->type != YAML_SCALAR_NODE) return Fail(key, path, "a key must be a string");
      std::string_view k = ScalarText(key);
      if (!seen.insert(k).second) return Fail(key, path, "duplicate key " + Quoted(k));
      TRY(fn(k, key, value));
    }
    return {};
  }

  // A string setting; nullopt when null.
  Result<std::optional<std::string>> String(yaml_node_t* n, std::string_view path) {
    if (IsNull(n)) return std::nullopt;
    if (n->type != YAML_SCALAR_NODE) return Fail(n, path, "expected a string");
    return std::string(ScalarText(n));
  }

  Result<RegistrySection> Section(yaml_node_t* n, const std::string& path) {
    RegistrySection s;
    if (IsNull(n)) return s;
    TRY(ForEachPair(
        n, path,
        [&](std::string_view key, yaml_node_t* key_node, yaml_node_t* value) -> common::Status {
          std::string at = MemberPath(path, key);
          if (key == "use-sigstore-attachments") {
            if (IsNull(value)) return {};
            std::string_view v = value->type == YAML_SCALAR_NODE &&
                                         value->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                                     ? ScalarText(value)
                                     : std::string_view();
            if (v == "true" || v == "True" || v == "TRUE") {
              s.use_sigstore_attachments = true;
            } else if (v == "false" || v == "False" || v == "FALSE") {
              s.use_sigstore_attachments = false;
            } else {
              return Fail(value, at, "expected true or false");
            }
            return {};
          }
          std::optional<std::string>* field = key == "lookaside"           ? &s.lookaside
                                              : key == "sigstore"          ? &s.sigstore
                                              : key == "lookaside-staging" ? &s.lookaside_staging
                                              : key == "sigstore-staging"  ? &s.sigstore_staging
                                                                           : nullptr;
          if (field == nullptr) return Fail(key_node, path, "unknown key " + Quoted(key));
          ASSIGN_OR_RETURN(*field, String(value, at));
          bool read_url = field == &s.lookaside || field == &s.sigstore;
          if (read_url && *field && !IsUrlWeRead(**field))
            return Fail(value, at,
                        Quoted(**field) + " is not an absolute file://, http:// or https:// URL");
          return {};
        }));
    return s;
  }

  YamlDocument& doc_;
};

}  // namespace

std::optional<std::string> RegistriesD::LookasideFor(const registry::ImageRef& image) const {
  for (const std::string& scope : DockerScopes(image)) {
    auto it = docker.find(scope);
    if (it != docker.end() && it->second.ReadUrl()) return it->second.ReadUrl();
  }
  if (default_docker && default_docker->ReadUrl()) return default_docker->ReadUrl();
  return std::nullopt;
}

bool RegistriesD::UseSigstoreAttachments(const registry::ImageRef& image) const {
  for (const std::string& scope : DockerScopes(image)) {
    auto it = docker.find(scope);
    if (it != docker.end() && it->second.use_sigstore_attachments)
      return *it->second.use_sigstore_attachments;
  }
  if (default_docker && default_docker->use_sigstore_attachments)
    return *default_docker->use_sigstore_attachments;
  return false;
}

Result<RegistriesD> ParseRegistriesFile(std::string_view text, std::string_view file) {
  std::string context = "parse registries.d file `" + std::string(file) + "`";
  auto fail = [&](const std::string& why) {
    return common::MakeError(Errc::kInvalidArgument, internal::OneLine(context + ": " + why));
  };
  YamlDocument doc;
  doc.SetInput(text);
  if (!doc.Load()) return fail(doc.Problem());
  auto parsed = RegistriesReader(doc).Read(doc.Root());
  if (!parsed) return fail(parsed.error().message);
  // containers/image reads the first document only; a second one would be
  // silently ignored there, so refuse it.
  if (doc.Root() != nullptr) {
    if (!doc.Load()) return fail(doc.Problem());
    if (doc.Root() != nullptr) return fail("more than one YAML document");
  }
  for (auto& [scope, section] : parsed->docker) section.file = std::string(file);
  if (parsed->default_docker) parsed->default_docker->file = std::string(file);
  return parsed;
}

Result<RegistriesD> LoadRegistriesD(const std::filesystem::path& dir) {
  std::string context = "load registries.d `" + dir.string() + "`";
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return RegistriesD{};
  std::vector<std::filesystem::path> files;
  // The error_code forms throughout: no exception leaves the module.
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->path().filename().string().ends_with(".yaml")) files.push_back(it->path());
  if (ec) return common::ErrnoError("read directory `" + dir.string() + "`", ec.value());
  std::sort(files.begin(), files.end());

  RegistriesD merged;
  for (const auto& file : files) {
    auto text = common::ReadFile(file, kMaxRegistriesFileSize);
    if (!text) return std::unexpected(std::move(text.error()).Wrap(context));
    auto one = ParseRegistriesFile(*text, file.string());
    if (!one) return one;
    if (one->default_docker) {
      if (merged.default_docker)
        return common::MakeError(Errc::kInvalidArgument,
                                 context + ": default-docker is defined in both `" +
                                     merged.default_docker->file + "` and `" + file.string() + "`");
      merged.default_docker = std::move(one->default_docker);
    }
    for (auto& [scope, section] : one->docker) {
      auto [at, inserted] = merged.docker.try_emplace(scope, section);
      if (!inserted)
        return common::MakeError(Errc::kInvalidArgument,
                                 context + ": docker scope " + Quoted(scope) +
                                     " is defined in both `" + at->second.file + "` and `" +
                                     file.string() + "`");
    }
  }
  return merged;
}

std::string LookasideSignatureUrl(std::string_view base, std::string_view repo_path,
                                  const common::Digest& manifest_digest, size_t index) {
  size_t scheme_end = base.find("://");
  size_t tail = base.find_first_of("?#", scheme_end == std::string_view::npos ? 0 : scheme_end);
  if (tail == std::string_view::npos) tail = base.size();
  std::string url(base.substr(0, tail));
  url += "/";
  url += repo_path;
  url += "@";
  url += manifest_digest.algorithm_name();
  url += "=";
  url += manifest_digest.hex();
  url += "/signature-" + std::to_string(index + 1);
  url += base.substr(tail);
  return url;
}

}  // namespace trust
