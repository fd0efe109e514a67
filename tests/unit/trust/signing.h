#pragma once
// Keys and real signatures for the trust tests, made at test time: GPG
// keys by gpg in a private GNUPGHOME and simple-signing signatures by
// `skopeo standalone-sign`; sigstore keys and signatures by openssl
// (Debian's skopeo 1.9 refuses to make sigstore signatures: "Debian-local
// change: sigstore disabled").

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/process.h"
#include "fixtures/require.h"

namespace trust::test_signing {

// Runs argv; a failure or a non-zero exit fails the test and returns "".
inline std::string Run(const std::vector<std::string>& argv,
                       const fixtures::RunOptions& options = {}) {
  auto r = fixtures::RunCommand(argv, options);
  EXPECT_TRUE(r) << argv[0] << ": " << (r ? "" : r.error().message);
  if (!r) return {};
  EXPECT_EQ(r->exit_code, 0) << r->Describe(argv);
  return r->out;
}

inline std::string ReadBytes(const std::filesystem::path& path) {
  auto r = common::ReadFile(path);
  EXPECT_TRUE(r) << path << ": " << (r ? "" : r.error().message);
  return r ? *r : std::string();
}

inline void WriteBytes(const std::filesystem::path& path, std::string_view bytes) {
  auto r = common::AtomicWriteFile(path, bytes, 0600);
  EXPECT_TRUE(r) << path << ": " << (r ? "" : r.error().message);
}

// A small OCI manifest; `variant` makes manifests with different digests.
inline std::string Manifest(int variant) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":)"
         R"("sha256:a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8",)"
         R"("size":)" +
         std::to_string(100 + variant) + R"(},"layers":[]})";
}

// A GNUPGHOME holding secret keys, for signing with skopeo. The
// destructor stops the gpg-agent that signing started in it.
class GpgSigner {
 public:
  GpgSigner() {
    auto dir = common::TempDir::Create("gantry-gpgtest");
    EXPECT_TRUE(dir);
    if (dir) dir_ = std::move(*dir);
  }
  ~GpgSigner() { (void)fixtures::RunCommand({"gpgconf", "--kill", "all"}, Options()); }
  GpgSigner(const GpgSigner&) = delete;
  GpgSigner& operator=(const GpgSigner&) = delete;

  const std::filesystem::path& home() const { return dir_.path(); }

  fixtures::RunOptions Options() const {
    fixtures::RunOptions options;
    options.env = {{"GNUPGHOME", dir_.path().string()}};
    return options;
  }

  // Makes an unprotected key for `email`; returns its fingerprint.
  // `faked_time` ("20200101T000000!") makes it as if then; `expire` as
  // gpg --quick-gen-key takes it ("never", "1d").
  std::string GenerateKey(const std::string& email, const std::string& expire = "never",
                          const std::string& faked_time = "") {
    std::vector<std::string> argv = {"gpg",      "--batch",      "--pinentry-mode",
                                     "loopback", "--passphrase", ""};
    if (!faked_time.empty()) argv.insert(argv.end(), {"--faked-system-time", faked_time});
    argv.insert(argv.end(),
                {"--quick-gen-key", "Test <" + email + ">", "future-default", "default", expire});
    Run(argv, Options());
    std::string listing =
        Run({"gpg", "--batch", "--with-colons", "--list-keys", "<" + email + ">"}, Options());
    size_t at = listing.find("\nfpr:");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no fingerprint for " << email << " in: " << listing;
      return {};
    }
    // fpr:::::::::<fingerprint>:
    size_t start = at + 1;
    for (int colons = 0; colons < 9; ++colons) start = listing.find(':', start) + 1;
    return listing.substr(start, listing.find(':', start) - start);
  }

  // The armored public key of `fingerprint`.
  std::string ExportPublic(const std::string& fingerprint) {
    return Run({"gpg", "--batch", "--armor", "--export", fingerprint}, Options());
  }

  // Revokes the key in this home with the certificate gpg made with it.
  void Revoke(const std::string& fingerprint) {
    std::string cert = ReadBytes(home() / "openpgp-revocs.d" / (fingerprint + ".rev"));
    // gpg writes a ':' before the armor line so that the file cannot be
    // imported by accident.
    size_t colon = cert.find(":-----BEGIN");
    ASSERT_NE(colon, std::string::npos);
    cert.erase(colon, 1);
    fixtures::RunOptions options = Options();
    options.stdin_data = cert;
    Run({"gpg", "--batch", "--import"}, options);
  }

  // A simple-signing signature by skopeo of `manifest` as `reference`.
  // `faked_time` signs as if then (through gpg.conf, which skopeo's gpg
  // reads).
  std::string Sign(const std::string& manifest, const std::string& reference,
                   const std::string& fingerprint, const std::string& faked_time = "") {
    WriteBytes(home() / "manifest.json", manifest);
    if (!faked_time.empty())
      WriteBytes(home() / "gpg.conf", "faked-system-time " + faked_time + "\n");
    Run({"skopeo", "standalone-sign", (home() / "manifest.json").string(), reference, fingerprint,
         "-o", (home() / "signature").string()},
        Options());
    std::filesystem::remove(home() / "gpg.conf");
    return ReadBytes(home() / "signature");
  }

  // Whether `skopeo standalone-verify` accepts `signature` for `manifest`
  // as `reference` by `fingerprint` (with this home's keyring).
  bool SkopeoAccepts(const std::string& manifest, const std::string& reference,
                     const std::string& fingerprint, const std::string& signature) {
    WriteBytes(home() / "verify-manifest.json", manifest);
    WriteBytes(home() / "verify-signature", signature);
    auto r = fixtures::RunCommand(
        {"skopeo", "standalone-verify", (home() / "verify-manifest.json").string(), reference,
         fingerprint, (home() / "verify-signature").string()},
        Options());
    EXPECT_TRUE(r);
    return r && r->exit_code == 0;
  }

 private:
  common::TempDir dir_;
};

