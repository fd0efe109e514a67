// gantry-serve: the CRI ImageService (runtime.v1) and gantry.v1.PullProgress
// over gRPC on a Unix socket, and with --registry-listen the registry door
// (mirror/registry_server.h) in the same process. `gantry serve …` execs it
// with its own command line, so it takes gantry's: the global options, then
// `serve` and its flags (cli/serve_flags.h). It is the only executable that
// links gRPC or an HTTP server.
//
// With --metrics-listen, Prometheus metrics (metrics/metrics_server.h)
// over HTTP too, from a registry the CRI server adds its metrics to.
//
// The CRI socket is served whether or not the door is: `gantry serve` is
// the CRI server, and the door is added to it (one process, one
// lifecycle for systemd). A node that wants only the
// mirror ignores the socket; making it optional would be a second mode of
// the command to document and test for no gain in what runs.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "cli/app.h"
#include "cli/publish_flags.h"
#include "cli/registry_flags.h"
#include "cli/serve_flags.h"
#include "common/log.h"
#include "common/time_text.h"
#include "criimage/server.h"
#include "ctrpublish/publish.h"
#include "fleet/allow_list.h"
#include "image/blob_through.h"
#include "image/prepull.h"
#include "image/pull_flights.h"
#include "metrics/metrics_server.h"
#include "mirror/registry_server.h"
#include "store/content_store.h"

