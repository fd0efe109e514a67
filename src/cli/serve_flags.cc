#include "cli/serve_flags.h"

namespace cli {

CLI::App* AddServeCommand(CLI::App& app, ServeFlags& f) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve the Kubernetes CRI ImageService (runtime.v1) and gantry.v1.PullProgress over gRPC "
      "on a Unix socket, on the same store as the other commands");
  cmd->footer(
      "Image.size is the image's content in the store: its index or manifest, the platform "
      "manifest, the config and the compressed layers (layers shared with other images counted "
      "in each), as in `gantry images`.\n"
      "Pulls: callers of the same image share one pull; a pull that stays under --min-rate "
      "bytes/s for --min-rate-window seconds is cancelled (UNAVAILABLE) and its partial blobs "
      "kept for the next pull to resume. SIGTERM or SIGINT stops the server gracefully.\n"
      "Snapshotter door: with --snapshotter-listen, containerd can use gantry as a proxy "
      "snapshotter ([proxy_plugins.gantry] type = \"snapshot\", address = the socket): layers "
      "gantry has are not fetched again (the remote-snapshot protocol of `ctr-remote images "
      "rpull` and the CRI plugin), layers containerd unpacks become gantry's, and what "
      "containerd holds is never pruned.\n"
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
  AddRegistryFlags(cmd, f.registry);
  return cmd;
}

}  // namespace cli
