// gantry fsck [--repair] [--json]: check the store against its invariants
// (upkeep/fsck.h) and, with --repair, remove what cannot be trusted.

#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/store_open.h"
#include "upkeep/fsck.h"

namespace cli {
namespace {

// fsck's own exit codes (its contract with scripts, e.g. the soak test).
constexpr int kFsckClean = 0;     // no problem (or every problem repaired)
constexpr int kFsckProblems = 1;  // problems remain
constexpr int kFsckFailed = 2;    // fsck could not run

struct FsckFlags {
  bool repair = false;
  bool json = false;
};

nlohmann::json ProblemsJson(const std::vector<upkeep::FsckProblem>& ps) {
  auto a = nlohmann::json::array();
  for (const auto& p : ps)
    a.push_back({{"kind", p.kind}, {"subject", p.subject}, {"detail", p.detail}});
  return a;
}

nlohmann::json ReportJson(const upkeep::FsckReport& r, bool repair) {
  auto repairs = nlohmann::json::array();
  for (const auto& a : r.repairs) repairs.push_back({{"action", a.action}, {"subject", a.subject}});
  auto notes = nlohmann::json::array();
  for (const auto& n : r.notes) notes.push_back({{"what", n.what}, {"count", n.count}});
  const auto& c = r.checked;
  return {{"repair", repair},
          {"problems", ProblemsJson(r.problems)},
          {"repairs", repairs},
          {"remaining", ProblemsJson(r.remaining)},
          {"info", notes},
          {"checked",
           {{"blobs", c.blobs},
            {"images", c.images},
            {"snapshots", c.snapshots},
            {"ingest", c.ingest},
            {"leases", c.leases},
            {"mounts", c.mounts}}},
          {"errors", r.errors}};
}

void PrintReport(const upkeep::FsckReport& r, bool repair) {
  for (const auto& p : r.problems)
    std::printf("problem: %s %s: %s\n", p.kind.c_str(), p.subject.c_str(), p.detail.c_str());
  for (const auto& a : r.repairs)
    std::printf("repaired: %s %s\n", a.action.c_str(), a.subject.c_str());
  for (const auto& n : r.notes)
    std::printf("info: %s: %lld\n", n.what.c_str(), static_cast<long long>(n.count));
  const auto& c = r.checked;
  std::printf(
      "fsck: checked %d blobs, %d images, %d snapshots, %d partial downloads, %d leases, "
      "%d mounts; %zu problems",
      c.blobs, c.images, c.snapshots, c.ingest, c.leases, c.mounts, r.problems.size());
  if (repair) std::printf(", %zu repairs, %zu remaining", r.repairs.size(), r.remaining.size());
  std::printf("\n");
}

int Fail(const common::Error& e) {
  std::cerr << "gantry: fsck: " << e.message << "\n";
  return kFsckFailed;
}

int Run(const GlobalOptions& global, const FsckFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  // fsck checks a store; it does not create one.
  struct stat st {};
  const std::string what = "open store `" + global.root.string() + "`";
  if (::stat(global.root.c_str(), &st) != 0) return Fail(common::ErrnoError(what).error());
  if (!S_ISDIR(st.st_mode)) return Fail(common::ErrnoError(what, ENOTDIR).error());
  auto s = OpenStore(global);
  if (!s) return Fail(s.error());
  upkeep::FsckOptions o{.cancel = cancel};
  auto r = f.repair ? upkeep::Repair(*s->content, *s->metadata, o)
                    : upkeep::Check(*s->content, *s->metadata, o);
  if (!r) return Fail(r.error());
  if (f.json)
    std::cout << ReportJson(*r, f.repair).dump(2) << "\n";
  else
    PrintReport(*r, f.repair);
  std::fflush(stdout);
  for (const auto& e : r->errors) std::cerr << "gantry: fsck: repair failed: " << e << "\n";
  return r->remaining.empty() ? kFsckClean : kFsckProblems;
}

}  // namespace

void RegisterFsck(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<FsckFlags>();
  auto* cmd = app.add_subcommand(
      "fsck", "Check blobs, images, snapshots, partial downloads, leases and mounts of the store");
  cmd->footer(
      "Prints one line per problem, `problem: <kind> <subject>: <detail>`; with --repair one\n"
      "line per action, `repaired: <action> <subject>`; `info:` lines count what a killed\n"
      "gantry leaves and the store handles itself (not problems); then a summary line.\n"
      "Kinds: blob-corrupt, blob-size, blob-missing, blob-unrecorded, image, snapshot-parent,\n"
      "snapshot-dir, stray, ingest-oversize, ingest-corrupt, mount, database (docs/fsck.md).\n"
      "--repair removes only what cannot be trusted: corrupt blobs, records of missing blobs,\n"
      "images whose content is gone (untagged; pull again), broken snapshots and those built\n"
      "on them (unpacked again when used), stray files, bad partial downloads, stray mounts.\n"
      "A check waits for a running prune; --repair also waits for pulls (store lock).\n"
      "Exit status: 0 no problem (with --repair: all repaired), 1 problems remain,\n"
      "2 fsck could not run.");
  cmd->add_flag("--repair", f->repair, "Repair what can be repaired, and say what was done");
  cmd->add_flag("--json", f->json, "Print one JSON document (problems, repairs, info, counts)");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
