// image::ProgressRecorder (image/pull_progress.h): how often it writes the
// record, and that what it writes last is the whole state.

#include "image/pull_progress.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"

namespace image {
namespace {

using Kind = image::PullEvent::Kind;
using std::chrono::milliseconds;

constexpr char kImage[] = "127.0.0.1:5000/many/layers:v1";

std::vector<oci::Descriptor> Layers(int n) {
  std::vector<oci::Descriptor> out;
  for (int i = 0; i < n; ++i) {
    oci::Descriptor d;
    d.media_type = "application/vnd.oci.image.layer.v1.tar";
    d.digest = common::Digest::Sha256Of("layer " + std::to_string(i));
    d.size = 10 + i;
    out.push_back(std::move(d));
  }
  return out;
}

image::PullEvent Resolved(const std::vector<oci::Descriptor>& layers) {
  return {
      .kind = Kind::kResolved, .digest = common::Digest::Sha256Of("manifest"), .layers = layers};
}

image::PullEvent Start(const oci::Descriptor& d) {
  return {.kind = Kind::kLayerStart,
          .digest = d.digest,
          .total = d.size,
          .state = image::LayerState::kWaiting};
}

image::PullEvent Done(const oci::Descriptor& d) {
  return {.kind = Kind::kLayerDone,
          .digest = d.digest,
          .current = d.size,
          .total = d.size,
          .state = image::LayerState::kDone};
}

class ProgressRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-progress");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }

  PullProgress Read() const {
    auto p = ReadPullProgress(dir_.path(), kImage);
    EXPECT_TRUE(p) << p.error().message;
    EXPECT_TRUE(p && p->has_value()) << "no record";
    return p && *p ? **p : PullProgress{};
  }

