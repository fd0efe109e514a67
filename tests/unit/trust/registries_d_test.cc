// registries.d: parsing one file, merging a directory, the scope lookup of
// lookaside and use-sigstore-attachments, and the lookaside URL layout.
// The YAML examples are those of containers-registries.d(5) as Debian's
// golang-github-containers-image 5.23 ships it.

#include "trust/registries_d.h"

#include <gtest/gtest.h>

#include <string>

#include "common/fd.h"
#include "common/fs.h"
#include "unit/trust/ref.h"

namespace trust {
namespace {

using common::Errc;

using test_refs::Ref;

class RegistriesDTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-trust-regd");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(common::AtomicWriteFile(dir_.path() / name, text));
  }
  common::TempDir dir_;
};

// "Developing and Signing Containers, Staging Signatures" of the manual page.
constexpr const char* kManPageStaging = R"(docker:
    registry.example.com:
        lookaside: https://registry-lookaside.example.com
    registry.example.com/mydepartment:
        lookaside: https://lookaside.mydepartment.example.com
        lookaside-staging: file:///mnt/mydepartment/lookaside-staging
    registry.example.com/mydepartment/myproject:mybranch:
        lookaside: http://localhost:4242/lookaside
        lookaside-staging: file:///home/useraccount/webroot/lookaside
)";

TEST_F(RegistriesDTest, ManualPageExamplesAndMostSpecificScope) {
  Write("staging.yaml", kManPageStaging);
  // "A Global Default" (a staging URL only: nothing to read from).
  Write("global.yaml", "default-docker:\n    lookaside-staging: file:///mnt/company/staging\n");
  // "Using Containers from Various Origins".
  Write("origins.yaml", R"(docker:
    registry.database-supplier.com:
        lookaside: https://lookaside.database-supplier.com
    distribution.great-middleware.org:
        lookaside: https://security-team.great-middleware.org/lookaside
    docker.io/web-framework:
        lookaside: https://lookaside.web-framework.io:8080
)");
  Write("ignored.yml", "not: [valid");  // only *.yaml is read
  auto r = LoadRegistriesD(dir_.path());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->docker.size(), 6u);
  ASSERT_TRUE(r->default_docker);
  EXPECT_EQ(r->default_docker->lookaside_staging, "file:///mnt/company/staging");
  EXPECT_EQ(r->default_docker->file, (dir_.path() / "global.yaml").string());

  auto at = [&](const std::string& ref) { return r->LookasideFor(Ref(ref)).value_or("none"); };
  EXPECT_EQ(at("registry.example.com/other/app:1"), "https://registry-lookaside.example.com");
  EXPECT_EQ(at("registry.example.com/mydepartment/app:1"),
            "https://lookaside.mydepartment.example.com");
  EXPECT_EQ(at("registry.example.com/mydepartment/myproject:mybranch"),
            "http://localhost:4242/lookaside");
  EXPECT_EQ(at("registry.example.com/mydepartment/myproject:main"),
            "https://lookaside.mydepartment.example.com");
  EXPECT_EQ(at("web-framework/app"), "https://lookaside.web-framework.io:8080");
  EXPECT_EQ(at("busybox"), "none");  // default-docker has a staging URL only
  EXPECT_FALSE(r->UseSigstoreAttachments(Ref("busybox")));
}

TEST_F(RegistriesDTest, EachSettingComesFromTheMostSpecificScopeThatSetsIt) {
  Write("a.yaml", R"(
default-docker:
  sigstore: file:///var/lib/sigs
  use-sigstore-attachments: true
docker:
  quay.io:
    lookaside: https://sigs.quay.example
    sigstore: https://legacy.example
    use-sigstore-attachments: false
  quay.io/team/app:
    use-sigstore-attachments: true
  "*.corp.example":
    lookaside: https://corp-sigs.example
  legacy.example.com:
    sigstore: https://legacy-sigs.example
    sigstore-staging: file:///staging
  docker.io/library/busybox:
)");
  auto r = LoadRegistriesD(dir_.path());
  ASSERT_TRUE(r) << r.error().message;
  // lookaside wins over sigstore in one section; the repository section
  // sets no URL, so the host's applies (containers/image falls through).
  EXPECT_EQ(r->LookasideFor(Ref("quay.io/team/app:1")), "https://sigs.quay.example");
  EXPECT_TRUE(r->UseSigstoreAttachments(Ref("quay.io/team/app:1")));
  EXPECT_FALSE(r->UseSigstoreAttachments(Ref("quay.io/team/other")));
  EXPECT_EQ(r->LookasideFor(Ref("a.corp.example:5000/x")), "https://corp-sigs.example");
  EXPECT_EQ(r->LookasideFor(Ref("legacy.example.com/x")), "https://legacy-sigs.example");
  // An empty section sets nothing: the default applies.
  EXPECT_EQ(r->LookasideFor(Ref("busybox")), "file:///var/lib/sigs");
  EXPECT_TRUE(r->UseSigstoreAttachments(Ref("busybox")));
  EXPECT_TRUE(r->docker.contains("docker.io/library/busybox"));
}

TEST_F(RegistriesDTest, MissingDirectoryIsEmptyAndEmptyFilesAreFine) {
  auto none = LoadRegistriesD(dir_.path() / "absent");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->LookasideFor(Ref("busybox")));
  Write("empty.yaml", "");
  Write("comments.yaml", "# docker:\n#   example.com:\n#     lookaside: https://x\n");
  Write("null.yaml", "---\n");
  Write("nulldocker.yaml", "docker:\n");
  auto r = LoadRegistriesD(dir_.path());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->docker.empty());
  EXPECT_FALSE(r->default_docker);
}

