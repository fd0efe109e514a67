#pragma once
// The distribution-registry HTTP client: manifests and blobs over the OCI
// distribution API, with mirrors, auth, retries, resume and a rate floor.
//
//   ASSIGN_OR_RETURN(auto client, registry::RegistryClient::Create({
//       .hosts = {.config_dirs = {certs_dir}}, .lookup = store_lookup}));
//   ASSIGN_OR_RETURN(auto m, client->GetManifest(ref, ref.manifest_reference()));
//   TRY(client->FetchBlob(ref, layer_digest, layer_size, sink, &cancel));
//
// Hosts (see hosts.h) are tried in order: mirrors, then the upstream. A
// mirror that fails (connection error, TLS error, 5xx/429 after retries,
// stall, 401/403, 404) is skipped for the next host, not the whole list.
// NotFound from every host gives NotFound; otherwise the last host's error
// (the upstream's, normally). Errors that no other host can fix stop the
// walk at once: Cancelled, and a BlobSink error.
//
// Errors (Errc), all naming the reference or host:
//   NotFound          404 ("manifest unknown: 127.0.0.1:5000/fixture/app:nope")
//   Unauthenticated   401 after fresh credentials/token, or a token server refusal
//   PermissionDenied  403
//   Unavailable       429/5xx after max_attempts, connection refused, TLS
//                     failure (naming the CA files tried), a stalled transfer
//   DataLoss          manifest digest mismatch; a blob longer than `size`
//                     or shorter when the server says it is complete
//   ResourceExhausted a manifest over 4 MiB (refused at its Content-Length
//                     when it announces one), a token answer over 1 MiB
//   Unimplemented     a schema 1 manifest
//   Cancelled         `cancel` was set
//   PermissionDenied  also: a redirect to a link-local or cloud metadata
//                     address (unless allow_link_local_redirects)
//
// Cancellation: `cancel` is polled by every request a call makes (the
// manifest or blob, the token request a 401 leads to, redirects) while it
// waits for headers or body bytes, and by the waits between retries; once
// set, the call returns Cancelled within about a second.
//
// Credentials: `creds` (else `lookup(domain)`, called at most once per
// host and only after a 401) are sent to the upstream only. A mirror gets
// `lookup(mirror host)`, never the upstream's credentials. Authorization
// and configured registry headers are never sent to another host than the
// registry endpoint (e.g. a blob redirect to a CDN). A token realm gets
// them only under the rule in auth.h (docs/registry.md).
//
// Redirects (301/302/303/307/308, at most 10) may lead to any host, but
// not to a link-local or cloud metadata address (transport.h,
// IsForbiddenRedirectAddress), checked on the address the target's name
// resolves to, unless allow_link_local_redirects.
//
// Thread-safety: a RegistryClient is safe to use from many threads; one
// per pull. Connections, DNS and TLS sessions are reused across requests.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/env.h"
#include "common/error.h"
#include "registry/auth.h"
#include "registry/credentials_types.h"
#include "registry/hosts.h"
#include "registry/http_retry.h"
#include "registry/peers.h"
#include "registry/reference.h"

