#include "trust/policy.h"

#include <algorithm>
#include <initializer_list>

#include "common/fs.h"
#include "trust/config_internal.h"
#include "trust/policy_json.h"
#include "trust/scope.h"

namespace trust {
namespace {

using common::Errc;
using common::Error;
using common::Result;
using internal::IndexPath;
using internal::MemberPath;
using internal::Quoted;
using Json = nlohmann::json;

// A policy file is small; a larger one is a mistake, not a policy.
constexpr size_t kMaxPolicySize = 4u << 20;

// Reads one policy document. Every check names the JSON path of what it
// refuses; the caller adds the file.
class PolicyReader {
 public:
  Result<Policy> Read(const Json& doc) {
    TRY(Fields(doc, "$", {"default", "transports"}));
    Policy policy;
    auto def = doc.find("default");
    if (def == doc.end()) return Fail("$", "missing \"default\"");
    ASSIGN_OR_RETURN(policy.default_requirements, List(*def, "$.default"));
    auto transports = doc.find("transports");
    if (transports == doc.end()) return policy;
    if (!transports->is_object()) return Fail("$.transports", "expected an object");
    for (const auto& [name, scopes] : transports->items()) {
      std::string path = MemberPath("$.transports", name);
      ASSIGN_OR_RETURN(policy.transports[name], Scopes(scopes, path, name == kDockerTransport));
    }
    return policy;
  }

 private:
  static std::unexpected<Error> Fail(std::string_view path, std::string_view why) {
    return common::MakeError(Errc::kInvalidArgument,
                             "at " + std::string(path) + ": " + std::string(why));
  }

  // `j` is an object whose keys are all in `allowed`.
  static common::Status Fields(const Json& j, std::string_view path,
                               std::initializer_list<std::string_view> allowed) {
    if (!j.is_object()) return Fail(path, "expected an object");
    for (const auto& [key, value] : j.items())
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        return Fail(path, "unknown field " + Quoted(key));
    return {};
  }

  // A non-empty string member, or nullopt when absent.
  static Result<std::optional<std::string>> OptString(const Json& j, std::string_view key,
                                                      std::string_view path) {
    auto it = j.find(key);
    if (it == j.end()) return std::nullopt;
    std::string at = MemberPath(path, key);
    if (!it->is_string()) return Fail(at, "expected a string");
    if (it->get_ref<const std::string&>().empty()) return Fail(at, "must not be empty");
    return it->get<std::string>();
  }

  static Result<std::string> String(const Json& j, std::string_view key, std::string_view path) {
    ASSIGN_OR_RETURN(std::optional<std::string> s, OptString(j, key, path));
    if (!s) return Fail(path, "missing " + Quoted(key));
    return *s;
  }

  // A non-empty array of non-empty strings, or nullopt when absent.
  static Result<std::optional<std::vector<std::string>>> OptStrings(const Json& j,
                                                                    std::string_view key,
                                                                    std::string_view path) {
    auto it = j.find(key);
    if (it == j.end()) return std::nullopt;
    std::string at = MemberPath(path, key);
    if (!it->is_array()) return Fail(at, "expected an array of strings");
    if (it->empty()) return Fail(at, "must not be empty");
    std::vector<std::string> out;
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& s = (*it)[i];
      if (!s.is_string() || s.get_ref<const std::string&>().empty())
        return Fail(IndexPath(at, i), "expected a non-empty string");
      out.push_back(s.get<std::string>());
    }
    return out;
  }

  static Result<std::string> Base64(const std::string& text, std::string_view at) {
    auto bytes = internal::DecodeBase64(text);
    if (!bytes) return Fail(at, "not valid base64");
    return std::move(*bytes);
  }

  Result<TransportScopes> Scopes(const Json& j, std::string_view path, bool docker) {
    if (!j.is_object()) return Fail(path, "expected an object of scopes");
    TransportScopes scopes;
    for (const auto& [scope, list] : j.items()) {
      std::string at = MemberPath(path, scope);
      if (docker && !scope.empty())
        if (std::string why = DockerScopeProblem(scope); !why.empty())
          return Fail(at, "invalid scope: " + why);
      ASSIGN_OR_RETURN(scopes[scope], List(list, at));
    }
    return scopes;
  }

