// containers-policy.json(5) parsing and the docker scope lookup. The
// examples come from the manual page Debian ships with
// golang-github-containers-image 5.23 (man 5 containers-policy.json; its
// comments removed, since they are not JSON) and from the policy.json of
// golang-github-containers-common (/etc/containers/policy.json).

#include "trust/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/fd.h"
#include "common/fs.h"
#include "trust/config_internal.h"
#include "trust/scope.h"
#include "unit/trust/ref.h"

namespace trust {
namespace {

using common::Errc;

using test_refs::Ref;

// The "reasonably locked-down system" of containers-policy.json(5).
constexpr const char* kManPageExample = R"({
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "docker.io/openshift": [{"type": "insecureAcceptAnything"}],
      "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
      "*.temporary-project.example.com": [{"type": "insecureAcceptAnything"}],
      "hostname:5000/myns/sigstore-signed-with-full-references": [
        {"type": "sigstoreSigned", "keyPath": "/path/to/sigstore-pubkey.pub"}
      ],
      "hostname:5000/myns/sigstore-signed-allows-malicious-tag-substitution": [
        {"type": "sigstoreSigned", "keyPath": "/path/to/sigstore-pubkey.pub",
         "signedIdentity": {"type": "matchRepository"}}
      ]
    },
    "dir": {"": [{"type": "insecureAcceptAnything"}]},
    "atomic": {
      "hostname:5000/myns/official": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/path/to/official-pubkey.gpg"}
      ],
      "hostname:5000/vendor/product": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/path/to/vendor-pubkey.gpg",
         "signedIdentity": {"type": "exactRepository",
                            "dockerRepository": "vendor-hostname/product/repository"}},
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/path/to/reviewer-pubkey.gpg"}
      ],
      "private-mirror:5000/vendor-mirror": [
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/path/to/vendor-pubkey.gpg",
         "signedIdentity": {"type": "remapIdentity", "prefix": "private-mirror:5000/vendor-mirror",
                            "signedPrefix": "vendor.example.com"}}
      ]
    }
  }
})";

TEST(Policy, ParsesTheManualPageExample) {
  auto p = ParsePolicy(kManPageExample, "example");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->default_requirements.size(), 1u);
  EXPECT_EQ(p->default_requirements[0].type, RequirementType::kReject);
  ASSERT_EQ(p->transports.size(), 3u);
  EXPECT_EQ(p->transports.at("docker").size(), 5u);
  // Other transports are kept, checked, and never looked up.
  const Requirements& vendor = p->transports.at("atomic").at("hostname:5000/vendor/product");
  ASSERT_EQ(vendor.size(), 2u);
  EXPECT_EQ(vendor[0].signed_identity.type, IdentityType::kExactRepository);
  // "vendor-hostname" has no '.' or ':', so Docker's normalisation (and
  // containers/image's ParseNormalizedNamed) puts it under docker.io.
  EXPECT_EQ(vendor[0].signed_identity.docker_repository,
            "docker.io/vendor-hostname/product/repository");
  EXPECT_EQ(vendor[1].signed_identity.type, IdentityType::kMatchRepoDigestOrExact);
  const Requirements& mirror = p->transports.at("atomic").at("private-mirror:5000/vendor-mirror");
  EXPECT_EQ(mirror[0].signed_identity.prefix, "private-mirror:5000/vendor-mirror");
  EXPECT_EQ(mirror[0].signed_identity.signed_prefix, "vendor.example.com");

  auto scope_of = [&](const std::string& ref) { return p->MatchScope(Ref(ref)).scope; };
  EXPECT_EQ(scope_of("busybox"), "docker.io/library/busybox");
  EXPECT_EQ(scope_of("openshift/origin:v3"), "docker.io/openshift");
  EXPECT_EQ(scope_of("a.temporary-project.example.com/x:1"), "*.temporary-project.example.com");
  EXPECT_EQ(scope_of("alpine"), std::nullopt);  // the global default: reject
  EXPECT_EQ(p->RequirementsFor(Ref("alpine"))[0].type, RequirementType::kReject);
  const Requirements& loose = p->RequirementsFor(
      Ref("hostname:5000/myns/sigstore-signed-allows-malicious-tag-substitution"));
  EXPECT_EQ(loose[0].type, RequirementType::kSigstoreSigned);
  EXPECT_EQ(loose[0].signed_identity.type, IdentityType::kMatchRepository);
  EXPECT_EQ(loose[0].key_source, KeySource::kPath);
  EXPECT_EQ(loose[0].key_paths, std::vector<std::string>{"/path/to/sigstore-pubkey.pub"});
  EXPECT_EQ(loose[0].unsupported, "");
}

