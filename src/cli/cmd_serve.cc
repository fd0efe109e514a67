// gantry serve: the CRI ImageService over gRPC on a Unix socket.

#include <signal.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/registry_flags.h"
#include "common/log.h"
#include "criimage/server.h"

namespace cli {
namespace {

struct ServeFlags {
  std::string listen = "unix:///run/gantry/gantry.sock";
  std::string socket_mode = "0660";
  std::string socket_group;
  int max_parallel_pulls = 3;
  int max_concurrent = 3;
  int max_layers = registry::kDefaultMaxLayers;
  std::vector<std::string> pinned;
  bool no_unpack = false;
  bool ignore_space_check = false;
  RegistryFlags registry;
};

int Run(const GlobalOptions& global, const ServeFlags& f) {
  mode_t mode = 0;
  try {
    size_t used = 0;
    mode = static_cast<mode_t>(std::stoul(f.socket_mode, &used, 8));
    if (used != f.socket_mode.size() || mode > 07777) throw std::invalid_argument("mode");
  } catch (const std::exception&) {
    std::cerr << "gantry: --socket-mode `" << f.socket_mode << "`: not an octal mode\n";
    return kExitUsage;
  }
  auto client = MakeClientOptions(global, f.registry);
  if (!client) return ReportError(client.error());
  // SIGTERM and SIGINT are taken by sigwait below: blocked before the
  // server's threads start, so that none of them receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto server = criimage::Server::Start({
      .root = global.root,
      .listen = f.listen,
      .socket_mode = mode,
      .socket_group = f.socket_group,
      .client = std::move(*client),
      .max_parallel_pulls = f.max_parallel_pulls,
      .max_concurrent_downloads = f.max_concurrent,
      .max_layers = f.max_layers,
      .min_rate_bytes_per_sec = f.registry.min_rate,
      .min_rate_window = std::chrono::seconds(f.registry.min_rate_window_s),
      .pinned = f.pinned,
      .unpack = !f.no_unpack,
      .snapshotter = global.snapshotter,
      .check_space = !f.ignore_space_check,
      .listen_fd = criimage::SystemdListenFd(),
  });
  if (!server) return ReportError(server.error().Wrap("serve"));
  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG(Info) << "stopping" << common::Kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return kExitOk;
}

}  // namespace

void RegisterServe(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<ServeFlags>();
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
      "kept for the next pull to resume. SIGTERM or SIGINT stops the server gracefully.");
  cmd->add_option("--listen", f->listen, "Socket to serve on (unix:///path)")
      ->default_str(f->listen);
  cmd->add_option("--socket-mode", f->socket_mode, "Permissions of the socket (octal)")
      ->default_str(f->socket_mode);
  cmd->add_option("--socket-group", f->socket_group, "Group owning the socket (name or gid)");
  cmd->add_option("--max-parallel-pulls", f->max_parallel_pulls,
                  "Different images pulled at once (more wait their turn)")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-concurrent-downloads", f->max_concurrent, "Layers downloaded at once per pull")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  AddMaxLayersFlag(cmd, f->max_layers);
  cmd->add_option("--pinned", f->pinned,
                  "Reference or image id reported as pinned (kubelet's GC skips it); repeatable");
  cmd->add_flag("--no-unpack", f->no_unpack,
                "Only download pulled images; do not unpack them into snapshots (--snapshotter)");
  cmd->add_flag("--ignore-space-check", f->ignore_space_check,
                "Pull even when the store's file system looks too small for the image (by default "
                "a pull that cannot fit fails with RESOURCE_EXHAUSTED before downloading)");
  AddRegistryFlags(cmd, f->registry);
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
