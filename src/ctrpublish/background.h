#pragma once
// Publication into containerd on behalf of a long-running server (`gantry
// serve --containerd`): each image the server records is published once
// (PublishNow, in the caller's thread, so that the CRI PullImage answers
// kubelet after containerd has the image), and a publication that fails
// (containerd down or restarting) is retried in the background with
// exponential backoff, up to `max_attempts` attempts in all, then given up
// (at once for NotFound: the image is no longer in the store).
//
//   ctrpublish::BackgroundPublisher pub(
//       [&](const std::string& n) { return ToStatus(ctrpublish::Publish(st, n, target)); },
//       [&](const std::string& n, const std::string& state) { ... label n ... },
//       {});
//   (void)pub.PublishNow("docker.io/library/busybox:1.36");  // failure: retried
//
// Each outcome goes to `record` (the state of kLabelPublished: "yes",
// "pending: REASON", "failed: REASON") and to the log: the first failure
// of a name and giving up at warn, each retry's failure at debug, a
// success after failures at info.
//
// Thread-safety: every method may be called from many threads at once;
// `publish` and `record` are called from the caller's thread (PublishNow)
// and from the one background thread, never under the publisher's lock.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "registry/http_retry.h"

namespace ctrpublish {

struct RetryOptions {
  std::chrono::milliseconds first_delay = std::chrono::seconds(1);  // before the 2nd attempt
  std::chrono::milliseconds max_delay = std::chrono::seconds(30);   // the doubling stops here
  int max_attempts = 10;                                            // in all, the first included
};

class BackgroundPublisher {
 public:
  using PublishFn = std::function<common::Status(const std::string& name)>;
  using RecordFn = std::function<void(const std::string& name, const std::string& state)>;

  // Starts the background thread. REQUIRES: `publish` and `record` stay
  // callable until the destructor returns.
  BackgroundPublisher(PublishFn publish, RecordFn record, RetryOptions options);
  // Stops the thread (an attempt in progress finishes first); retries
  // still due are dropped, their images left "pending" for the next
  // publication (`gantry publish`, or a new pull).
  ~BackgroundPublisher();
  BackgroundPublisher(const BackgroundPublisher&) = delete;
  BackgroundPublisher& operator=(const BackgroundPublisher&) = delete;

  // Publishes `name` now and returns the outcome; on failure the name is
  // queued for retries (a retry already queued starts its backoff again).
  [[nodiscard]] common::Status PublishNow(const std::string& name);
  // Queues `name` for an attempt by the background thread as soon as it is
  // free (the registry door's pull-through, which must not wait).
  void Enqueue(const std::string& name);
  // Drops `name`'s queued retries (the image was removed).
  void Forget(const std::string& name);
  // Names with an attempt queued (for tests and logs).
  [[nodiscard]] size_t pending() const;

 private:
  struct Due {
    int attempts = 0;  // made so far
    std::chrono::steady_clock::time_point at;
  };
  void Loop();
  // Records and logs the outcome of attempt number `attempt` (1-based) of
  // `name`, and queues the next one when due. Takes mu_.
  void Settle(const std::string& name, int attempt, const common::Status& st);

  PublishFn publish_;
  RecordFn record_;
  RetryOptions options_;
  mutable std::mutex mu_;      // guards due_, stop_, backoff_
  registry::Backoff backoff_;  // options_' schedule, without jitter
  std::condition_variable cv_;
  std::map<std::string, Due> due_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ctrpublish
