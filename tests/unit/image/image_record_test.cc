// The image model (image/image_record.h): records as gantry has always
// stored them read into image::Image and written back, labels missing or
// damaged.

#include "image/image_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "image/fetch.h"

namespace image {
namespace {

using ::testing::HasSubstr;

constexpr char kName[] = "docker.io/library/busybox:1.36";

common::Digest D(std::string_view s) { return common::Digest::Sha256Of(s); }

oci::Descriptor Index() {
  return {.media_type = "application/vnd.oci.image.index.v1+json",
          .digest = D("index"),
          .size = 1234,
          .annotations = {},
          .urls = {},
          .artifact_type = ""};
}

// A record as `gantry pull oci:DIR:v1` then an unpack leave it, keys
// spelled out: they are the stored format, which old stores keep.
store::ImageRecord PulledRecord() {
  return {.name = kName,
          .target = Index(),
          .created_ns = 11,
          .updated_ns = 22,
          .labels = {{"io.gantry.manifest", D("manifest").str()},
                     {"io.gantry.config", D("config").str()},
                     {"io.gantry.platform", "linux/arm64/v8"},
                     {"io.gantry.chain", D("chain").str()},
                     {"io.gantry.source.layout", "/srv/layouts/busybox"},
                     {"io.gantry.source.ref-name", "v1"}}};
}

TEST(ImageRecord, ReadsEveryLabelOfAPulledAndUnpackedRecord) {
  auto img = FromRecord(PulledRecord());
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->name, kName);
  EXPECT_EQ(img->target, Index());
  EXPECT_EQ(img->manifest, D("manifest"));
  EXPECT_EQ(img->config, D("config"));
  EXPECT_EQ(img->platform, "linux/arm64/v8");
  EXPECT_TRUE(img->unpacked);
  EXPECT_EQ(img->top_chain, D("chain"));
  ASSERT_TRUE(img->layout);
  EXPECT_EQ(img->layout->dir, "/srv/layouts/busybox");
  EXPECT_EQ(img->layout->ref_name, "v1");
  EXPECT_EQ(img->created_ns, 11);
  EXPECT_EQ(img->updated_ns, 22);
  EXPECT_EQ(PlatformManifest(*img), D("manifest"));
  EXPECT_EQ(ImageId(*img), D("config"));
}

TEST(ImageRecord, RoundTripsThroughTheRecord) {
  const store::ImageRecord rec = PulledRecord();
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(ToRecord(*img), rec);
  auto again = FromRecord(ToRecord(*img));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *img);
}

TEST(ImageRecord, RoundTripsAnImageWithoutOptionalFacts) {
  Image img;
  img.name = kName;
  img.target = Index();
  img.config = D("config");
  const store::ImageRecord rec = ToRecord(img);
  EXPECT_EQ(rec.labels,
            (std::map<std::string, std::string>{{"io.gantry.config", D("config").str()}}));
  auto back = FromRecord(rec);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, img);
}

TEST(ImageRecord, NoLabelsLeavesEveryLabelFactUnset) {
  store::ImageRecord rec = PulledRecord();
  rec.labels.clear();
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(*img, FromRecordColumns(rec));
  EXPECT_FALSE(img->manifest);
  EXPECT_FALSE(img->config);
  EXPECT_EQ(img->platform, "");
  EXPECT_FALSE(img->unpacked);
  EXPECT_FALSE(img->top_chain);
  EXPECT_FALSE(img->layout);
  // What the readers fall back to: the target, as the manifest and the id.
  EXPECT_EQ(PlatformManifest(*img), Index().digest);
  EXPECT_EQ(ImageId(*img), Index().digest);
  EXPECT_TRUE(ToRecord(*img).labels.empty());
}

TEST(ImageRecord, EmptyDigestLabelsAreNotRecorded) {
  store::ImageRecord rec = PulledRecord();
  rec.labels["io.gantry.manifest"] = "";
  rec.labels["io.gantry.config"] = "";
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_FALSE(img->manifest);
  EXPECT_FALSE(img->config);
}

TEST(ImageRecord, EmptyChainIsUnpackedWithNoLayers) {
  store::ImageRecord rec = PulledRecord();
  rec.labels["io.gantry.chain"] = "";
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_TRUE(img->unpacked);
  EXPECT_FALSE(img->top_chain);
  EXPECT_EQ(ToRecord(*img).labels.at("io.gantry.chain"), "");
}

TEST(ImageRecord, NoChainIsNotUnpacked) {
  store::ImageRecord rec = PulledRecord();
  rec.labels.erase("io.gantry.chain");
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_FALSE(img->unpacked);
  EXPECT_EQ(ToRecord(*img).labels.count("io.gantry.chain"), 0u);
}

TEST(ImageRecord, LayoutWithoutRefNameHasAnEmptyOne) {
  store::ImageRecord rec = PulledRecord();
  rec.labels.erase("io.gantry.source.ref-name");
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  ASSERT_TRUE(img->layout);
  EXPECT_EQ(img->layout->ref_name, "");
  // A registry pull has neither.
  rec.labels.erase("io.gantry.source.layout");
  img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_FALSE(img->layout);
}

TEST(ImageRecord, UnknownLabelsAreIgnored) {
  store::ImageRecord rec = PulledRecord();
  rec.labels["io.example.future"] = "x";
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(ToRecord(*img), PulledRecord());
}

class BadDigestLabel : public ::testing::TestWithParam<const char*> {};

