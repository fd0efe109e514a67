// `gantry pull oci:DIR:TAG` from a layout written by the image builder, and
// the output modes: --json (one event object per line) and --quiet (the
// digest alone).

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures/image_builder.h"
#include "integration/pull/pull_helpers.h"
#include "store/metadata.h"

namespace pulltest {
namespace {

class PullLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    layout_ = gantry_->dir() / "My_Layout";
    // Two images in one layout: the tag decides which is pulled.
    auto other = fixtures::WriteImage(
        layout_, fixtures::FixtureImageSpec(fixtures::Compression::kZstd), "v1");
    ASSERT_TRUE(other) << other.error().message;
    other_ = std::move(*other);
    auto image = fixtures::WriteImage(layout_, fixtures::FixtureImageSpec(), "v2");
    ASSERT_TRUE(image) << image.error().message;
    image_ = std::move(*image);
    source_ = "oci:" + layout_.string() + ":v2";
  }

  static constexpr char kName[] = "localhost/my-layout:v2";
  std::unique_ptr<Gantry> gantry_;
  fs::path layout_;
  fixtures::BuiltImage image_, other_;
  std::string source_;
};

TEST_F(PullLayout, PullsTheTaggedImageFromAnOciLayout) {
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {source_}, &r));
  EXPECT_NE(r.out.find(std::string(kName) + "\n"), std::string::npos) << r.out;
  ExpectBlobsInStore(gantry_->root(), ImageDigests(image_));
  ExpectNoIngestLeft(gantry_->root());
  for (const auto& l : other_.layers) {
    bool shared = false;
    for (const auto& mine : image_.layers) shared |= mine.digest == l.digest;
    if (!shared) ExpectBlobAbsent(gantry_->root(), l.digest);
  }
  nlohmann::json images = gantry_->ImagesJson();
  ASSERT_TRUE(images.is_array());
  ASSERT_EQ(images.size(), 1u) << images.dump(2);
  EXPECT_EQ(images[0]["name"], kName);
  EXPECT_EQ(images[0]["target"]["digest"], image_.manifest.digest.str());
  EXPECT_EQ(images[0]["config"], image_.config.digest.str());
}

TEST_F(PullLayout, JsonPrintsOneEventPerLine) {
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", source_}, &r));
  std::vector<nlohmann::json> events = JsonEvents(r.out);
  ASSERT_GE(events.size(), 2u) << r.out;
  for (const auto& e : events) EXPECT_EQ(e.value("ref", ""), kName) << e.dump();

  const nlohmann::json& resolved = events.front();
  EXPECT_EQ(resolved["event"], "resolved");
  EXPECT_EQ(resolved["digest"], image_.manifest.digest.str());
  ASSERT_EQ(resolved["layers"].size(), image_.layers.size());
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    EXPECT_EQ(resolved["layers"][i]["digest"], image_.layers[i].digest.str());
    EXPECT_EQ(resolved["layers"][i]["size"], image_.layers[i].size);
  }

  const nlohmann::json& done = events.back();
  EXPECT_EQ(done["event"], "done");
  EXPECT_EQ(done["digest"], image_.manifest.digest.str());
  int64_t total = image_.config.size;
  for (const auto& l : image_.layers) total += l.size;
  EXPECT_EQ(done["bytes_downloaded"], total);

  // Every blob (config and layers) starts before it is done, once each.
  std::map<std::string, int> started, finished;
  for (const auto& e : events) {
    const std::string kind = e["event"].get<std::string>();
    const std::string digest = e.value("digest", "");
    EXPECT_TRUE(kind == "resolved" || kind == "layer-start" || kind == "layer-progress" ||
                kind == "layer-done" || kind == "layer-unpack" || kind == "done")
        << e.dump();
    if (kind == "layer-start") {
      EXPECT_EQ(finished.count(digest), 0u) << e.dump();
      ++started[digest];
    } else if (kind == "layer-done") {
      EXPECT_EQ(started.count(digest), 1u) << e.dump();
      EXPECT_EQ(e["state"], "done");
      EXPECT_EQ(e["current"], e["total"]);
      ++finished[digest];
    }
  }
  std::map<std::string, int> want = {{image_.config.digest.str(), 1}};
  for (const auto& l : image_.layers) want[l.digest.str()] = 1;
  EXPECT_EQ(started, want);
  EXPECT_EQ(finished, want);

  // Again: every blob exists, nothing is downloaded.
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", source_}, &r));
  events = JsonEvents(r.out);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["event"], "done");
  EXPECT_EQ(events.back()["bytes_downloaded"], 0);
  for (const auto& e : events) {
    if (e["event"] == "layer-done") {
      EXPECT_EQ(e["state"], "exists") << e.dump();
    }
  }
}

