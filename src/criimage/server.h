#pragma once
// `gantry serve`: the CRI ImageService (runtime.v1), RuntimeService.Version
// and gantry.v1.PullProgress over gRPC on a Unix socket; with
// `snapshotter_listen`, containerd's Snapshots API too (the snapshotter
// door, ctrsnap/door.h).
//
//   ASSIGN_OR_RETURN(auto server, criimage::Server::Start({
//       .root = root, .listen = "unix:///run/gantry/gantry.sock"}));
//   ...  // until SIGTERM
//   server->Shutdown();
//
// The socket: its directory is created (0755) when missing; a socket file
// that nobody listens on (left by a crash) is replaced; one that answers
// is refused (AlreadyExists, "another gantry serve is listening on PATH");
// any other file there is refused (FailedPrecondition). It is created with
// `socket_mode` and, when set, `socket_group`, and removed on Shutdown.
// With `listen_fd` (systemd socket activation) the server accepts on that
// socket instead and leaves the file to systemd.
//
// Every RPC converts between proto and the library (criimage/catalog.h,
// criimage/pull_manager.h); errors map 1:1 onto gRPC codes (rpc_util.h).
//
// Thread-safety: Start and Shutdown from one thread; RPCs run on gRPC's
// threads.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "ctrpublish/background.h"
#include "ctrpublish/publish.h"
#include "image/fetch.h"
#include "image/pull_flights.h"
#include "metrics/metrics.h"
#include "registry/client.h"

namespace criimage {

struct ServeOptions {
  std::filesystem::path root;  // the store
  // "unix:///path/to/sock", "unix:/path" or a plain absolute path.
  std::string listen = "unix:///run/gantry/gantry.sock";
  mode_t socket_mode = 0660;
  std::string socket_group;        // name or numeric gid; "" keeps the process's
  registry::ClientOptions client;  // hosts, credential lookup (AuthConfig wins)
  int max_parallel_pulls = 3;
  int max_concurrent_downloads = 3;
  int max_layers = image::kDefaultMaxLayers;  // FetchOptions::max_layers
  int64_t min_rate_bytes_per_sec = 1024;
  std::chrono::milliseconds min_rate_window = std::chrono::seconds(60);
  std::vector<std::string> pinned;  // references or image ids reported pinned
  // Unpack pulled images into snapshots ("overlayfs", falling back to
  // native where overlay cannot be mounted, or "native"), as `gantry pull`.
  bool unpack = true;
  std::string snapshotter = "overlayfs";
  // Refuse a pull before its download when the store cannot hold it
  // (image/space.h); false: --ignore-space-check.
  bool check_space = true;
  // Also serve containerd's proxy-snapshotter API
  // (containerd.services.snapshots.v1.Snapshots, src/ctrsnap/door.h) on
  // this socket ("unix:///path"; same rules, mode and group as `listen`),
  // over the unpack snapshotter. The service is then reachable on both
  // sockets. "": not served.
  std::string snapshotter_listen;
  // Where pulls publish the manifests and blobs they bring in, for the
  // registry door's pull-through (image/pull_flights.h); null: nowhere.
  // REQUIRES: outlives the server.
  image::PullFlights* flights = nullptr;
  // The signature policy of every pull (CRI PullImage, the registry door's
  // pull-through): PullImageOptions::trust. A refusal answers kubelet
  // PERMISSION_DENIED with the policy's one line; null accepts every image.
  std::shared_ptr<const image::TrustPolicy> trust{};
  // An already listening Unix socket to serve on instead of creating
  // `listen` (systemd socket activation; mode and group are then the
  // socket unit's). -1: none.
  int listen_fd = -1;
  // Where the server adds its metrics (criimage/serve_metrics.h,
  // docs/metrics.md): pulls by result, their duration and bytes, every
  // RPC by method and code, the store's image and blob counts (read at
  // each scrape). null: none. REQUIRES: outlives the server, and is not
  // scraped after the server is destroyed.
  metrics::Registry* metrics = nullptr;
  // containerd to publish into (ctrpublish/publish.h), so that a kubelet
  // whose runtime endpoint is containerd runs what gantry pulled:
  // every image the server records (PullImage, the registry door's
  // pull-through) is published after it is recorded, and RemoveImage
  // deletes containerd's records of the image. PullImage answers after the
  // first attempt, whatever its outcome; a failed publication is retried
  // in the background (`publish_retry`) and its state kept in the image's
  // ctrpublish::kLabelPublished label. address "": no publication.
  ctrpublish::ContainerdTarget containerd{};
  ctrpublish::RetryOptions publish_retry{};
};

// The listening socket systemd passed (LISTEN_PID is this process and
// LISTEN_FDS >= 1: fd 3), or -1. Clears the variables so children do not
// inherit them.
int SystemdListenFd();

// The socket path `listen` names. Errors: InvalidArgument for another
// scheme or a relative path.
[[nodiscard]] common::Result<std::filesystem::path> SocketPath(const std::string& listen);

class Server {
 public:
  // Opens the store, prepares the socket and starts serving.
  // Errors: as above; InvalidArgument for a bad group; store errors.
  [[nodiscard]] static common::Result<std::unique_ptr<Server>> Start(ServeOptions options);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Cancels pulls in flight, lets RPCs in progress end (up to `grace`, then
  // cancels them), removes the socket. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2));
  const std::filesystem::path& socket_path() const;
  // The snapshotter door's socket; empty when not served.
  const std::filesystem::path& snapshotter_socket_path() const;

  // Pulls `ref` as a PullImage without AuthConfig does, through the same
  // single-flight pull manager (a PullImage of the same image at the same
  // time shares the one download), and returns what the reference
  // resolved to. For the registry door's pull-through. Errors: the pull's;
  // Cancelled once Shutdown has begun.
  [[nodiscard]] common::Result<oci::Descriptor> Pull(const registry::ImageRef& ref);
  // The same for a pre-pull list's entry (image/prepull.h): `platform`
  // unset is the host's; returns the whole pull result.
  [[nodiscard]] common::Result<image::FetchResult> PullForList(
      const registry::ImageRef& ref, const std::optional<oci::Platform>& platform);

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace criimage
