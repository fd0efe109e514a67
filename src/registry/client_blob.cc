// RegistryClient::FetchBlob: streaming, resume with Range, restart when
// the server ignores Range, the size bound, and the host walk.

#include <algorithm>
#include <charconv>

#include "common/log.h"
#include "registry/client.h"
#include "registry/client_internal.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;
using internal::Failure;
using internal::HttpRequest;
using internal::HttpResult;
using internal::Target;
using internal::TransportError;
using internal::Verdict;

// The first byte position of "Content-Range: bytes START-END/TOTAL".
std::optional<int64_t> ContentRangeStart(std::string_view value) {
  if (!value.starts_with("bytes ")) return std::nullopt;
  value.remove_prefix(6);
  int64_t start = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), start);
  if (ec != std::errc() || p == value.data() + value.size() || *p != '-') return std::nullopt;
  return start;
}

constexpr int kMaxFreeResumes = 1000;

// Gives the digest of what reached the sink, so that a peer's bytes are
// judged before FetchBlob returns: the sink's own running hash when it
// keeps one (BlobSink::held_digest: each byte is then hashed once), else
// its own of the bytes written through it; notes a failure of the sink
// itself, which no other peer or host can mend.
// REQUIRES: `inner` holds no byte yet (offset() == 0).
class CheckingSink final : public BlobSink {
 public:
  explicit CheckingSink(BlobSink& inner)
      : inner_(inner), own_hash_(!inner.held_digest().has_value()) {}
  int64_t offset() const override { return inner_.offset(); }
  Status Write(std::span<const std::byte> data) override {
    if (own_hash_) hash_.Update(data);
    Status st = inner_.Write(data);
    if (!st) failed_ = true;
    return st;
  }
  Status Restart() override {
    hash_ = common::Sha256();
    Status st = inner_.Restart();
    if (!st) failed_ = true;
    return st;
  }
  std::optional<common::Digest> held_digest() const override {
    return own_hash_ ? hash_.Current() : inner_.held_digest();
  }
  bool failed() const { return failed_; }

 private:
  BlobSink& inner_;
  const bool own_hash_;  // the inner sink keeps no digest
  common::Sha256 hash_;
  bool failed_ = false;
};

// One request to one peer (registry/peers.h): no credentials, no
// redirects, no retries. On success the sink holds the verified blob.
Status FetchFromPeer(internal::Transport& transport, const ClientOptions& options,
                     const std::string& peer, const ImageRef& repo, const common::Digest& digest,
                     int64_t size, bool stored_only, CheckingSink& sink,
                     const std::atomic<bool>* cancel) {
  const std::string what = digest.str();
  HttpRequest req = internal::PeerRequest(options, peer, repo, "blobs", what, cancel);
  if (size >= 0)
    req.headers.push_back(std::string(kPeerBlobSizeHeader) + ": " + std::to_string(size));
  if (stored_only) req.headers.push_back(std::string(kPeerStoredOnlyHeader) + ": 1");
  req.on_head = [&](const internal::HttpResponse& head) -> Status {
    if (head.status != 200)
      return MakeError(Errc::kUnavailable, "answered HTTP " + std::to_string(head.status));
    if (auto len = head.ContentLength(); len && size >= 0 && *len != static_cast<uint64_t>(size))
      return MakeError(Errc::kDataLoss, "announced " + head.Header("content-length") +
                                            " bytes, the blob has " + std::to_string(size));
    return {};
  };
  req.on_body = [&](std::span<const std::byte> data) -> Status {
    if (size >= 0 && static_cast<int64_t>(data.size()) > size - sink.offset())
      return MakeError(Errc::kDataLoss,
                       "sent more than the blob's " + std::to_string(size) + " bytes");
    return sink.Write(data);
  };
  ASSIGN_OR_RETURN(HttpResult sent, transport.Perform(req));
  TRY(internal::PeerOutcome(sent, what));
  if (size >= 0 && sink.offset() != size)
    return MakeError(Errc::kDataLoss, "sent " + std::to_string(sink.offset()) + " of " +
                                          std::to_string(size) + " bytes");
  std::optional<common::Digest> got = sink.held_digest();
  if (got != digest)
    return MakeError(Errc::kDataLoss,
                     "sent bytes with digest " + (got ? got->str() : std::string("(none)")));
  return {};
}

// What one exchange did to the sink, beyond what HttpResult says.
struct StreamState {
  bool sink_failed = false;     // a sink error: no retry, no other host
  bool range_mismatch = false;  // 206 for another range than asked
  bool too_long = false;        // the server sent more than `size`
};

}  // namespace

