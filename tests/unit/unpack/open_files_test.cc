// Open files of the applies of a process stay within one OpenFileBudget,
// sized from RLIMIT_NOFILE, however many layers are applied at once, and
// at most kFileQueueFiles per apply (apply.h, "Open files"; issue 13). The
// file thread's own bounds, with the disk held at a gate: memory_test.cc.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "unit/unpack/test_util.h"

namespace unpack {
namespace {

namespace fs = std::filesystem;

std::vector<fixtures::TarEntry> SmallFiles(int dirs, int per_dir, const std::string& tag) {
  std::vector<fixtures::TarEntry> entries;
  for (int d = 0; d < dirs; ++d) {
    const std::string dir = "d" + std::to_string(d) + "/";
    entries.push_back(fixtures::Dir(dir));
    for (int f = 0; f < per_dir; ++f)
      entries.push_back(fixtures::File(dir + "f" + std::to_string(f),
                                       f % 3 == 0 ? "" : tag + std::to_string(d * per_dir + f)));
  }
  return entries;
}

// Every file of SmallFiles holds its content.
void ExpectSmallFiles(const fs::path& root, int dirs, int per_dir, const std::string& tag) {
  int wrong = 0;
  for (int d = 0; d < dirs; ++d)
    for (int f = 0; f < per_dir; ++f) {
      const fs::path p = root / ("d" + std::to_string(d)) / ("f" + std::to_string(f));
      auto got = testing::ReadAll(p);
      const std::string want = f % 3 == 0 ? "" : tag + std::to_string(d * per_dir + f);
      if ((!got || *got != want) && wrong++ == 0) ADD_FAILURE() << p << " is wrong or missing";
    }
  EXPECT_EQ(wrong, 0);
}

// The layers of one image are applied in parallel (and `gantry serve` pulls
// several images at once): together they never hold more than the
// process's budget, and no apply waits for another's files.
TEST(LayerOpenFiles, ConcurrentAppliesShareOneBudget) {
  constexpr int kApplies = 4, kDirs = 10, kPerDir = 300;
  OpenFileBudget budget(24);
  const std::string tar = testing::Tar(SmallFiles(kDirs, kPerDir, "x"));
  ASSERT_FALSE(tar.empty());
  std::vector<std::unique_ptr<testing::Sandbox>> boxes;
  for (int i = 0; i < kApplies; ++i) boxes.push_back(std::make_unique<testing::Sandbox>());
  std::vector<std::optional<common::Result<ApplyResult>>> results(kApplies);
  std::vector<std::thread> threads;
  for (int i = 0; i < kApplies; ++i)
    threads.emplace_back([&, i] {
      ApplyOptions o = testing::Unprivileged();
      o.open_files = &budget;
      results[i] = boxes[i]->Apply(tar, o);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kApplies; ++i) {
    ASSERT_TRUE(*results[i]) << results[i]->error().message;
    EXPECT_LE((*results[i])->peak_file_queue_files, 24);
    ExpectSmallFiles(boxes[i]->root(), kDirs, kPerDir, "x");
  }
  EXPECT_LE(budget.peak(), 24u);
  EXPECT_EQ(budget.in_use(), 0u);
}

// With no slot at all (RLIMIT_NOFILE 64 and below) every small file is
// finished by the applier itself, and the layer is the same.
TEST(LayerOpenFiles, AnEmptyBudgetFinishesEveryFileOnTheApplier) {
  testing::Sandbox box;
  OpenFileBudget budget(0);
  const std::string tar = testing::Tar(SmallFiles(3, 50, "y"));
  ASSERT_FALSE(tar.empty());
  ApplyOptions o = testing::Unprivileged();
  o.open_files = &budget;
  auto r = box.Apply(tar, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->peak_file_queue_files, 0);
  EXPECT_EQ(r->files_finished_inline, 150);
  EXPECT_EQ(budget.peak(), 0u);
  ExpectSmallFiles(box.root(), 3, 50, "y");
}

TEST(LayerOpenFiles, ALayerOfEmptyFilesHoldsAtMostTheCap) {
  testing::Sandbox box;
  OpenFileBudget budget(100000);
  std::vector<fixtures::TarEntry> entries = {fixtures::Dir("e/")};
  for (size_t i = 0; i < 2 * kFileQueueFiles + 100; ++i)
    entries.push_back(fixtures::File("e/" + std::to_string(i), ""));
  const std::string tar = testing::Tar(entries);
  ASSERT_FALSE(tar.empty());
  ApplyOptions o = testing::Unprivileged();
  o.open_files = &budget;
  auto r = box.Apply(tar, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r->peak_file_queue_files, 0);
  EXPECT_LE(r->peak_file_queue_files, static_cast<int64_t>(kFileQueueFiles));
  EXPECT_EQ(r->files_finished_inline, 0);
  EXPECT_EQ(budget.in_use(), 0u);
}

// A quarter of the limit, and at least kReservedOpenFiles, stays for the
// rest of the process.
TEST(LayerOpenFiles, BudgetFromTheLimit) {
  EXPECT_EQ(OpenFileBudgetFor(0), 0u);
  EXPECT_EQ(OpenFileBudgetFor(64), 0u);
  EXPECT_EQ(OpenFileBudgetFor(100), 36u);
  EXPECT_EQ(OpenFileBudgetFor(256), 192u);
  EXPECT_EQ(OpenFileBudgetFor(1024), 768u);
  EXPECT_EQ(OpenFileBudgetFor(1048576), 786432u);
  EXPECT_GT(OpenFileBudgetFor(RLIM_INFINITY), 1000000u);
}

TEST(LayerOpenFiles, ABudgetNeverGivesMoreThanItsCapacity) {
  OpenFileBudget budget(3);
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_FALSE(budget.TryAcquire());
  budget.Release();
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_EQ(budget.in_use(), 3u);
  EXPECT_EQ(budget.peak(), 3u);
}

}  // namespace
}  // namespace unpack
