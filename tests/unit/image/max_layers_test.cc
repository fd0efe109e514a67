// FetchOptions::max_layers (image/fetch.h): a manifest with more layers
// is refused once parsed, before any blob is read or stored. Exercised
// through an OCI layout, the same library path as a registry pull.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/fd.h"
#include "common/fs.h"
#include "image/fetch.h"

namespace image {
namespace {

namespace fs = std::filesystem;

constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";

class PullMaxLayers : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-max-layers");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    auto content = store::ContentStore::Open(Root());
    ASSERT_TRUE(content) << content.error().message;
    content_.emplace(std::move(*content));
    auto metadata = store::MetadataDb::Open(Root());
    ASSERT_TRUE(metadata) << metadata.error().message;
    metadata_.emplace(std::move(*metadata));
  }

  fs::path Root() const { return dir_.path() / "root"; }
  fs::path Layout() const { return dir_.path() / "layout"; }

  // A layout whose image `v1` lists `n` layers and a config, none of
  // which is in the layout: any blob read fails the pull with NotFound.
  void WriteLayout(int n) {
    auto layers = nlohmann::json::array();
    for (int i = 0; i < n; ++i)
      layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                        {"digest", common::Digest::Sha256Of(std::to_string(i)).str()},
                        {"size", 10}});
    const std::string manifest = nlohmann::json{
        {"schemaVersion", 2},
        {"mediaType", kManifestType},
        {"config",
         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
          {"digest", common::Digest::Sha256Of("config").str()},
          {"size", 6}}},
        {"layers", layers}}.dump();
    const common::Digest digest = common::Digest::Sha256Of(manifest);
    ASSERT_TRUE(common::MkdirAll(Layout() / "blobs" / "sha256"));
    ASSERT_TRUE(common::AtomicWriteFile(Layout() / "blobs" / "sha256" / digest.hex(), manifest));
    ASSERT_TRUE(
        common::AtomicWriteFile(Layout() / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    const nlohmann::json index = {
        {"schemaVersion", 2},
        {"manifests",
         {{{"mediaType", kManifestType},
           {"digest", digest.str()},
           {"size", manifest.size()},
           {"annotations", {{"org.opencontainers.image.ref.name", "v1"}}}}}}};
    ASSERT_TRUE(common::AtomicWriteFile(Layout() / "index.json", index.dump()));
  }

  common::Result<FetchResult> PullLayout(int max_layers = kDefaultMaxLayers) {
    auto spec = registry::ParseSourceSpec("oci:" + Layout().string() + ":v1");
    EXPECT_TRUE(spec) << spec.error().message;
    if (!spec) return std::unexpected(spec.error());
    FetchOptions opts;
    opts.space.enabled = false;
    opts.max_layers = max_layers;
    // What the record holds is the image model's business; here only
    // that the pull gets that far.
    opts.record = [](const FetchResult& p) -> common::Result<store::ImageRecord> {
      store::ImageRecord rec;
      rec.name = p.name;
      rec.target = p.target;
      return rec;
    };
    return Fetch(*content_, *metadata_, *spec, opts);
  }

  // Blob files in the content store.
  int StoredBlobs() const {
    int n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(Root() / "content" / "blobs" / "sha256", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
      ++n;
    return n;
  }

  common::TempDir dir_;
  std::optional<store::ContentStore> content_;
  std::optional<store::MetadataDb> metadata_;
};

TEST_F(PullMaxLayers, DefaultIsFiveHundred) { EXPECT_EQ(FetchOptions{}.max_layers, 500); }

TEST_F(PullMaxLayers, OneLayerOverTheDefaultIsRefusedBeforeAnyBlob) {
  ASSERT_NO_FATAL_FAILURE(WriteLayout(501));
  auto r = PullLayout();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kResourceExhausted) << r.error().message;
  EXPECT_EQ(r.error().message, "pull oci:" + Layout().string() +
                                   ":v1: manifest has 501 layers, over the limit of 500 "
                                   "(--max-layers)");
  EXPECT_EQ(StoredBlobs(), 0) << "not even the manifest is stored";
}

TEST_F(PullMaxLayers, AtTheLimitThePullGoesOnToTheBlobs) {
  ASSERT_NO_FATAL_FAILURE(WriteLayout(500));
  auto r = PullLayout();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kNotFound)
      << "the layout has no blobs: " << r.error().message;
}

TEST_F(PullMaxLayers, RaisedLimitLetsMoreLayersThrough) {
  ASSERT_NO_FATAL_FAILURE(WriteLayout(3000));
  auto refused = PullLayout();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, common::Errc::kResourceExhausted);
  auto r = PullLayout(5000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kNotFound) << r.error().message;
}

}  // namespace
}  // namespace image
