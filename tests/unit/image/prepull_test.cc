// Pre-pull lists: the list format, the run's states and pins, its bounded
// parallelism, and the watch loop re-reading a list swapped the way a
// ConfigMap volume swaps it (a symlink renamed over the old one). The pull
// itself is a function here; the integration tests run the real one.

#include "image/prepull.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "common/fs.h"

namespace image {
namespace {

namespace fs = std::filesystem;

// Polls `pred` until it holds or `limit` passes.
bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

FetchResult Fetched(const PrepullEntry& e, int blobs) {
  FetchResult r;
  r.name = e.ref->str();
  r.target.digest = common::Digest::Sha256Of(e.ref->str());
  r.blobs_fetched = blobs;
  r.bytes_downloaded = blobs * 100;
  return r;
}

TEST(PrepullListTest, ParsesRefsPlatformsCommentsAndBadLines) {
  const auto list = ParsePrepullList(
      "# nodes keep these\n"
      "\n"
      "  busybox:1.36   # the shell\n"
      "quay.io/org/app:v1 linux/arm64\n"
      "ghcr.io/x/y@sha256:" +
      std::string(64, 'a') +
      " --platform linux/arm/v6\r\n"
      "r.example/z:1 --platform=linux/amd64\n"
      "Bad/Ref\n"
      "r.example/z:2 linux/amd64 extra\n"
      "r.example/z:3 windows\n");
  ASSERT_EQ(list.size(), 7u);
  EXPECT_EQ(list[0].line, 3);
  EXPECT_EQ(list[0].ref->str(), "docker.io/library/busybox:1.36");
  EXPECT_FALSE(list[0].platform);
  EXPECT_EQ(list[1].platform->str(), "linux/arm64/v8");
  EXPECT_EQ(list[2].platform->str(), "linux/arm/v6");
  EXPECT_TRUE(list[2].ref->digest());
  EXPECT_EQ(list[3].platform->str(), "linux/amd64");
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(list[i].error.empty()) << list[i].error;
  EXPECT_FALSE(list[4].ref);
  EXPECT_EQ(list[4].text, "Bad/Ref");
  EXPECT_TRUE(list[4].error.starts_with("line 7: ")) << list[4].error;
  EXPECT_NE(list[5].error.find("expected `REF [PLATFORM]`"), std::string::npos) << list[5].error;
  EXPECT_TRUE(list[6].error.starts_with("line 9: ")) << list[6].error;
  EXPECT_TRUE(ParsePrepullList("").empty());
  EXPECT_TRUE(ParsePrepullList("# only\n\n   \n").empty());
}

TEST(PrepullListTest, OwnerIsTheAbsolutePathUnresolved) {
  EXPECT_EQ(PrepullOwner("-"), "prepull:-");
  EXPECT_EQ(PrepullOwner("/etc/gantry/../gantry/prepull/list"), "prepull:/etc/gantry/prepull/list");
  EXPECT_EQ(PrepullOwner("rel/list"), "prepull:" + (fs::current_path() / "rel/list").string());
}

class PrepullRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("prepull-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    auto db = store::MetadataDb::Open(dir_.path() / "root");
    ASSERT_TRUE(db) << db.error().message;
    db_.emplace(std::move(*db));
  }
  std::set<std::string> Pinned() {
    std::set<std::string> out;
    auto pins = db_->ListPins();
    EXPECT_TRUE(pins) << pins.error().message;
    if (pins)
      for (const auto& p : *pins) out.insert(p.owner + " " + p.name);
    return out;
  }

