#include "common/task_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace common {
namespace {

TEST(RunJobs, RunsEveryJobOnceOnAtMostTheThreadsAsked) {
  std::mutex mu;
  std::vector<int> seen(100, 0);
  std::set<std::thread::id> threads;
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  auto st = RunJobs(seen.size(), {.threads = 3}, [&](size_t i) -> Status {
    const int now = ++running;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    {
      std::lock_guard l(mu);
      ++seen[i];
      threads.insert(std::this_thread::get_id());
    }
    --running;
    return {};
  });
  ASSERT_TRUE(st) << st.error().message;
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "job " << i;
  EXPECT_LE(peak.load(), 3);
  EXPECT_LE(threads.size(), 3u);
  // Without `meanwhile` or `cancelled` the caller is one of the workers.
  EXPECT_TRUE(threads.contains(std::this_thread::get_id()) || threads.size() < 3u);
}

TEST(RunJobs, FirstErrorWinsStopsHandingOutAndSetsStop) {
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  auto st = RunJobs(1000, {.threads = 1, .stop = &stop}, [&](size_t i) -> Status {
    ++started;
    if (i == 5) return MakeError(Errc::kDataLoss, "job 5 broke");
    if (i == 6) return MakeError(Errc::kInternal, "job 6 should never run");
    return {};
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  EXPECT_EQ(st.error().message, "job 5 broke");
  EXPECT_TRUE(stop.load());
  EXPECT_EQ(started.load(), 6) << "one thread: jobs 0-5, then nothing more";
}

TEST(RunJobs, MeanwhileRunsOnTheCallerAndItsErrorStopsTheJobs) {
  std::atomic<bool> stop{false};
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> job_on_caller{false};
  auto st = RunJobs(4,
                    {.threads = 2,
                     .stop = &stop,
                     .meanwhile = [&]() -> Status {
                       EXPECT_EQ(std::this_thread::get_id(), caller);
                       return MakeError(Errc::kInvalidArgument, "meanwhile failed");
                     }},
                    [&](size_t) -> Status {
                      if (std::this_thread::get_id() == caller) job_on_caller = true;
                      // Each job waits until the failure of `meanwhile`
                      // has stopped the group.
                      while (!stop.load()) std::this_thread::yield();
                      return {};
                    });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "meanwhile failed");
  EXPECT_FALSE(job_on_caller.load());
}

TEST(RunJobs, CancelledIsPolledAndSetsStopForTheRunningJobs) {
  std::atomic<bool> stop{false};
  std::atomic<bool> cancel{false};
  std::atomic<int> waiting{0};
  auto st = RunJobs(2,
                    {.threads = 2,
                     .stop = &stop,
                     .cancelled =
                         [&] {
                           // Cancel once both jobs are waiting for it.
                           if (waiting.load() == 2) cancel = true;
                           return cancel.load();
                         },
                     .poll = std::chrono::milliseconds(1)},
                    [&](size_t) -> Status {
                      ++waiting;
                      while (!stop.load()) std::this_thread::yield();
                      return MakeError(Errc::kCancelled, "stopped");
                    });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kCancelled);
  EXPECT_TRUE(cancel.load());
}

TEST(RunJobs, NoJobsIsSuccessAndMeanwhileStillRuns) {
  bool ran = false;
  auto st = RunJobs(0,
                    {.threads = 4,
                     .meanwhile = [&]() -> Status {
                       ran = true;
                       return {};
                     }},
                    [](size_t) -> Status { return MakeError(Errc::kInternal, "no job exists"); });
  EXPECT_TRUE(st);
  EXPECT_TRUE(ran);
  EXPECT_TRUE(RunJobs(0, {.threads = 4}, [](size_t) -> Status {
    return MakeError(Errc::kInternal, "no job exists");
  }));
}

}  // namespace
}  // namespace common
