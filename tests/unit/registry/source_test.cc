// The name `gantry pull oci:DIR[:TAG]` records (registry/source.h,
// ParseSourceSpec), and the names a user may give (LocalImageName).

#include "registry/source.h"

#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/fs.h"

namespace registry {
namespace {

// A layout's index.json whose manifests carry these ref names ("" for none).
void WriteIndex(const std::filesystem::path& dir, const std::vector<std::string>& ref_names) {
  std::string manifests;
  for (size_t i = 0; i < ref_names.size(); ++i) {
    if (i > 0) manifests += ",";
    manifests +=
        R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":")" +
        common::Digest::Sha256Of(std::to_string(i)).str() + "\"";
    if (!ref_names[i].empty())
      manifests +=
          R"(,"annotations":{"org.opencontainers.image.ref.name":")" + ref_names[i] + "\"}";
    manifests += "}";
  }
  ASSERT_TRUE(common::MkdirAll(dir));
  ASSERT_TRUE(common::AtomicWriteFile(dir / "index.json",
                                      R"({"schemaVersion":2,"manifests":[)" + manifests + "]}"));
}

class SourceSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-source");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }
  std::string Name(const std::string& text, const std::string& name = {}) {
    auto s = ParseSourceSpec(text, name);
    EXPECT_TRUE(s) << text << ": " << s.error().message;
    return s ? s->ref.str() : "";
  }
  std::filesystem::path Path(const std::string& sub) const { return dir_.path() / sub; }
  common::TempDir dir_;
};

TEST_F(SourceSpecTest, PlainTagNamesLocalhostBaseTag) {
  EXPECT_EQ(Name("oci:" + Path("My_Layout").string() + ":v1"), "localhost/my-layout:v1");
  EXPECT_EQ(Name("oci:" + Path("My_Layout/").string() + ":v1"), "localhost/my-layout:v1");
  auto s = ParseSourceSpec("oci:" + Path("x").string() + ":v1");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, SourceSpec::Kind::kLayout);
  EXPECT_EQ(s->layout_dir, Path("x"));
  EXPECT_EQ(s->layout_tag, "v1");
}

TEST_F(SourceSpecTest, NoTagTakesTheOnlyImagesRefNameElseLatest) {
  ASSERT_NO_FATAL_FAILURE(WriteIndex(Path("one"), {"v7"}));
  EXPECT_EQ(Name("oci:" + Path("one").string()), "localhost/one:v7");
  ASSERT_NO_FATAL_FAILURE(WriteIndex(Path("bare"), {""}));
  EXPECT_EQ(Name("oci:" + Path("bare").string()), "localhost/bare:latest");
  ASSERT_NO_FATAL_FAILURE(WriteIndex(Path("ref"), {"quay.io/org/app:v3"}));
  EXPECT_EQ(Name("oci:" + Path("ref").string()), "quay.io/org/app:v3");
  // Several images, or none readable: the pull says why; the name is the default.
  ASSERT_NO_FATAL_FAILURE(WriteIndex(Path("two"), {"a", "b"}));
  EXPECT_EQ(Name("oci:" + Path("two").string()), "localhost/two:latest");
  EXPECT_EQ(Name("oci:" + Path("missing").string()), "localhost/missing:latest");
}

TEST_F(SourceSpecTest, RefNameThatIsAReferenceIsTheName) {
  // The directory ends at the first ':', as in skopeo.
  auto s = ParseSourceSpec("oci:" + Path("l").string() + ":quay.io/org/app:v3");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->layout_dir, Path("l"));
  EXPECT_EQ(s->layout_tag, "quay.io/org/app:v3");
  EXPECT_EQ(s->ref.str(), "quay.io/org/app:v3");
  EXPECT_EQ(Name("oci:" + Path("l").string() + ":127.0.0.1:5000/x:v1"), "127.0.0.1:5000/x:v1");
  EXPECT_EQ(Name("oci:" + Path("l").string() + ":app:v1"), "localhost/app:v1");
  EXPECT_EQ(Name("oci:" + Path("l").string() + ":org/app"), "localhost/org/app:latest");
}

TEST_F(SourceSpecTest, NameFlagWinsAndGoesUnderLocalhostWithoutARegistry) {
  const std::string src = "oci:" + Path("l").string() + ":quay.io/org/app:v3";
  EXPECT_EQ(Name(src, "mine:1"), "localhost/mine:1");
  EXPECT_EQ(Name(src, "docker.io/library/mine:1"), "docker.io/library/mine:1");
  EXPECT_EQ(Name(src, "ghcr.io/o/mine"), "ghcr.io/o/mine:latest");
}

TEST_F(SourceSpecTest, BadInputIsOneClearError) {
  auto empty = ParseSourceSpec("oci::v1");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty directory after `oci:`"), std::string::npos);
  auto tag = ParseSourceSpec("oci:" + Path("l").string() + ":v1+build");
  ASSERT_FALSE(tag);
  EXPECT_EQ(tag.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(tag.error().message.find("ref name `v1+build`"), std::string::npos)
      << tag.error().message;
  EXPECT_NE(tag.error().message.find("--name"), std::string::npos) << tag.error().message;
  auto digest = ParseSourceSpec("oci:" + Path("l").string(), "app@sha256:" + std::string(64, 'a'));
  ASSERT_FALSE(digest);
  EXPECT_NE(digest.error().message.find("cannot hold a digest"), std::string::npos);
  auto upper = ParseSourceSpec("oci:" + Path("l").string(), "App:v1");
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().message.find("must be lower-case"), std::string::npos)
      << upper.error().message;
  auto registry = ParseSourceSpec("busybox", "mine");
  ASSERT_FALSE(registry);
  EXPECT_NE(registry.error().message.find("only for oci:DIR sources"), std::string::npos);
}

TEST(ImageRefParse, OciLayoutIsNeverEmptyPortInDomain) {
  auto r = ImageRef::Parse("oci:/tmp/layout:v1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("empty port"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("OCI layout"), std::string::npos) << r.error().message;
}

TEST(NamesRegistry, FirstPartThatReadsAsADomain) {
  EXPECT_TRUE(NamesRegistry("localhost/app"));
  EXPECT_TRUE(NamesRegistry("docker.io/busybox"));
  EXPECT_TRUE(NamesRegistry("127.0.0.1:5000/x:v1"));
  EXPECT_FALSE(NamesRegistry("busybox:1"));
  EXPECT_FALSE(NamesRegistry("org/app"));
  EXPECT_FALSE(NamesRegistry("localhost"));
}

}  // namespace
}  // namespace registry
