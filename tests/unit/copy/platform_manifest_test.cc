// Choosing the platform's manifest (registry/platform_manifest.h), on real OCI
// layouts: the entry of a two-platform index, the error for a platform the
// index lacks, a top that is a manifest itself; and an index entry whose
// size is not its manifest's, which the function, the copier and the pull
// all refuse.

#include "registry/platform_manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "archive/destinations.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "image/copy.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "registry/source.h"

namespace {

namespace fs = std::filesystem;
using common::Errc;

// A small image for `arch`: one layer naming the architecture.
fixtures::ImageSpec SmallSpec(const std::string& arch) {
  fixtures::ImageSpec spec;
  spec.architecture = arch;
  fixtures::LayerSpec layer;
  layer.entries = {fixtures::File("arch.txt", arch + "\n")};
  spec.layers.push_back(std::move(layer));
  return spec;
}

oci::Platform Linux(const std::string& arch) {
  oci::Platform p;
  p.os = "linux";
  p.architecture = arch;
  return p;
}

class PlatformManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("platform-manifest-test");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    auto amd = fixtures::WriteImage(layout(), SmallSpec("amd64"), "");
    ASSERT_TRUE(amd) << amd.error().message;
    amd64_ = *amd;
    auto arm = fixtures::WriteImage(layout(), SmallSpec("arm64"), "");
    ASSERT_TRUE(arm) << arm.error().message;
    arm64_ = *arm;
    auto index = fixtures::WriteIndex(
        layout(), {{amd64_, "linux", "amd64", ""}, {arm64_, "linux", "arm64", ""}}, "multi");
    ASSERT_TRUE(index) << index.error().message;
    index_ = *index;
    auto single = fixtures::WriteImage(layout(), SmallSpec("amd64"), "single");
    ASSERT_TRUE(single) << single.error().message;
  }
  fs::path layout() const { return dir_.path() / "layout"; }

  std::unique_ptr<registry::ImageSource> Open(const fs::path& dir, const std::string& tag) {
    auto src = registry::OpenLayoutSource(dir, tag);
    EXPECT_TRUE(src) << src.error().message;
    return src ? std::move(*src) : nullptr;
  }

  // The choice for `platform` among what `src`'s reference names.
  static common::Result<std::optional<oci::IndexEntry>> EntryFor(registry::ImageSource& src,
                                                                 const oci::Platform& platform) {
    auto top = src.ResolveTop(nullptr);
    if (!top) return std::unexpected(top.error());
    return registry::SelectPlatformEntry(src, *top, platform);
  }

  // A layout under `name` whose only image is an index listing the arm64
  // manifest with `size_delta` added to its size.
  fs::path WriteLyingIndex(const std::string& name, int64_t size_delta) {
    const fs::path dir = dir_.path() / name;
    auto arm = fixtures::WriteImage(dir, SmallSpec("arm64"), "");
    EXPECT_TRUE(arm) << arm.error().message;
    nlohmann::json index{{"schemaVersion", 2},
                         {"mediaType", fixtures::kMediaTypeIndex},
                         {"manifests",
                          {{{"mediaType", arm64_.manifest.media_type},
                            {"digest", arm64_.manifest.digest.str()},
                            {"size", arm64_.manifest.size + size_delta},
                            {"platform", {{"architecture", "arm64"}, {"os", "linux"}}}}}}};
    const std::string body = index.dump();
    const common::Digest digest = common::Digest::Sha256Of(body);
    EXPECT_TRUE(common::AtomicWriteFile(dir / "blobs" / "sha256" / digest.hex(), body));
    nlohmann::json top{{"schemaVersion", 2},
                       {"manifests",
                        {{{"mediaType", fixtures::kMediaTypeIndex},
                          {"digest", digest.str()},
                          {"size", body.size()},
                          {"annotations", {{fixtures::kAnnotationRefName, "lying"}}}}}}};
    EXPECT_TRUE(common::AtomicWriteFile(dir / "index.json", top.dump()));
    return dir;
  }

  common::TempDir dir_;
  fixtures::BuiltImage amd64_, arm64_;
  fixtures::BlobInfo index_;
};