TEST(Policy, LoadsDebiansDefaultPolicy) {
  // golang-github-containers-common's /etc/containers/policy.json, which
  // skopeo (installed by scripts/setup.sh) depends on: always there.
  const std::filesystem::path system = "/etc/containers/policy.json";
  ASSERT_TRUE(std::filesystem::exists(system)) << system << " is missing: run scripts/setup.sh";
  auto p = LoadPolicy(system);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_FALSE(p->RequirementsFor(Ref("busybox")).empty());
}

TEST(Policy, LoadPolicyNamesTheFile) {
  auto dir = common::TempDir::Create("gantry-trust");
  ASSERT_TRUE(dir) << dir.error().message;
  auto path = dir->path() / "policy.json";
  ASSERT_TRUE(common::AtomicWriteFile(path, R"({"default": [{"type": "rejectt"}]})"));
  auto p = LoadPolicy(path);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(p.error().message, "parse policy `" + path.string() +
                                   "`: at $.default[0].type: unknown requirement type \"rejectt\"");
  auto missing = LoadPolicy(dir->path() / "none.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST(Policy, EveryRequirementType) {
  auto p = ParsePolicy(R"({
    "default": [{"type": "insecureAcceptAnything"}],
    "transports": {"docker": {
      "a.example/reject": [{"type": "reject"}],
      "a.example/gpg-path": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}],
      "a.example/gpg-paths": [{"type": "signedBy", "keyType": "GPGKeys",
                               "keyPaths": ["/a.gpg", "/b.gpg"],
                               "signedIdentity": {"type": "matchExact"}}],
      "a.example/gpg-data": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "a2V5cmluZw==",
                              "signedIdentity": {"type": "exactReference",
                                                 "dockerReference": "busybox:1"}}],
      "a.example/x509": [{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "/c"}],
      "a.example/sig-data": [{"type": "sigstoreSigned", "keyData": "cGVt"}],
      "a.example/sig-datas": [{"type": "sigstoreSigned", "keyDatas": ["cGVt", "cGVtMg=="]}],
      "a.example/sig-paths": [{"type": "sigstoreSigned", "keyPaths": ["/a.pub"]}],
      "a.example/fulcio": [{"type": "sigstoreSigned",
                            "fulcio": {"caPath": "/ca", "oidcIssuer": "https://o",
                                       "subjectEmail": "a@b"},
                            "rekorPublicKeyPath": "/rekor.pub"}],
      "a.example/pki": [{"type": "sigstoreSigned",
                         "pki": {"caRootsData": "Y2E=", "subjectHostname": "h"}}],
      "a.example/rekor": [{"type": "sigstoreSigned", "keyPath": "/a.pub",
                           "rekorPublicKeyData": "cmVrb3I="}]
    }}})",
                       "t");
  ASSERT_TRUE(p) << p.error().message;
  auto req = [&](const std::string& scope) {
    return p->transports.at("docker").at("a.example/" + scope).at(0);
  };
  EXPECT_EQ(req("reject").type, RequirementType::kReject);
  EXPECT_EQ(p->default_requirements[0].type, RequirementType::kInsecureAcceptAnything);

  Requirement path = req("gpg-path");
  EXPECT_EQ(path.type, RequirementType::kSignedBy);
  EXPECT_EQ(path.key_type, "GPGKeys");
  EXPECT_EQ(path.key_source, KeySource::kPath);
  EXPECT_EQ(path.key_paths, std::vector<std::string>{"/k.gpg"});
  EXPECT_EQ(path.signed_identity.type, IdentityType::kMatchRepoDigestOrExact);
  EXPECT_EQ(path.unsupported, "");

  Requirement paths = req("gpg-paths");
  EXPECT_EQ(paths.key_source, KeySource::kPaths);
  EXPECT_EQ(paths.key_paths, (std::vector<std::string>{"/a.gpg", "/b.gpg"}));
  EXPECT_EQ(paths.signed_identity.type, IdentityType::kMatchExact);

  Requirement data = req("gpg-data");
  EXPECT_EQ(data.key_source, KeySource::kData);
  EXPECT_EQ(data.key_data, std::vector<std::string>{"keyring"});
  EXPECT_EQ(data.signed_identity.type, IdentityType::kExactReference);
  EXPECT_EQ(data.signed_identity.docker_reference, "docker.io/library/busybox:1");

  EXPECT_EQ(req("x509").unsupported, "signedBy with keyType \"X509Certificates\" is not supported");

  EXPECT_EQ(req("sig-data").key_data, std::vector<std::string>{"pem"});
  EXPECT_EQ(req("sig-data").type, RequirementType::kSigstoreSigned);
  EXPECT_EQ(req("sig-datas").key_source, KeySource::kDatas);
  EXPECT_EQ(req("sig-datas").key_data, (std::vector<std::string>{"pem", "pem2"}));
  EXPECT_EQ(req("sig-paths").key_source, KeySource::kPaths);
  EXPECT_EQ(req("sig-paths").unsupported, "");

  EXPECT_EQ(req("fulcio").key_source, KeySource::kFulcio);
  EXPECT_EQ(req("fulcio").unsupported,
            "sigstoreSigned with fulcio (certificates) is not supported");
  EXPECT_EQ(req("pki").key_source, KeySource::kPki);
  EXPECT_NE(req("pki").unsupported, "");
  EXPECT_EQ(req("rekor").key_source, KeySource::kPath);
  EXPECT_EQ(req("rekor").unsupported,
            "sigstoreSigned with a rekorPublicKey (transparency log) is not supported");

  EXPECT_EQ(RequirementTypeName(RequirementType::kSigstoreSigned), "sigstoreSigned");
}

