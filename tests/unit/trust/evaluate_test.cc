// trust::Evaluate: the policy's decision with real signatures made at
// test time (skopeo standalone-sign for GPG, openssl for sigstore), and
// `skopeo standalone-verify` agreeing on the GPG cases it can express.

#include "trust/evaluate.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/digest.h"
#include "fixtures/require.h"
#include "fixtures/signing.h"
#include "trust/policy.h"
#include "unit/trust/ref.h"

namespace trust {
namespace {

using common::Errc;
using test_refs::Ref;
using test_signing::Manifest;

class EvaluateTest : public test_signing::GpgSigningTest {
 protected:
  static void SetUpTestSuite() {
    GpgSigningTest::SetUpTestSuite();
    test_signing::WriteBytes(signer_->home() / "trusted.asc", signer_->ExportPublic(trusted_));
  }

  static std::string KeyPath() { return (signer_->home() / "trusted.asc").string(); }

  // A policy whose registry.example.com scope is `requirement` (JSON).
  static Policy PolicyWith(const std::string& requirement) {
    auto p = ParsePolicy(R"({"default": [{"type": "reject"}],
        "transports": {"docker": {"registry.example.com": [)" +
                             requirement + "]}}}",
                         "test policy");
    EXPECT_TRUE(p) << p.error().message;
    return p ? *p : Policy{};
  }
  static Policy SignedByPolicy(const std::string& identity = "") {
    return PolicyWith(R"({"type": "signedBy", "keyType": "GPGKeys", "keyPath": ")" + KeyPath() +
                      "\"" + (identity.empty() ? "" : ", \"signedIdentity\": " + identity) + "}");
  }

  static std::string Sign(int manifest, const std::string& reference,
                          const std::string& fingerprint = trusted_) {
    return signer_->Sign(Manifest(manifest), reference, fingerprint);
  }
  static common::Digest DigestOf(int manifest) {
    return common::Digest::Sha256Of(Manifest(manifest));
  }

  // The rejection message, or "accepted".
  static std::string Decide(const Policy& policy, const std::string& image, int manifest,
                            const Signatures& found) {
    auto r = Evaluate(policy, Ref(image), DigestOf(manifest), found);
    if (r) return "accepted";
    EXPECT_EQ(r.error().code, Errc::kPermissionDenied) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
    return r.error().message;
  }
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(EvaluateTest, SignedByTrustedKeyIsAccepted) {
  std::string sig = Sign(1, "registry.example.com/app:1");
  EXPECT_EQ(Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {.gpg = {sig}}), "accepted");
  EXPECT_TRUE(signer_->SkopeoAccepts(Manifest(1), "registry.example.com/app:1", trusted_, sig));
}

TEST_F(EvaluateTest, UnsignedUnderSignedByIsRejected) {
  EXPECT_EQ(Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {}),
            "policy rejects `registry.example.com/app:1`: scope "
            "transports.docker[\"registry.example.com\"], requirement 1 (signedBy): no signature "
            "(a signature is required)");
}

TEST_F(EvaluateTest, SignatureByAnotherKeyIsRejected) {
  std::string sig = Sign(1, "registry.example.com/app:1", other_);
  std::string why = Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {.gpg = {sig}});
  EXPECT_TRUE(
      Contains(why, "signature 1: signed by key " + other_ + ", which is not a trusted key"))
      << why;
  EXPECT_FALSE(signer_->SkopeoAccepts(Manifest(1), "registry.example.com/app:1", trusted_, sig));
}

TEST_F(EvaluateTest, SignatureForAnotherDigestIsRejected) {
  std::string sig = Sign(2, "registry.example.com/app:1");
  std::string why = Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {.gpg = {sig}});
  EXPECT_TRUE(
      Contains(why, "signed for manifest " + DigestOf(2).str() + ", not " + DigestOf(1).str()))
      << why;
  EXPECT_FALSE(signer_->SkopeoAccepts(Manifest(1), "registry.example.com/app:1", trusted_, sig));
}

TEST_F(EvaluateTest, CorruptSignatureIsRejected) {
  std::string sig = Sign(1, "registry.example.com/app:1");
  sig[sig.size() / 2] = static_cast<char>(sig[sig.size() / 2] ^ 0x20);
  std::string why = Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {.gpg = {sig}});
  EXPECT_TRUE(Contains(why, "requirement 1 (signedBy): signature 1: ")) << why;
  EXPECT_FALSE(signer_->SkopeoAccepts(Manifest(1), "registry.example.com/app:1", trusted_, sig));
}