TEST_F(RegistriesDTest, TheSameScopeInTwoFilesIsAnError) {
  Write("a.yaml", "docker:\n  quay.io:\n    lookaside: https://a\n");
  Write("b.yaml", "docker:\n  quay.io:\n    use-sigstore-attachments: true\n");
  auto r = LoadRegistriesD(dir_.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  std::string d = dir_.path().string();
  EXPECT_EQ(r.error().message, "load registries.d `" + d +
                                   "`: docker scope \"quay.io\" is defined in both `" + d +
                                   "/a.yaml` and `" + d + "/b.yaml`");
}

TEST_F(RegistriesDTest, DefaultDockerInTwoFilesIsAnError) {
  Write("a.yaml", "default-docker:\n  lookaside: https://a\n");
  Write("b.yaml", "default-docker:\n  use-sigstore-attachments: true\n");
  auto r = LoadRegistriesD(dir_.path());
  ASSERT_FALSE(r);
  std::string d = dir_.path().string();
  EXPECT_EQ(r.error().message, "load registries.d `" + d +
                                   "`: default-docker is defined in both `" + d + "/a.yaml` and `" +
                                   d + "/b.yaml`");
}

TEST_F(RegistriesDTest, ABadFileNamesItselfInTheLoadError) {
  Write("bad.yaml", "docker:\n  quay.io:\n    lookasid: https://a\n");
  auto r = LoadRegistriesD(dir_.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(r.error().message,
            "parse registries.d file `" + (dir_.path() / "bad.yaml").string() +
                "`: at $.docker[\"quay.io\"] (line 3): unknown key \"lookasid\"");
}

TEST(RegistriesDParse, MalformedInputNamesFileAndPath) {
  struct {
    const char* yaml;
    const char* expect;  // after "parse registries.d file `f.yaml`: "
  } cases[] = {
      {"docker: [", "did not find expected node content (line 2, column 1)"},
      {"- a\n- b\n", "at $ (line 1): expected a mapping"},
      {"dockr:\n  x: 1\n", "at $ (line 1): unknown key \"dockr\""},
      {"docker: 3\n", "at $.docker (line 1): expected a mapping"},
      {"docker:\n  quay.io: [1]\n", "at $.docker[\"quay.io\"] (line 2): expected a mapping"},
      {"docker:\n  quay.io:\n    lookaside: [a]\n",
       "at $.docker[\"quay.io\"].lookaside (line 3): expected a string"},
      {"docker:\n  quay.io:\n    lookaside: ftp://x\n",
       "at $.docker[\"quay.io\"].lookaside (line 3): \"ftp://x\" is not an absolute file://, "
       "http:// or https:// URL"},
      {"docker:\n  quay.io:\n    sigstore: file://relative/x\n",
       "at $.docker[\"quay.io\"].sigstore (line 3): \"file://relative/x\" is not an absolute "
       "file://, http:// or https:// URL"},
      {"docker:\n  quay.io:\n    use-sigstore-attachments: \"true\"\n",
       "at $.docker[\"quay.io\"].use-sigstore-attachments (line 3): expected true or false"},
      {"docker:\n  quay.io:\n    use-sigstore-attachments: yes\n",
       "at $.docker[\"quay.io\"].use-sigstore-attachments (line 3): expected true or false"},
      {"docker:\n  quay.io:\n    lookaside: https://a\n  quay.io:\n    lookaside: https://b\n",
       "at $.docker (line 4): duplicate key \"quay.io\""},
      {"docker:\n  busybox:\n    lookaside: https://a\n",
       "at $.docker.busybox (line 2): invalid scope: `busybox` is not a registry host (write "
       "names fully expanded: docker.io/library/busybox, not busybox)"},
      {"docker:\n  \"\":\n    lookaside: https://a\n",
       "at $.docker[\"\"] (line 2): invalid scope: `` is not a registry host (write names fully "
       "expanded: docker.io/library/busybox, not busybox)"},
      {"docker:\n  [a]: {}\n", "at $.docker (line 2): a key must be a string"},
      {"docker:\n  \"a\\tb.io\": {}\n",
       "at $.docker[\"a\\tb.io\"] (line 2): invalid scope: `a\\x09b.io` is not a valid registry "
       "host[:port]"},
      {"default-docker:\n  lookaside: https://a\n---\ndocker: {}\n", "more than one YAML document"},
  };
  for (const auto& c : cases) {
    auto r = ParseRegistriesFile(c.yaml, "f.yaml");
    ASSERT_FALSE(r) << c.yaml;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << c.yaml;
    EXPECT_EQ(r.error().message, std::string("parse registries.d file `f.yaml`: ") + c.expect)
        << c.yaml;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << c.yaml;
  }
}

TEST(LookasideSignatureUrl, ContainersImageLayout) {
  auto digest = common::Digest::Parse(
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(digest);
  const std::string hex = digest->hex();
  EXPECT_EQ(LookasideSignatureUrl("https://sigs.example.com", "library/busybox", *digest, 0),
            "https://sigs.example.com/library/busybox@sha256=" + hex + "/signature-1");
  EXPECT_EQ(LookasideSignatureUrl("file:///var/lib/containers/sigstore", "team/app", *digest, 2),
            "file:///var/lib/containers/sigstore/team/app@sha256=" + hex + "/signature-3");
  EXPECT_EQ(LookasideSignatureUrl("https://h/base?token=1", "a", *digest, 0),
            "https://h/base/a@sha256=" + hex + "/signature-1?token=1");
  EXPECT_EQ(LookasideSignatureUrl("https://h/base/", "a", *digest, 0),
            "https://h/base//a@sha256=" + hex + "/signature-1");
}

}  // namespace
}  // namespace trust