TEST(Policy, EverySignedIdentityType) {
  struct {
    const char* json;
    IdentityType type;
  } cases[] = {
      {R"({"type": "matchRepoDigestOrExact"})", IdentityType::kMatchRepoDigestOrExact},
      {R"({"type": "matchRepository"})", IdentityType::kMatchRepository},
      {R"({"type": "matchExact"})", IdentityType::kMatchExact},
      {R"({"type": "exactReference", "dockerReference": "quay.io/a/b:1"})",
       IdentityType::kExactReference},
      {R"({"type": "exactRepository", "dockerRepository": "busybox"})",
       IdentityType::kExactRepository},
      {R"({"type": "remapIdentity", "prefix": "m.local/x", "signedPrefix": "docker.io/library"})",
       IdentityType::kRemapIdentity},
  };
  for (const auto& c : cases) {
    std::string text = R"({"default": [{"type": "signedBy", "keyType": "GPGKeys",
                            "keyPath": "/k", "signedIdentity": )" +
                       std::string(c.json) + "}]}";
    auto p = ParsePolicy(text, "t");
    ASSERT_TRUE(p) << c.json << ": " << p.error().message;
    const SignedIdentity& id = p->default_requirements[0].signed_identity;
    EXPECT_EQ(id.type, c.type) << c.json;
    if (c.type == IdentityType::kExactRepository) {
      EXPECT_EQ(id.docker_repository, "docker.io/library/busybox");
    }
    if (c.type == IdentityType::kExactReference) {
      EXPECT_EQ(id.docker_reference, "quay.io/a/b:1");
    }
  }
}