  common::TempDir dir_;
  std::optional<store::MetadataDb> db_;
};

TEST_F(PrepullRunTest, StatesInListOrderPinsOfParsedLinesAndAtMostJobsAtOnce) {
  const auto list = ParsePrepullList("r.example/a:1\nr.example/b:1\nBad/Ref\nr.example/gone:1\n");
  std::atomic<int> running{0}, peak{0};
  std::mutex mu;
  std::vector<std::string> seen;
  PrepullOptions o{.jobs = 2,
                   .owner = "prepull:/l",
                   .pull = [&](const PrepullEntry& e) -> common::Result<FetchResult> {
                     const int now = ++running;
                     int p = peak.load();
                     while (now > p && !peak.compare_exchange_weak(p, now)) {
                     }
                     // Overlap the pulls so that a third one, if let in, would be seen.
                     std::this_thread::sleep_for(std::chrono::milliseconds(50));
                     --running;
                     if (e.ref->path() == "gone")
                       return common::MakeError(common::Errc::kNotFound,
                                                "pull " + e.ref->str() + ": 404");
                     return Fetched(e, e.ref->path() == "a" ? 3 : 0);
                   },
                   .on_result =
                       [&](const PrepullResult& r) {
                         std::lock_guard<std::mutex> lock(mu);
                         seen.push_back(r.ref);
                       }};
  auto results = RunPrepull(*db_, list, o);
  ASSERT_TRUE(results) << results.error().message;
  ASSERT_EQ(results->size(), 4u);
  EXPECT_EQ((*results)[0].state, PrepullState::kPulled);
  EXPECT_EQ((*results)[0].digest, common::Digest::Sha256Of("r.example/a:1").str());
  EXPECT_EQ((*results)[0].bytes_downloaded, 300);
  EXPECT_EQ((*results)[1].state, PrepullState::kPresent);
  EXPECT_EQ((*results)[2].state, PrepullState::kFailed);
  EXPECT_EQ((*results)[2].ref, "Bad/Ref");
  EXPECT_TRUE((*results)[2].error.starts_with("line 3: ")) << (*results)[2].error;
  EXPECT_EQ((*results)[3].state, PrepullState::kFailed);
  EXPECT_EQ((*results)[3].error, "pull r.example/gone:1: 404");
  EXPECT_TRUE((*results)[3].digest.empty());
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(peak.load(), 2);
  // Every reference that parsed is pinned, pulled or not.
  EXPECT_EQ(Pinned(), (std::set<std::string>{"prepull:/l r.example/a:1", "prepull:/l r.example/b:1",
                                             "prepull:/l r.example/gone:1"}));
  EXPECT_EQ(PrepullStateName(PrepullState::kPulled), "pulled");
  EXPECT_EQ(PrepullStateName(PrepullState::kPresent), "present");
  EXPECT_EQ(PrepullStateName(PrepullState::kFailed), "failed");
}

TEST_F(PrepullRunTest, CancelledBeforeStartPullsNothingButStillPins) {
  std::atomic<bool> cancel{true};
  std::atomic<int> pulls{0};
  auto results = RunPrepull(*db_, ParsePrepullList("r.example/a:1\nr.example/b:1\n"),
                            {.jobs = 1,
                             .owner = "o",
                             .pull = [&](const PrepullEntry& e) -> common::Result<FetchResult> {
                               ++pulls;
                               return Fetched(e, 1);
                             },
                             .cancel = &cancel});
  ASSERT_TRUE(results);
  EXPECT_EQ(pulls.load(), 0);
  for (const auto& r : *results) {
    EXPECT_EQ(r.state, PrepullState::kFailed);
    EXPECT_EQ(r.error, "cancelled");
  }
  EXPECT_EQ(Pinned().size(), 2u);
}

// A ConfigMap volume: the file is <dir>/list -> ..data/list, and ..data a
// symlink to a timestamped directory that an update replaces by renaming a
// new symlink over ..data.
TEST_F(PrepullRunTest, WatchRereadsAListSwappedLikeAConfigMapAndUnpinsWhatLeftIt) {
  const fs::path vol = dir_.path() / "vol";
  ASSERT_TRUE(common::MkdirAll(vol / "v1"));
  ASSERT_TRUE(common::MkdirAll(vol / "v2"));
  ASSERT_TRUE(common::AtomicWriteFile(vol / "v1" / "list", "r.example/a:1\nr.example/b:1\n"));
  ASSERT_TRUE(common::AtomicWriteFile(vol / "v2" / "list", "r.example/b:1\nr.example/c:1\n"));
  fs::create_directory_symlink("v1", vol / "..data");
  fs::create_symlink("..data/list", vol / "list");

  std::mutex mu;
  std::vector<std::set<std::string>> rounds;  // the refs each round pulled
  std::set<std::string> current;
  std::atomic<bool> stop{false};
  PrepullWatchOptions o{.list = vol / "list",
                        .poll = std::chrono::milliseconds(50),
                        .run = {.jobs = 2,
                                .pull = [&](const PrepullEntry& e) -> common::Result<FetchResult> {
                                  std::lock_guard<std::mutex> lock(mu);
                                  current.insert(e.ref->str());
                                  return Fetched(e, 0);
                                }},
                        .on_round = [&](const common::Result<std::vector<PrepullResult>>& r) {
                          ASSERT_TRUE(r) << r.error().message;
                          std::lock_guard<std::mutex> lock(mu);
                          rounds.push_back(std::exchange(current, {}));
                        }};
  std::thread t([&] { WatchPrepullList(*db_, o, &stop); });
  auto round_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return rounds.size();
  };
  EXPECT_TRUE(WaitFor([&] { return round_count() >= 1; }));
  const std::string owner = PrepullOwner(vol / "list");
  EXPECT_EQ(Pinned(), (std::set<std::string>{owner + " r.example/a:1", owner + " r.example/b:1"}));