namespace {

// `text`, the value of `flag` (a HOST:PORT the HTTP server `who` will
// serve `what` on), checked: kExitOk when empty or fine, else the exit
// code after the error is printed. A non-loopback address needs
// `<flag's prefix>-allow-remote` (`allow_remote`).
int CheckListenFlag(const std::string& flag, const std::string& text, bool allow_remote,
                    const std::string& who, const std::string& what) {
  if (text.empty()) return cli::kExitOk;
  auto address = httpd::ParseListenAddress(text);
  if (!address) return cli::ReportError(address.error().Wrap(flag));
  if (!address->loopback && !allow_remote) {
    const std::string allow = flag.substr(0, flag.rfind('-')) + "-allow-remote";
    std::cerr << "gantry: " << flag << " `" << text << "`: not a loopback address; " << who
              << " has no authentication, so serving " << what << " to other machines needs "
              << allow << "\n";
    return cli::kExitUsage;
  }
  return cli::kExitOk;
}

// --prepull: the list's rounds on a thread of their own, each image pulled
// through the CRI server's pull manager, each round's results logged.
common::Result<std::unique_ptr<image::PrepullWatcher>> StartPrepull(
    const std::filesystem::path& root, const cli::ServeFlags& f, criimage::Server* server) {
  // RefreshIntervalCheck accepted the text at parse time.
  std::chrono::seconds refresh{0};
  if (!f.prepull_refresh.empty())
    refresh = common::ParseDuration(f.prepull_refresh).value_or(std::chrono::seconds(0));
  return image::PrepullWatcher::Start(
      root, {.list = f.prepull,
             .refresh = refresh,
             .run = {.jobs = f.prepull_jobs,
                     .pull =
                         [server](const image::PrepullEntry& e) {
                           return server->PullForList(*e.ref, e.platform);
                         }},
             .on_round = [](const common::Result<std::vector<image::PrepullResult>>& r) {
               if (!r) {
                 LOG(Warn) << r.error().message;
                 return;
               }
               for (const auto& i : *r)
                 LOG(Info) << "prepull" << common::Kv("ref", i.ref)
                           << common::Kv("state", image::PrepullStateName(i.state))
                           << common::Kv("platform", i.platform) << common::Kv("digest", i.digest)
                           << common::Kv("error", i.error);
             }});
}

int Run(const cli::GlobalOptions& global, const cli::ServeFlags& f) {
  // SIGTERM and SIGINT are taken by sigwait below: blocked first, before
  // the server's threads start (so that none of them receives them) and
  // before the slower set-up steps (so that a stop sent while the server
  // starts waits for it instead of killing it half set up).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  mode_t mode = 0;
  try {
    size_t used = 0;
    mode = static_cast<mode_t>(std::stoul(f.socket_mode, &used, 8));
    if (used != f.socket_mode.size() || mode > 07777) throw std::invalid_argument("mode");
  } catch (const std::exception&) {
    std::cerr << "gantry: --socket-mode `" << f.socket_mode << "`: not an octal mode\n";
    return cli::kExitUsage;
  }
  // The HTTP addresses are checked before anything starts, with the flags' own names.
  if (int rc = CheckListenFlag("--registry-listen", f.registry_listen, f.registry_allow_remote,
                               "the door", "the store");
      rc != cli::kExitOk)
    return rc;
  if (int rc = CheckListenFlag("--metrics-listen", f.metrics_listen, f.metrics_allow_remote,
                               "the endpoint", "it");
      rc != cli::kExitOk)
    return rc;
  if (!f.peers.source.empty() && f.registry_listen.empty()) {
    std::cerr << "gantry: --peers needs --registry-listen: the registry door is what the peers "
                 "fetch from\n";
    return cli::kExitUsage;
  }
  std::optional<fleet::AllowList> allow;
  if (!f.peers_allow.empty()) {
    auto parsed = fleet::AllowList::Parse(f.peers_allow);
    if (!parsed) return cli::ReportError(parsed.error().Wrap("--peers-allow"));
    allow = std::move(*parsed);
  }
  auto client = cli::MakeClientOptions(global, f.registry);
  if (!client) return cli::ReportError(client.error());
  auto peers = cli::StartPeers(f.peers);
  if (!peers) return cli::ReportError(peers.error());
  // What the door's pull for a peer uses: this node's credentials only
  // when the operator chose to share them (docs/fleet.md, trust model).
  registry::ClientOptions for_peers = *client;
  if (!f.peers_share_private) {
    for_peers.creds.reset();
    for_peers.lookup = {};
  }
  client->peers = *peers;
  client->peers_offline_tags = f.peers.offline_tags;
  auto trust = cli::LoadTrust(global);
  if (!trust) return cli::ReportError(trust.error().Wrap("serve"));
  // The pulls' in-flight table, which the door's pull-through reads.
  image::PullFlights flights;
  // Declared before the server, which adds its metrics to it; scraped only
  // while the server lives (the endpoint stops first).
  metrics::Registry registry;
  const bool with_metrics = !f.metrics_listen.empty();
  if (with_metrics) {
    registry
        .AddGauge("gantry_process_start_time_seconds",
                  "Start time of the gantry-serve process, in seconds since the Unix epoch.", {})
        .With({})
        .Set(metrics::UnixSecondsNow());
    registry.AddGauge("gantry_build_info", "Always 1; `version` is gantry's.", {"version"})
        .With({cli::Version()})
        .Set(1);
  }
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
      .snapshotter_listen = f.snapshotter_listen,
      .flights = f.registry_pull_through || *peers ? &flights : nullptr,
      .trust = std::move(*trust),
      .listen_fd = criimage::SystemdListenFd(),
      .metrics = with_metrics ? &registry : nullptr,
      .containerd = {.address = f.containerd.address,
                     .ns = f.containerd.ns,
                     .snapshotter = f.containerd.snapshotter,
                     // PullImage waits for the first attempt: bounded tighter.
                     .timeout = std::chrono::seconds(10)},
      .publish_retry = {},
  });
  if (!server) return cli::ReportError(server.error().Wrap("serve"));
  // Pull-through pulls go through the CRI server's pull manager: the same
  // options and one flight with PullImage. Declared after the server and
  // before the door: destroyed after the door stops, once the server's
  // Shutdown has cancelled the pulls it waits for.
  std::unique_ptr<image::PullThrough> through;
  if (f.registry_pull_through) {
    criimage::Server* cri = server->get();
    through = std::make_unique<image::PullThrough>(
        flights, [cri](const registry::ImageRef& ref) { return cri->Pull(ref); });
  }
  // Declared before the door: destroyed (its downloads cancelled) after
  // the door stops.
  std::optional<store::ContentStore> content;
  std::unique_ptr<image::BlobThrough> blob_through;
  if (*peers) {
    auto opened = store::ContentStore::Open(global.root);
    if (!opened) {
      (*server)->Shutdown();
      return cli::ReportError(opened.error().Wrap("serve: peers"));
    }
    content = std::move(*opened);
    blob_through = std::make_unique<image::BlobThrough>(*content, flights, std::move(for_peers));
  }
  std::unique_ptr<mirror::RegistryServer> door;
  if (!f.registry_listen.empty()) {
    auto started = mirror::RegistryServer::Start({
        .root = global.root,
        .listen = f.registry_listen,
        .allow_remote = f.registry_allow_remote,
        .max_connections = 256,
        .idle_timeout = std::chrono::seconds(60),
        .pull_through = through.get(),
        .blob_through = blob_through.get(),
        .allow = allow,
        .metrics = with_metrics ? &registry : nullptr,
    });
    if (!started) {
      (*server)->Shutdown();
      return cli::ReportError(started.error().Wrap("serve: registry door"));
    }
    door = std::move(*started);
    if (*peers && f.peers.self.empty()) {
      // A door on every address (0.0.0.0, ::) is not how the peers name
      // this node: it may then ask itself, which costs a request, not a
      // wrong byte.
      const std::string& host = door->address().host;
      if (host == "0.0.0.0" || host == "::")
        LOG(Warn) << "peers: this node's own address is unknown; give --peers-self";
      else if (auto st = (*peers)->SetSelf(door->address().str()); !st)
        LOG(Warn) << "peers: this node's own address is unknown; give --peers-self"
                  << common::Kv("error", st.error().message);
    }
    if (*peers)
      LOG(Info) << "peers" << common::Kv("source", f.peers.source)
                << common::Kv("count", (*peers)->Peers().size())
                << common::Kv("homes", f.peers.homes);
  }
  std::unique_ptr<metrics::MetricsServer> metrics_http;
  if (with_metrics) {
    auto started = metrics::MetricsServer::Start(
        registry, {.listen = f.metrics_listen, .allow_remote = f.metrics_allow_remote});
    if (!started) {
      if (door) door->Shutdown();
      (*server)->Shutdown();
      return cli::ReportError(started.error().Wrap("serve: metrics"));
    }
    metrics_http = std::move(*started);
    LOG(Info) << "metrics serving" << common::Kv("address", metrics_http->address().str());
  }
  std::unique_ptr<image::PrepullWatcher> prepull;
  if (!f.prepull.empty()) {
    auto started = StartPrepull(global.root, f, server->get());
    if (!started) {
      if (metrics_http) metrics_http->Shutdown();
      if (door) door->Shutdown();
      (*server)->Shutdown();
      return cli::ReportError(started.error().Wrap("serve: prepull"));
    }
    prepull = std::move(*started);
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG(Info) << "stopping" << common::Kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (prepull) prepull->RequestStop();
  if (metrics_http) metrics_http->Shutdown();
  if (door) door->Shutdown();
  (*server)->Shutdown();
  if (prepull) prepull->Stop();
  return cli::kExitOk;
}

