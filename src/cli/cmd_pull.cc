// gantry pull [flags] REF | oci:DIR[:TAG]

#include <cstdio>
#include <iostream>

#include "archive/archive_source.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/publish_flags.h"
#include "cli/registry_flags.h"
#include "cli/store_open.h"
#include "cli/unpack_step.h"
#include "image/fetch.h"
#include "image/pull.h"
#include "image/pull_metrics.h"
#include "image/pull_progress.h"

namespace cli {
namespace {

struct PullFlags {
  std::string ref;
  std::string name;
  std::string platform;
  int max_concurrent = 3;
  int max_layers = image::kDefaultMaxLayers;
  bool quiet = false;
  bool json = false;
  bool no_unpack = false;
  bool attach = false;
  bool ignore_space_check = false;
  RegistryFlags registry;
  PeerFlags peers;
  ContainerdFlags containerd;
};

// --attach: follows the progress record of a pull someone else started.
int Attach(const GlobalOptions& global, const PullFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  // The record is kept under the name the pull records (an oci: source's
  // too).
  auto spec = registry::ParseSourceSpec(f.ref, f.name);
  if (!spec) return ReportError(spec.error());
  const registry::ImageRef* ref = &spec->ref;
  std::string failure;
  auto st = image::WatchPullProgress(
      global.root, ref->str(), {.wait = false}, [cancel] { return cancel->load(); },
      [&](const image::PullProgress& p) {
        if (f.json) {
          std::cout << image::ProgressJson(p).dump() << std::endl;
        } else if (!f.quiet) {
          std::cout << image::PullPhaseName(p.phase) << "  " << HumanBytes(p.current_bytes())
                    << " / " << HumanBytes(p.total_bytes()) << "  "
                    << HumanBytes(static_cast<int64_t>(p.bytes_per_second)) << "/s";
          // The ETA is the download's: none once only unpacking is left.
          if (p.eta_seconds() >= 0 && !p.terminal() && p.phase != image::PullPhase::kUnpacking)
            std::cout << "  ETA " << p.eta_seconds() << "s";
          int64_t unpacked = 0;
          for (const auto& l : p.layers) unpacked += l.unpacked;
          if (unpacked > 0 && p.total_bytes() > 0)
            std::cout << "  unpacked " << unpacked * 100 / p.total_bytes() << "%";
          std::cout << "  (" << p.layers.size() << " layers, pid " << p.pid << ")" << std::endl;
        }
        if (p.phase == image::PullPhase::kFailed) failure = p.error;
        return true;
      });
  if (!st) return ReportError(st.error().Wrap("pull --attach"));
  if (!failure.empty())
    return ReportError(
        common::Error{common::Errc::kAborted, 0, "pull " + ref->str() + ": " + failure});
  if (!f.json) std::cout << ref->str() << "\n";
  return kExitOk;
}

int Run(const GlobalOptions& global, const PullFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  // While it prints progress, a pull holds a lease, partial downloads and
  // an unpack. Killed by SIGPIPE in the middle of a write because the
  // reader went away (`gantry pull --json REF | head -c 300`), it would
  // leave them all for the next prune to sort out; containerd's daemon
  // ignores SIGPIPE for the same reason. Here the failed write cancels the
  // pull as SIGINT does: the leases are deleted, partial downloads kept
  // for the next pull, and the exit status is 141, what a shell reports
  // for a writer SIGPIPE killed (a pull that completes anyway exits 0).
  IgnoreSigpipe();
  auto spec = registry::ParseSourceSpec(f.ref, f.name);
  if (!spec) return ReportError(spec.error());
  // An archive's only image carries its name inside the archive.
  if ((spec->kind == registry::SourceSpec::Kind::kDockerArchive ||
       spec->kind == registry::SourceSpec::Kind::kOciArchive) &&
      f.name.empty() && spec->layout_tag.empty())
    if (auto named = archives::ArchiveImageName(*spec)) spec->ref = *named;
  image::PullImageOptions opts{.source = *spec};
  auto platform = PlatformFlag(f.platform);
  if (!platform) return ReportError(platform.error());
  opts.platform = *platform;
  auto client = MakeClientOptions(global, f.registry);
  if (!client) return ReportError(client.error());
  opts.client = std::move(*client);
  auto peers = StartPeers(f.peers);
  if (!peers) return ReportError(peers.error());
  opts.client.peers = std::move(*peers);
  opts.client.peers_offline_tags = f.peers.offline_tags;
  auto trust = LoadTrust(global);
  if (!trust) return ReportError(trust.error());
  opts.trust = std::move(*trust);
  opts.max_concurrent_downloads = f.max_concurrent;
  opts.max_layers = f.max_layers;
  opts.check_space = !f.ignore_space_check;
  opts.cancel = cancel;
  ProgressMode mode = f.quiet  ? ProgressMode::kQuiet
                      : f.json ? ProgressMode::kJson
                               : DetectProgressMode(stdout);
  ProgressPrinter printer(mode, stdout, OutputClosed);
  opts.on_event = [&](const image::PullEvent& e) { printer.OnEvent(e); };

  auto t = OpenPullTarget(global, !f.no_unpack);
  if (!t) return ReportError(t.error());
  opts.snapshotter = t->snapshotter.get();
  registry::FetchCounters fetched;
  opts.client.counters = &fetched;
  auto r = image::PullImage(t->store, opts);
  CountInStore(*t->store.metadata, image::CounterDeltas(image::TallyPull(r, fetched)));
  if (!r && OutputWasClosed()) {
    std::cerr << "gantry: " << r.error().message << " (stdout closed: broken pipe)\n";
    return kExitBrokenPipe;
  }
  if (!r) return ReportError(r.error());
  if (r->unpack && (mode == ProgressMode::kTty || mode == ProgressMode::kPlain))
    PrintUnpackSummary(stdout, r->pull.name, *t->snapshotter, *r->unpack);
  if (mode == ProgressMode::kQuiet)
    std::cout << r->pull.target.digest.str() << "\n";
  else if (mode != ProgressMode::kJson)
    std::cout << r->pull.name << "\n";
  if (!f.containerd.address.empty()) PublishAfterPull(global, r->pull.name, f.containerd);
  return kExitOk;
}

}  // namespace

void RegisterPull(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<PullFlags>();
  auto* cmd =
      app.add_subcommand("pull", "Pull an image from a registry or an OCI layout into the store");
  cmd->add_option("image", f->ref,
                  "Reference (busybox, host:port/ns/name:tag@sha256:...), oci:DIR[:TAG], "
                  "oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]")
      ->required();
  cmd->add_option("--name", f->name,
                  "oci:, oci-archive: and docker-archive: sources only: record the image under "
                  "NAME (a NAME that names no registry "
                  "goes under localhost/: app:v1 is localhost/app:v1)");
  cmd->footer(
      "An image pulled from oci:DIR[:TAG] is recorded under (first that applies): --name; TAG "
      "(or, without TAG, the only image's org.opencontainers.image.ref.name) when it is a "
      "reference rather than a plain tag (quay.io/org/app:v1 as it is, app:v1 as "
      "localhost/app:v1); else localhost/BASE:TAG, BASE being DIR's base name lower-cased with "
      "characters other than [a-z0-9] turned into '-', TAG `latest` when there is none. DIR "
      "ends at the first ':'. The name is printed when the pull ends. Every command that takes "
      "an image accepts that name, its short form (NAME:TAG, when no docker.io/library/NAME:TAG "
      "exists) and oci:DIR[:TAG] itself.");
  cmd->add_option("--platform", f->platform,
                  "os/arch[/variant] to pick from an index (default: this host)");
  cmd->add_option("--max-concurrent-downloads", f->max_concurrent, "Layers downloaded at once")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  AddMaxLayersFlag(cmd, f->max_layers);
  auto* q = cmd->add_flag("--quiet,-q", f->quiet, "Print only the image digest");
  auto* j =
      cmd->add_flag("--json", f->json,
                    "Print one JSON event per line (download and unpack; docs/pull-progress.md)");
  q->excludes(j);
  cmd->add_flag("--no-unpack", f->no_unpack, "Only download; do not unpack into snapshots");
  cmd->add_flag("--ignore-space-check", f->ignore_space_check,
                "Pull even when the store's file system looks too small: by default the pull "
                "stops before downloading when the blobs it still needs (and the unpacked size of "
                "layers whose manifest states it) do not fit");
  cmd->add_flag("--attach", f->attach,
                "Do not pull: follow the progress of a pull of IMAGE in progress (started by "
                "another gantry pull or by gantry serve) until it ends");
  AddRegistryFlags(cmd, f->registry);
  AddPeerFlags(cmd, f->peers, /*serving=*/false);
  AddContainerdFlags(cmd, f->containerd, ContainerdFlagsOf::kPull);
  cmd->callback(
      [&global, &exit_code, f] { exit_code = f->attach ? Attach(global, *f) : Run(global, *f); });
}

}  // namespace cli
