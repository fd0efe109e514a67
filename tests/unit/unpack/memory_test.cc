// Memory of one layer's apply stays bounded whatever the layer: the queue
// of small files for the file thread holds at most kFileQueueBytes, even
// when the disk is slower than the tar (apply.h). So do the files it holds
// open: at most kFileQueueFiles, empty files included, each with a slot of
// an OpenFileBudget (apply-level budget tests: open_files_test.cc).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/fd.h"
#include "unit/unpack/test_util.h"
#include "unpack/file_finisher_internal.h"

namespace unpack {
namespace {

namespace fs = std::filesystem;
using internal::FileFinisher;

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A job writing `data` into the new file `dir/name`; an invalid fd (and a
// test failure) when it cannot be created.
FileFinisher::Job MakeJob(const fs::path& dir, const std::string& name, const std::string& data) {
  FileFinisher::Job j;
  int fd = ::open((dir / name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << name << ": " << std::strerror(errno);
  if (fd >= 0) j.fd.reset(fd);
  j.data.assign(data.begin(), data.end());
  j.size = static_cast<int64_t>(data.size());
  j.perm = 0644;
  j.times[0].tv_nsec = j.times[1].tv_nsec = UTIME_OMIT;
  j.entry = name;
  return j;
}

// The helper thread of a FileFinisher held at a gate: a disk that takes
// as long as the test wants.
class Gate {
 public:
  void Pass() {
    std::unique_lock l(mu_);
    ++arrivals_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
  }
  void Open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int arrivals() {
    std::lock_guard l(mu_);
    return arrivals_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int arrivals_ = 0;
};

// Submits `n` jobs (`make(i)`) to `finisher` on a thread of its own, so
// that the test can watch the producer being held back at the cap. Join()
// before the end of the test: the thread may be waiting at a closed Gate,
// and a Producer destroyed unjoined aborts (std::thread) rather than hang.
class Producer {
 public:
  template <class MakeJobFn>
  Producer(FileFinisher& finisher, int n, MakeJobFn make)
      : thread_([this, &finisher, n, make] {
          for (int i = 0; i < n; ++i) {
            if (auto st = finisher.Submit(make(i)); !st) {
              status_ = st;
              return;
            }
            ++submitted_;
          }
        }) {}
  int submitted() const { return submitted_.load(); }
  // Joins the thread; what the first failed Submit returned, if any.
  const common::Status& Join() {
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  std::atomic<int> submitted_{0};
  common::Status status_;
  std::thread thread_;
};

// Polls `pred` until it holds or 30 s pass.
template <class P>
bool Eventually(P pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Descriptors of this process open on files below `dir`.
int OpenFilesBelow(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    std::error_code rl;
    const fs::path target = fs::read_symlink(e.path(), rl);
    if (!rl && target.string().starts_with(dir.string() + "/")) ++n;
  }
  return n;
}

TEST(LayerMemory, FileQueueStopsTheTarReaderAtItsCapWhileTheDiskIsSlow) {
  auto tmp = common::TempDir::Create("memory-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  constexpr int kFiles = 12;
  constexpr size_t kFileSize = kSmallFileBytes;  // the largest that is queued
  Gate gate;
  std::optional<FileFinisher> finisher;
  finisher.emplace(kFileQueueBytes, [&] { gate.Pass(); });

  Producer producer(*finisher, kFiles, [&](int i) {
    return MakeJob(tmp->path(), "f" + std::to_string(i),
                   Bytes(kFileSize, static_cast<uint32_t>(i)));
  });

  // The helper took the first file and stands at the gate; the producer
  // fills the queue up to the cap and then has to wait.
  ASSERT_TRUE(
      Eventually([&] { return gate.arrivals() >= 1 && finisher->stats().producer_waiting; }));
  FileFinisher::Stats held = finisher->stats();
  EXPECT_LE(held.held_bytes, kFileQueueBytes);
  EXPECT_GT(held.held_bytes, kFileQueueBytes - kFileSize);
  EXPECT_LT(producer.submitted(), kFiles) << "nothing held the producer back";
  EXPECT_EQ(static_cast<size_t>(producer.submitted()) * kFileSize, held.held_bytes);

  gate.Open();
  const common::Status& produced = producer.Join();
  ASSERT_TRUE(produced) << produced.error().message;
  ASSERT_TRUE(finisher->Wait());
  EXPECT_EQ(producer.submitted(), kFiles);
  EXPECT_LE(finisher->stats().peak_bytes, kFileQueueBytes);
  EXPECT_EQ(finisher->stats().held_bytes, 0u);
  finisher.reset();
  for (int i = 0; i < kFiles; ++i) {
    auto got = testing::ReadAll(tmp->path() / ("f" + std::to_string(i)));
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == Bytes(kFileSize, static_cast<uint32_t>(i))) << "file " << i;
  }
}

// The files being written count against the cap until they are done: a
// queue emptied by the helper does not make room by itself.
TEST(LayerMemory, FilesBeingWrittenCountAgainstTheCap) {
  auto tmp = common::TempDir::Create("memory-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  Gate gate;
  std::optional<FileFinisher> finisher;
  finisher.emplace(kFileQueueBytes, [&] { gate.Pass(); });
  auto job = [&](const std::string& name, size_t n) {
    return MakeJob(tmp->path(), name, std::string(n, 'x'));
  };
  ASSERT_TRUE(finisher->Submit(job("full", kFileQueueBytes)));
  ASSERT_TRUE(Eventually([&] { return gate.arrivals() >= 1; }));  // taken, being written
  std::atomic<bool> admitted{false};
  std::thread producer([&] {
    EXPECT_TRUE(finisher->Submit(job("one-more", kSmallFileBytes)));
    admitted = true;
  });
  ASSERT_TRUE(Eventually([&] { return finisher->stats().producer_waiting; }));
  EXPECT_FALSE(admitted.load());
  EXPECT_EQ(finisher->stats().held_bytes, kFileQueueBytes);
  gate.Open();
  producer.join();
  ASSERT_TRUE(finisher->Wait());
  EXPECT_EQ(finisher->stats().peak_bytes, kFileQueueBytes);
}

TEST(LayerMemory, AFileLargerThanTheCapIsAdmittedAlone) {
  auto tmp = common::TempDir::Create("memory-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  FileFinisher finisher(1000);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(
        finisher.Submit(MakeJob(tmp->path(), "f" + std::to_string(i), std::string(4000, 'x'))));
  ASSERT_TRUE(finisher.Wait());
  EXPECT_EQ(finisher.stats().peak_bytes, 4000u);
}

TEST(LayerMemory, ALayerOfManySmallFilesReportsItsPeakUnderTheCap) {
  testing::Sandbox box;
  std::vector<fixtures::TarEntry> entries;
  entries.push_back(fixtures::Dir("d/"));
  for (int i = 0; i < 40; ++i)
    entries.push_back(fixtures::File("d/f" + std::to_string(i), Bytes(900 << 10, i)));
  const std::string tar = testing::Tar(entries);
  ASSERT_FALSE(tar.empty());
  auto r = box.Apply(tar, testing::Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r->peak_file_queue_bytes, 0);
  EXPECT_LE(r->peak_file_queue_bytes, static_cast<int64_t>(kFileQueueBytes));
  auto f = testing::ReadAll(box.root() / "d" / "f39");
  ASSERT_TRUE(f);
  EXPECT_TRUE(*f == Bytes(900 << 10, 39));
}

// ---- open files (issue 13) ------------------------------------------------------

// Empty files weigh nothing in the byte bound: before the count bound the
// tar reader queued them (each open) as fast as it could create them while
// the disk was slow, and a layer of many empty or tiny files ran the
// process out of descriptors.
TEST(LayerOpenFiles, EmptyFilesHeldOpenStopAtTheCapWhileTheDiskIsSlow) {
  auto tmp = common::TempDir::Create("open-files-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  constexpr int kFiles = 4 * static_cast<int>(kFileQueueFiles);
  Gate gate;
  std::optional<FileFinisher> finisher;
  finisher.emplace(kFileQueueBytes, [&] { gate.Pass(); });

  Producer producer(*finisher, kFiles,
                    [&](int i) { return MakeJob(tmp->path(), "f" + std::to_string(i), ""); });

  ASSERT_TRUE(Eventually([&] {
    return (gate.arrivals() >= 1 && finisher->stats().producer_waiting) ||
           producer.submitted() == kFiles;
  }));
  const int open_now = OpenFilesBelow(tmp->path());
  const int submitted_now = producer.submitted();
  gate.Open();
  const common::Status& produced = producer.Join();
  EXPECT_LT(submitted_now, kFiles) << "nothing held the producer back";
  EXPECT_LE(open_now, static_cast<int>(kFileQueueFiles) + 1)
      << "files held open while the disk was slow (the cap, plus the one being submitted)";
  ASSERT_TRUE(produced) << produced.error().message;
  ASSERT_TRUE(finisher->Wait());
  EXPECT_EQ(producer.submitted(), kFiles);
  finisher.reset();
  EXPECT_EQ(OpenFilesBelow(tmp->path()), 0);
}

TEST(LayerOpenFiles, TheCountBoundIsReportedAndHeld) {
  auto tmp = common::TempDir::Create("open-files-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  Gate gate;
  OpenFileBudget budget(1000);
  std::optional<FileFinisher> finisher;
  finisher.emplace(
      kFileQueueBytes, [&] { gate.Pass(); }, /*max_files=*/8, &budget);
  std::thread producer([&] {
    for (int i = 0; i < 40; ++i)
      ASSERT_TRUE(finisher->Submit(MakeJob(tmp->path(), "f" + std::to_string(i), "")));
  });
  ASSERT_TRUE(
      Eventually([&] { return gate.arrivals() >= 1 && finisher->stats().producer_waiting; }));
  EXPECT_EQ(finisher->stats().held_files, 8u);
  EXPECT_EQ(budget.in_use(), 8u);
  gate.Open();
  producer.join();
  ASSERT_TRUE(finisher->Wait());
  EXPECT_EQ(finisher->stats().peak_files, 8u);
  EXPECT_EQ(finisher->stats().held_files, 0u);
  EXPECT_EQ(finisher->stats().finished_inline, 0u);
  EXPECT_EQ(budget.in_use(), 0u) << "every slot is given back once its file is closed";
  EXPECT_EQ(budget.peak(), 8u);
}

}  // namespace
}  // namespace unpack
