#include "cli/serve_flags.h"

namespace cli {

CLI::App* AddServeCommand(CLI::App& app, ServeFlags& f) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve the Kubernetes CRI ImageService (runtime.v1) and gantry.v1.PullProgress over gRPC "
      "on a Unix socket, on the same store as the other commands; with --registry-listen, also "
      "serve that store read-only as an OCI distribution registry over HTTP (a node-local pull "
      "mirror for containerd, CRI-O, podman and skopeo)");
  cmd->footer(
      "Image.size is the image's content in the store: its index or manifest, the platform "
      "manifest, the config and the compressed layers (layers shared with other images counted "
      "in each), as in `gantry images`.\n"
      "Pulls: callers of the same image share one pull; a pull that stays under --min-rate "
      "bytes/s for --min-rate-window seconds is cancelled (UNAVAILABLE) and its partial blobs "
      "kept for the next pull to resume. SIGTERM or SIGINT stops the server gracefully.\n"
      "The registry door (--registry-listen HOST:PORT, plain HTTP, no authentication): GET and "
      "HEAD of /v2/, /v2/NAME/manifests/TAG|DIGEST, /v2/NAME/blobs/DIGEST (Range honoured) and "
      "/v2/NAME/tags/list; other methods are refused (405). NAME is the image's full name "
      "(docker.io/library/alpine), or its path when the client sends ?ns=HOST as containerd does "
      "for mirrors; an image not in the store answers 404 at once, so that the client falls "
      "through to its next host, unless --registry-pull-through is given: then a manifest the "
      "store lacks (by tag or digest, for a NAME that says its registry) is pulled with the "
      "same pipeline, options and single flight as PullImage, answered once the manifest is "
      "stored, and its blobs are streamed to clients as they download (a second client of a "
      "blob follows the same download); a pull that fails answers 404. HOST must be a loopback "
      "address unless --registry-allow-remote "
      "is given; port 0 picks a free port, logged as `registry door serving address=…`. The CRI "
      "socket (--listen) is served either way. See docs/containerd.md.\n"
      "Fleet peers (--peers SOURCE, needs --registry-listen): every pull of this server asks "
      "each blob's home peers (rendezvous hashing over the peer list) before the registry, "
      "and the door serves the peers: a blob the store lacks, asked for by a peer, is pulled "
      "from the registry once (anonymously unless --peers-share-private) and streamed as it "
      "arrives; --peers-allow limits the door to the peers' addresses. Every byte from a peer "
      "is verified against its digest; a peer that fails is skipped. See docs/fleet.md.\n"
      "Snapshotter door: with --snapshotter-listen, containerd can use gantry as a proxy "
      "snapshotter ([proxy_plugins.gantry] type = \"snapshot\", address = the socket): layers "
      "gantry has are not fetched again (the remote-snapshot protocol of `ctr-remote images "
      "rpull` and the CRI plugin), layers containerd unpacks become gantry's, and what "
      "containerd holds is never pruned.\n"
      "Metrics: with --metrics-listen HOST:PORT, GET /metrics answers Prometheus's text format "
      "(0.0.4): pulls by result, pull duration, bytes by source (upstream, mirror, peer, "
      "present), blob retries and rate-floor stalls, unpacked bytes and layers, GC runs and "
      "bytes freed, CRI requests by method and code with their latency, the registry door's "
      "requests, the store's images, blobs, snapshots and disk usage, start time and build. "
      "`gantry pull` and `gantry prune` on the same store are counted too (they add to counters "
      "in the store, read at each scrape); docs/metrics.md lists every metric. "
      "Same address rules as the registry door (loopback unless --metrics-allow-remote; port 0 "
      "picks a free port, logged as `metrics serving address=…`).\n"
      "Pre-pull: with --prepull FILE, the images FILE lists (the format of `gantry prepull`) are "
      "pulled at start, --prepull-jobs at a time, through the same pull manager as PullImage, "
      "pinned (ListImages and ImageStatus report them pinned: kubelet's image GC skips them; "
      "`gantry prune --all` keeps them), and pulled again whenever FILE changes (checked every "
      "2 s, following symlinks, so a Kubernetes ConfigMap volume's update is seen) and every "
      "--prepull-refresh if given (tags re-resolved). Each image's result is logged "
      "(`prepull` lines). An image taken off the list is unpinned. See docs/prepull.md.\n"
      "containerd: with --containerd, the images the server records are published into "
      "containerd (as `gantry publish` does) so that kubelet can use gantry as its image "
      "service (--image-service-endpoint) and containerd as its runtime; see docs/kubelet.md.\n"
      "The server is the gantry-serve executable installed beside gantry; `gantry serve` runs "
      "it with the same command line.");
  cmd->add_option("--listen", f.listen, "Socket to serve on (unix:///path)")->default_str(f.listen);
  cmd->add_option("--snapshotter-listen", f.snapshotter_listen,
                  "Also serve containerd's snapshots API (a proxy snapshotter over gantry's "
                  "snapshots) on this socket (unix:///path); see docs/containerd.md");
  cmd->add_option("--socket-mode", f.socket_mode, "Permissions of the sockets (octal)")
      ->default_str(f.socket_mode);
  cmd->add_option("--socket-group", f.socket_group, "Group owning the sockets (name or gid)");
  cmd->add_option("--max-parallel-pulls", f.max_parallel_pulls,
                  "Different images pulled at once (more wait their turn)")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-concurrent-downloads", f.max_concurrent,
                  "Layers downloaded at once per pull")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  AddMaxLayersFlag(cmd, f.max_layers);
  cmd->add_option("--pinned", f.pinned,
                  "Reference or image id reported as pinned (kubelet's GC skips it); repeatable");
  cmd->add_flag("--no-unpack", f.no_unpack,
                "Only download pulled images; do not unpack them into snapshots (--snapshotter)");
  cmd->add_flag("--ignore-space-check", f.ignore_space_check,
                "Pull even when the store's file system looks too small for the image (by default "
                "a pull that cannot fit fails with RESOURCE_EXHAUSTED before downloading)");
  auto* door = cmd->add_option(
      "--registry-listen", f.registry_listen,
      "Also serve the store read-only as an OCI distribution registry on HOST:PORT (plain HTTP; "
      "HOST an IP address, [IPv6] or localhost; loopback only unless --registry-allow-remote)");
  cmd->add_flag("--registry-allow-remote", f.registry_allow_remote,
                "Allow --registry-listen on an address other than loopback: every image in the "
                "store is then readable, without authentication, by whoever reaches that port")
      ->needs(door);
  cmd->add_flag("--registry-pull-through", f.registry_pull_through,
                "Pull an image the store lacks when the registry door is asked for it (as "
                "PullImage would), and stream its blobs to the client as they arrive, instead of "
                "answering 404")
      ->needs(door);
  auto* metrics = cmd->add_option(
      "--metrics-listen", f.metrics_listen,
      "Also serve Prometheus metrics (GET /metrics, text format 0.0.4) on HOST:PORT (plain "
      "HTTP; loopback only unless --metrics-allow-remote; e.g. 127.0.0.1:9321)");
  cmd->add_flag("--metrics-allow-remote", f.metrics_allow_remote,
                "Allow --metrics-listen on an address other than loopback (the endpoint has no "
                "authentication)")
      ->needs(metrics);
  auto* prepull = cmd->add_option(
      "--prepull", f.prepull,
      "Keep the images of this list (see `gantry prepull`) pulled and pinned; re-read when it "
      "changes");
  cmd->add_option("--prepull-refresh", f.prepull_refresh,
                  "Pull the --prepull list again this often (90s, 15m, 1h30m, 1d), re-resolving "
                  "tags; default: only when the file changes")
      ->check(RefreshIntervalCheck())
      ->needs(prepull);
  cmd->add_option("--prepull-jobs", f.prepull_jobs, "Images of the --prepull list pulled at once")
      ->default_str("2")
      ->check(CLI::Range(1, 64))
      ->needs(prepull);
  AddRegistryFlags(cmd, f.registry);
  // kubelet with split endpoints (docs/kubelet.md).
  AddContainerdFlags(cmd, f.containerd, ContainerdFlagsOf::kServe);
  // A publication adopts the image's unpacked chains: without them there
  // is nothing containerd could run.
  cmd->get_option("--no-unpack")->excludes(cmd->get_option("--containerd"));
  AddPeerFlags(cmd, f.peers, /*serving=*/true);
  cmd->add_option("--peers-allow", f.peers_allow,
                  "Serve the registry door only to client addresses in these CIDR blocks "
                  "(comma list, e.g. 10.0.0.0/8,127.0.0.1); others get 403")
      ->needs(door);
  cmd->add_flag("--peers-share-private", f.peers_share_private,
                "When a peer asks for a blob this node must pull from the registry, use this "
                "node's own registry credentials (a trust decision: every client of the door "
                "then reads what they can read; docs/fleet.md). Without it such a pull is "
                "anonymous and a private blob answers 404, so the peer fetches it itself")
      ->needs(door);
  return cmd;
}

}  // namespace cli