TEST_F(PullLayout, QuietPrintsOnlyTheDigest) {
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--quiet", source_}, &r));
  EXPECT_EQ(r.out, image_.manifest.digest.str() + "\n");
  ExpectBlobsInStore(gantry_->root(), ImageDigests(image_));
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{kName});
}

// A re-pull that changes nothing writes nothing (issue 14 item 5): the
// record is not rewritten (its updated_ns stays), no lease is left, and
// the listing is the same. A record written before gantry kept the created
// time and the size (those labels stripped) is listed the same, from the
// blobs, and the next pull writes them.
TEST_F(PullLayout, ARePullThatChangesNothingWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {source_}));
  auto record = [&]() -> store::ImageRecord {
    auto db = store::MetadataDb::Open(gantry_->root());
    EXPECT_TRUE(db) << db.error().message;
    if (!db) return {};
    auto rec = db->GetImage(kName);
    EXPECT_TRUE(rec) << rec.error().message;
    return rec ? *rec : store::ImageRecord{};
  };
  const store::ImageRecord first = record();
  EXPECT_EQ(first.labels.count("io.gantry.chain"), 1u) << "the pull records it unpacked";
  EXPECT_EQ(first.labels.count("io.gantry.created"), 1u);
  EXPECT_EQ(first.labels.count("io.gantry.size"), 1u);
  const nlohmann::json listed = gantry_->ImagesJson();
  ASSERT_EQ(listed.size(), 1u) << listed.dump(2);
  EXPECT_EQ(listed[0]["created"], "2023-11-14T22:13:20Z");

  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--quiet", source_}, &r));
  EXPECT_EQ(r.out, image_.manifest.digest.str() + "\n");
  EXPECT_EQ(record(), first) << "the record was written again";
  EXPECT_TRUE(fs::is_empty(gantry_->root() / "leases"));
  EXPECT_EQ(gantry_->ImagesJson(), listed);

  // As an older gantry left it.
  {
    auto db = store::MetadataDb::Open(gantry_->root());
    ASSERT_TRUE(db) << db.error().message;
    store::ImageRecord old = first;
    old.labels.erase("io.gantry.created");
    old.labels.erase("io.gantry.size");
    ASSERT_TRUE(db->PutImage(old));
  }
  EXPECT_EQ(gantry_->ImagesJson(), listed) << "read from the config and the manifest";
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--quiet", source_}));
  const store::ImageRecord again = record();
  EXPECT_EQ(again.labels, first.labels);
  EXPECT_GT(again.updated_ns, first.updated_ns);
  EXPECT_EQ(gantry_->ImagesJson(), listed);
}

TEST_F(PullLayout, UnknownTagListsTheTagsTheLayoutHas) {
  auto r = gantry_->Run({"pull", "oci:" + layout_.string() + ":v3"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 3) << Describe(*r);
  EXPECT_NE(r->err.find("tag `v3` not in OCI layout"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("v1, v2"), std::string::npos) << r->err;
  EXPECT_TRUE(gantry_->ImageNames().empty());
}

}  // namespace
}  // namespace pulltest