// `publish NAME…`: NAMEs are exact record names (`gantry publish` resolved
// what the user typed). Each is published in turn; the first failure ends
// the run. Each outcome is recorded in the image's
// ctrpublish::kLabelPublished label. Nothing goes to stdout, which is the calling command's
// (`gantry pull -q` prints only a digest there).
int Publish(const cli::GlobalOptions& global, const std::vector<std::string>& names,
            const cli::ContainerdFlags& f) {
  auto content = store::ContentStore::Open(global.root);
  if (!content) return cli::ReportError(content.error().Wrap("publish: open store"));
  auto db = store::MetadataDb::Open(global.root);
  if (!db) return cli::ReportError(db.error().Wrap("publish: open store"));
  const ctrpublish::PublishStore st{.content = &*content, .metadata = &*db};
  const ctrpublish::ContainerdTarget target{
      .address = f.address, .ns = f.ns, .snapshotter = f.snapshotter};
  for (const std::string& name : names) {
    auto r = ctrpublish::Publish(st, name, target);
    // The outcome is kept beside the record for `gantry images`; a record
    // that cannot be labelled is not worth failing the publication for.
    const std::string state = r ? "yes" : "failed: " + r.error().message;
    if (auto l = db->SetImageLabel(name, ctrpublish::kLabelPublished, state); !l)
      LOG(Warn) << "record publication state" << common::Kv("image", name)
                << common::Kv("error", l.error().message);
    if (!r) return cli::ReportError(r.error());
    LOG(Info) << "published" << common::Kv("image", name) << common::Kv("namespace", f.ns)
              << common::Kv("blobs_written", r->blobs_written)
              << common::Kv("chains_adopted", r->chains_adopted)
              << common::Kv("images_created", r->images_created)
              << common::Kv("images_updated", r->images_updated);
  }
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gantry-serve: the server of `gantry serve` (run it as `gantry serve`)",
               "gantry-serve"};
  app.require_subcommand(1, 1);
  app.footer(cli::ExitCodeHelp());

  cli::GlobalOptions global;
  cli::AddGlobalOptions(app, global);
  cli::ServeFlags flags;
  int exit_code = cli::kExitOk;
  cli::AddServeCommand(app, flags)->callback([&] { exit_code = Run(global, flags); });
  std::vector<std::string> publish_names;
  cli::ContainerdFlags publish_flags;
  CLI::App* publish =
      app.add_subcommand("publish", "Publish store images (exact names) into containerd");
  publish->add_option("names", publish_names, "Image record names")->required();
  cli::AddContainerdFlags(publish, publish_flags, cli::ContainerdFlagsOf::kPublish);
  publish->callback([&] { exit_code = Publish(global, publish_names, publish_flags); });
  app.parse_complete_callback([&] { cli::ApplyGlobalOptions(global, /*raise_open_files=*/true); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : cli::kExitUsage;
  }
  return exit_code;
}
