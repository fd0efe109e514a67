#pragma once
// What the pulls of this process are bringing into the store right now,
// readable before they end: the manifests they have stored and the blobs
// they are downloading, which a reader follows byte by byte as they
// arrive. The registry door's pull-through (`gantry serve
// --registry-listen … --registry-pull-through`, mirror/registry_server.h)
// answers its clients from here while the pull that brings the image is
// still running; image::Fetch publishes into it (FetchOptions::flights).
// The unpack of each pull reads its layers the same way, applying each
// while it downloads (image/unpacker.h, UnpackOptions::flights; PullImage
// gives a pull a table of its own when the caller has none).
//
//   image::PullFlights flights;
//   // the pull side (image::Fetch does this when FetchOptions::flights is set)
//   image::PullFlights::Publisher pub(flights, "docker.io/library/alpine:3.19");
//   pub.Expect(layer);                         // before the manifest is published
//   pub.ManifestStored(target, /*target=*/true);
//   pub.Writing(layer.digest, std::move(read_fd), ingest.offset());
//   pub.Progress(layer.digest, ingest.offset());   // after each write
//   pub.Done(layer.digest, ingest.Commit());       // verified and committed, or why not
//   // the reading side
//   if (auto f = flights.Follow(layer.digest)) {
//     for (;;) { ASSIGN_OR_RETURN(size_t n, f->Read(buf)); if (n == 0) break; send(buf, n); }
//   }
//
// Blobs. A blob is in flight from Expect until Done or the end of its
// publisher. A follower reads the bytes the download has written to its
// ingest file (through a descriptor of that file the publisher hands over
// with Writing, so the commit's rename does not matter), in order, from
// offset 0, waiting on a condition variable that Progress signals: no
// polling. The last byte is held back until Done reports the blob
// verified and committed, so a follower never sees a whole blob that
// turns out wrong; a download that fails (Done with an error, or its
// publisher ending without Done) makes every follower's next Read fail.
// A download that restarts from 0 (the server ignored a Range request)
// delivers the same bytes again: followers just wait for them. Two pulls
// that expect the same blob share one flight (the content store's ingest
// lock lets only one of them write it); it fails only when every one of
// them has given up on it without committing it.
//
// Manifests. ManifestStored publishes a manifest or index the pull has
// committed to the content store (its blob file exists; its metadata row
// waits for the image record), under its digest and, for the pull's
// target, under the pull's name. They are withdrawn when the publisher
// ends: by then the image record (or nothing, on failure) says it.
//
// Waiting is bounded: a follower's Read fails with Unavailable when no new
// byte arrives for `stall` (the pull's own rate floor normally ends it
// before); PullThrough::Manifest at its deadline. Shutdown wakes every
// waiter with Cancelled.
//
// Thread-safety: every method may be called from any thread. A Publisher
// is used by one pull (its methods may be called from its download
// threads at once); a Follower by one thread at a time.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "common/digest.h"
#include "common/error.h"
#include "common/fd.h"
#include "oci/descriptor.h"
#include "registry/reference.h"

namespace image {

class PullFlights {
 public:
  struct BlobFlight;  // one blob in flight (pull_flights.cc)

  PullFlights() = default;
  PullFlights(const PullFlights&) = delete;
  PullFlights& operator=(const PullFlights&) = delete;

  // What one pull publishes. Ending it (the destructor) fails the blobs it
  // expected and did not finish (unless another pull still expects them)
  // and withdraws its manifests.
  class Publisher {
   public:
    // `flights` may be null: every call then does nothing.
    Publisher(PullFlights* flights, std::string name);
    ~Publisher();
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    // The pull will fetch `blob` (not in the store yet). Followers of its
    // digest wait from now on.
    void Expect(const oci::Descriptor& blob);
    // The pull writes the blob: `readable` is a read-only descriptor of its
    // ingest file, which holds `offset` bytes already (a resumed partial).
    void Writing(const common::Digest& digest, common::UniqueFd readable, int64_t offset);
    // The ingest file now holds `offset` bytes (0 after a restart).
    void Progress(const common::Digest& digest, int64_t offset);
    // The blob is verified and committed (ok), already in the store (ok), or
    // this pull failed to bring it (error).
    void Done(const common::Digest& digest, const common::Status& result);
    // A manifest or index committed to the content store; `target`: the one
    // the pull's name resolved to.
    void ManifestStored(const oci::Descriptor& manifest, bool target);

   private:
    // The flight of `digest` this pull publishes, null when none.
    std::shared_ptr<BlobFlight> Find(const common::Digest& digest);

    PullFlights* flights_;
    std::string name_;
    std::mutex mu_;                                                // guards the two fields below
    std::map<common::Digest, std::shared_ptr<BlobFlight>> blobs_;  // expected, not done
    std::set<common::Digest> manifests_;
    bool target_published_ = false;
  };