Status RegistryClient::FetchBlob(const ImageRef& repo, const common::Digest& digest, int64_t size,
                                 BlobSink& sink, const std::atomic<bool>* cancel) {
  const std::string what = digest.str();
  auto cancelled = [&] { return cancel && cancel->load(std::memory_order_relaxed); };
  auto done = [&] { return size >= 0 && sink.offset() >= size; };
  if (cancelled()) return MakeError(Errc::kCancelled, "download of " + what + " cancelled");
  if (size >= 0 && sink.offset() > size)
    return MakeError(Errc::kInvalidArgument,
                     "fetch blob " + what + ": sink holds " + std::to_string(sink.offset()) +
                         " bytes, more than its size " + std::to_string(size));
  if (done()) return {};
  FetchCounters* const counters = impl_->options.counters;
  if (impl_->options.peers != nullptr && sink.offset() == 0) {
    PeerPlan plan = impl_->options.peers->HomesFor(digest);
    for (const std::string& peer : plan.peers) {
      CheckingSink checked(sink);
      Status st = FetchFromPeer(*impl_->transport, impl_->options, peer, repo, digest, size,
                                plan.stored_only, checked, cancel);
      if (st) {
        LOG(Debug) << "blob from peer" << common::Kv("digest", what) << common::Kv("peer", peer);
        if (counters != nullptr)
          counters->peer_bytes.fetch_add(sink.offset(), std::memory_order_relaxed);
        return {};
      }
      if (checked.failed() || st.error().code == Errc::kCancelled) return st;
      // A 404 is a peer saying it cannot help (a private image, a stored-only
      // ask): no warning.
      if (st.error().code == Errc::kNotFound) {
        LOG(Debug) << "peer cannot serve it, trying the next" << common::Kv("digest", what)
                   << common::Kv("peer", peer) << common::Kv("error", st.error().message);
      } else {
        // What it sent, if anything, is discarded (below): said here, so
        // that the sink's restart needs no reason of its own.
        LOG(Warn) << "peer failed, trying the next" << common::Kv("digest", what)
                  << common::Kv("peer", peer) << common::Kv("discarded", sink.offset())
                  << common::Kv("error", st.error().message);
      }
      // Nothing a dropped peer sent stays.
      if (sink.offset() > 0) TRY(checked.Restart());
    }
    if (!plan.peers.empty())
      LOG(Debug) << "no peer served the blob, asking the registry" << common::Kv("digest", what);
  }
  ASSIGN_OR_RETURN(std::vector<RegistryHost> hosts, impl_->HostsFor(repo.domain()));

  const internal::FallbackText text{
      .log_key = "digest",
      .shown = what,
      .no_host = "fetch blob " + what + ": no configured host may pull from " + repo.domain(),
      .not_found = "blob unknown: " + repo.name() + "@" + what};
  // A sink that fails ends the fallback (`final`): no other host can help.
  auto attempt = [&](const RegistryHost& host, bool& final) -> Status {
    Target target = impl_->MakeTarget(repo, host);
    const std::string url = host.base_url() + "/" + repo.path() + "/blobs/" + what;
    Backoff backoff = impl_->MakeBackoff();
    int failures = 0;
    int free_resumes = 0;
    int64_t best = sink.offset();
    Status outcome = MakeError(Errc::kInternal, "no attempt made");

    while (true) {
      if (cancelled()) return MakeError(Errc::kCancelled, "download of " + what + " cancelled");
      const int64_t start = sink.offset();
      StreamState state;
      HttpRequest req;
      req.url = url;
      req.cancel = cancel;
      impl_->ApplyLimits(req);
      if (start > 0) req.headers.push_back("Range: bytes=" + std::to_string(start) + "-");
      req.on_head = [&](const internal::HttpResponse& head) -> Status {
        // A body announced longer than the blob is refused before a byte
        // of it is read: a config or layer is no bigger than the
        // manifest says.
        if (auto len = head.ContentLength(); len && size >= 0) {
          const int64_t expected = head.status == 206 ? size - start : size;
          if (*len > static_cast<uint64_t>(expected))
            return MakeError(Errc::kDataLoss,
                             "blob " + what + " from " + host.host + " is longer than its size " +
                                 std::to_string(size) +
                                 " (Content-Length: " + head.Header("content-length") + ")");
        }
        if (head.status == 206) {
          auto first = ContentRangeStart(head.Header("content-range"));
          if (!first || *first != start) {
            state.range_mismatch = true;
            return MakeError(Errc::kDataLoss, "blob " + what + ": server sent range `" +
                                                  head.Header("content-range") +
                                                  "` for bytes=" + std::to_string(start) + "-");
          }
        } else if (start > 0) {
          // The server (or a CDN) ignored Range: everything comes again.
          LOG(Warn) << "server ignored the Range request; restarting the blob"
                    << common::Kv("digest", what) << common::Kv("host", host.host)
                    << common::Kv("offset", start);
          Status st = sink.Restart();
          if (!st) {
            state.sink_failed = true;
            return st;
          }
        }
        return {};
      };
      req.on_body = [&](std::span<const std::byte> data) -> Status {
        if (size >= 0) {
          int64_t room = size - sink.offset();
          if (static_cast<int64_t>(data.size()) > room) {
            if (room > 0) {
              Status st = sink.Write(data.first(static_cast<size_t>(room)));
              if (!st) {
                state.sink_failed = true;
                return st;
              }
            }
            state.too_long = true;
            return MakeError(Errc::kDataLoss, "blob " + what + " from " + host.host +
                                                  " is longer than its size " +
                                                  std::to_string(size));
          }
        }
        Status st = sink.Write(data);
        if (!st) state.sink_failed = true;
        if (st && counters != nullptr)
          (host.is_mirror ? counters->mirror_bytes : counters->upstream_bytes)
              .fetch_add(static_cast<int64_t>(data.size()), std::memory_order_relaxed);
        return st;
      };

      Result<HttpResult> sent = impl_->Send(target, req);
      if (!sent) {
        outcome = std::unexpected(std::move(sent.error()));
        break;
      }
      if (counters != nullptr && sent->error == TransportError::kStall)
        counters->stalls.fetch_add(1, std::memory_order_relaxed);
      if (state.sink_failed) {
        final = true;
        return std::unexpected(sent->hook_error ? std::move(*sent->hook_error)
                                                : common::Error{.code = Errc::kInternal,
                                                                .message = "blob sink failed"});
      }
      if (state.too_long) {
        // What this host sent is not the blob; the next host starts afresh.
        Status st = sink.Restart();
        if (!st) {
          final = true;
          return st;
        }
      }
      long status = sent->response.status;
      Failure f;
      if (sent->error == TransportError::kNone && (status == 200 || status == 206)) {
        if (size < 0 || sink.offset() == size) {
          outcome = {};
          break;
        }
        f.error = {.code = Errc::kDataLoss,
                   .message = "blob " + what + " from " + host.host + " ended at " +
                              std::to_string(sink.offset()) + " of " + std::to_string(size) +
                              " bytes"};
      } else if (sent->error == TransportError::kNone && status == 416 && start > 0) {
        // Our resume point is past what the server has: start over.
        Status st = sink.Restart();
        if (!st) {
          final = true;
          return st;
        }
        f.verdict = Verdict::kRetry;
        f.error = {.code = Errc::kUnavailable,
                   .message = "blob " + what + ": range from " + std::to_string(start) +
                              " not satisfiable"};
      } else if (state.range_mismatch) {
        Status st = sink.Restart();
        if (!st) {
          final = true;
          return st;
        }
        f.verdict = Verdict::kRetry;
        f.error = std::move(*sent->hook_error);
      } else {
        f = impl_->Classify(target, *sent, url, what);
        if (f.error.code == Errc::kNotFound)
          f.error.message = "blob unknown: " + repo.name() + "@" + what;
      }
      if (f.verdict != Verdict::kRetry || (host.is_mirror && f.mirror_skip)) {
        outcome = std::unexpected(std::move(f.error));
        break;
      }
      // A connection cut after new bytes arrived is free: a flaky
      // connection that keeps delivering must be allowed to finish. A stall
      // always counts, or a server that sends a few bytes per window would
      // hold the pull forever; so do free resumes past kMaxFreeResumes.
      bool progressed = sent->error == TransportError::kCut && sink.offset() > best &&
                        free_resumes < kMaxFreeResumes;
      best = std::max(best, sink.offset());
      if (progressed) {
        ++free_resumes;
      } else {
        ++failures;
      }
      if (failures >= impl_->options.max_attempts) {
        if (failures > 1)
          f.error.message += " (gave up after " + std::to_string(failures) + " attempts)";
        outcome = std::unexpected(std::move(f.error));
        break;
      }
      if (counters != nullptr) counters->retries.fetch_add(1, std::memory_order_relaxed);
      LOG(Warn) << "blob download failed, retrying" << common::Kv("digest", what)
                << common::Kv("host", host.host) << common::Kv("offset", sink.offset())
                << common::Kv("error", f.error.message);
      if (!progressed && !backoff.Wait(failures, f.retry_after, cancel))
        return MakeError(Errc::kCancelled, "download of " + what + " cancelled");
      if (done()) {
        outcome = {};
        break;
      }
    }
    return outcome;
  };
  return internal::TryEachHost<void>(
      hosts, [](const RegistryHost& host) { return host.can_pull; }, text, attempt);
}

}  // namespace registry
