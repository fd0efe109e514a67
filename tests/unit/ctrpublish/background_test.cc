// BackgroundPublisher with a scripted publish function: the first attempt
// in the caller's thread, retries with backoff in the background, the
// states recorded, giving up, and NotFound not retried. No containerd.

#include "ctrpublish/background.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace ctrpublish {
namespace {

using common::Errc;

// Answers attempts from a script (then Ok) and keeps every recorded state.
class Script {
 public:
  explicit Script(std::deque<Errc> failures) : failures_(std::move(failures)) {}

  common::Status Publish(const std::string& /*name*/) {
    std::lock_guard<std::mutex> lock(mu_);
    ++attempts_;
    if (failures_.empty()) return {};
    Errc code = failures_.front();
    failures_.pop_front();
    return common::MakeError(code, "attempt " + std::to_string(attempts_) + " failed");
  }
  void Record(const std::string& name, const std::string& state) {
    std::lock_guard<std::mutex> lock(mu_);
    states_.push_back(name + " " + state);
    cv_.notify_all();
  }
  // Waits (bounded) until `n` states are recorded; returns them.
  std::vector<std::string> WaitStates(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return states_.size() >= n; });
    return states_;
  }
  int attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Errc> failures_;
  std::vector<std::string> states_;
  int attempts_ = 0;
};

constexpr RetryOptions kFast{.first_delay = std::chrono::milliseconds(1),
                             .max_delay = std::chrono::milliseconds(4),
                             .max_attempts = 4};

#define PUBLISHER(var, script, options)                              \
  BackgroundPublisher var(                                           \
      [&script](const std::string& n) { return script.Publish(n); }, \
      [&script](const std::string& n, const std::string& st) { script.Record(n, st); }, options)

TEST(BackgroundPublisherTest, FirstAttemptSucceeds) {
  Script script({});
  PUBLISHER(pub, script, kFast);
  EXPECT_TRUE(pub.PublishNow("a:1"));
  EXPECT_EQ(script.WaitStates(1), std::vector<std::string>{"a:1 yes"});
  EXPECT_EQ(pub.pending(), 0u);
  EXPECT_EQ(script.attempts(), 1);
}

TEST(BackgroundPublisherTest, RetriesUntilContainerdAnswers) {
  Script script({Errc::kUnavailable, Errc::kUnavailable});
  PUBLISHER(pub, script, kFast);
  auto st = pub.PublishNow("a:1");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  auto states = script.WaitStates(3);
  EXPECT_EQ(states, (std::vector<std::string>{"a:1 pending: attempt 1 failed",
                                              "a:1 pending: attempt 2 failed", "a:1 yes"}));
  EXPECT_EQ(script.attempts(), 3);
  EXPECT_EQ(pub.pending(), 0u);
}

TEST(BackgroundPublisherTest, GivesUpAfterMaxAttempts) {
  Script script({Errc::kUnavailable, Errc::kUnavailable, Errc::kUnavailable, Errc::kUnavailable,
                 Errc::kUnavailable});
  PUBLISHER(pub, script, kFast);
  ASSERT_FALSE(pub.PublishNow("a:1"));
  auto states = script.WaitStates(4);
  ASSERT_EQ(states.size(), 4u);
  EXPECT_EQ(states.back(), "a:1 failed: attempt 4 failed");
  EXPECT_EQ(pub.pending(), 0u);
  EXPECT_EQ(script.attempts(), 4);
}

TEST(BackgroundPublisherTest, NotFoundIsNotRetried) {
  Script script({Errc::kNotFound});
  PUBLISHER(pub, script, kFast);
  ASSERT_FALSE(pub.PublishNow("gone:1"));
  EXPECT_EQ(script.WaitStates(1), std::vector<std::string>{"gone:1 failed: attempt 1 failed"});
  EXPECT_EQ(pub.pending(), 0u);
  EXPECT_EQ(script.attempts(), 1);
}

TEST(BackgroundPublisherTest, EnqueuePublishesInTheBackground) {
  Script script({Errc::kUnavailable});
  PUBLISHER(pub, script, kFast);
  pub.Enqueue("b:2");
  EXPECT_EQ(script.WaitStates(2),
            (std::vector<std::string>{"b:2 pending: attempt 1 failed", "b:2 yes"}));
}

TEST(BackgroundPublisherTest, ForgetDropsQueuedRetries) {
  Script script({Errc::kUnavailable, Errc::kUnavailable});
  // A retry far in the future: still queued when forgotten.
  PUBLISHER(pub, script,
            (RetryOptions{.first_delay = std::chrono::hours(1),
                          .max_delay = std::chrono::hours(1),
                          .max_attempts = 3}));
  ASSERT_FALSE(pub.PublishNow("a:1"));
  EXPECT_EQ(pub.pending(), 1u);
  pub.Forget("a:1");
  EXPECT_EQ(pub.pending(), 0u);
  EXPECT_EQ(script.attempts(), 1);
}

}  // namespace
}  // namespace ctrpublish