TEST_F(EvaluateTest, OneGoodSignatureAmongBadOnesSuffices) {
  std::string bad = Sign(1, "registry.example.com/app:1", other_);
  std::string good = Sign(1, "registry.example.com/app:1");
  EXPECT_EQ(Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {.gpg = {bad, good}}),
            "accepted");
  std::string why =
      Decide(SignedByPolicy(), "registry.example.com/app:1", 1, {.gpg = {bad, "garbage"}});
  EXPECT_TRUE(Contains(why, "none of 2 signatures is accepted: signature 1: ")) << why;
  EXPECT_TRUE(Contains(why, "; signature 2: not an OpenPGP signed message")) << why;
}

TEST_F(EvaluateTest, IdentityRulesDecideWhichReferenceMaySign) {
  const std::string by_digest = "registry.example.com/app@" + DigestOf(1).str();
  struct Case {
    std::string identity;  // signedIdentity JSON
    std::string image;     // what is pulled
    std::string signed_reference;
    bool accepted;
  } cases[] = {
      {R"({"type": "matchExact"})", "registry.example.com/app:1", "registry.example.com/app:1",
       true},
      {R"({"type": "matchExact"})", "registry.example.com/app:1", "registry.example.com/app:2",
       false},
      {"", "registry.example.com/app:1", "registry.example.com/app:2", false},
      {"", by_digest, "registry.example.com/app:2", true},
      {"", by_digest, "registry.example.com/other:2", false},
      {R"({"type": "matchRepository"})", "registry.example.com/app:1", "registry.example.com/app:9",
       true},
      {R"({"type": "matchRepository"})", "registry.example.com/app:1",
       "registry.example.com/other:1", false},
      {R"({"type": "exactReference", "dockerReference": "registry.example.com/app:release"})",
       "registry.example.com/app:1", "registry.example.com/app:release", true},
      {R"({"type": "exactReference", "dockerReference": "registry.example.com/app:release"})",
       "registry.example.com/app:1", "registry.example.com/app:1", false},
      {R"({"type": "exactRepository", "dockerRepository": "registry.example.com/signed"})",
       "registry.example.com/app:1", "registry.example.com/signed:x", true},
      {R"({"type": "exactRepository", "dockerRepository": "registry.example.com/signed"})",
       "registry.example.com/app:1", "registry.example.com/app:1", false},
      {R"({"type": "remapIdentity", "prefix": "registry.example.com", "signedPrefix": "origin.example.com"})",
       "registry.example.com/app:1", "origin.example.com/app:1", true},
      {R"({"type": "remapIdentity", "prefix": "registry.example.com", "signedPrefix": "origin.example.com"})",
       "registry.example.com/app:1", "registry.example.com/app:1", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.identity + " pulling " + c.image + " signed as " + c.signed_reference);
    std::string sig = Sign(1, c.signed_reference);
    std::string why = Decide(SignedByPolicy(c.identity), c.image, 1, {.gpg = {sig}});
    if (c.accepted) {
      EXPECT_EQ(why, "accepted");
    } else {
      EXPECT_TRUE(Contains(why, "signed identity \"" + c.signed_reference + "\" does not match"))
          << why;
    }
    // skopeo standalone-verify accepts exactly the signed reference: the
    // matchExact cases must agree.
    if (c.identity == R"({"type": "matchExact"})") {
      EXPECT_EQ(signer_->SkopeoAccepts(Manifest(1), c.image, trusted_, sig), c.accepted);
    }
  }
}

TEST_F(EvaluateTest, RejectDefaultWithInsecureAcceptAnythingScope) {
  auto policy = ParsePolicy(R"({"default": [{"type": "reject"}],
      "transports": {"docker": {"docker.io/library/busybox": [{"type": "insecureAcceptAnything"}]}}})",
                            "test policy");
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(Decide(*policy, "busybox:1.36", 1, {}), "accepted");
  EXPECT_EQ(Decide(*policy, "alpine:3.20", 1, {}),
            "policy rejects `docker.io/library/alpine:3.20`: scope default, requirement 1 "
            "(reject): the policy rejects every image here");
}

