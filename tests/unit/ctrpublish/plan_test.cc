// PlanPublish over a real store in a temporary root: what a publication
// would write into containerd (blobs, their GC labels, chains, names),
// with no containerd. Publishing itself is tested against containerd in
// tests/integration/ctrsnap/publish_test.cc.

#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/fs.h"
#include "ctrpublish/publish.h"
#include "fixtures/image_builder.h"
#include "image/image_record.h"
#include "oci/manifest.h"

namespace ctrpublish {
namespace {

namespace fs = std::filesystem;

fixtures::ImageSpec TwoLayers(const std::string& arch) {
  fixtures::ImageSpec spec;
  spec.architecture = arch;
  for (const char* f : {"a", "b"}) {
    fixtures::LayerSpec layer;
    layer.entries = {fixtures::File(std::string(f) + ".txt", f + ("-" + arch))};
    spec.layers.push_back(std::move(layer));
  }
  return spec;
}

class PlanPublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("gantry-plan");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    auto cs = store::ContentStore::Open(dir_.path() / "root");
    ASSERT_TRUE(cs) << cs.error().message;
    content_ = std::make_unique<store::ContentStore>(std::move(*cs));
    auto db = store::MetadataDb::Open(dir_.path() / "root");
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::make_unique<store::MetadataDb>(std::move(*db));
  }

  // Copies the layout's blob into the store (not layers: the plan reads
  // only index, manifest and config).
  void Store(const common::Digest& d) {
    auto data = common::ReadFile(dir_.path() / "layout" / "blobs" / "sha256" / d.hex());
    ASSERT_TRUE(data) << data.error().message;
    ASSERT_TRUE(content_->WriteBlob(d, *data));
  }

  // An image record as a pull leaves it: target, manifest, config and,
  // when `unpacked`, the top chain.
  void Record(const std::string& name, const oci::Descriptor& target,
              const fixtures::BuiltImage& img, bool unpacked) {
    image::Image rec;
    rec.name = name;
    rec.target = target;
    rec.manifest = img.manifest.digest;
    rec.config = img.config.digest;
    rec.platform = "linux/amd64";
    if (unpacked) {
      rec.unpacked = true;
      rec.top_chain = oci::ChainIds(img.diff_ids).back();
    }
    ASSERT_TRUE(db_->PutImage(image::ToRecord(rec)));
  }

  static oci::Descriptor Desc(const fixtures::BlobInfo& b) {
    return {.media_type = b.media_type,
            .digest = b.digest,
            .size = b.size,
            .annotations = {},
            .urls = {},
            .artifact_type = {}};
  }

  PublishStore Ps() { return {.content = content_.get(), .metadata = db_.get()}; }

  common::TempDir dir_;
  std::unique_ptr<store::ContentStore> content_;
  std::unique_ptr<store::MetadataDb> db_;
};

TEST_F(PlanPublishTest, ManifestImageGetsContainerdsLabelsChainsAndCriNames) {
  auto img = fixtures::WriteImage(dir_.path() / "layout", TwoLayers("amd64"), "v1");
  ASSERT_TRUE(img) << img.error().message;
  ASSERT_NO_FATAL_FAILURE(Store(img->manifest.digest));
  ASSERT_NO_FATAL_FAILURE(Store(img->config.digest));
  const std::string name = "127.0.0.1:5000/team/app:v1";
  ASSERT_NO_FATAL_FAILURE(Record(name, Desc(img->manifest), *img, true));

  auto plan = PlanPublish(Ps(), name, "gantry");
  ASSERT_TRUE(plan) << plan.error().message;
  std::vector<common::Digest> chains = oci::ChainIds(img->diff_ids);
  EXPECT_EQ(plan->chains, chains);
  ASSERT_EQ(plan->blobs.size(), 2u);

  const PlannedBlob& config = plan->blobs[0];
  EXPECT_EQ(config.descriptor.digest, img->config.digest);
  EXPECT_EQ(static_cast<int64_t>(config.data.size()), img->config.size);
  EXPECT_EQ(config.labels, (std::map<std::string, std::string>{
                               {"containerd.io/gc.ref.snapshot.gantry", chains.back().str()},
                               {"containerd.io/distribution.source.127.0.0.1:5000", "team/app"}}));

  const PlannedBlob& manifest = plan->blobs[1];
  EXPECT_EQ(manifest.descriptor.digest, img->manifest.digest);
  EXPECT_EQ(manifest.labels,
            (std::map<std::string, std::string>{
                {"containerd.io/gc.ref.content.config", img->config.digest.str()},
                {"containerd.io/gc.ref.content.l.0", img->layers[0].digest.str()},
                {"containerd.io/gc.ref.content.l.1", img->layers[1].digest.str()},
                {"containerd.io/distribution.source.127.0.0.1:5000", "team/app"}}));

  EXPECT_EQ(plan->image_names,
            (std::vector<std::string>{name, "127.0.0.1:5000/team/app@" + img->manifest.digest.str(),
                                      img->config.digest.str()}));
  EXPECT_EQ(plan->image_labels,
            (std::map<std::string, std::string>{{"io.cri-containerd.image", "managed"}}));
  EXPECT_EQ(plan->target.digest, img->manifest.digest);
}