// Most specific wins: image, repository, namespaces by length, host,
// wildcard subdomains longest first, the transport's "", then default.
TEST(Policy, ScopePrecedence) {
  const std::string digest =
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  auto p = ParsePolicy(R"({
    "default": [{"type": "reject"}],
    "transports": {"docker": {
      "": [{"type": "insecureAcceptAnything"}],
      "reg.example.com:5000/team/app:v1": [{"type": "reject"}],
      "reg.example.com:5000/team/app@)" +
                           digest + R"(": [{"type": "reject"}],
      "reg.example.com:5000/team/app": [{"type": "reject"}],
      "reg.example.com:5000/team": [{"type": "reject"}],
      "reg.example.com:5000": [{"type": "reject"}],
      "reg.example.com": [{"type": "reject"}],
      "*.example.com": [{"type": "reject"}],
      "*.com": [{"type": "reject"}],
      "*.deep.example.org": [{"type": "reject"}],
      "docker.io/library": [{"type": "reject"}],
      "docker.io/library/busybox": [{"type": "reject"}],
      "localhost:5000": [{"type": "reject"}]
    }}})",
                       "t");
  ASSERT_TRUE(p) << p.error().message;
  struct {
    std::string ref;
    std::optional<std::string> scope;
  } cases[] = {
      {"reg.example.com:5000/team/app:v1", "reg.example.com:5000/team/app:v1"},
      {"reg.example.com:5000/team/app@" + digest, "reg.example.com:5000/team/app@" + digest},
      // A tag and a digest: the digest's scope first.
      {"reg.example.com:5000/team/app:v1@" + digest, "reg.example.com:5000/team/app@" + digest},
      {"reg.example.com:5000/team/app:v2", "reg.example.com:5000/team/app"},
      {"reg.example.com:5000/team/app/sub:v2", "reg.example.com:5000/team/app"},
      {"reg.example.com:5000/team/other", "reg.example.com:5000/team"},
      {"reg.example.com:5000/x/y/z", "reg.example.com:5000"},
      // The port-less host is not a parent of host:port; wildcards are.
      {"reg.example.com:6000/x", "*.example.com"},
      {"reg.example.com/x", "reg.example.com"},
      {"a.b.example.com/x", "*.example.com"},
      {"example.com/x", "*.com"},  // *.example.com is not example.com itself
      {"x.deep.example.org/y", "*.deep.example.org"},
      {"deep.example.org/y", ""},
      // docker.io normalisation: busybox is docker.io/library/busybox.
      {"busybox", "docker.io/library/busybox"},
      {"index.docker.io/library/busybox:1", "docker.io/library/busybox"},
      {"alpine", "docker.io/library"},
      {"someone/alpine", ""},
      {"localhost:5000/x", "localhost:5000"},
      {"localhost/x", ""},
  };
  for (const auto& c : cases) {
    ScopeMatch m = p->MatchScope(Ref(c.ref));
    EXPECT_EQ(m.scope, c.scope) << c.ref;
    EXPECT_EQ(m.requirements, &p->RequirementsFor(Ref(c.ref))) << c.ref;
  }
  // Without a docker "" scope, the global default decides.
  auto q = ParsePolicy(R"({"default": [{"type": "reject"}],
                          "transports": {"docker": {"quay.io": [{"type": "insecureAcceptAnything"}]},
                                         "dir": {"": [{"type": "insecureAcceptAnything"}]}}})",
                       "t");
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->MatchScope(Ref("busybox")).scope, std::nullopt);
  EXPECT_EQ(q->RequirementsFor(Ref("busybox"))[0].type, RequirementType::kReject);
  EXPECT_EQ(q->MatchScope(Ref("quay.io/a/b")).scope, "quay.io");
}

TEST(Policy, DockerScopesListsCandidatesMostSpecificFirst) {
  EXPECT_EQ(DockerScopes(Ref("reg.example.com:5000/team/app:v1")),
            (std::vector<std::string>{"reg.example.com:5000/team/app:v1",
                                      "reg.example.com:5000/team/app", "reg.example.com:5000/team",
                                      "reg.example.com:5000", "*.example.com", "*.com"}));
  EXPECT_EQ(
      DockerScopes(Ref("busybox")),
      (std::vector<std::string>{"docker.io/library/busybox:latest", "docker.io/library/busybox",
                                "docker.io/library", "docker.io", "*.io"}));
  EXPECT_EQ(DockerScopes(Ref("[::1]:5000/a:1")),
            (std::vector<std::string>{"[::1]:5000/a:1", "[::1]:5000/a", "[::1]:5000"}));
}