  common::TempDir dir_;
};

// The case of issue 20: every layer's start and end used to rewrite the
// whole record, so 3,000 layers meant 6,000 writes of a record of 3,000
// layers. Events are now written at most once per interval (none within
// an hour here); the phase change and the end still are at once.
TEST_F(ProgressRecorderTest, SixThousandLayerEventsWriteARecordOnlyForThePhasesAndTheEnd) {
  const auto layers = Layers(3000);
  ProgressRecorder rec(dir_.path(), kImage, std::chrono::hours(1));
  EXPECT_EQ(rec.writes(), 1) << "the first record is written at once";
  rec.OnEvent(Resolved(layers));
  int events = 1;
  for (const auto& l : layers) {
    rec.OnEvent(Start(l));
    rec.OnEvent(Done(l));
    events += 2;
  }
  EXPECT_EQ(rec.writes(), 1) << "after " << events << " events";
  rec.SetPhase(PullPhase::kUnpacking);
  EXPECT_EQ(rec.writes(), 2);
  EXPECT_EQ(Read().phase, PullPhase::kUnpacking);
  rec.Finish({});
  EXPECT_EQ(rec.writes(), 3);

  const PullProgress p = Read();
  EXPECT_EQ(p.phase, PullPhase::kDone);
  EXPECT_EQ(p.image, kImage);
  ASSERT_EQ(p.layers.size(), layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(p.layers[i].digest, layers[i].digest.str());
    EXPECT_EQ(p.layers[i].state, image::LayerState::kDone);
    EXPECT_EQ(p.layers[i].current, layers[i].size);
    EXPECT_EQ(p.layers[i].total, layers[i].size);
  }
  EXPECT_EQ(p.current_bytes(), p.total_bytes());
  auto text = common::ReadFile(ProgressPath(dir_.path(), kImage));
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(nlohmann::json::parse(*text), ProgressJson(p)) << "the on-disk form";
}

// At the default interval: no more than one write per 200 ms that the
// events took to feed, plus the first, the end and one trailing write.
TEST_F(ProgressRecorderTest, AtTheDefaultIntervalWritesAreBoundedByTheTimeTaken) {
  const auto layers = Layers(3000);
  const auto start = std::chrono::steady_clock::now();
  ProgressRecorder rec(dir_.path(), kImage);
  rec.OnEvent(Resolved(layers));
  for (const auto& l : layers) {
    rec.OnEvent(Start(l));
    rec.OnEvent(Done(l));
  }
  rec.Finish({});
  const auto took = std::chrono::steady_clock::now() - start;
  const int64_t intervals = took / milliseconds(200);
  EXPECT_LE(rec.writes(), 3 + intervals)
      << "6,001 events in " << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  EXPECT_LT(rec.writes(), 6001 / 10);
  EXPECT_EQ(Read().layers.size(), layers.size());
}

// An event that came within the interval is not lost: the record shows
// it one interval later, though no other event follows.
TEST_F(ProgressRecorderTest, AnEventHeldBackIsWrittenWithoutAnotherEvent) {
  const auto layers = Layers(2);
  ProgressRecorder rec(dir_.path(), kImage, milliseconds(20));
  rec.OnEvent(Resolved(layers));
  rec.OnEvent(Done(layers[1]));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  PullProgress p;
  while (std::chrono::steady_clock::now() < deadline) {
    p = Read();
    if (p.layers.size() == 2 && p.layers[1].state == image::LayerState::kDone) break;
    std::this_thread::sleep_for(milliseconds(5));  // polling, with a deadline
  }
  EXPECT_EQ(p.phase, PullPhase::kDownloading);
  ASSERT_EQ(p.layers.size(), 2u);
  EXPECT_EQ(p.layers[0].state, image::LayerState::kWaiting);
  EXPECT_EQ(p.layers[1].state, image::LayerState::kDone);
  EXPECT_EQ(p.layers[1].current, layers[1].size);
}

// With no interval every event is written, each with the layer it changed.
TEST_F(ProgressRecorderTest, ZeroIntervalWritesEveryEvent) {
  const auto layers = Layers(3);
  ProgressRecorder rec(dir_.path(), kImage, milliseconds(0));
  rec.OnEvent(Resolved(layers));
  for (size_t i = 0; i < layers.size(); ++i) {
    rec.OnEvent(Done(layers[i]));
    const PullProgress p = Read();
    ASSERT_EQ(p.layers.size(), layers.size());
    for (size_t j = 0; j < layers.size(); ++j)
      EXPECT_EQ(p.layers[j].state, j <= i ? image::LayerState::kDone : image::LayerState::kWaiting)
          << "after layer " << i;
  }
  EXPECT_EQ(rec.writes(), 1 + 1 + 3);
}

// A layer applied as it downloads (issue 21): its unpack events count in
// `unpacked` at once, but its state stays the download's until the
// download is over; a record never says "unpacking" with half the blob.
TEST_F(ProgressRecorderTest, UnpackWhileDownloadingKeepsTheDownloadStateUntilItEnds) {
  const auto layers = Layers(1);
  const oci::Descriptor& l = layers[0];
  ProgressRecorder rec(dir_.path(), kImage, milliseconds(0));
  rec.OnEvent(Resolved(layers));
  rec.OnEvent({.kind = Kind::kLayerProgress,
               .digest = l.digest,
               .current = 6,
               .total = l.size,
               .state = image::LayerState::kDownloading});
  auto unpack = [&](int64_t n, image::LayerState s) {
    rec.OnEvent({.kind = Kind::kLayerUnpack,
                 .digest = l.digest,
                 .current = n,
                 .total = l.size,
                 .state = s});
  };
  unpack(0, image::LayerState::kUnpacking);
  unpack(5, image::LayerState::kUnpacking);
  PullProgress p = Read();
  ASSERT_EQ(p.layers.size(), 1u);
  EXPECT_EQ(p.layers[0].state, image::LayerState::kDownloading);
  EXPECT_EQ(p.layers[0].current, 6);
  EXPECT_EQ(p.layers[0].unpacked, 5);
  rec.OnEvent(Done(l));
  EXPECT_EQ(Read().layers[0].state, image::LayerState::kDone);
  unpack(8, image::LayerState::kUnpacking);
  EXPECT_EQ(Read().layers[0].state, image::LayerState::kUnpacking);
  unpack(l.size, image::LayerState::kUnpacked);
  p = Read();
  EXPECT_EQ(p.layers[0].state, image::LayerState::kUnpacked);
  EXPECT_EQ(p.layers[0].unpacked, l.size);
}

// The final record is final: an event that arrives after Finish (an
// unpack thread still winding down after a failed pull) changes nothing.
TEST_F(ProgressRecorderTest, EventsAfterFinishDoNotChangeTheFinalRecord) {
  const auto layers = Layers(2);
  ProgressRecorder rec(dir_.path(), kImage, milliseconds(0));
  rec.OnEvent(Resolved(layers));
  rec.Finish(common::MakeError(common::Errc::kUnavailable, "registry went away"));
  const int64_t writes = rec.writes();
  rec.OnEvent(Done(layers[0]));
  rec.SetPhase(PullPhase::kUnpacking);
  EXPECT_EQ(rec.writes(), writes);
  const PullProgress p = Read();
  EXPECT_EQ(p.phase, PullPhase::kFailed);
  EXPECT_EQ(p.error, "registry went away");
  EXPECT_EQ(p.layers[0].state, image::LayerState::kWaiting);
}

}  // namespace
}  // namespace image