  fs::create_directory_symlink("v2", vol / "..data_tmp");
  fs::rename(vol / "..data_tmp", vol / "..data");
  EXPECT_TRUE(WaitFor([&] { return round_count() >= 2; }));
  EXPECT_EQ(Pinned(), (std::set<std::string>{owner + " r.example/b:1", owner + " r.example/c:1"}));
  stop = true;
  t.join();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(rounds.size(), 2u);
  EXPECT_EQ(rounds[0], (std::set<std::string>{"r.example/a:1", "r.example/b:1"}));
  EXPECT_EQ(rounds[1], (std::set<std::string>{"r.example/b:1", "r.example/c:1"}));
  // No change and no refresh interval: no third round.
  EXPECT_EQ(rounds.size(), 2u);
}

TEST_F(PrepullRunTest, WatchRefreshRunsRoundsWithoutChanges) {
  const fs::path list = dir_.path() / "list";
  ASSERT_TRUE(common::AtomicWriteFile(list, "r.example/a:1\n"));
  std::atomic<int> rounds{0};
  std::atomic<bool> stop{false};
  PrepullWatchOptions o{.list = list,
                        .refresh = std::chrono::seconds(1),
                        .poll = std::chrono::milliseconds(50),
                        .run = {.pull = [](const PrepullEntry& e) -> common::Result<FetchResult> {
                          return Fetched(e, 0);
                        }},
                        .on_round = [&](const auto&) { ++rounds; }};
  std::thread t([&] { WatchPrepullList(*db_, o, &stop); });
  EXPECT_TRUE(WaitFor([&] { return rounds.load() >= 3; }));
  stop = true;
  t.join();
}

TEST_F(PrepullRunTest, WatchReportsAMissingListAndRunsOnceItAppears) {
  const fs::path list = dir_.path() / "later";
  std::atomic<int> failed{0}, ok{0};
  std::atomic<bool> stop{false};
  PrepullWatchOptions o{.list = list,
                        .poll = std::chrono::milliseconds(50),
                        .run = {.pull = [](const PrepullEntry& e) -> common::Result<FetchResult> {
                          return Fetched(e, 0);
                        }},
                        .on_round = [&](const common::Result<std::vector<PrepullResult>>& r) {
                          if (r)
                            ++ok;
                          else
                            ++failed;
                        }};
  std::thread t([&] { WatchPrepullList(*db_, o, &stop); });
  EXPECT_TRUE(WaitFor([&] { return failed.load() >= 1; }));
  ASSERT_TRUE(common::AtomicWriteFile(list, "r.example/a:1\n"));
  EXPECT_TRUE(WaitFor([&] { return ok.load() >= 1; }));
  stop = true;
  t.join();
  EXPECT_EQ(failed.load(), 1);
}

TEST_F(PrepullRunTest, WatcherPinsThroughItsOwnConnectionAndStopWaitsForTheRound) {
  const fs::path list = dir_.path() / "list";
  ASSERT_TRUE(common::AtomicWriteFile(list, "r.example/a:1\nr.example/b:1\n"));
  std::atomic<bool> in_pull{false}, release{false};
  std::mutex mu;
  std::vector<PrepullResult> last;
  PrepullWatchOptions o{.list = list,
                        .poll = std::chrono::milliseconds(50),
                        .run = {.jobs = 1,
                                .pull = [&](const PrepullEntry& e) -> common::Result<FetchResult> {
                                  in_pull = true;
                                  while (!release) std::this_thread::yield();
                                  return Fetched(e, 1);
                                }},
                        .on_round = [&](const common::Result<std::vector<PrepullResult>>& r) {
                          std::lock_guard<std::mutex> lock(mu);
                          if (r) last = *r;
                        }};
  auto watcher = PrepullWatcher::Start(dir_.path() / "root", o);
  ASSERT_TRUE(watcher) << watcher.error().message;
  ASSERT_TRUE(WaitFor([&] { return in_pull.load(); }));
  // The pins were committed by the watcher's connection before the pull.
  EXPECT_EQ(Pinned().size(), 2u);
  (*watcher)->RequestStop();
  release = true;
  (*watcher)->Stop();
  std::lock_guard<std::mutex> lock(mu);
  // Stop returned after the round: its results were reported, the entry
  // the stop came before was not pulled.
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].state, PrepullState::kPulled);
  EXPECT_EQ(last[1].state, PrepullState::kFailed);
  EXPECT_EQ(last[1].error, "cancelled");
}

TEST_F(PrepullRunTest, WatcherStartFailsOnAStoreThatDoesNotOpen) {
  const fs::path file = dir_.path() / "not-a-dir";
  ASSERT_TRUE(common::AtomicWriteFile(file, "x"));
  auto watcher = PrepullWatcher::Start(file / "root", {.list = dir_.path() / "list"});
  ASSERT_FALSE(watcher);
  EXPECT_NE(watcher.error().message.find("not-a-dir"), std::string::npos)
      << watcher.error().message;
}

}  // namespace
}  // namespace image