TEST(Policy, LocalScopesListDirectoryThenParents) {
  EXPECT_EQ(LocalScopes("oci", "/srv/images/app"),
            (std::vector<std::string>{"/srv/images/app", "/srv/images", "/srv"}));
  EXPECT_EQ(LocalScopes("oci-archive", "/a.tar"), (std::vector<std::string>{"/a.tar"}));
  EXPECT_TRUE(LocalScopes("docker-archive", "/srv/a.tar").empty());
  EXPECT_TRUE(LocalScopes("oci", "").empty());
}

TEST(Policy, SourcesAreLookedUpInTheirOwnTransport) {
  auto p = ParsePolicy(R"({"default": [{"type": "reject"}],
      "transports": {
        "docker": {"reg.example.com": [{"type": "insecureAcceptAnything"}]},
        "oci": {"/srv/images": [{"type": "insecureAcceptAnything"}],
                "/srv/images/app:v2": [{"type": "reject"}]},
        "docker-archive": {"": [{"type": "insecureAcceptAnything"}]}}})",
                       "test");
  ASSERT_TRUE(p) << p.error().message;
  auto match = [&](const registry::PolicyIdentity& id) {
    ScopeMatch m = p->MatchScope(id);
    return ScopeName(m) + " " + std::string(RequirementTypeName(m.requirements->front().type));
  };
  EXPECT_EQ(match({.transport = "docker", .reference = Ref("reg.example.com/a:1")}),
            "transports.docker[\"reg.example.com\"] insecureAcceptAnything");
  // As in containers/image, the tag is no part of an oci: image's scope:
  // the policy's "/srv/images/app:v2" never matches.
  EXPECT_EQ(match({.transport = "oci", .path = "/srv/images/app"}),
            "transports.oci[\"/srv/images\"] insecureAcceptAnything");
  EXPECT_EQ(match({.transport = "oci", .path = "/elsewhere"}), "default reject");
  EXPECT_EQ(match({.transport = "docker-archive", .path = "/srv/a.tar"}),
            "transports.docker-archive[\"\"] insecureAcceptAnything");
  EXPECT_EQ(match({.transport = "oci-archive", .path = "/srv/images/a.tar"}), "default reject");
  // A source the policy never sees gets the default.
  EXPECT_EQ(match({}), "default reject");
}