TEST_F(PlatformManifestTest, TwoPlatformIndexGivesThePlatformsEntryAndManifest) {
  auto src = Open(layout(), "multi");
  ASSERT_TRUE(src);
  for (const auto& [arch, image] : {std::pair{"amd64", amd64_}, std::pair{"arm64", arm64_}}) {
    SCOPED_TRACE(arch);
    auto entry = EntryFor(*src, Linux(arch));
    ASSERT_TRUE(entry) << entry.error().message;
    ASSERT_TRUE(entry->has_value());
    EXPECT_EQ((*entry)->descriptor.digest, image.manifest.digest);
    EXPECT_EQ((*entry)->descriptor.size, image.manifest.size);
    auto m = registry::FetchPlatformManifest(*src, (*entry)->descriptor, nullptr);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->digest, image.manifest.digest);
    EXPECT_EQ(static_cast<int64_t>(m->body.size()), image.manifest.size);
    EXPECT_EQ(m->media_type, fixtures::kMediaTypeManifest);
  }
}

TEST_F(PlatformManifestTest, PlatformTheIndexLacksIsNotFoundNamingTheSource) {
  auto src = Open(layout(), "multi");
  ASSERT_TRUE(src);
  auto entry = EntryFor(*src, Linux("s390x"));
  ASSERT_FALSE(entry);
  EXPECT_EQ(entry.error().code, Errc::kNotFound);
  // SelectPlatform's message, behind the source's name.
  EXPECT_TRUE(entry.error().message.starts_with(src->Describe() + ": ")) << entry.error().message;
  EXPECT_NE(entry.error().message.find("linux/s390x"), std::string::npos) << entry.error().message;
}

TEST_F(PlatformManifestTest, ManifestTopIsItsOwnPlatformManifest) {
  auto src = Open(layout(), "single");
  ASSERT_TRUE(src);
  // Whatever the platform: a manifest is not chosen among others.
  auto entry = EntryFor(*src, Linux("s390x"));
  ASSERT_TRUE(entry) << entry.error().message;
  EXPECT_FALSE(entry->has_value());
}

TEST_F(PlatformManifestTest, ManifestWhoseSizeIsNotItsEntrysIsDataLoss) {
  for (int64_t delta : {int64_t{1}, int64_t{-1}}) {
    SCOPED_TRACE(delta);
    auto src = Open(WriteLyingIndex("lying" + std::to_string(delta), delta), "lying");
    ASSERT_TRUE(src);
    auto entry = EntryFor(*src, Linux("arm64"));
    ASSERT_TRUE(entry) << entry.error().message;
    ASSERT_TRUE(entry->has_value());
    auto m = registry::FetchPlatformManifest(*src, (*entry)->descriptor, nullptr);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, Errc::kDataLoss);
    EXPECT_EQ(m.error().message, "manifest " + arm64_.manifest.digest.str() + " has " +
                                     std::to_string(arm64_.manifest.size) +
                                     " bytes, the index says " +
                                     std::to_string(arm64_.manifest.size + delta));
  }
}

TEST_F(PlatformManifestTest, CopyAndPullRefuseAManifestWhoseSizeIsNotItsEntrys) {
  const fs::path lying = WriteLyingIndex("lying", 1);
  const std::string want = "has " + std::to_string(arm64_.manifest.size) +
                           " bytes, the index says " + std::to_string(arm64_.manifest.size + 1);
  for (bool all_platforms : {false, true}) {
    SCOPED_TRACE(all_platforms);
    auto src = Open(lying, "lying");
    ASSERT_TRUE(src);
    const fs::path out = dir_.path() / (all_platforms ? "out-all" : "out-one");
    auto dst = archives::OpenLayoutDestination(out, "copied");
    ASSERT_TRUE(dst) << dst.error().message;
    auto c =
        image::CopyImage(*src, **dst, {.platform = Linux("arm64"), .all_platforms = all_platforms});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::kDataLoss);
    EXPECT_TRUE(c.error().message.starts_with("copy " + src->Describe() + ": manifest "))
        << c.error().message;
    EXPECT_NE(c.error().message.find(want), std::string::npos) << c.error().message;
    // Refused before any blob of the image was written.
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(out / "blobs" / "sha256", ec) || !fs::exists(out / "blobs", ec));
  }

  const fs::path root = dir_.path() / "store";
  auto content = store::ContentStore::Open(root);
  ASSERT_TRUE(content) << content.error().message;
  auto meta = store::MetadataDb::Open(root);
  ASSERT_TRUE(meta) << meta.error().message;
  auto src = Open(lying, "lying");
  ASSERT_TRUE(src);
  image::FetchOptions opts;
  opts.record = image::RecordOf;
  opts.platform = Linux("arm64");
  auto pulled = image::FetchFrom(*content, *meta, *src, "localhost/lying:v1", opts);
  ASSERT_FALSE(pulled);
  EXPECT_EQ(pulled.error().code, Errc::kDataLoss);
  EXPECT_NE(pulled.error().message.find(want), std::string::npos) << pulled.error().message;
  EXPECT_FALSE(content->Has(arm64_.config.digest));
}

}  // namespace
