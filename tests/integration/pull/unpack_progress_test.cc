// Unpack progress of `gantry pull`: before, nothing was reported between a
// layer's download and the end of the pull, however long the layer took to
// unpack. Now --json has layer-unpack events and the progress record
// (docs/pull-progress.md) the bytes of each layer unpacked.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

constexpr int64_t kMiB = 1 << 20;

class PullUnpackProgress : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    // The fixture image with a 24 MiB uncompressed layer on top: enough
    // bytes for many progress steps (1 MiB each below 100 MiB), whatever
    // the speed of the machine.
    fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
    std::string big(24 * kMiB, '\0');
    uint32_t x = 12345;
    for (char& c : big) {
      x = x * 1103515245 + 12345;
      c = static_cast<char>(x >> 24);
    }
    fixtures::LayerSpec layer;
    layer.entries = {fixtures::File("big.bin", std::move(big))};
    layer.compression = fixtures::Compression::kNone;
    spec.layers.push_back(std::move(layer));
    auto image = fixtures::WriteImage(gantry_->dir() / "layout", spec, "v1");
    ASSERT_TRUE(image) << image.error().message;
    image_ = std::move(*image);
    source_ = "oci:" + (gantry_->dir() / "layout").string() + ":v1";
  }

  std::unique_ptr<Gantry> gantry_;
  fixtures::BuiltImage image_;
  std::string source_;
};

TEST_F(PullUnpackProgress, JsonReportsEachLayerUnpackingInStepsUpToItsSize) {
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", source_}, &r));
  std::vector<nlohmann::json> events = JsonEvents(r.out);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["event"], "done");

  std::map<std::string, int64_t> sizes;
  for (const auto& l : image_.layers) sizes[l.digest.str()] = l.size;
  std::map<std::string, std::vector<nlohmann::json>> unpack;  // per layer, in order
  std::map<std::string, size_t> downloaded_at;                // index of its layer-done
  for (size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json& e = events[i];
    const std::string digest = e.value("digest", "");
    if (e["event"] == "layer-done") downloaded_at[digest] = i;
    if (e["event"] != "layer-unpack") continue;
    EXPECT_EQ(e["ref"], "localhost/layout:v1") << e.dump();
    ASSERT_TRUE(sizes.count(digest)) << "not a layer: " << e.dump();
    // From a layout the layer is applied from its file while the store
    // takes it: only its end waits for the blob in the store.
    if (e["state"] == "unpacked") {
      ASSERT_TRUE(downloaded_at.count(digest)) << "unpacked before its download: " << e.dump();
    }
    EXPECT_EQ(e["total"], sizes[digest]) << e.dump();
    unpack[digest].push_back(e);
  }
  ASSERT_EQ(unpack.size(), sizes.size()) << "every layer is unpacked:\n" << r.out;
  for (const auto& [digest, evs] : unpack) {
    SCOPED_TRACE(digest);
    const int64_t total = sizes[digest];
    // 1% of the blob, at least 1 MiB (image::UnpackProgressStep).
    const int64_t step = std::max<int64_t>(kMiB, (total + 99) / 100);
    ASSERT_GE(evs.size(), 2u);
    EXPECT_EQ(evs.front()["state"], "unpacking");
    EXPECT_EQ(evs.front()["current"], 0);
    EXPECT_EQ(evs.back()["state"], "unpacked");
    EXPECT_EQ(evs.back()["current"], total);
    for (size_t i = 1; i + 1 < evs.size(); ++i) {
      EXPECT_EQ(evs[i]["state"], "unpacking") << evs[i].dump();
      const int64_t prev = evs[i - 1]["current"], cur = evs[i]["current"];
      EXPECT_GE(cur - prev, step) << "more often than every step: " << evs[i].dump();
      EXPECT_LT(cur, total) << evs[i].dump();
    }
    EXPECT_LE(evs.size(), static_cast<size_t>(total / step + 2));
  }
  // The big layer shows movement: a step for every MiB or so of its 24.
  const auto& big = unpack[image_.layers.back().digest.str()];
  EXPECT_GE(big.size(), 20u) << r.out;

  // The progress record ends with every layer unpacked.
  auto text = common::ReadFile(
      gantry_->root() / "progress" /
      (common::Digest::Sha256Of(std::string("localhost/layout:v1")).hex() + ".json"));
  ASSERT_TRUE(text) << text.error().message;
  auto rec = nlohmann::json::parse(*text, nullptr, false);
  ASSERT_TRUE(rec.is_object()) << *text;
  EXPECT_EQ(rec["phase"], "done");
  ASSERT_EQ(rec["layers"].size(), image_.layers.size()) << *text;
  for (const auto& l : rec["layers"]) {
    EXPECT_EQ(l["state"], "unpacked") << l.dump();
    EXPECT_EQ(l["unpacked"], l["total"]) << l.dump();
  }
}

TEST_F(PullUnpackProgress, NoUnpackMeansNoUnpackEvents) {
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", "--no-unpack", source_}, &r));
  for (const auto& e : JsonEvents(r.out)) EXPECT_NE(e["event"], "layer-unpack") << e.dump();
}

TEST_F(PullUnpackProgress, PlainOutputSaysWhenEachLayerUnpacks) {
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {source_}, &r));
  for (const auto& l : image_.layers) {
    const std::string id(l.digest.short_hex());
    EXPECT_NE(r.out.find(id + ": unpacking\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(id + ": unpacked\n"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace pulltest