// Every malformed input: InvalidArgument, one line, naming the source and
// the JSON path.
TEST(Policy, MalformedInputNamesSourceAndPath) {
  const std::string k = R"("type": "signedBy", "keyType": "GPGKeys")";
  struct {
    std::string json;
    std::string expect;  // after "parse policy `src`: "
  } cases[] = {
      {"", "invalid JSON at byte 1"},
      {"{\"default\": [", "invalid JSON at byte 14"},
      {"[]", "at $: expected an object"},
      {"{}", "at $: missing \"default\""},
      {R"({"default": [], "x": 1})", "at $: unknown field \"x\""},
      {R"({"default": {}})", "at $.default: expected an array of requirements"},
      {R"({"default": []})", "at $.default: the list of requirements must not be empty"},
      {R"({"default": [{"type": "reject"}], "default": [{"type": "reject"}]})",
       "at $: duplicate key \"default\""},
      {R"({"default": ["reject"]})", "at $.default[0]: expected a requirement object"},
      {R"({"default": [{}]})", "at $.default[0]: missing \"type\""},
      {R"({"default": [{"type": 1}]})", "at $.default[0].type: expected a string"},
      {R"({"default": [{"type": "signedBaseLayer"}]})",
       "at $.default[0].type: unknown requirement type \"signedBaseLayer\""},
      {R"({"default": [{"type": "reject", "keyPath": "/k"}]})",
       "at $.default[0]: unknown field \"keyPath\""},
      {R"({"default": [{"type": "insecureAcceptAnything", "type": "reject"}]})",
       "at $.default[0]: duplicate key \"type\""},
      {R"({"default": [{"type": "signedBy", "keyPath": "/k"}]})",
       "at $.default[0]: missing \"keyType\""},
      {R"({"default": [{"type": "signedBy", "keyType": "PGP", "keyPath": "/k"}]})",
       "at $.default[0].keyType: unknown keyType \"PGP\""},
      {"{\"default\": [{" + k + "}]}",
       "at $.default[0]: exactly one of keyPath, keyPaths and keyData must be present"},
      {"{\"default\": [{" + k + R"(, "keyPath": "/a", "keyData": "YQ=="}]})",
       "at $.default[0]: exactly one of keyPath, keyPaths and keyData must be present"},
      {"{\"default\": [{" + k + R"(, "keyPath": ""}]})",
       "at $.default[0].keyPath: must not be empty"},
      {"{\"default\": [{" + k + R"(, "keyPaths": []}]})",
       "at $.default[0].keyPaths: must not be empty"},
      {"{\"default\": [{" + k + R"(, "keyPaths": ["/a", 2]}]})",
       "at $.default[0].keyPaths[1]: expected a non-empty string"},
      {"{\"default\": [{" + k + R"(, "keyData": "not base64"}]})",
       "at $.default[0].keyData: not valid base64"},
      {"{\"default\": [{" + k + R"(, "keyPath": "/k", "keyDatas": ["YQ=="]}]})",
       "at $.default[0]: unknown field \"keyDatas\""},
      {"{\"default\": [{" + k + R"(, "keyPath": "/k", "signedIdentity": "matchExact"}]})",
       "at $.default[0].signedIdentity: expected an identity object"},
      {"{\"default\": [{" + k + R"(, "keyPath": "/k", "signedIdentity": {"type": "matchAll"}}]})",
       "at $.default[0].signedIdentity.type: unknown signedIdentity type \"matchAll\""},
      {"{\"default\": [{" + k +
           R"(, "keyPath": "/k", "signedIdentity": {"type": "matchExact", "x": 1}}]})",
       "at $.default[0].signedIdentity: unknown field \"x\""},
      {"{\"default\": [{" + k +
           R"(, "keyPath": "/k", "signedIdentity": {"type": "exactReference"}}]})",
       "at $.default[0].signedIdentity: missing \"dockerReference\""},
      {"{\"default\": [{" + k +
           R"(, "keyPath": "/k", "signedIdentity": {"type": "exactReference", "dockerReference": "busybox"}}]})",
       "at $.default[0].signedIdentity.dockerReference: \"busybox\" has neither a tag nor a "
       "digest"},
      {"{\"default\": [{" + k +
           R"(, "keyPath": "/k", "signedIdentity": {"type": "exactRepository", "dockerRepository": "Bad"}}]})",
       "at $.default[0].signedIdentity.dockerRepository: parse reference `Bad`: repository name "
       "must be lower-case"},
      {"{\"default\": [{" + k +
           R"(, "keyPath": "/k", "signedIdentity": {"type": "remapIdentity", "prefix": "busybox", "signedPrefix": "docker.io"}}]})",
       "at $.default[0].signedIdentity.prefix: `busybox` is not a registry host (write names fully "
       "expanded: docker.io/library/busybox, not busybox)"},
      {"{\"default\": [{" + k +
           R"(, "keyPath": "/k", "signedIdentity": {"type": "remapIdentity", "prefix": "m.local", "signedPrefix": "docker.io/busybox:1"}}]})",
       "at $.default[0].signedIdentity.signedPrefix: `docker.io/busybox:1` must not have a tag or "
       "digest"},
      {R"({"default": [{"type": "sigstoreSigned"}]})",
       "at $.default[0]: exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must "
       "be present"},
      {R"({"default": [{"type": "sigstoreSigned", "keyType": "GPGKeys", "keyPath": "/k"}]})",
       "at $.default[0]: unknown field \"keyType\""},
      {R"({"default": [{"type": "sigstoreSigned", "fulcio": {"caPath": "/c", "oidcIssuer": "o", "subjectEmail": "e"}}]})",
       "at $.default[0]: fulcio needs a rekorPublicKey field"},
      {R"({"default": [{"type": "sigstoreSigned", "fulcio": {"caPath": "/c", "subjectEmail": "e"}, "rekorPublicKeyPath": "/r"}]})",
       "at $.default[0].fulcio: missing \"oidcIssuer\""},
      {R"({"default": [{"type": "sigstoreSigned", "keyPath": "/k", "rekorPublicKeyPath": "/r", "rekorPublicKeyData": "YQ=="}]})",
       "at $.default[0]: at most one rekorPublicKey field may be present"},
      {R"({"default": [{"type": "sigstoreSigned", "pki": {"caRootsPath": "/c"}}]})",
       "at $.default[0].pki: at least one of subjectEmail and subjectHostname must be present"},
      {R"({"default": [{"type": "reject"}], "transports": []})",
       "at $.transports: expected an object"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"busybox": [{"type": "reject"}]}}})",
       "at $.transports.docker.busybox: invalid scope: `busybox` is not a registry host "
       "(write names fully expanded: docker.io/library/busybox, not busybox)"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"docker.io/busybox:1": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"docker.io/busybox:1\"]: invalid scope: `docker.io/busybox:1` is "
       "not "
       "in the fully expanded form `docker.io/library/busybox:1`"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"index.docker.io/library": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"index.docker.io/library\"]: invalid scope: `index.docker.io` is "
       "not "
       "in the canonical form `docker.io`"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"quay.io/a:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": [{"type": "reject"}]}}})",
       "at "
       "$.transports.docker[\"quay.io/"
       "a:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]: invalid "
       "scope: "
       "`quay.io/a:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef` has "
       "both a tag and a digest; a scope names one of them"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"quay.io/A": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"quay.io/A\"]: invalid scope: parse reference `quay.io/A`: "
       "repository name must be lower-case"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"index.docker.io": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"index.docker.io\"]: invalid scope: `index.docker.io` is not in "
       "the canonical form `docker.io`"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"*.example.com:5000": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"*.example.com:5000\"]: invalid scope: wildcard scope "
       "`*.example.com:5000` must be `*.` followed by a domain name (no port, no other `*`)"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"example*.com": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"example*.com\"]: invalid scope: `example*.com`: a wildcard is "
       "allowed only as a leading `*.`"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"quay.io": []}}})",
       "at $.transports.docker[\"quay.io\"]: the list of requirements must not be empty"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"quay.io": [{"type": "reject"}], "quay.io": [{"type": "reject"}]}}})",
       "at $.transports.docker: duplicate key \"quay.io\""},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"a\nb.io": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"a\\nb.io\"]: invalid scope: `a\\nb.io` is not a valid registry "
       "host[:port]"},
      {R"({"default": [{"type": "reject"}], "transports": {"docker": {"example.com:99999": [{"type": "reject"}]}}})",
       "at $.transports.docker[\"example.com:99999\"]: invalid scope: `example.com:99999` is not a "
       "valid registry host[:port]"},
      {R"({"default": [{"type": "reject"}], "transports": {"dir": {"/x": [{"type": "nope"}]}}})",
       "at $.transports.dir[\"/x\"][0].type: unknown requirement type \"nope\""},
  };
  for (const auto& c : cases) {
    auto p = ParsePolicy(c.json, "/etc/containers/policy.json");
    ASSERT_FALSE(p) << c.json;
    EXPECT_EQ(p.error().code, Errc::kInvalidArgument) << c.json;
    EXPECT_EQ(p.error().message, "parse policy `/etc/containers/policy.json`: " + c.expect)
        << c.json;
    EXPECT_EQ(p.error().message.find('\n'), std::string::npos) << c.json;
  }
}

// keyData is Go's []byte in JSON: standard base64, padded.
TEST(Policy, KeyDataIsStrictPaddedBase64) {
  using internal::DecodeBase64;
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64("YQ=="), "a");
  EXPECT_EQ(DecodeBase64("YWI="), "ab");
  EXPECT_EQ(DecodeBase64("YWJj"), "abc");
  EXPECT_EQ(DecodeBase64("+/8="), "\xfb\xff");
  for (const char* bad : {"YQ", "YQ=", "Y===", "YQ==\n", " YQ==", "YQ=a", "-_8=", "Y Q="})
    EXPECT_EQ(DecodeBase64(bad), std::nullopt) << bad;
}

}  // namespace
}  // namespace trust