  Result<Requirements> List(const Json& j, std::string_view path) {
    if (!j.is_array()) return Fail(path, "expected an array of requirements");
    // containers-policy.json(5): "the array of policy requirements must
    // not be empty"; insecureAcceptAnything says "nothing" explicitly.
    if (j.empty()) return Fail(path, "the list of requirements must not be empty");
    Requirements out;
    for (size_t i = 0; i < j.size(); ++i) {
      ASSIGN_OR_RETURN(Requirement r, One(j[i], IndexPath(path, i)));
      out.push_back(std::move(r));
    }
    return out;
  }

  Result<Requirement> One(const Json& j, const std::string& path) {
    if (!j.is_object()) return Fail(path, "expected a requirement object");
    ASSIGN_OR_RETURN(std::string type, String(j, "type", path));
    Requirement r;
    if (type == "insecureAcceptAnything" || type == "reject") {
      TRY(Fields(j, path, {"type"}));
      r.type =
          type == "reject" ? RequirementType::kReject : RequirementType::kInsecureAcceptAnything;
      return r;
    }
    if (type == "signedBy") {
      r.type = RequirementType::kSignedBy;
      TRY(Fields(j, path, {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"}));
      TRY(SignedBy(j, path, r));
    } else if (type == "sigstoreSigned") {
      r.type = RequirementType::kSigstoreSigned;
      TRY(Fields(j, path,
                 {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
                  "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                  "rekorPublicKeyDatas", "signedIdentity"}));
      TRY(SigstoreSigned(j, path, r));
    } else {
      return Fail(MemberPath(path, "type"), "unknown requirement type " + Quoted(type));
    }
    if (auto id = j.find("signedIdentity"); id != j.end()) {
      ASSIGN_OR_RETURN(r.signed_identity, Identity(*id, MemberPath(path, "signedIdentity")));
    }
    return r;
  }

  // Fills the key source from whichever of `names` (keyPath, keyPaths,
  // keyData, keyDatas) `j` has; the callers check that exactly one key
  // source is present.
  static common::Status Keys(const Json& j, const std::string& path, Requirement& r,
                             std::initializer_list<std::string_view> names) {
    for (std::string_view name : names) {
      if (!j.contains(name)) continue;
      std::string at = MemberPath(path, name);
      if (name == "keyPath" || name == "keyData") {
        ASSIGN_OR_RETURN(std::string s, String(j, name, path));
        if (name == "keyPath") {
          r.key_source = KeySource::kPath;
          r.key_paths.push_back(std::move(s));
        } else {
          r.key_source = KeySource::kData;
          ASSIGN_OR_RETURN(std::string bytes, Base64(s, at));
          r.key_data.push_back(std::move(bytes));
        }
        continue;
      }
      auto list = OptStrings(j, name, path);
      if (!list) return std::unexpected(std::move(list.error()));
      std::vector<std::string> items = std::move(list->value());
      if (name == "keyPaths") {
        r.key_source = KeySource::kPaths;
        r.key_paths = std::move(items);
        continue;
      }
      r.key_source = KeySource::kDatas;
      for (size_t i = 0; i < items.size(); ++i) {
        ASSIGN_OR_RETURN(std::string bytes, Base64(items[i], IndexPath(at, i)));
        r.key_data.push_back(std::move(bytes));
      }
    }
    return {};
  }

  static size_t Count(const Json& j, std::initializer_list<std::string_view> names) {
    return std::count_if(names.begin(), names.end(), [&](auto n) { return j.contains(n); });
  }

  static common::Status SignedBy(const Json& j, const std::string& path, Requirement& r) {
    ASSIGN_OR_RETURN(r.key_type, String(j, "keyType", path));
    // containers/image accepts these four; only GPGKeys is implemented
    // there, and here.
    static constexpr std::string_view kKnown[] = {"GPGKeys", "signedByGPGKeys", "X509Certificates",
                                                  "signedByX509CAs"};
    if (std::find(std::begin(kKnown), std::end(kKnown), r.key_type) == std::end(kKnown))
      return Fail(MemberPath(path, "keyType"), "unknown keyType " + Quoted(r.key_type));
    if (r.key_type != "GPGKeys")
      r.unsupported = "signedBy with keyType " + Quoted(r.key_type) + " is not supported";
    if (Count(j, {"keyPath", "keyPaths", "keyData"}) != 1)
      return Fail(path, "exactly one of keyPath, keyPaths and keyData must be present");
    return Keys(j, path, r, {"keyPath", "keyPaths", "keyData"});
  }

  static common::Status SigstoreSigned(const Json& j, const std::string& path, Requirement& r) {
    if (Count(j, {"keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki"}) != 1)
      return Fail(path,
                  "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be "
                  "present");
    size_t rekor = Count(j, {"rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                             "rekorPublicKeyDatas"});
    if (rekor > 1) return Fail(path, "at most one rekorPublicKey field may be present");
    TRY(RekorFields(j, path));
    if (j.contains("fulcio")) {
      if (rekor == 0) return Fail(path, "fulcio needs a rekorPublicKey field");
      TRY(Fulcio(j["fulcio"], MemberPath(path, "fulcio")));
      r.key_source = KeySource::kFulcio;
      r.unsupported = "sigstoreSigned with fulcio (certificates) is not supported";
      return {};
    }
    if (j.contains("pki")) {
      if (rekor != 0) return Fail(path, "pki takes no rekorPublicKey field");
      TRY(Pki(j["pki"], MemberPath(path, "pki")));
      r.key_source = KeySource::kPki;
      r.unsupported = "sigstoreSigned with pki (X.509 roots) is not supported";
      return {};
    }
    TRY(Keys(j, path, r, {"keyPath", "keyPaths", "keyData", "keyDatas"}));
    if (rekor != 0)
      r.unsupported = "sigstoreSigned with a rekorPublicKey (transparency log) is not supported";
    return {};
  }

  static common::Status RekorFields(const Json& j, const std::string& path) {
    TRY(OptString(j, "rekorPublicKeyPath", path));
    TRY(OptStrings(j, "rekorPublicKeyPaths", path));
    ASSIGN_OR_RETURN(std::optional<std::string> data, OptString(j, "rekorPublicKeyData", path));
    if (data) TRY(Base64(*data, MemberPath(path, "rekorPublicKeyData")));
    ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> datas,
                     OptStrings(j, "rekorPublicKeyDatas", path));
    for (size_t i = 0; datas && i < datas->size(); ++i) {
      TRY(Base64((*datas)[i], IndexPath(MemberPath(path, "rekorPublicKeyDatas"), i)));
    }
    return {};
  }

  // Checked for form only, as containers/image does, although gantry does
  // not use them.
  static common::Status Fulcio(const Json& j, const std::string& path) {
    TRY(Fields(j, path, {"caPath", "caData", "oidcIssuer", "subjectEmail"}));
    if (Count(j, {"caPath", "caData"}) != 1)
      return Fail(path, "exactly one of caPath and caData must be present");
    TRY(OptString(j, "caPath", path));
    ASSIGN_OR_RETURN(std::optional<std::string> data, OptString(j, "caData", path));
    if (data) TRY(Base64(*data, MemberPath(path, "caData")));
    TRY(String(j, "oidcIssuer", path));
    TRY(String(j, "subjectEmail", path));
    return {};
  }

  static common::Status Pki(const Json& j, const std::string& path) {
    TRY(Fields(j, path,
               {"caRootsPath", "caRootsData", "caIntermediatesPath", "caIntermediatesData",
                "subjectEmail", "subjectHostname"}));
    if (Count(j, {"caRootsPath", "caRootsData"}) != 1)
      return Fail(path, "exactly one of caRootsPath and caRootsData must be present");
    if (Count(j, {"caIntermediatesPath", "caIntermediatesData"}) > 1)
      return Fail(path,
                  "at most one of caIntermediatesPath and caIntermediatesData may be present");
    if (Count(j, {"subjectEmail", "subjectHostname"}) == 0)
      return Fail(path, "at least one of subjectEmail and subjectHostname must be present");
    for (std::string_view name :
         {"caRootsPath", "caIntermediatesPath", "subjectEmail", "subjectHostname"}) {
      TRY(OptString(j, name, path));
    }
    for (std::string_view name : {"caRootsData", "caIntermediatesData"}) {
      ASSIGN_OR_RETURN(std::optional<std::string> data, OptString(j, name, path));
      if (data) TRY(Base64(*data, MemberPath(path, name)));
    }
    return {};
  }

  static Result<SignedIdentity> Identity(const Json& j, const std::string& path) {
    if (!j.is_object()) return Fail(path, "expected an identity object");
    ASSIGN_OR_RETURN(std::string type, String(j, "type", path));
    SignedIdentity id;
    if (type == "matchRepoDigestOrExact" || type == "matchRepository" || type == "matchExact") {
      TRY(Fields(j, path, {"type"}));
      id.type = type == "matchExact"        ? IdentityType::kMatchExact
                : type == "matchRepository" ? IdentityType::kMatchRepository
                                            : IdentityType::kMatchRepoDigestOrExact;
      return id;
    }
    if (type == "exactReference") {
      TRY(Fields(j, path, {"type", "dockerReference"}));
      ASSIGN_OR_RETURN(std::string text, String(j, "dockerReference", path));
      std::string at = MemberPath(path, "dockerReference");
      auto ref = ParseNormalizedReference(text);
      if (!ref) return Fail(at, ref.error().message);
      if (ref->name_only) return Fail(at, Quoted(text) + " has neither a tag nor a digest");
      id.type = IdentityType::kExactReference;
      id.docker_reference = ref->ref.str();
      return id;
    }
    if (type == "exactRepository") {
      TRY(Fields(j, path, {"type", "dockerRepository"}));
      ASSIGN_OR_RETURN(std::string text, String(j, "dockerRepository", path));
      auto ref = ParseNormalizedReference(text);
      if (!ref) return Fail(MemberPath(path, "dockerRepository"), ref.error().message);
      id.type = IdentityType::kExactRepository;
      id.docker_repository = ref->ref.name();
      return id;
    }
    if (type == "remapIdentity") {
      TRY(Fields(j, path, {"type", "prefix", "signedPrefix"}));
      id.type = IdentityType::kRemapIdentity;
      ASSIGN_OR_RETURN(id.prefix, String(j, "prefix", path));
      ASSIGN_OR_RETURN(id.signed_prefix, String(j, "signedPrefix", path));
      for (std::string_view name : {"prefix", "signedPrefix"}) {
        const std::string& value = name == "prefix" ? id.prefix : id.signed_prefix;
        if (std::string why = RepositoryPrefixProblem(value); !why.empty())
          return Fail(MemberPath(path, name), why);
      }
      return id;
    }
    return Fail(MemberPath(path, "type"), "unknown signedIdentity type " + Quoted(type));
  }
};

}  // namespace

std::string_view RequirementTypeName(RequirementType type) {
  switch (type) {
    case RequirementType::kInsecureAcceptAnything:
      return "insecureAcceptAnything";
    case RequirementType::kReject:
      return "reject";
    case RequirementType::kSignedBy:
      return "signedBy";
    case RequirementType::kSigstoreSigned:
      return "sigstoreSigned";
  }
  return "unknown";
}

namespace {

ScopeMatch MatchIn(const Policy& policy, std::string_view transport,
                   const std::vector<std::string>& candidates) {
  auto found = policy.transports.find(transport);
  if (!transport.empty() && found != policy.transports.end()) {
    const TransportScopes& scopes = found->second;
    for (const std::string& scope : candidates) {
      auto it = scopes.find(scope);
      if (it != scopes.end())
        return {.transport = std::string(transport), .scope = scope, .requirements = &it->second};
    }
    if (auto it = scopes.find(""); it != scopes.end())
      return {
          .transport = std::string(transport), .scope = std::string(), .requirements = &it->second};
  }
  return {.transport = std::string(transport),
          .scope = std::nullopt,
          .requirements = &policy.default_requirements};
}

}  // namespace

ScopeMatch Policy::MatchScope(const registry::ImageRef& image) const {
  return MatchIn(*this, kDockerTransport, DockerScopes(image));
}

ScopeMatch Policy::MatchScope(const registry::PolicyIdentity& image) const {
  if (image.transport == kDockerTransport && image.reference) return MatchScope(*image.reference);
  return MatchIn(*this, image.transport, LocalScopes(image.transport, image.path));
}

std::string ScopeName(const ScopeMatch& match) {
  if (!match.scope) return "default";
  return "transports." + match.transport + "[" + internal::Quoted(*match.scope) + "]";
}

const Requirements& Policy::RequirementsFor(const registry::ImageRef& image) const {
  return *MatchScope(image).requirements;
}

Result<Policy> ParsePolicy(std::string_view text, std::string_view what) {
  std::string context = "parse policy `" + std::string(what) + "`";
  auto fail = [&](Error e) {
    e = std::move(e).Wrap(context);
    e.message = internal::OneLine(std::move(e.message));
    return std::unexpected(std::move(e));
  };
  auto doc = internal::ParseStrictJson(text);
  if (!doc) return fail(std::move(doc.error()));
  auto policy = PolicyReader().Read(*doc);
  if (!policy) return fail(std::move(policy.error()));
  return policy;
}

Result<Policy> LoadPolicy(const std::filesystem::path& path) {
  auto text = common::ReadFile(path, kMaxPolicySize);
  if (!text) return std::unexpected(std::move(text.error()));
  return ParsePolicy(*text, path.string());
}

}  // namespace trust
