#pragma once
// The registry door: the store served read-only as an OCI distribution
// registry (the pull side of the distribution spec) over plain HTTP, so
// that containerd (hosts.toml), CRI-O and podman (registries.conf) and
// skopeo pull what gantry already has without a copy. `gantry serve
// --registry-listen` runs it beside the CRI socket; docs/containerd.md
// shows the set-up.
//
//   ASSIGN_OR_RETURN(auto door, mirror::RegistryServer::Start({
//       .root = root, .listen = "127.0.0.1:5050"}));
//   LOG(Info) << "registry door serving" << common::Kv("address", door->address());
//   ...  // until SIGTERM
//   door->Shutdown();
//
// What it answers (every response carries
// Docker-Distribution-API-Version: registry/2.0):
//   GET /v2/                                      200 {}
//   GET|HEAD /v2/<name>/manifests/<tag|digest>    the stored manifest or index, with
//                                                 Content-Type (its stored media type),
//                                                 Docker-Content-Digest, Content-Length
//   GET|HEAD /v2/<name>/blobs/<digest>            the blob; one `Range: bytes=` range
//                                                 answers 206 with Content-Range, an
//                                                 unsatisfiable one 416
//   GET /v2/<name>/tags/list[?n=N&last=T]         the tags the store has for <name>
// Any other method: 405 UNSUPPORTED. Any other path: 404 UNSUPPORTED.
// Errors are the spec's JSON, {"errors":[{"code":…,"message":…}]}:
// NAME_INVALID and DIGEST_INVALID 400; NAME_UNKNOWN, MANIFEST_UNKNOWN and
// BLOB_UNKNOWN 404; RANGE_INVALID 416; UNKNOWN 500 (503 when the
// database stayed locked).
//
// Names. The store keys images by fully qualified reference
// ("docker.io/library/alpine:3.19"). With `?ns=HOST` (containerd adds it
// to every request to a mirror) a request for NAME means HOST/NAME,
// normalised as registry::ImageRef normalises what `gantry pull` records
// (ns=docker.io and NAME=alpine or library/alpine: docker.io/library/alpine).
// Without ns, NAME must begin with its registry host, as in
// /v2/docker.io/library/alpine/manifests/3.19 (CRI-O and podman reach
// this with a mirror location of "127.0.0.1:5050/docker.io"); a NAME
// that does not (library/alpine) answers 404 NAME_UNKNOWN rather than
// guessing a registry. A host with a port can only be named through ns
// (the name grammar has no ':' in repository components).
//
// Content by digest (a manifest or index the store has a blob row for,
// any verified blob) is served whatever the name, as distribution's
// mirrors serve content-addressed reads. Only committed blobs are read
// (content/blobs/, verified before they got their name), never an ingest
// file; paths are built from parsed digests only. What the store lacks
// answers 404 at once, so that a client with another host configured
// falls through to it (containerd moves on only on 404).
//
// `Accept`: a manifest whose media type the request's Accept headers do
// not include (nor */* or type/*) answers 404 MANIFEST_UNKNOWN, as
// distribution does for OCI manifests and indexes: the client then
// tries its next host instead of receiving a type it cannot read. A
// request without Accept gets the stored type.
//
// The store while serving: requests take no store lock and hold nothing
// between requests (see registry_server.cc), so prune and pulls run as
// usual; a blob opened for a response stays readable to its end even if
// a prune deletes it meanwhile.
//
// Pull-through (RegistryServerOptions::pull_through). A manifest request
// (by tag, or by digest) that the store cannot answer, for a name that
// says its registry, starts a pull of that reference through the
// process's one pull pipeline (image::PullThrough; `gantry serve` gives
// it the CRI server's pull manager, so a PullImage of the same image at
// the same time shares the download), and is answered as soon as the
// pull has stored that manifest, not when the pull ends. Blob requests
// for a blob that pull (or any pull of the process) is downloading are
// streamed from the partial download as its bytes arrive
// (image::PullFlights::Follow): 200 with Content-Length (the descriptor's
// size), a Range header ignored; the last byte goes out only once the
// blob is verified, and a download that fails cuts the connection, so a
// client never gets a body that looks complete and is not. Any failure of
// the pull before the manifest is stored (the registry has no such image,
// cannot be reached, refuses the credentials, or the manifest took longer
// than the wait) answers 404 MANIFEST_UNKNOWN and logs one line:
// containerd goes on to its next host only on a 404.
//
// Limits: request headers (with the URL) over 32 KiB are refused by the
// HTTP layer with a 4xx; idle connections close after `idle_timeout`;
// at most `max_connections` at once.
//
// Thread-safety: Start, Shutdown and the destructor from one thread;
// requests are served on the server's own threads.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "fleet/allow_list.h"
#include "httpd/http_server.h"
#include "image/blob_through.h"
#include "image/pull_flights.h"
#include "metrics/metrics.h"

