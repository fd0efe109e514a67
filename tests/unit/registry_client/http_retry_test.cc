#include "registry/http_retry.h"

#include <gtest/gtest.h>

#include <vector>

namespace registry {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// 2024-01-02T03:04:05Z
const system_clock::time_point kNow = system_clock::from_time_t(1704164645);

TEST(RetryAfterTest, DelaySeconds) {
  EXPECT_EQ(ParseRetryAfter("0", kNow), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("120", kNow), milliseconds(120'000));
  EXPECT_EQ(ParseRetryAfter("  7 ", kNow), milliseconds(7000));
  EXPECT_EQ(ParseRetryAfter("99999999999999999999", kNow), milliseconds(86'400'000));
}

TEST(RetryAfterTest, HttpDateForms) {
  // IMF-fixdate, RFC 850 and asctime, all 30 s after kNow.
  EXPECT_EQ(ParseRetryAfter("Tue, 02 Jan 2024 03:04:35 GMT", kNow), milliseconds(30'000));
  EXPECT_EQ(ParseRetryAfter("Tuesday, 02-Jan-24 03:04:35 GMT", kNow), milliseconds(30'000));
  EXPECT_EQ(ParseRetryAfter("Tue Jan  2 03:04:35 2024", kNow), milliseconds(30'000));
}

TEST(RetryAfterTest, PastDateIsZero) {
  EXPECT_EQ(ParseRetryAfter("Mon, 01 Jan 2024 00:00:00 GMT", kNow), milliseconds(0));
}

TEST(RetryAfterTest, Malformed) {
  for (const char* v :
       {"", " ", "-1", "1.5", "soon", "Tue, 02 Jan 2024 03:04:35", "Tue, 32 Jan 2024 03:04:35 GMT",
        "Tue, 02 Foo 2024 03:04:35 GMT", "Tue, 02 Jan 2024 25:04:35 GMT", "12abc",
        "Tue, 02 Jan 2024 03:04:35 GMT extra"}) {
    EXPECT_EQ(ParseRetryAfter(v, kNow), std::nullopt) << "`" << v << "`";
  }
}

class RecordingEnv : public common::Env {
 public:
  std::chrono::steady_clock::time_point Now() override { return now; }
  std::chrono::system_clock::time_point WallNow() override { return kNow; }
  void SleepFor(std::chrono::steady_clock::duration d) override {
    sleeps.push_back(std::chrono::duration_cast<milliseconds>(d));
    now += d;
  }
  milliseconds Total() const {
    milliseconds t{0};
    for (auto s : sleeps) t += s;
    return t;
  }
  std::chrono::steady_clock::time_point now{};
  std::vector<milliseconds> sleeps;
};

TEST(BackoffTest, ExponentialScheduleWithoutJitterIsExact) {
  RecordingEnv env;
  Backoff b({.initial = milliseconds(250),
             .multiplier = 2.0,
             .max_delay = milliseconds(1500),
             .jitter = 0.0},
            &env, 1);
  std::vector<milliseconds> got;
  for (int retry = 1; retry <= 5; ++retry) got.push_back(b.Delay(retry, std::nullopt));
  EXPECT_EQ(got,
            (std::vector<milliseconds>{milliseconds(250), milliseconds(500), milliseconds(1000),
                                       milliseconds(1500), milliseconds(1500)}));
}

TEST(BackoffTest, JitterStaysWithinBoundsAndIsSeeded) {
  BackoffPolicy p{.initial = milliseconds(1000),
                  .multiplier = 2.0,
                  .max_delay = milliseconds(8000),
                  .jitter = 0.5};
  Backoff a(p, nullptr, 42), b(p, nullptr, 42);
  for (int retry = 1; retry <= 6; ++retry) {
    milliseconds full = std::min(milliseconds(1000 << (retry - 1)), milliseconds(8000));
    milliseconds d = a.Delay(retry, std::nullopt);
    EXPECT_GE(d, full / 2) << retry;
    EXPECT_LE(d, full) << retry;
    EXPECT_EQ(d, b.Delay(retry, std::nullopt)) << "same seed, same schedule";
  }
}

TEST(BackoffTest, RetryAfterIsHonouredAndCapped) {
  RecordingEnv env;
  Backoff b({.max_retry_after = milliseconds(60'000)}, &env, 7);
  EXPECT_EQ(b.Delay(1, milliseconds(3000)), milliseconds(3000));
  EXPECT_EQ(b.Delay(1, milliseconds(0)), milliseconds(0));
  EXPECT_EQ(b.Delay(3, milliseconds(3'600'000)), milliseconds(60'000));
}

TEST(BackoffTest, WaitSleepsThroughEnvInSlices) {
  RecordingEnv env;
  Backoff b({.initial = milliseconds(250), .jitter = 0.0}, &env, 1);
  EXPECT_TRUE(b.Wait(1, std::nullopt, nullptr));
  EXPECT_EQ(env.Total(), milliseconds(250));
  for (auto s : env.sleeps) EXPECT_LE(s, milliseconds(100));
  env.sleeps.clear();
  EXPECT_TRUE(b.Wait(2, milliseconds(1234), nullptr));
  EXPECT_EQ(env.Total(), milliseconds(1234));
}

TEST(BackoffTest, WaitStopsWhenCancelled) {
  struct CancellingEnv : RecordingEnv {
    std::atomic<bool>* flag = nullptr;
    void SleepFor(std::chrono::steady_clock::duration d) override {
      RecordingEnv::SleepFor(d);
      if (sleeps.size() == 2) flag->store(true);
    }
  } env;
  std::atomic<bool> cancel{false};
  env.flag = &cancel;
  Backoff b({.initial = milliseconds(10'000), .jitter = 0.0}, &env, 1);
  EXPECT_FALSE(b.Wait(1, std::nullopt, &cancel));
  EXPECT_EQ(env.sleeps.size(), 2u);
}

TEST(BackoffTest, FullRetryScheduleForFiveAttempts) {
  // What a request with max_attempts = 5 sleeps in total when every
  // attempt fails: four waits, each within its jitter window.
  RecordingEnv env;
  BackoffPolicy p;  // defaults: 250 ms doubling, cap 10 s, jitter 0.5
  Backoff b(p, &env, 3);
  for (int retry = 1; retry <= 4; ++retry) ASSERT_TRUE(b.Wait(retry, std::nullopt, nullptr));
  EXPECT_GE(env.Total(), milliseconds((250 + 500 + 1000 + 2000) / 2));
  EXPECT_LE(env.Total(), milliseconds(250 + 500 + 1000 + 2000));
}

}  // namespace
}  // namespace registry