TEST_P(BadDigestLabel, IsDataLossNamingTheRecordAndTheLabel) {
  store::ImageRecord rec = PulledRecord();
  rec.labels[GetParam()] = "sha256:not-hex";
  auto img = FromRecord(rec);
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code, common::Errc::kDataLoss);
  EXPECT_THAT(img.error().message, HasSubstr(std::string("image record `") + kName + "`"));
  EXPECT_THAT(img.error().message, HasSubstr(std::string("label ") + GetParam()));
  EXPECT_THAT(img.error().message, HasSubstr("sha256:not-hex"));
}

TEST(ImageRecord, ReadsAndWritesTheCreatedTimeAndTheSize) {
  store::ImageRecord rec = PulledRecord();
  rec.labels["io.gantry.created"] = "2023-11-14T22:13:20Z";
  rec.labels["io.gantry.size"] = "2493";
  auto img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->config_created, "2023-11-14T22:13:20Z");
  EXPECT_EQ(img->content_size, 2493);
  EXPECT_EQ(ToRecord(*img), rec);
  // A config without `created` is recorded as such: "", not absent.
  rec.labels["io.gantry.created"] = "";
  img = FromRecord(rec);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->config_created, "");
  EXPECT_EQ(ToRecord(*img).labels.at("io.gantry.created"), "");
}

TEST(ImageRecord, OldRecordsHaveNoCreatedTimeNorSize) {
  auto img = FromRecord(PulledRecord());
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_FALSE(img->config_created);
  EXPECT_FALSE(img->content_size);
  EXPECT_EQ(ToRecord(*img).labels.count("io.gantry.created"), 0u);
  EXPECT_EQ(ToRecord(*img).labels.count("io.gantry.size"), 0u);
}

class BadSizeLabel : public ::testing::TestWithParam<const char*> {};

TEST_P(BadSizeLabel, IsDataLossNamingTheRecordAndTheLabel) {
  store::ImageRecord rec = PulledRecord();
  rec.labels["io.gantry.size"] = GetParam();
  auto img = FromRecord(rec);
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().code, common::Errc::kDataLoss);
  EXPECT_THAT(img.error().message, HasSubstr(std::string("image record `") + kName + "`"));
  EXPECT_THAT(img.error().message, HasSubstr("label io.gantry.size"));
}

INSTANTIATE_TEST_SUITE_P(Values, BadSizeLabel,
                         ::testing::Values("", "-1", "12kB", " 12", "99999999999999999999"));

oci::Descriptor Blob(std::string_view seed, int64_t size) {
  return {.media_type = "application/octet-stream",
          .digest = D(seed),
          .size = size,
          .annotations = {},
          .urls = {},
          .artifact_type = ""};
}

TEST(ImageRecord, ContentSizeCountsThePlatformManifestOnlyWhenItIsNotTheTarget) {
  const std::vector<oci::Descriptor> layers = {Blob("l1", 1000), Blob("l2", 20000)};
  // An index target: the index, the platform manifest, the config, the layers.
  EXPECT_EQ(ContentSize(Index(), Blob("manifest", 500), 300, layers), 1234 + 500 + 300 + 21000);
  // A manifest target is its own platform manifest.
  const oci::Descriptor m = Blob("manifest", 500);
  EXPECT_EQ(ContentSize(m, m, 300, layers), 500 + 300 + 21000);
  EXPECT_EQ(ContentSize(m, m, 300, {}), 800);
}

TEST(ImageRecord, ImageOfKeepsTheCreatedTimeAndTheSizeOfThePull) {
  image::FetchResult pulled;
  pulled.name = kName;
  pulled.target = Index();
  pulled.manifest = Blob("manifest", 500);
  pulled.config = Blob("config", 300);
  pulled.layers = {Blob("l1", 1000)};
  pulled.image_config.created = "2024-01-02T03:04:05.123456789Z";
  pulled.platform = "linux/amd64";
  const Image img = ImageOf(pulled);
  EXPECT_EQ(img.config_created, "2024-01-02T03:04:05.123456789Z");
  EXPECT_EQ(img.content_size, 1234 + 500 + 300 + 1000);
  EXPECT_FALSE(img.unpacked);
  const store::ImageRecord rec = ToRecord(img);
  EXPECT_EQ(rec.labels.at("io.gantry.created"), "2024-01-02T03:04:05.123456789Z");
  EXPECT_EQ(rec.labels.at("io.gantry.size"), std::to_string(1234 + 500 + 300 + 1000));
  auto back = FromRecord(rec);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, img);
}

INSTANTIATE_TEST_SUITE_P(Labels, BadDigestLabel,
                         ::testing::Values("io.gantry.manifest", "io.gantry.config",
                                           "io.gantry.chain"));

TEST(ImageRecord, SetTopChainKeepsTheOtherLabels) {
  store::ImageRecord rec = PulledRecord();
  rec.labels.erase("io.gantry.chain");
  rec.labels["io.example.future"] = "x";
  SetTopChain(rec, D("top"));
  EXPECT_EQ(rec.labels.at("io.gantry.chain"), D("top").str());
  EXPECT_EQ(rec.labels.at("io.example.future"), "x");
  EXPECT_EQ(rec.labels.size(), 7u);
  SetTopChain(rec, std::nullopt);
  EXPECT_EQ(rec.labels.at("io.gantry.chain"), "");
}

TEST(ImageRecord, ColumnsOnlyReadsNoLabel) {
  const Image img = FromRecordColumns(PulledRecord());
  EXPECT_EQ(img.name, kName);
  EXPECT_EQ(img.target, Index());
  EXPECT_EQ(img.created_ns, 11);
  EXPECT_FALSE(img.config);
  EXPECT_FALSE(img.unpacked);
  EXPECT_FALSE(img.layout);
}

}  // namespace
}  // namespace image