// A test suite sharing one GpgSigner with two keys, `trusted_` and
// `other_`, made once for the suite.
class GpgSigningTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signer_ = std::make_unique<GpgSigner>();
    trusted_ = signer_->GenerateKey("trusted@example.com");
    other_ = signer_->GenerateKey("other@example.com");
  }
  static void TearDownTestSuite() { signer_.reset(); }
  void SetUp() override { REQUIRE_TOOLS("gpg", "gpgconf", "skopeo", "openssl"); }

  static inline std::unique_ptr<GpgSigner> signer_;
  static inline std::string trusted_;
  static inline std::string other_;
};

// The simple-signing or sigstore payload containers/image writes.
inline std::string Payload(const std::string& reference, const common::Digest& digest,
                           const std::string& type = "cosign container image signature") {
  return R"({"critical":{"identity":{"docker-reference":")" + reference +
         R"("},"image":{"docker-manifest-digest":")" + digest.str() + R"("},"type":")" + type +
         R"("},"optional":{"creator":"gantry test","timestamp":1700000000}})";
}

// An openssl key pair in `dir`: `name`.key (private) and `name`.pub (PEM
// public key). `algorithm`: "P-256", "P-384" or "ED25519".
inline std::filesystem::path MakeSigstoreKey(const std::filesystem::path& dir,
                                             const std::string& name,
                                             const std::string& algorithm) {
  std::filesystem::path key = dir / (name + ".key");
  if (algorithm == "ED25519") {
    Run({"openssl", "genpkey", "-algorithm", "ED25519", "-out", key.string()});
  } else {
    Run({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + algorithm,
         "-out", key.string()});
  }
  std::filesystem::path pub = dir / (name + ".pub");
  Run({"openssl", "pkey", "-in", key.string(), "-pubout", "-out", pub.string()});
  return pub;
}

// The standard base64 of a file's bytes, on one line.
inline std::string Base64File(const std::filesystem::path& path) {
  std::string b64 = Run({"openssl", "base64", "-A", "-in", path.string()});
  while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r')) b64.pop_back();
  return b64;
}

// The base64 sigstore signature of `payload` by `dir`/`name`.key, as the
// dev.cosignproject.cosign/signature annotation holds it.
inline std::string SigstoreSign(const std::filesystem::path& dir, const std::string& name,
                                const std::string& payload, bool ed25519) {
  std::filesystem::path in = dir / "payload";
  std::filesystem::path sig = dir / "payload.sig";
  WriteBytes(in, payload);
  std::string key = (dir / (name + ".key")).string();
  if (ed25519) {
    Run({"openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", in.string(), "-out",
         sig.string()});
  } else {
    Run({"openssl", "dgst", "-sha256", "-sign", key, "-out", sig.string(), in.string()});
  }
  return Base64File(sig);
}

}  // namespace trust::test_signing