  // Reads one blob in flight, from its first byte.
  class Follower {
   public:
    explicit Follower(std::shared_ptr<BlobFlight> flight, std::chrono::milliseconds stall);
    // The blob's size (its descriptor's).
    int64_t size() const;
    // Copies up to buf.size() bytes from the follower's position on and
    // advances it, waiting for the download to write them. Returns 0 once
    // every byte was returned and the blob is verified and committed.
    // Errors: the download's (its error message, code Unavailable unless it
    // was DataLoss or Cancelled); Unavailable when no byte came for `stall`;
    // Cancelled after Shutdown; I/O errors reading the file.
    [[nodiscard]] common::Result<size_t> Read(std::span<std::byte> buf);

   private:
    std::shared_ptr<BlobFlight> flight_;
    std::chrono::milliseconds stall_;
    int64_t pos_ = 0;
  };

  // A follower of `digest` if a pull of this process has it in flight;
  // nullopt otherwise (it is in the store already, or no pull brings it).
  // A blob leaves the table only once committed or failed, so a caller
  // that gets nullopt and then finds no committed blob may answer "unknown".
  [[nodiscard]] std::optional<Follower> Follow(
      const common::Digest& digest, std::chrono::milliseconds stall = std::chrono::minutes(2));

  // A manifest an in-flight pull has stored: by digest, or (`name` a
  // normalised reference) the target of the pull of that name.
  [[nodiscard]] std::optional<oci::Descriptor> FindManifest(const common::Digest& digest) const;
  [[nodiscard]] std::optional<oci::Descriptor> FindTarget(const std::string& name) const;

  // Fails every follower's Read and every PullThrough::Manifest wait with
  // Cancelled, now and later (the server stops). Idempotent.
  void Shutdown();

 private:
  friend class Publisher;
  friend class Follower;
  friend class PullThrough;
  std::optional<oci::Descriptor> ManifestLocked(const common::Digest& digest) const;
  std::optional<oci::Descriptor> TargetLocked(const std::string& name) const;

  mutable std::mutex mu_;  // guards the maps, shutdown_ and manifests_cv_'s waits
  std::condition_variable manifests_cv_;
  std::map<common::Digest, std::shared_ptr<BlobFlight>> blobs_;
  std::map<common::Digest, std::pair<oci::Descriptor, int>> manifests_;  // with publisher count
  std::map<std::string, oci::Descriptor> targets_;
  bool shutdown_ = false;
};

// Pulls on demand for a reader that waits only for the manifest: the
// registry door's --registry-pull-through.
//
//   image::PullThrough through(flights, [&](const registry::ImageRef& r) {
//     return pulls.Pull(r);  // the process's one pull pipeline and flight table
//   });
//   ASSIGN_OR_RETURN(oci::Descriptor d, through.Manifest(ref));  // then serve d
//
// Manifest(ref) starts `pull(ref)` on a thread of its own, unless a pull of
// the same reference it started is still running (then it joins that
// one; `pull` itself is expected to share one flight with the process's
// other pulls of the same image, as criimage's PullManager does), and
// waits until that pull has published the manifest `ref` names
// (PullFlights::Publisher::ManifestStored: its target for a tag, the
// manifest of that digest for a digest reference), or the pull ended.
// The pull goes on after Manifest returns: its blobs are followed through
// PullFlights::Follow.
//
// Thread-safety: Manifest may be called from any number of threads.
class PullThrough {
 public:
  // Runs one pull to its end and returns its target (the manifest or index
  // the reference resolved to).
  using PullFn = std::function<common::Result<oci::Descriptor>(const registry::ImageRef&)>;

  // REQUIRES: `flights` is the table `pull`'s fetches publish into, and
  // outlives this object.
  PullThrough(PullFlights& flights, PullFn pull,
              std::chrono::milliseconds manifest_wait = std::chrono::seconds(60));
  // Waits for the pulls it started to end. REQUIRES: they end (the pull
  // function's owner cancels them, or they finish).
  ~PullThrough();
  PullThrough(const PullThrough&) = delete;
  PullThrough& operator=(const PullThrough&) = delete;

  // The descriptor of the manifest or index `ref` names, once a pull has
  // stored it. Errors: the pull's when it failed first (NotFound when the
  // registry has no such image or tag, Unavailable when it cannot be
  // reached, …); Unavailable when `manifest_wait` passed first;
  // Cancelled after PullFlights::Shutdown.
  [[nodiscard]] common::Result<oci::Descriptor> Manifest(const registry::ImageRef& ref);

  PullFlights& flights() { return flights_; }

 private:
  struct Run;
  PullFlights& flights_;
  PullFn pull_;
  std::chrono::milliseconds manifest_wait_;
  // Guarded by flights_.mu_ (waits share its condition variable).
  std::map<std::string, std::shared_ptr<Run>> runs_;
  int threads_ = 0;  // pull threads not ended yet
};

}  // namespace image
