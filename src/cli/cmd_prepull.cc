// gantry prepull [flags] FILE|-: pull a list of images and pin them
// (image/prepull.h).

#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/registry_flags.h"
#include "cli/store_open.h"
#include "common/fs.h"
#include "common/row_format.h"
#include "common/time_text.h"
#include "image/prepull.h"
#include "image/pull.h"

namespace cli {
namespace {

struct PrepullFlags {
  std::string list;
  int jobs = 2;
  std::string refresh;
  int max_concurrent = 3;
  bool json = false;
  bool no_unpack = false;
  bool ignore_space_check = false;
  RegistryFlags registry;
};

nlohmann::json ResultJson(const image::PrepullResult& r) {
  return {{"ref", r.ref},
          {"platform", r.platform},
          {"digest", r.digest},
          {"state", image::PrepullStateName(r.state)},
          {"error", r.error}};
}

void PrintRound(const std::vector<image::PrepullResult>& results, bool json) {
  if (json) {
    for (const auto& r : results) std::cout << ResultJson(r).dump() << "\n";
    std::cout.flush();
    return;
  }
  std::vector<std::string> lines{"REF\tPLATFORM\tSTATE\tDIGEST\tERROR"};
  for (const auto& r : results)
    lines.push_back(r.ref + "\t" + (r.platform.empty() ? "-" : r.platform) + "\t" +
                    std::string(image::PrepullStateName(r.state)) + "\t" +
                    (r.digest.empty() ? "-" : r.digest) + "\t" + r.error);
  std::fputs(common::AlignColumns(lines).c_str(), stdout);
  std::fflush(stdout);
}

bool AnyFailed(const std::vector<image::PrepullResult>& results) {
  for (const auto& r : results)
    if (r.state == image::PrepullState::kFailed) return true;
  return false;
}

int Run(const GlobalOptions& global, const PrepullFlags& f) {
  const std::atomic<bool>* cancel = CancelOnSignals();
  // RefreshIntervalCheck accepted the text at parse time.
  std::optional<std::chrono::seconds> refresh;
  if (!f.refresh.empty()) refresh = common::ParseDuration(f.refresh);
  if (refresh && f.list == "-") {
    std::cerr << "gantry: --refresh needs a list FILE, not `-`\n";
    return kExitUsage;
  }
  image::PullImageOptions base;
  auto client = MakeClientOptions(global, f.registry);
  if (!client) return ReportError(client.error());
  base.client = std::move(*client);
  auto trust = LoadTrust(global);
  if (!trust) return ReportError(trust.error());
  base.trust = std::move(*trust);
  base.max_concurrent_downloads = f.max_concurrent;
  base.check_space = !f.ignore_space_check;
  base.cancel = cancel;
  auto t = OpenPullTarget(global, !f.no_unpack);
  if (!t) return ReportError(t.error());
  base.snapshotter = t->snapshotter.get();
  const image::PullStore& store = t->store;

  image::PrepullOptions run{
      .jobs = f.jobs,
      .owner = image::PrepullOwner(f.list),
      .pull = [&](const image::PrepullEntry& e) -> common::Result<image::FetchResult> {
        image::PullImageOptions opts = base;
        opts.source.kind = registry::SourceSpec::Kind::kRegistry;
        opts.source.ref = *e.ref;
        opts.platform = e.platform;
        ASSIGN_OR_RETURN(image::PulledImage p, image::PullImage(store, opts));
        return std::move(p.pull);
      },
      .cancel = cancel};

  if (refresh) {
    image::WatchPrepullList(*store.metadata,
                            {.list = f.list,
                             .refresh = *refresh,
                             .run = run,
                             .on_round =
                                 [&](const common::Result<std::vector<image::PrepullResult>>& r) {
                                   if (!r) {
                                     std::cerr << "gantry: " << r.error().message << "\n";
                                     return;
                                   }
                                   PrintRound(*r, f.json);
                                 }},
                            cancel);
    return kExitOk;
  }

  std::string text;
  if (f.list == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    auto read = common::ReadFile(f.list);
    if (!read) return ReportError(read.error().Wrap("prepull"));
    text = std::move(*read);
  }
  auto results = image::RunPrepull(*store.metadata, image::ParsePrepullList(text), run);
  if (!results) return ReportError(results.error());
  PrintRound(*results, f.json);
  if (cancel->load()) return kExitCancelled;
  return AnyFailed(*results) ? kExitFailure : kExitOk;
}

}  // namespace

void RegisterPrepull(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<PrepullFlags>();
  auto* cmd = app.add_subcommand(
      "prepull", "Pull every image of a list, a few at a time, and pin them against pruning");
  cmd->add_option("list", f->list, "The list: a FILE, or - for standard input")->required();
  cmd->footer(
      "The list: one image a line, `REF [PLATFORM]` (PLATFORM os/arch[/variant]; "
      "`--platform PLATFORM` is accepted too; default: this host's); `#` starts a comment; blank "
      "lines are skipped. A line that does not parse fails alone; the others are pulled.\n"
      "Each image ends `pulled` (blobs were fetched), `present` (the store had it as the "
      "reference names it now) or `failed`; the exit status is 1 when any failed.\n"
      "Pins: the list's references are pinned, owned by the list (its absolute path; `-` is one "
      "owner of its own): `gantry prune --all` keeps them and `gantry serve` reports them pinned "
      "to kubelet, whose image GC then leaves them. Each run replaces the list's pins, so an image "
      "taken off the list is unpinned by the next run (an empty list unpins them all). See "
      "docs/prepull.md.");
  cmd->add_option("--jobs,-j", f->jobs, "Images pulled at once")
      ->default_str("2")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--refresh", f->refresh,
                  "Keep running: pull the list again every DURATION (90s, 15m, 1h30m, 1d), "
                  "re-resolving tags so that a tag moved to a new digest is pulled, and at once "
                  "when the file changes; until SIGINT or SIGTERM")
      ->check(RefreshIntervalCheck());
  cmd->add_flag("--json", f->json,
                "Print one JSON object per image (ref, platform, digest, state, error)");
  cmd->add_option("--max-concurrent-downloads", f->max_concurrent,
                  "Layers downloaded at once per image")
      ->default_str("3")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--no-unpack", f->no_unpack, "Only download; do not unpack into snapshots");
  cmd->add_flag("--ignore-space-check", f->ignore_space_check,
                "Pull even when the store's file system looks too small (see gantry pull)");
  AddRegistryFlags(cmd, f->registry);
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
