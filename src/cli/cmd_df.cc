// gantry df [--json]: space used by images, snapshots, content and partial
// downloads, docker `system df -v` style (upkeep/usage.h).

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/store_open.h"
#include "common/row_format.h"
#include "upkeep/usage.h"

namespace cli {
namespace {

nlohmann::json TotalsJson(const upkeep::UsageTotals& t) {
  return {
      {"count", t.count}, {"active", t.active}, {"size", t.bytes}, {"reclaimable", t.reclaimable}};
}

nlohmann::json UsageJson(const upkeep::DiskUsage& u) {
  auto images = nlohmann::json::array();
  for (const auto& i : u.images)
    images.push_back({{"name", i.name},
                      {"id", i.id},
                      {"created_ns", i.created_ns},
                      {"content_size", i.content_bytes},
                      {"snapshot_size", i.snapshot_bytes},
                      {"size", i.size},
                      {"shared_size", i.shared},
                      {"unique_size", i.unique},
                      {"unpacked", i.unpacked},
                      {"containers", i.containers}});
  auto snaps = nlohmann::json::array();
  for (const auto& s : u.snapshots)
    snaps.push_back({{"snapshotter", s.snapshotter},
                     {"key", s.info.name},
                     {"kind", snapshot::SnapshotKindName(s.info.kind)},
                     {"parent", s.info.parent},
                     {"size", s.usage.bytes},
                     {"inodes", s.usage.inodes},
                     {"images", s.images},
                     {"reclaimable", s.reclaimable},
                     {"containerd", s.containerd}});
  nlohmann::json totals = TotalsJson(u.images_total);
  totals["shared"] = u.images_shared;
  totals["unique"] = u.images_unique;
  return {{"images", images},
          {"snapshots", snaps},
          {"totals",
           {{"images", totals},
            {"snapshots", TotalsJson(u.snapshots_total)},
            {"content", TotalsJson(u.content_total)},
            {"ingest", TotalsJson(u.ingest_total)}}},
          {"containerd", {{"snapshots", u.containerd_snapshots}, {"size", u.containerd_bytes}}},
          {"reclaimable", u.reclaimable},
          {"reclaimable_all", u.reclaimable_all},
          {"warnings", u.warnings}};
}

std::string Percent(int64_t part, int64_t whole) {
  return HumanBytes(part) + " (" + std::to_string(whole > 0 ? part * 100 / whole : 0) + "%)";
}

std::string Short(const std::string& key) {
  return key.starts_with("sha256:") && key.size() > 19 ? key.substr(0, 19) : key;
}

void PrintTotals(const char* type, const upkeep::UsageTotals& t) {
  std::printf("%-11s %-7d %-8d %-11s %s\n", type, t.count, t.active, HumanBytes(t.bytes).c_str(),
              Percent(t.reclaimable, t.bytes).c_str());
}

void PrintUsage(const upkeep::DiskUsage& u) {
  std::printf("%-11s %-7s %-8s %-11s %s\n", "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE");
  PrintTotals("Images", u.images_total);
  PrintTotals("Snapshots", u.snapshots_total);
  PrintTotals("Content", u.content_total);
  PrintTotals("Ingest", u.ingest_total);

  // Aligned to the longest name (names pulled by digest are long).
  std::vector<std::string> lines = {
      "REPOSITORY:TAG\tIMAGE ID\tCONTENT\tUNPACKED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS"};
  for (const auto& i : u.images) {
    std::string id = i.id.starts_with("sha256:") ? i.id.substr(7, 12) : i.id;
    // "-": not unpacked (a partly unpacked image shows what it has).
    const std::string unpacked =
        i.unpacked || i.snapshot_bytes > 0 ? HumanBytes(i.snapshot_bytes) : "-";
    lines.push_back(i.name + "\t" + id + "\t" + HumanBytes(i.content_bytes) + "\t" + unpacked +
                    "\t" + HumanBytes(i.size) + "\t" + HumanBytes(i.shared) + "\t" +
                    HumanBytes(i.unique) + "\t" + std::to_string(i.containers));
  }
  std::printf("\nImages space usage:\n\n%s", common::AlignColumns(lines).c_str());

  std::printf("\nSnapshots space usage:\n\n%-28s %-10s %-11s %-10s %-8s %-7s %s\n", "KEY", "KIND",
              "SNAPSHOTTER", "SIZE", "INODES", "IMAGES", "RECLAIMABLE");
  for (const auto& s : u.snapshots)
    std::printf("%-28s %-10s %-11s %-10s %-8lld %-7d %s\n", Short(s.info.name).c_str(),
                std::string(snapshot::SnapshotKindName(s.info.kind)).c_str(), s.snapshotter.c_str(),
                HumanBytes(s.usage.bytes).c_str(), static_cast<long long>(s.usage.inodes), s.images,
                s.reclaimable  ? "yes"
                : s.containerd ? "no (held by containerd)"
                               : "no");

  std::printf("\nImages use %s: %s shared between images (counted once), %s unique.\n",
              HumanBytes(u.images_total.bytes).c_str(), HumanBytes(u.images_shared).c_str(),
              HumanBytes(u.images_unique).c_str());
  if (u.containerd_snapshots > 0)
    std::printf("Held by containerd (the snapshotter door): %d snapshots, %s.\n",
                u.containerd_snapshots, HumanBytes(u.containerd_bytes).c_str());
  std::printf("`gantry prune` would free %s; `gantry prune --all` would free %s.\n",
              HumanBytes(u.reclaimable).c_str(), HumanBytes(u.reclaimable_all).c_str());
}

int Run(const GlobalOptions& global, bool json) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto sns = OpenAllSnapshotters(global);
  if (!sns) return ReportError(sns.error());
  auto u = upkeep::ComputeUsage(*s->content, *s->metadata, sns->all);
  if (!u) return ReportError(u.error().Wrap("df"));
  if (json)
    std::cout << UsageJson(*u).dump(2) << "\n";
  else
    PrintUsage(*u);
  std::fflush(stdout);
  for (const auto& w : u->warnings) std::cerr << "gantry: warning: " << w << "\n";
  return kExitOk;
}

}  // namespace

void RegisterDf(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("df", "Show disk usage of images, snapshots and content");
  cmd->footer(
      "An image's CONTENT is its blobs (manifests, config, compressed layers: the SIZE\n"
      "`gantry images` shows), UNPACKED its committed snapshots (- when not unpacked), and SIZE\n"
      "the two together; SHARED SIZE is the part of SIZE another image also uses, UNIQUE SIZE\n"
      "the rest. Totals count shared parts once. RECLAIMABLE is what `gantry prune` frees (for\n"
      "Images: what `gantry prune --all` frees on top of it).\n"
      "ACTIVE: images a container or mount uses; snapshots and blobs prune keeps; partial\n"
      "downloads still being written or younger than 24 h (and not empty). Snapshots of every\n"
      "kind are counted.");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([&global, &exit_code, json] { exit_code = Run(global, *json); });
}

}  // namespace cli