TEST_F(PlanPublishTest, IndexImageAddsTheIndexLabelledForItsOnePlatformManifest) {
  const fs::path layout = dir_.path() / "layout";
  auto arm = fixtures::WriteImage(layout, TwoLayers("arm64"), "");
  ASSERT_TRUE(arm) << arm.error().message;
  auto amd = fixtures::WriteImage(layout, TwoLayers("amd64"), "");
  ASSERT_TRUE(amd) << amd.error().message;
  auto index = fixtures::WriteIndex(
      layout, {{*arm, "linux", "arm64", "v8"}, {*amd, "linux", "amd64", ""}}, "multi");
  ASSERT_TRUE(index) << index.error().message;
  for (const auto& d : {index->digest, amd->manifest.digest, amd->config.digest})
    ASSERT_NO_FATAL_FAILURE(Store(d));
  const std::string name = "docker.io/library/multi@" + index->digest.str();
  ASSERT_NO_FATAL_FAILURE(Record(name, Desc(*index), *amd, true));

  auto plan = PlanPublish(Ps(), name, "snap");
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->blobs.size(), 3u);
  EXPECT_EQ(plan->blobs[0].descriptor.digest, amd->config.digest);
  EXPECT_EQ(plan->blobs[0].labels.at("containerd.io/gc.ref.snapshot.snap"),
            oci::ChainIds(amd->diff_ids).back().str());
  EXPECT_EQ(plan->blobs[1].descriptor.digest, amd->manifest.digest);
  EXPECT_EQ(plan->blobs[1].descriptor.size, amd->manifest.size);
  EXPECT_EQ(plan->blobs[2].descriptor.digest, index->digest);
  EXPECT_EQ(plan->blobs[2].labels,
            (std::map<std::string, std::string>{
                {"containerd.io/gc.ref.content.m.0", amd->manifest.digest.str()},
                {"containerd.io/distribution.source.docker.io", "library/multi"}}));
  // A name@digest record is its own repo@digest name.
  EXPECT_EQ(plan->image_names, (std::vector<std::string>{name, amd->config.digest.str()}));
}

TEST_F(PlanPublishTest, AnImageNotUnpackedInGantryIsAFailedPrecondition) {
  auto img = fixtures::WriteImage(dir_.path() / "layout", TwoLayers("amd64"), "v1");
  ASSERT_TRUE(img) << img.error().message;
  ASSERT_NO_FATAL_FAILURE(Store(img->manifest.digest));
  ASSERT_NO_FATAL_FAILURE(Store(img->config.digest));
  ASSERT_NO_FATAL_FAILURE(Record("docker.io/library/app:v1", Desc(img->manifest), *img, false));
  auto plan = PlanPublish(Ps(), "docker.io/library/app:v1", "gantry");
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, common::Errc::kFailedPrecondition) << plan.error().message;
  EXPECT_NE(plan.error().message.find("not unpacked"), std::string::npos) << plan.error().message;
}

TEST_F(PlanPublishTest, AMissingRecordOrBlobIsNotFound) {
  auto none = PlanPublish(Ps(), "docker.io/library/none:v1", "gantry");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, common::Errc::kNotFound) << none.error().message;

  auto img = fixtures::WriteImage(dir_.path() / "layout", TwoLayers("amd64"), "v1");
  ASSERT_TRUE(img) << img.error().message;
  ASSERT_NO_FATAL_FAILURE(Store(img->manifest.digest));  // the config is missing
  ASSERT_NO_FATAL_FAILURE(Record("docker.io/library/app:v1", Desc(img->manifest), *img, true));
  auto plan = PlanPublish(Ps(), "docker.io/library/app:v1", "gantry");
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, common::Errc::kNotFound) << plan.error().message;
  EXPECT_NE(plan.error().message.find("read image config"), std::string::npos)
      << plan.error().message;
}

}  // namespace
}  // namespace ctrpublish