namespace registry {

// What a client's blob downloads did, for metrics (docs/metrics.md): the
// bytes the sink took, by kind of host, the retries and the transfers the
// rate floor ended. Many downloads add to one at once (atomics).
struct FetchCounters {
  std::atomic<int64_t> upstream_bytes{0};  // from the registry itself (or where it redirected)
  std::atomic<int64_t> mirror_bytes{0};    // from a mirror of hosts.toml
  std::atomic<int64_t> peer_bytes{0};      // from another gantry node (the fleet's peers)
  std::atomic<int64_t> retries{0};         // another attempt at a blob after a failed one
  std::atomic<int64_t> stalls{0};          // transfers ended by the rate floor
};

struct ClientOptions {
  HostsOptions hosts;
  std::optional<Credentials> creds;  // for the upstream; overrides `lookup`
  CredentialLookup lookup;           // may be empty
  // Per request, for 429/5xx/connection errors: backoff with jitter,
  // honouring Retry-After (seconds or HTTP date), capped.
  int max_attempts = 5;
  // Rate floor: a transfer below this for `min_rate_window` aborts (a
  // trickle of bytes does not keep it alive) and counts as a failed attempt.
  int64_t min_rate_bytes_per_sec = 1024;
  std::chrono::seconds min_rate_window{60};
  std::chrono::seconds connect_timeout{30};
  std::string user_agent;      // empty: "gantry/<version>"
  common::Env* env = nullptr;  // clock + sleep seam for tests (null = real)
  BackoffPolicy backoff;       // retry delays
  // Let redirects lead to link-local and cloud metadata addresses.
  bool allow_link_local_redirects = false;
  // Uploads: bytes per PATCH. A blob written through BlobSink::Write is
  // buffered a chunk at a time (one chunk in memory per blob in flight)
  // and, when no larger than a chunk, goes in the final PUT alone. A blob
  // handed over as a file (WriteFromFile: pushes from the store, a layout,
  // an archive) is streamed from the file, a chunk per PATCH, without a
  // buffer, and only when under 1 MiB goes in the PUT. 16 MiB: few
  // requests per layer, little memory for buffered uploads, and a cut
  // costs at most one chunk when the registry keeps none of a broken
  // PATCH. Tests set less.
  int64_t upload_chunk_bytes = 16 << 20;
  // Other gantry nodes asked for each blob before the hosts (registry/peers.h,
  // fleet/peer_set.h); null: none. Shared: it may outlive the client.
  std::shared_ptr<BlobPeers> peers{};
  // With `peers`: when every host fails to resolve a tag with Unavailable
  // (the registry and its mirrors down), ask the peers which manifest it
  // names (registry/peers.h, docs/fleet.md). A trust decision: a peer can
  // lie about which digest a tag names, never about bytes.
  bool peers_offline_tags = false;
  // Where FetchBlob counts what it did; null: not counted. REQUIRES: it
  // outlives the client.
  FetchCounters* counters = nullptr;
};

struct FetchedManifest {
  std::string media_type;  // from Content-Type, else the body's mediaType
  std::string body;
  // sha256 of body, checked against Docker-Content-Digest when present and
  // against the requested digest.
  common::Digest digest;
};

// Where FetchBlob writes. Implemented by the puller (an ingest file that
// hashes as it goes). Called from the thread that called FetchBlob.
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  // Bytes already held (the resume point).
  virtual int64_t offset() const = 0;
  virtual common::Status Write(std::span<const std::byte> data) = 0;
  // Drops everything (the server ignored Range); offset() is 0 after.
  virtual common::Status Restart() = 0;
  // The SHA-256 of the offset() bytes the sink holds, for a sink that
  // hashes what it is given anyway (a store ingest, which checks it before
  // the blob gets its name); nullopt, the default, for one that does not.
  // FetchBlob judges a peer's bytes by it instead of hashing them a second
  // time. Must be cheap (a copy of a running hash, not a re-read).
  [[nodiscard]] virtual std::optional<common::Digest> held_digest() const { return std::nullopt; }
  // Appends `size` bytes of the open file `fd` starting at `file_offset`:
  // how a source whose blob is a local file (the store, a layout, an
  // archive entry) hands it over, so that a sink able to send a file as it
  // is (a registry upload streams it as the request body) need not have it
  // copied through Write. The default preads it in 1 MiB pieces into
  // Write. `what` names the file in errors: DataLoss when it ends early
  // ("`what` is shorter than …"), read errors; Cancelled.
  virtual common::Status WriteFromFile(int fd, int64_t file_offset, int64_t size,
                                       const std::atomic<bool>* cancel, const std::string& what);
};

