#include "ctrpublish/background.h"

#include <algorithm>

#include "common/log.h"

namespace ctrpublish {

BackgroundPublisher::BackgroundPublisher(PublishFn publish, RecordFn record, RetryOptions options)
    : publish_(std::move(publish)),
      record_(std::move(record)),
      options_(options),
      backoff_(
          registry::BackoffPolicy{
              .initial = options.first_delay, .max_delay = options.max_delay, .jitter = 0},
          /*env=*/nullptr, /*seed=*/0) {
  thread_ = std::thread([this] { Loop(); });
}

BackgroundPublisher::~BackgroundPublisher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

common::Status BackgroundPublisher::PublishNow(const std::string& name) {
  {
    // A retry queued before this pull is this attempt's now.
    std::lock_guard<std::mutex> lock(mu_);
    due_.erase(name);
  }
  common::Status st = publish_(name);
  Settle(name, 1, st);
  return st;
}

void BackgroundPublisher::Enqueue(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    due_[name] = Due{.attempts = 0, .at = std::chrono::steady_clock::now()};
  }
  cv_.notify_all();
}

void BackgroundPublisher::Forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  due_.erase(name);
}

size_t BackgroundPublisher::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return due_.size();
}

void BackgroundPublisher::Settle(const std::string& name, int attempt, const common::Status& st) {
  if (st) {
    record_(name, "yes");
    if (attempt > 1)
      LOG(Info) << "published to containerd after retries" << common::Kv("image", name)
                << common::Kv("attempts", attempt);
    return;
  }
  const std::string& why = st.error().message;
  // NotFound: the image left the store (or containerd lacks what it was
  // told exists); waiting does not bring it back.
  if (attempt >= options_.max_attempts || st.error().code == common::Errc::kNotFound) {
    record_(name, "failed: " + why);
    LOG(Warn) << "publish to containerd: giving up" << common::Kv("image", name)
              << common::Kv("attempts", attempt) << common::Kv("error", why);
    return;
  }
  record_(name, "pending: " + why);
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    delay = backoff_.Delay(attempt, std::nullopt);  // first_delay × 2^(attempt-1), capped
    due_[name] = Due{.attempts = attempt, .at = std::chrono::steady_clock::now() + delay};
  }
  cv_.notify_all();
  if (attempt == 1)
    LOG(Warn) << "publish to containerd failed; retrying in the background"
              << common::Kv("image", name) << common::Kv("error", why)
              << common::Kv("retry_in_ms", delay.count());
  else
    LOG(Debug) << "publish to containerd failed again" << common::Kv("image", name)
               << common::Kv("attempt", attempt) << common::Kv("error", why)
               << common::Kv("retry_in_ms", delay.count());
}

void BackgroundPublisher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next = std::min_element(due_.begin(), due_.end(), [](const auto& a, const auto& b) {
      return a.second.at < b.second.at;
    });
    // A copy: wait_until reads the time again after waking, when Forget may
    // have erased the entry.
    const std::chrono::steady_clock::time_point at = next->second.at;
    if (at > std::chrono::steady_clock::now()) {
      cv_.wait_until(lock, at);
      continue;
    }
    const std::string name = next->first;
    const int attempt = next->second.attempts + 1;
    due_.erase(next);
    lock.unlock();
    common::Status st = publish_(name);
    Settle(name, attempt, st);
    lock.lock();
  }
}

}  // namespace ctrpublish
