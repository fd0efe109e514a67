// gantry prune [--all] [--dry-run] [--json]: garbage collection (upkeep/gc.h).

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/store_open.h"
#include "upkeep/gc.h"

namespace cli {
namespace {

struct PruneFlags {
  bool all = false;
  bool dry_run = false;
  bool json = false;
};

nlohmann::json ReportJson(const upkeep::GcReport& r) {
  auto blobs = nlohmann::json::array();
  for (const auto& b : r.blobs)
    blobs.push_back({{"digest", b.digest.str()}, {"size", b.bytes}, {"mediaType", b.media_type}});
  auto snaps = nlohmann::json::array();
  for (const auto& s : r.snapshots)
    snaps.push_back({{"snapshotter", s.snapshotter},
                     {"key", s.key},
                     {"parent", s.parent},
                     {"kind", snapshot::SnapshotKindName(s.kind)},
                     {"size", s.bytes}});
  return {{"dry_run", r.dry_run},
          {"untagged", r.untagged},
          {"blobs", blobs},
          {"snapshots", snaps},
          {"expired_leases", r.leases},
          {"ingest", {{"files", r.ingest_files}, {"bytes", r.ingest_bytes}}},
          {"orphan_dirs", r.orphan_dirs},
          {"warnings", r.warnings},
          {"errors", r.errors},
          {"reclaimed_bytes", r.total_bytes()}};
}

void PrintReport(const upkeep::GcReport& r) {
  const bool dry = r.dry_run;
  for (const auto& n : r.untagged)
    std::printf("%s %s\n", dry ? "Would untag:" : "Untagged:", n.c_str());
  for (const auto& s : r.snapshots)
    std::printf("%s snapshot %s (%s, %s, %s)\n", dry ? "Would delete" : "Deleted", s.key.c_str(),
                std::string(snapshot::SnapshotKindName(s.kind)).c_str(), s.snapshotter.c_str(),
                HumanBytes(s.bytes).c_str());
  for (const auto& b : r.blobs)
    std::printf("%s blob %s (%s)\n", dry ? "Would delete" : "Deleted", b.digest.str().c_str(),
                HumanBytes(b.bytes).c_str());
  if (!r.leases.empty())
    std::printf("%s expired or abandoned leases: %zu\n", dry ? "Would delete" : "Deleted",
                r.leases.size());
  if (r.ingest_files > 0)
    std::printf("%s partial downloads: %d (%s)\n", dry ? "Would delete" : "Deleted", r.ingest_files,
                HumanBytes(r.ingest_bytes).c_str());
  if (r.orphan_dirs > 0) std::printf("Deleted orphan snapshot directories: %d\n", r.orphan_dirs);
  if (dry)
    std::printf("Total reclaimable space: %s (dry run: nothing was removed)\n",
                HumanBytes(r.total_bytes()).c_str());
  else
    std::printf("Total reclaimed space: %s\n", HumanBytes(r.total_bytes()).c_str());
}

int Run(const GlobalOptions& global, const PruneFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();

  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto sns = OpenAllSnapshotters(global);
  if (!sns) return ReportError(sns.error());
  upkeep::GcOptions o{.all = f.all, .dry_run = f.dry_run, .cancel = cancel};
  auto r = upkeep::Prune(*s->content, *s->metadata, sns->all, o);
  if (!r) return ReportError(r.error());
  CountInStore(*s->metadata, upkeep::GcCounterDeltas(*r, "prune"));
  if (f.json)
    std::cout << ReportJson(*r).dump(2) << "\n";
  else
    PrintReport(*r);
  std::fflush(stdout);
  for (const auto& w : r->warnings) std::cerr << "gantry: warning: " << w << "\n";
  for (const auto& e : r->errors) std::cerr << "gantry: prune: " << e << "\n";
  if (cancel->load()) return kExitCancelled;
  return r->errors.empty() ? kExitOk : kExitFailure;
}

}  // namespace

void RegisterPrune(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<PruneFlags>();
  auto* cmd = app.add_subcommand(
      "prune",
      "Remove content, snapshots, expired leases and stale partial downloads no image uses");
  cmd->footer(
      "Kept: everything an image record refers to (its manifest, config, layers and unpacked\n"
      "snapshots), everything an unexpired lease holds (pulls in progress), and the snapshots\n"
      "of containers and mounts with their parents. The lease of a killed pull is freed at\n"
      "once. Partial downloads stay for 24 h so a pull can resume them (empty ones do not).\n"
      "Waits for pulls in progress (store lock).\n"
      "Snapshots of every snapshotter kind in the store are collected.");
  cmd->add_flag("--all,-a", f->all,
                "Also remove every image that no container or mount uses (no active snapshot or "
                "view on its top layer) and no pre-pull list pins (gantry prepull), then collect "
                "its content and snapshots");
  cmd->add_flag("--dry-run,-n", f->dry_run, "Only report what would be removed");
  cmd->add_flag("--json", f->json, "Print the report as JSON");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
