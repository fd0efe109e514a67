#pragma once
// The registry door's blob pull-through for fleet peers (docs/fleet.md,
// `gantry serve --peers`): a peer asks this node, one of the blob's
// "home" nodes, for a blob the store lacks; the blob is fetched from its
// registry into the store once, and every request for it (this one, the
// peers' that come while it downloads, this node's own pulls) reads that
// one download as it arrives (image::PullFlights), then the committed
// blob.
//
//   image::BlobThrough through(content, flights, client_options);
//   TRY(through.Start(repo, digest, size));   // in flight or in the store now
//   if (auto f = flights.Follow(digest)) ... else serve the committed blob
//
// The download goes straight to the registry's hosts (mirrors, then the
// upstream), never to peers: a home does not ask other homes, so no two
// nodes can wait on each other. A blob another process of this node is
// downloading (its ingest lock is held: a `gantry pull` here, maybe for
// the very peer that asks) fails at once with Unavailable rather than
// waiting for it. It is checked as every download is: the
// ingest verifies size and digest before the blob gets its name, so a
// wrong `size` from a requester fails the download and stores nothing.
// The blob is kept like the blobs of a failed pull: no image record or
// lease refers to it, and the next prune deletes it (fsck notes it, it
// is no problem).
//
// Thread-safety: Start from any number of threads.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

#include "common/digest.h"
#include "common/error.h"
#include "image/pull_flights.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "store/content_store.h"

namespace image {

class BlobThrough {
 public:
  // `client` is used as given except that its peers are dropped (see
  // above); the caller decides which credentials it carries.
  // REQUIRES: `content` and `flights` outlive this object.
  BlobThrough(store::ContentStore& content, PullFlights& flights, registry::ClientOptions client,
              std::chrono::milliseconds first_byte_wait = std::chrono::seconds(30));
  // Cancels the downloads still running and waits for them to end.
  ~BlobThrough();
  BlobThrough(const BlobThrough&) = delete;
  BlobThrough& operator=(const BlobThrough&) = delete;

  // Starts the download of blob `digest` of `size` bytes from `repo`'s
  // registry, unless one is running (then joins it) or the store has it,
  // and returns once the store has it or its first byte is written (a
  // PullFlights::Follow of it then follows it to its end).
  // Errors: the download's when it failed before its first byte (NotFound
  // when the registry has no such blob, Unauthenticated without
  // credentials, Unavailable, DataLoss, …; InvalidArgument for a negative
  // size); Unavailable when `first_byte_wait` passed first; Cancelled once
  // the destructor runs.
  [[nodiscard]] common::Status Start(const registry::ImageRef& repo, const common::Digest& digest,
                                     int64_t size);

  PullFlights& flights() { return flights_; }

 private:
  struct Run;
  void Download(std::shared_ptr<Run> run, std::shared_ptr<PullFlights::Publisher> pub);

  store::ContentStore& content_;
  PullFlights& flights_;
  std::unique_ptr<registry::RegistryClient> client_;  // null when it could not be created
  common::Error client_error_;
  std::chrono::milliseconds first_byte_wait_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards the fields below; cv_ waits on it
  std::condition_variable cv_;
  std::map<common::Digest, std::shared_ptr<Run>> runs_;  // downloads not ended
  int threads_ = 0;
};

}  // namespace image