namespace mirror {

// The door's address and its parsing are the HTTP servers' (httpd/http_server.h).
using httpd::ListenAddress;
using httpd::ParseListenAddress;

struct RegistryServerOptions {
  std::filesystem::path root;             // the store
  std::string listen = "127.0.0.1:5050";  // ParseListenAddress
  // Serve on an address that is not loopback. Without it such an address
  // is refused: the door has no authentication, and every image in the
  // store becomes readable by whoever reaches the port.
  bool allow_remote = false;
  unsigned max_connections = 256;  // each served on a thread of its own
  std::chrono::seconds idle_timeout{60};
  // Pull-through (`--registry-pull-through`): what the store lacks is
  // pulled through this, see "Pull-through" above; null: 404 at once.
  // REQUIRES: outlives the server.
  image::PullThrough* pull_through = nullptr;
  // Fleet peers (`--peers`, docs/fleet.md): a blob the store lacks, asked
  // for with a Gantry-Blob-Size header under a name that says its
  // registry, is fetched through this (image/blob_through.h) and streamed
  // as it arrives; any failure before its first byte answers 404
  // BLOB_UNKNOWN. Blobs in flight are followed as with pull_through. A
  // request with Gantry-Peer-Stored-Only: 1 (a home asking another home)
  // gets only a committed blob, else 404 at once; one for a manifest (a
  // peer asking for a manifest by digest, or for a tag while its registry
  // is down) is answered from the store alone, never pulled through.
  // Null: no such pull. REQUIRES: outlives the server.
  image::BlobThrough* blob_through = nullptr;
  // `--peers-allow`: requests from client addresses outside it are
  // answered 403 DENIED (before anything else is looked at); nullopt:
  // every client that reaches the address is served.
  std::optional<fleet::AllowList> allow{};
  // Where the door counts its requests (gantry_registry_door_requests_total
  // {method="GET|HEAD|other", code="<HTTP status>"}, docs/metrics.md);
  // null: not counted. REQUIRES: outlives the server.
  metrics::Registry* metrics = nullptr;
};

class RegistryServer {
 public:
  // Opens the store (creating its directories and database if missing,
  // as every gantry entry point does), binds, listens and starts serving.
  // Errors: InvalidArgument for a bad address; FailedPrecondition for a
  // non-loopback address without allow_remote; AlreadyExists when the
  // address is in use; PermissionDenied; store errors; Internal when
  // libmicrohttpd does not start.
  [[nodiscard]] static common::Result<std::unique_ptr<RegistryServer>> Start(
      RegistryServerOptions options);
  ~RegistryServer();  // Shutdown()
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // Stops accepting connections, lets those open finish for up to
  // `grace`, then closes them and stops. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2));

  // The bound address, with the port the kernel picked for port 0.
  const ListenAddress& address() const;

  struct Impl;

 private:
  explicit RegistryServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mirror
