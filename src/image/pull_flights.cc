#include "image/pull_flights.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

namespace image {

using common::Errc;
using common::MakeError;
using Clock = std::chrono::steady_clock;

// Lock order: the table's mu_ before a flight's mu.
struct PullFlights::BlobFlight {
  enum class State { kFlying, kDone, kFailed };
  oci::Descriptor desc;
  std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  // The ingest file, shared by the followers (they pread it); replaced when
  // another pull takes over the download.
  std::shared_ptr<common::UniqueFd> file;
  int64_t offset = 0;  // bytes the file holds
  int owners = 0;      // publishers that expect it and have not given up
  State state = State::kFlying;
  common::Error error;
  bool cancelled = false;  // PullFlights::Shutdown
};

namespace {

// Ends one publisher's claim on `f`; the flight ends when the blob is in,
// or when nobody is left to bring it. Returns whether it ended.
// REQUIRES: f->mu held.
bool Release(PullFlights::BlobFlight& f, const common::Status& result) {
  --f.owners;
  if (result) {
    f.state = PullFlights::BlobFlight::State::kDone;
  } else if (f.owners <= 0 && f.state == PullFlights::BlobFlight::State::kFlying) {
    f.state = PullFlights::BlobFlight::State::kFailed;
    f.error = result.error();
  }
  f.cv.notify_all();
  return f.state != PullFlights::BlobFlight::State::kFlying;
}

}  // namespace

PullFlights::Publisher::Publisher(PullFlights* flights, std::string name)
    : flights_(flights), name_(std::move(name)) {}

PullFlights::Publisher::~Publisher() {
  if (flights_ == nullptr) return;
  std::lock_guard table(flights_->mu_);
  std::lock_guard own(mu_);
  for (auto& [digest, f] : blobs_) {
    std::lock_guard l(f->mu);
    common::Status gone =
        MakeError(Errc::kUnavailable,
                  "the pull of " + name_ + " ended before it fetched blob " + digest.str());
    if (Release(*f, gone)) {
      auto it = flights_->blobs_.find(digest);
      if (it != flights_->blobs_.end() && it->second == f) flights_->blobs_.erase(it);
    }
  }
  blobs_.clear();
  for (const common::Digest& d : manifests_) {
    auto it = flights_->manifests_.find(d);
    if (it != flights_->manifests_.end() && --it->second.second <= 0)
      flights_->manifests_.erase(it);
  }
  if (target_published_) flights_->targets_.erase(name_);
  flights_->manifests_cv_.notify_all();
}

void PullFlights::Publisher::Expect(const oci::Descriptor& blob) {
  if (flights_ == nullptr) return;
  std::lock_guard table(flights_->mu_);
  std::lock_guard own(mu_);
  if (blobs_.contains(blob.digest)) return;
  std::shared_ptr<BlobFlight>& f = flights_->blobs_[blob.digest];
  if (!f) {
    f = std::make_shared<BlobFlight>();
    f->desc = blob;
    f->cancelled = flights_->shutdown_;
  }
  {
    std::lock_guard l(f->mu);
    ++f->owners;
  }
  blobs_[blob.digest] = f;
}

std::shared_ptr<PullFlights::BlobFlight> PullFlights::Publisher::Find(
    const common::Digest& digest) {
  if (flights_ == nullptr) return nullptr;
  std::lock_guard own(mu_);
  auto it = blobs_.find(digest);
  return it == blobs_.end() ? nullptr : it->second;
}

void PullFlights::Publisher::Writing(const common::Digest& digest, common::UniqueFd readable,
                                     int64_t offset) {
  std::shared_ptr<BlobFlight> f = Find(digest);
  if (!f) return;
  std::lock_guard l(f->mu);
  f->file = std::make_shared<common::UniqueFd>(std::move(readable));
  f->offset = offset;
  f->cv.notify_all();
}

void PullFlights::Publisher::Progress(const common::Digest& digest, int64_t offset) {
  std::shared_ptr<BlobFlight> f = Find(digest);
  if (!f) return;
  std::lock_guard l(f->mu);
  f->offset = offset;
  f->cv.notify_all();
}

void PullFlights::Publisher::Done(const common::Digest& digest, const common::Status& result) {
  if (flights_ == nullptr) return;
  std::lock_guard table(flights_->mu_);
  std::lock_guard own(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return;
  std::shared_ptr<BlobFlight> f = std::move(it->second);
  blobs_.erase(it);
  std::lock_guard l(f->mu);
  if (Release(*f, result)) {
    auto t = flights_->blobs_.find(digest);
    if (t != flights_->blobs_.end() && t->second == f) flights_->blobs_.erase(t);
  }
}

void PullFlights::Publisher::ManifestStored(const oci::Descriptor& manifest, bool target) {
  if (flights_ == nullptr) return;
  std::lock_guard table(flights_->mu_);
  std::lock_guard own(mu_);
  if (manifests_.insert(manifest.digest).second) {
    auto& [desc, count] = flights_->manifests_[manifest.digest];
    desc = manifest;
    ++count;
  }
  if (target) {
    flights_->targets_[name_] = manifest;
    target_published_ = true;
  }
  flights_->manifests_cv_.notify_all();
}

PullFlights::Follower::Follower(std::shared_ptr<BlobFlight> flight, std::chrono::milliseconds stall)
    : flight_(std::move(flight)), stall_(stall) {}

int64_t PullFlights::Follower::size() const { return flight_->desc.size; }

common::Result<size_t> PullFlights::Follower::Read(std::span<std::byte> buf) {
  BlobFlight& f = *flight_;
  const int64_t size = f.desc.size;
  std::shared_ptr<common::UniqueFd> file;
  size_t want = 0;
  {
    std::unique_lock l(f.mu);
    int64_t seen = -1;
    auto deadline = Clock::now() + stall_;
    for (;;) {
      if (f.cancelled)
        return MakeError(Errc::kCancelled,
                         "follow blob " + f.desc.digest.str() + ": shutting down");
      if (f.state == BlobFlight::State::kFailed) {
        common::Error e = f.error;
        if (e.code != Errc::kDataLoss && e.code != Errc::kCancelled) e.code = Errc::kUnavailable;
        return std::unexpected(e.Wrap("follow blob " + f.desc.digest.str()));
      }
      const bool done = f.state == BlobFlight::State::kDone;
      if (done && pos_ >= size) return 0;
      if (done && !f.file)
        return MakeError(Errc::kUnavailable, "follow blob " + f.desc.digest.str() +
                                                 ": it was stored with no file to read");
      // The last byte waits for the verification: a body that looks whole
      // is one that is right.
      const int64_t readable = done ? size : std::min(f.offset, size - 1);
      if (f.file && readable > pos_) {
        file = f.file;
        want = static_cast<size_t>(std::min<int64_t>(readable - pos_, std::ssize(buf)));
        break;
      }
      if (f.offset != seen) {
        seen = f.offset;
        deadline = Clock::now() + stall_;
      }
      if (f.cv.wait_until(l, deadline) == std::cv_status::timeout && f.offset == seen &&
          f.state == BlobFlight::State::kFlying && !f.cancelled)
        return MakeError(Errc::kUnavailable, "follow blob " + f.desc.digest.str() +
                                                 ": no byte for " + std::to_string(stall_.count()) +
                                                 " ms");
    }
  }
  ssize_t n = 0;
  do {
    n = ::pread(file->get(), buf.data(), want, pos_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return common::ErrnoError("read the download of blob " + f.desc.digest.str());
  // 0: the download restarted from 0 (the file was truncated) after the
  // offset was read; wait for the bytes again.
  if (n == 0) return Read(buf);
  pos_ += n;
  return static_cast<size_t>(n);
}

std::optional<PullFlights::Follower> PullFlights::Follow(const common::Digest& digest,
                                                         std::chrono::milliseconds stall) {
  std::lock_guard table(mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return std::nullopt;
  return Follower(it->second, stall);
}

std::optional<oci::Descriptor> PullFlights::ManifestLocked(const common::Digest& digest) const {
  auto it = manifests_.find(digest);
  if (it == manifests_.end()) return std::nullopt;
  return it->second.first;
}

std::optional<oci::Descriptor> PullFlights::TargetLocked(const std::string& name) const {
  auto it = targets_.find(name);
  if (it == targets_.end()) return std::nullopt;
  return it->second;
}

std::optional<oci::Descriptor> PullFlights::FindManifest(const common::Digest& digest) const {
  std::lock_guard table(mu_);
  return ManifestLocked(digest);
}

std::optional<oci::Descriptor> PullFlights::FindTarget(const std::string& name) const {
  std::lock_guard table(mu_);
  return TargetLocked(name);
}

void PullFlights::Shutdown() {
  std::lock_guard table(mu_);
  shutdown_ = true;
  for (auto& [digest, f] : blobs_) {
    std::lock_guard l(f->mu);
    f->cancelled = true;
    f->cv.notify_all();
  }
  manifests_cv_.notify_all();
}

struct PullThrough::Run {
  bool done = false;  // guarded by the table's mu_, as result
  common::Result<oci::Descriptor> result = oci::Descriptor{};
};

PullThrough::PullThrough(PullFlights& flights, PullFn pull, std::chrono::milliseconds manifest_wait)
    : flights_(flights), pull_(std::move(pull)), manifest_wait_(manifest_wait) {}

PullThrough::~PullThrough() {
  std::unique_lock l(flights_.mu_);
  flights_.manifests_cv_.wait(l, [&] { return threads_ == 0; });
}

common::Result<oci::Descriptor> PullThrough::Manifest(const registry::ImageRef& ref) {
  const std::string name = ref.str();
  auto wanted = [&]() -> std::optional<oci::Descriptor> {
    return ref.digest() ? flights_.ManifestLocked(*ref.digest()) : flights_.TargetLocked(name);
  };
  std::unique_lock l(flights_.mu_);
  if (flights_.shutdown_) return MakeError(Errc::kCancelled, "pull " + name + ": shutting down");
  if (auto d = wanted()) return *d;
  std::shared_ptr<Run>& slot = runs_[name];
  std::shared_ptr<Run> run = slot;
  if (!run) {
    run = slot = std::make_shared<Run>();
    ++threads_;
    // Detached, and counted: the destructor waits for the count, and the
    // thread touches nothing of this object after its last decrement.
    std::thread([this, run, ref, name] {
      common::Result<oci::Descriptor> r = pull_(ref);
      std::lock_guard done(flights_.mu_);
      run->result = std::move(r);
      run->done = true;
      auto it = runs_.find(name);
      if (it != runs_.end() && it->second == run) runs_.erase(it);
      --threads_;
      flights_.manifests_cv_.notify_all();
    }).detach();
  }
  const auto deadline = Clock::now() + manifest_wait_;
  for (;;) {
    if (flights_.shutdown_) return MakeError(Errc::kCancelled, "pull " + name + ": shutting down");
    if (auto d = wanted()) return *d;
    if (run->done) return run->result;
    if (flights_.manifests_cv_.wait_until(l, deadline) == std::cv_status::timeout && !run->done &&
        !wanted() && !flights_.shutdown_)
      return MakeError(Errc::kUnavailable,
                       "pull " + name + ": the manifest did not arrive within " +
                           std::to_string(manifest_wait_.count() / 1000) + " s");
  }
}

}  // namespace image