class RegistryClient {
 public:
  // Errors: InvalidArgument for bad options; Internal when libcurl cannot
  // start. Hosts are resolved lazily, per domain, on first use.
  [[nodiscard]] static common::Result<std::unique_ptr<RegistryClient>> Create(
      ClientOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // GET <prefix>/<path>/manifests/<reference> (a tag or a digest) with
  // Accept for OCI manifest+index and Docker schema2 manifest+list. Tags go
  // to hosts that can resolve, digests to hosts that can pull. Refuses
  // schema 1. At most 4 MiB. `cancel` is polled (→ Cancelled).
  // With ClientOptions::peers, a digest is first asked of its home peers
  // (stored-only), each answer checked against the digest; a peer that
  // fails is logged (warn, or debug for a 404) and skipped, never
  // returned. A tag goes to the hosts only, unless peers_offline_tags and
  // the hosts failed with Unavailable (registry/peers.h).
  [[nodiscard]] common::Result<FetchedManifest> GetManifest(
      const ImageRef& ref, std::string_view reference, const std::atomic<bool>* cancel = nullptr);

  // GET <prefix>/<path>/blobs/<digest> into `sink` from sink.offset(), with
  // "Range: bytes=<offset>-" when offset > 0. A 200 answer to a Range
  // request → sink.Restart(), then from 0. A connection cut midway →
  // retried from the new sink.offset(); it counts as an attempt only when
  // it brought no new bytes (up to 1000 such free resumes). A stall (below
  // the rate floor) always counts. Follows 301/302/303/307/308 itself. Stops at
  // `size` bytes (size < 0: unknown); an answer whose Content-Length is
  // longer than what is left of `size` is refused before its body is read
  // (DataLoss). Verifies nothing about the digest
  // (the sink does). `cancel` is polled (→ Cancelled).
  // With ClientOptions::peers, a blob of which the sink holds nothing is
  // first asked of the peers (registry/peers.h), each checked against
  // `digest` and `size` before the sink keeps its bytes; only when every
  // peer failed are the hosts tried. A peer's failure is logged (warn),
  // never returned.
  [[nodiscard]] common::Status FetchBlob(const ImageRef& repo, const common::Digest& digest,
                                         int64_t size, BlobSink& sink,
                                         const std::atomic<bool>* cancel = nullptr);

  // GET `url`, an http:// or https:// URL that is NOT a registry endpoint
  // (lookaside signature storage): a plain request with no credentials,
  // no registry headers and no client certificate; TLS as for a redirect
  // target (the CAs of a configured endpoint with that host, else the
  // system's); link-local and cloud metadata addresses refused unless
  // allow_link_local_redirects; the connect timeout and rate floor of
  // ClientOptions. Redirects are followed (at most 10), each target
  // checked alike. Connection errors, cuts, stalls, 429 and 5xx are
  // retried with backoff (max_attempts, Retry-After), as token requests
  // are. Returns the body of a 2xx answer (at most `max_body` bytes),
  // nullopt for 404.
  // Errors, one line that starts with the URL ("URL: HTTP 403") so that a
  // caller can put its action in front:
  //   InvalidArgument   not an http(s) URL
  //   Unauthenticated   401;  PermissionDenied 403, or a forbidden address
  //   FailedPrecondition another 4xx
  //   Unavailable       connection refused, TLS failure, 429/5xx, cuts and
  //                     stalls after max_attempts; too many redirects
  //   ResourceExhausted a body over `max_body` (refused at its
  //                     Content-Length when it announces one)
  //   Cancelled         `cancel` was set
  [[nodiscard]] common::Result<std::optional<std::string>> GetUrl(
      const std::string& url, size_t max_body, const std::atomic<bool>* cancel = nullptr);

  // --- Uploads (client_upload.cc): the push side of the distribution API.
  // They go to the registry itself, never to a mirror: the first host of
  // the domain with push capability (hosts.toml `capabilities`; the
  // upstream has it by default). Token auth asks for scope
  // "repository:<path>:pull,push". Credentials, TLS, redirects, the rate
  // floor and retries (429/5xx/connection errors with backoff) as for
  // pulls, except that a PATCH is not retried: its caller asks
  // UploadStatus what the registry holds and resumes from there.
  // Errors as for pulls; a 4xx refusal of an upload or manifest
  // (DIGEST_INVALID, SIZE_INVALID, MANIFEST_BLOB_UNKNOWN…) is
  // FailedPrecondition, except 400 DIGEST_INVALID/SIZE_INVALID: DataLoss.

  // An upload session: where the next request goes and how many bytes
  // the registry holds.
  struct UploadSession {
    std::string location;  // absolute URL, as the registry last named it
    int64_t offset = 0;
  };

  // HEAD <path>/blobs/<digest>: true for 200, false for 404.
  [[nodiscard]] common::Result<bool> BlobExists(const ImageRef& repo, const common::Digest& digest,
                                                const std::atomic<bool>* cancel = nullptr);

  // POST <path>/blobs/uploads/, with ?mount=<digest>&from=<mount_from>
  // when `mount_from` is not empty. nullopt when the registry mounted the
  // blob (201); else a session at offset 0 (202; a registry that does not
  // mount answers so too).
  [[nodiscard]] common::Result<std::optional<UploadSession>> StartUpload(
      const ImageRef& repo, const common::Digest& digest, std::string_view mount_from,
      const std::atomic<bool>* cancel = nullptr);

  // PATCH `data` with Content-Range at session.offset; on success the
  // session's location and offset advance. Not retried: Unavailable for a
  // cut, a stall or a 5xx/429 (after waiting the backoff for the latter),
  // after which the caller calls UploadStatus.
  [[nodiscard]] common::Status UploadChunk(const ImageRef& repo, UploadSession& session,
                                           std::string data,
                                           const std::atomic<bool>* cancel = nullptr);
  // The same with the body streamed from `size` bytes of the open file
  // `fd` at `file_offset` (pread; nothing buffered). A file shorter than
  // that, or unreadable, fails with DataLoss or the read error (the
  // registry may hold part of the chunk: UploadStatus tells).
  [[nodiscard]] common::Status UploadFileChunk(const ImageRef& repo, UploadSession& session, int fd,
                                               int64_t file_offset, int64_t size,
                                               const std::atomic<bool>* cancel = nullptr);

  // GET the session's location: sets session.offset from the registry's
  // Range header ("0-<last>"; none: 0). NotFound when the session is gone.
  [[nodiscard]] common::Status UploadStatus(const ImageRef& repo, UploadSession& session,
                                            const std::atomic<bool>* cancel = nullptr);

  // PUT <location>?digest=<digest> with `data` (the last bytes, may be
  // empty): the registry checks the digest and makes the blob present.
  [[nodiscard]] common::Status FinishUpload(const ImageRef& repo, const UploadSession& session,
                                            const common::Digest& digest, std::string data,
                                            const std::atomic<bool>* cancel = nullptr);

  // PUT <path>/manifests/<reference> (a tag or the body's digest) with
  // Content-Type `media_type`.
  [[nodiscard]] common::Status PutManifest(const ImageRef& repo, std::string_view reference,
                                           const std::string& media_type, std::string body,
                                           const std::atomic<bool>* cancel = nullptr);

  int64_t upload_chunk_bytes() const;

  // The endpoints used for `domain` (resolved once, then cached).
  [[nodiscard]] common::Result<std::vector<RegistryHost>> HostsFor(std::string_view domain);

 private:
  struct Impl;
  explicit RegistryClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

inline constexpr size_t kMaxManifestSize = 4u << 20;

}  // namespace registry