TEST_F(EvaluateTest, EveryRequirementOfTheListMustHold) {
  Policy policy = PolicyWith(R"({"type": "insecureAcceptAnything"}, {"type": "signedBy",
      "keyType": "GPGKeys", "keyPath": ")" +
                             KeyPath() + "\"}");
  EXPECT_TRUE(Contains(Decide(policy, "registry.example.com/app:1", 1, {}),
                       "requirement 2 (signedBy): no signature"));
  std::string sig = Sign(1, "registry.example.com/app:1");
  EXPECT_EQ(Decide(policy, "registry.example.com/app:1", 1, {.gpg = {sig}}), "accepted");
}

TEST_F(EvaluateTest, UnsupportedRequirementIsRejected) {
  Policy policy = PolicyWith(R"({"type": "signedBy", "keyType": "X509Certificates",
      "keyPath": ")" + KeyPath() +
                             "\"}");
  std::string sig = Sign(1, "registry.example.com/app:1");
  std::string why = Decide(policy, "registry.example.com/app:1", 1, {.gpg = {sig}});
  EXPECT_TRUE(Contains(why, "requirement 1 (signedBy): ")) << why;
  EXPECT_TRUE(Contains(why, "X509Certificates")) << why;
}

TEST_F(EvaluateTest, MissingKeyFileIsNamed) {
  Policy policy = PolicyWith(
      R"({"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent/key.gpg"})");
  std::string sig = Sign(1, "registry.example.com/app:1");
  std::string why = Decide(policy, "registry.example.com/app:1", 1, {.gpg = {sig}});
  EXPECT_TRUE(Contains(why, "read key: open `/nonexistent/key.gpg`")) << why;
}

TEST_F(EvaluateTest, SigstoreSignedByTrustedKey) {
  auto dir = common::TempDir::Create("gantry-sigstoretest");
  ASSERT_TRUE(dir);
  auto pub = test_signing::MakeSigstoreKey(dir->path(), "cosign", "P-256");
  test_signing::MakeSigstoreKey(dir->path(), "other", "P-256");
  Policy policy = PolicyWith(R"({"type": "sigstoreSigned", "keyPath": ")" + pub.string() +
                             R"(", "signedIdentity": {"type": "matchRepository"}})");
  auto sign = [&](const std::string& key, const std::string& reference, int manifest) {
    std::string payload = test_signing::Payload(reference, DigestOf(manifest));
    return SigstoreSignature{
        .payload = payload,
        .base64_signature = test_signing::SigstoreSign(dir->path(), key, payload, false)};
  };
  EXPECT_EQ(Decide(policy, "registry.example.com/app:1", 1,
                   {.sigstore = {sign("cosign", "registry.example.com/app:7", 1)}}),
            "accepted");
  EXPECT_TRUE(Contains(Decide(policy, "registry.example.com/app:1", 1,
                              {.sigstore = {sign("cosign", "registry.example.com/app:1", 2)}}),
                       "signed for manifest " + DigestOf(2).str()));
  EXPECT_TRUE(Contains(Decide(policy, "registry.example.com/app:1", 1,
                              {.sigstore = {sign("other", "registry.example.com/app:1", 1)}}),
                       "the signature is not by a trusted key"));
  EXPECT_TRUE(Contains(Decide(policy, "registry.example.com/app:1", 1,
                              {.sigstore = {sign("cosign", "registry.example.com/else:1", 1)}}),
                       "does not match under signedIdentity matchRepository"));
  // GPG signatures do not satisfy a sigstoreSigned requirement.
  std::string gpg = Sign(1, "registry.example.com/app:1");
  EXPECT_TRUE(
      Contains(Decide(policy, "registry.example.com/app:1", 1, {.gpg = {gpg}}), "no signature"));
}

