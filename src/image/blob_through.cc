// One blob from the registry into the store, followed as it arrives: the
// home side of the fleet's peer protocol.

#include "image/blob_through.h"

#include <fcntl.h>
#include <sys/file.h>

#include <thread>

#include "common/log.h"

namespace image {

struct BlobThrough::Run {
  registry::ImageRef repo;
  oci::Descriptor desc;
  bool started = false;   // a byte is written, or the run ended
  common::Status result;  // once ended
  bool ended = false;
};

namespace {

// Writes the ingest, tells the followers, and wakes Start at the first byte.
class ThroughSink final : public registry::BlobSink {
 public:
  ThroughSink(store::Ingest& ingest, PullFlights::Publisher& pub, std::function<void()> first)
      : ingest_(ingest), pub_(pub), first_(std::move(first)) {}
  int64_t offset() const override { return ingest_.offset(); }
  common::Status Write(std::span<const std::byte> data) override {
    TRY(ingest_.Write(data));
    pub_.Progress(ingest_.digest(), ingest_.offset());
    if (first_) std::exchange(first_, {})();
    return {};
  }
  common::Status Restart() override {
    TRY(ingest_.Restart());
    pub_.Progress(ingest_.digest(), 0);
    return {};
  }
  std::optional<common::Digest> held_digest() const override { return ingest_.written_digest(); }

 private:
  store::Ingest& ingest_;
  PullFlights::Publisher& pub_;
  std::function<void()> first_;
};

// Whether another writer holds the blob's ingest lock. A writer of this
// process publishes its flight (the door follows that instead); one of
// another process (a `gantry pull` on this node, perhaps the very peer
// that asks) would make BeginIngest wait for its end, and that peer for
// us: better to answer at once that this home cannot help.
bool IngestBusy(const std::filesystem::path& ingest) {
  common::UniqueFd fd(::open(ingest.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return false;
  return ::flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
}

}  // namespace

BlobThrough::BlobThrough(store::ContentStore& content, PullFlights& flights,
                         registry::ClientOptions client, std::chrono::milliseconds first_byte_wait)
    : content_(content), flights_(flights), first_byte_wait_(first_byte_wait) {
  client.peers = nullptr;
  auto c = registry::RegistryClient::Create(std::move(client));
  if (c) {
    client_ = std::move(*c);
  } else {
    client_error_ = c.error();
  }
}

BlobThrough::~BlobThrough() {
  stop_ = true;
  std::unique_lock l(mu_);
  cv_.notify_all();
  cv_.wait(l, [this] { return threads_ == 0; });
}

common::Status BlobThrough::Start(const registry::ImageRef& repo, const common::Digest& digest,
                                  int64_t size) {
  const std::string what = "pull blob " + digest.str() + " through for a peer";
  if (size < 0) return common::MakeError(common::Errc::kInvalidArgument, what + ": no size given");
  if (!client_) return std::unexpected(client_error_.Wrap(what));
  std::unique_lock l(mu_);
  if (stop_) return common::MakeError(common::Errc::kCancelled, what + ": stopping");
  if (content_.Has(digest)) return {};
  std::shared_ptr<Run> run;
  if (auto it = runs_.find(digest); it != runs_.end()) {
    run = it->second;
  } else {
    run = std::make_shared<Run>();
    run->repo = repo;
    run->desc.media_type = "application/octet-stream";
    run->desc.digest = digest;
    run->desc.size = size;
    // Expected before Start returns: a Follow from now on finds it.
    auto pub = std::make_shared<PullFlights::Publisher>(&flights_, "peer " + repo.name());
    pub->Expect(run->desc);
    runs_[digest] = run;
    ++threads_;
    // Moved into Download, which drops the publisher before it signals its
    // end: none may outlive this object.
    std::thread([this, run, pub]() mutable { Download(std::move(run), std::move(pub)); }).detach();
  }
  if (!cv_.wait_for(l, first_byte_wait_, [&] { return run->started || stop_.load(); }))
    return common::MakeError(
        common::Errc::kUnavailable,
        what + ": no byte in " + std::to_string(first_byte_wait_.count()) + " ms");
  if (!run->started) return common::MakeError(common::Errc::kCancelled, what + ": stopping");
  if (run->ended && !run->result) return std::unexpected(run->result.error().Wrap(what));
  return {};
}

void BlobThrough::Download(std::shared_ptr<Run> run, std::shared_ptr<PullFlights::Publisher> pub) {
  const common::Digest& digest = run->desc.digest;
  auto first = [this, run] {
    std::lock_guard l(mu_);
    run->started = true;
    cv_.notify_all();
  };
  common::Status result = [&]() -> common::Status {
    if (IngestBusy(content_.IngestPath(digest)))
      return common::MakeError(common::Errc::kUnavailable,
                               "another process of this node is downloading it");
    auto ing = content_.BeginIngest(digest, run->desc.size, &stop_);
    if (!ing && ing.error().code == common::Errc::kAlreadyExists) {
      common::UniqueFd readable(
          ::open(content_.BlobPath(digest).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
      if (readable) pub->Writing(digest, std::move(readable), run->desc.size);
      return {};
    }
    if (!ing) return std::unexpected(ing.error());
    common::UniqueFd readable(
        ::open(content_.IngestPath(digest).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (readable) pub->Writing(digest, std::move(readable), ing->offset());
    if (ing->offset() > 0) first();
    ThroughSink sink(*ing, *pub, first);
    TRY(client_->FetchBlob(run->repo, digest, run->desc.size, sink, &stop_));
    return ing->Commit(store::Ingest::DirSync::kNow);
  }();
  if (!result)
    LOG(Warn) << "peer pull-through failed" << common::Kv("digest", digest.str())
              << common::Kv("repository", run->repo.name())
              << common::Kv("error", result.error().message);
  else
    LOG(Debug) << "peer pull-through done" << common::Kv("digest", digest.str());
  pub->Done(digest, result);
  pub.reset();
  std::lock_guard l(mu_);
  run->result = result;
  run->ended = true;
  run->started = true;
  runs_.erase(digest);
  --threads_;
  cv_.notify_all();
}

}  // namespace image
