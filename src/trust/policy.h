#pragma once
// The signature policy: containers-policy.json(5), the file CRI-O, podman
// and skopeo read (/etc/containers/policy.json), parsed into a value.
//
//   {
//     "default": [{"type": "reject"}],
//     "transports": {
//       "docker": {
//         "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
//         "registry.example.com": [{"type": "signedBy", "keyType": "GPGKeys",
//                                   "keyPath": "/etc/pki/example.gpg"}],
//         "*.internal.example.com": [{"type": "sigstoreSigned",
//                                     "keyPath": "/etc/pki/cosign.pub"}]
//       }
//     }
//   }
//
// An image is accepted when every requirement of the list that applies
// to it is satisfied. Which list applies: the most specific docker scope
// present (trust/scope.h: image, repository, namespaces, host, wildcard
// subdomains), else the docker transport's "" scope, else `default`.
// Registries are looked up in the `docker` transport; local sources in
// `oci` (layouts), `oci-archive` and `docker-archive` (trust/scope.h:
// LocalScopes). Other transports (dir, atomic, docker-daemon, …) are
// parsed and checked but never used: gantry reads no images through them.
//
// Parsing is strict, as containers/image's is: unknown or duplicated
// fields, unknown requirement or identity types, a missing or extra key
// source, an empty requirement list, a scope that could never match:
// each is an error (InvalidArgument, one line naming the file and the JSON
// path: "parse policy `/etc/containers/policy.json`: at
// $.transports.docker[\"docker.io\"][0].keyType: unknown keyType \"PGP\"").
// Nothing is ignored. Key files are not read here; the verifier reads them.
//
// This module only parses and looks up; image/trust_gate.h enforces it.
// Values are immutable after parsing; thread-compatible.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "registry/reference.h"
#include "registry/source.h"
#include "trust/identity.h"

namespace trust {

enum class RequirementType {
  kInsecureAcceptAnything,  // accepts the image (other requirements still apply)
  kReject,                  // rejects the image
  kSignedBy,                // a GPG "simple signing" signature by one of the keys
  kSigstoreSigned,          // a sigstore signature by the public key
};

// The policy's spelling: "insecureAcceptAnything", "signedBy", …
[[nodiscard]] std::string_view RequirementTypeName(RequirementType type);

// Where the keys of a signedBy or sigstoreSigned requirement come from.
enum class KeySource {
  kNone,    // insecureAcceptAnything, reject
  kPath,    // keyPath: one file (a GPG keyring, or a PEM public key)
  kPaths,   // keyPaths: several files
  kData,    // keyData: base64 of the keyring or key, decoded into key_data
  kDatas,   // sigstoreSigned keyDatas: several, decoded into key_data
  kFulcio,  // sigstoreSigned fulcio: certificates (unsupported)
  kPki,     // sigstoreSigned pki: X.509 roots (unsupported)
};

struct Requirement {
  RequirementType type = RequirementType::kReject;
  KeySource key_source = KeySource::kNone;
  // keyPath (one entry) or keyPaths, as written (absolute or not).
  std::vector<std::string> key_paths;
  // keyData (one entry) or keyDatas, base64-decoded.
  std::vector<std::string> key_data;
  // signedBy's keyType: "GPGKeys" (the only one gantry verifies),
  // "signedByGPGKeys", "X509Certificates", "signedByX509CAs".
  std::string key_type;
  // signedBy, sigstoreSigned: matchRepoDigestOrExact when absent.
  SignedIdentity signed_identity;
  // Not empty when the requirement is valid but uses what gantry does not
  // verify (Fulcio certificates, PKI roots, Rekor transparency-log keys,
  // keyType other than GPGKeys): the requirement is then never satisfied,
  // and this sentence says why ("sigstoreSigned with fulcio is not
  // supported").
  std::string unsupported;

  friend bool operator==(const Requirement&, const Requirement&) = default;
};

using Requirements = std::vector<Requirement>;
// scope → requirements; "" is the transport's default.
using TransportScopes = std::map<std::string, Requirements, std::less<>>;

inline constexpr std::string_view kDockerTransport = "docker";

// Which scope of the policy applies to an image.
struct ScopeMatch {
  std::string transport{};  // the transport looked up ("docker", "oci", …)
  // The scope ("docker.io/library", "*.example.com", "/srv/images"), ""
  // for the transport's default, nullopt for the policy's `default`.
  std::optional<std::string> scope{};
  const Requirements* requirements = nullptr;  // never null; owned by the Policy
};

struct Policy {
  Requirements default_requirements;  // `default`; never empty
  // transport name → its scopes; only kDockerTransport is looked up.
  std::map<std::string, TransportScopes, std::less<>> transports;

  // The requirements for pulling `image` through the docker transport (the
  // lookup described at the top). The reference stays valid as long as
  // this Policy.
  [[nodiscard]] const Requirements& RequirementsFor(const registry::ImageRef& image) const;
  // The same lookup, also saying which scope decided.
  [[nodiscard]] ScopeMatch MatchScope(const registry::ImageRef& image) const;
  // The lookup for an image of any source: its transport's scopes
  // (trust/scope.h: DockerScopes for "docker", LocalScopes for the local
  // transports), then that transport's "", then `default`. A transport
  // "" (a source the policy never sees) gets `default`.
  [[nodiscard]] ScopeMatch MatchScope(const registry::PolicyIdentity& image) const;
};

// "default", or `transports.<transport>["<scope>"]`: for messages.
[[nodiscard]] std::string ScopeName(const ScopeMatch& match);

// Parses policy JSON; `what` names the source in errors (a path, or
// "--signature-policy"). Errors: InvalidArgument as described above.
[[nodiscard]] common::Result<Policy> ParsePolicy(std::string_view text, std::string_view what);

// Reads and parses `path`. Errors: those of ParsePolicy; NotFound,
// PermissionDenied, … from reading ("read `…`: No such file or directory").
[[nodiscard]] common::Result<Policy> LoadPolicy(const std::filesystem::path& path);

}  // namespace trust