TEST_F(EvaluateTest, KeyDataWorksAsKeyPathDoes) {
  auto dir = common::TempDir::Create("gantry-sigstoretest");
  ASSERT_TRUE(dir);
  auto pub = test_signing::MakeSigstoreKey(dir->path(), "cosign", "ED25519");
  Policy gpg = PolicyWith(R"({"type": "signedBy", "keyType": "GPGKeys", "keyData": ")" +
                          test_signing::Base64File(KeyPath()) + "\"}");
  EXPECT_EQ(Decide(gpg, "registry.example.com/app:1", 1,
                   {.gpg = {Sign(1, "registry.example.com/app:1")}}),
            "accepted");
  Policy sigstore = PolicyWith(R"({"type": "sigstoreSigned", "keyData": ")" +
                               test_signing::Base64File(pub) + "\"}");
  std::string payload = test_signing::Payload("registry.example.com/app:1", DigestOf(1));
  SigstoreSignature sig{
      .payload = payload,
      .base64_signature = test_signing::SigstoreSign(dir->path(), "cosign", payload, true)};
  EXPECT_EQ(Decide(sigstore, "registry.example.com/app:1", 1, {.sigstore = {sig}}), "accepted");
}

TEST_F(EvaluateTest, SignaturesAreNeededOnlyWhenTheyCanDecide) {
  auto needs = [](const std::string& requirements) {
    auto p = ParsePolicy(R"({"default": [)" + requirements + "]}", "test");
    EXPECT_TRUE(p) << p.error().message;
    return p && NeedsSignatures(p->default_requirements);
  };
  const std::string signed_by = R"({"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"})";
  const std::string sigstore = R"({"type": "sigstoreSigned", "keyPath": "/k"})";
  EXPECT_TRUE(needs(signed_by));
  EXPECT_TRUE(needs(R"({"type": "insecureAcceptAnything"}, )" + sigstore));
  EXPECT_FALSE(needs(R"({"type": "insecureAcceptAnything"})"));
  EXPECT_FALSE(needs(signed_by + R"(, {"type": "reject"})"));
  EXPECT_FALSE(needs(R"({"type": "sigstoreSigned", "fulcio": {"caPath": "/c", "oidcIssuer": "i", )"
                     R"("subjectEmail": "e"}, "rekorPublicKeyPath": "/r"}, )" +
                     signed_by));
}

TEST_F(EvaluateTest, ExplainGivesEverySignaturesVerdict) {
  std::string bad = Sign(1, "registry.example.com/app:1", other_);
  std::string good = Sign(1, "registry.example.com/app:1");
  registry::PolicyIdentity image{.transport = "docker",
                                 .reference = Ref("registry.example.com/app:1")};
  Decision d = Explain(SignedByPolicy(), image, "registry.example.com/app:1", DigestOf(1),
                       {.gpg = {good, bad}});
  EXPECT_EQ(d.refusal, "");
  EXPECT_EQ(ScopeName(d.match), "transports.docker[\"registry.example.com\"]");
  ASSERT_EQ(d.requirements.size(), 1u);
  EXPECT_EQ(d.requirements[0].problem, "");
  ASSERT_EQ(d.requirements[0].signatures.size(), 2u);
  EXPECT_EQ(d.requirements[0].signatures[0], "");
  EXPECT_TRUE(Contains(d.requirements[0].signatures[1], "which is not a trusted key"))
      << d.requirements[0].signatures[1];

  Decision refused =
      Explain(SignedByPolicy(), image, "registry.example.com/app:1", DigestOf(1), {.gpg = {bad}});
  auto evaluated =
      Evaluate(SignedByPolicy(), image, "registry.example.com/app:1", DigestOf(1), {.gpg = {bad}});
  ASSERT_FALSE(evaluated);
  EXPECT_EQ(refused.refusal, evaluated.error().message);
}

TEST_F(EvaluateTest, LocalSourcesHaveNoSignatureToOffer) {
  auto p = ParsePolicy(R"({"default": [{"type": "insecureAcceptAnything"}],
      "transports": {"oci": {"/srv": [{"type": "signedBy", "keyType": "GPGKeys",
                                       "keyPath": ")" +
                           KeyPath() + R"("}]}}})",
                       "test");
  ASSERT_TRUE(p) << p.error().message;
  auto r =
      Evaluate(*p, {.transport = "oci", .path = "/srv/app"}, "oci:/srv/app:v1", DigestOf(1), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "policy rejects `oci:/srv/app:v1`: scope transports.oci[\"/srv\"], requirement 1 "
            "(signedBy): no signature (a signature is required)");
  EXPECT_TRUE(Evaluate(*p, {.transport = "oci", .path = "/other"}, "oci:/other", DigestOf(1), {}));
}

}  // namespace
}  // namespace trust
