// gantry snapshot ls | info KEY | mounts KEY [TARGET] | rm KEY... | usage [KEY]:
// the snapshots of the --snapshotter kind (snapshot/snapshotter.h).

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/store_open.h"
#include "snapshot/mount.h"

namespace cli {
namespace {

struct SnapshotFlags {
  std::vector<std::string> keys;
  std::string key;
  std::string target;
  bool json = false;
};

using Body = int (*)(snapshot::Snapshotter&, const SnapshotFlags&);

int WithSnapshotter(const GlobalOptions& global, const SnapshotFlags& f, Body body) {
  auto sn = OpenSnapshotter(global);
  if (!sn) return ReportError(sn.error());
  return body(**sn, f);
}

int Ls(snapshot::Snapshotter& sn, const SnapshotFlags& f) {
  auto list = sn.List();
  if (!list) return ReportError(list.error());
  if (f.json) {
    auto arr = nlohmann::json::array();
    for (const auto& i : *list)
      arr.push_back(
          {{"key", i.name}, {"kind", snapshot::SnapshotKindName(i.kind)}, {"parent", i.parent}});
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-72s %-10s %s\n", "KEY", "KIND", "PARENT");
  for (const auto& i : *list)
    std::printf("%-72s %-10s %s\n", i.name.c_str(),
                std::string(snapshot::SnapshotKindName(i.kind)).c_str(), i.parent.c_str());
  return kExitOk;
}

int Info(snapshot::Snapshotter& sn, const SnapshotFlags& f) {
  auto i = sn.Stat(f.key);
  if (!i) return ReportError(i.error());
  nlohmann::json j = {{"id", i->id},
                      {"key", i->name},
                      {"parent", i->parent},
                      {"kind", snapshot::SnapshotKindName(i->kind)},
                      {"snapshotter", snapshot::KindName(sn.kind())},
                      {"labels", i->labels},
                      {"created_ns", i->created_ns},
                      {"updated_ns", i->updated_ns}};
  std::cout << j.dump(2) << "\n";
  return kExitOk;
}

int Mounts(snapshot::Snapshotter& sn, const SnapshotFlags& f) {
  auto mounts = sn.Mounts(f.key);
  if (!mounts) return ReportError(mounts.error());
  if (!f.target.empty()) {
    for (const auto& m : *mounts) std::cout << snapshot::MountCommand(m, f.target) << "\n";
    return kExitOk;
  }
  auto arr = nlohmann::json::array();
  for (const auto& m : *mounts)
    arr.push_back({{"type", m.type}, {"source", m.source}, {"options", m.options}});
  std::cout << arr.dump(2) << "\n";
  return kExitOk;
}

int Rm(snapshot::Snapshotter& sn, const SnapshotFlags& f) {
  int rc = kExitOk;
  for (const auto& key : f.keys) {
    // Remove refuses a snapshot that others are built on (FailedPrecondition).
    if (auto st = sn.Remove(key); !st) {
      rc = ReportError(st.error());
      continue;
    }
    std::cout << "Removed: " << key << "\n";
  }
  return rc;
}

int Usage(snapshot::Snapshotter& sn, const SnapshotFlags& f) {
  std::vector<std::string> keys;
  if (!f.key.empty()) {
    keys.push_back(f.key);
  } else {
    auto list = sn.List();
    if (!list) return ReportError(list.error());
    for (const auto& i : *list) keys.push_back(i.name);
  }
  std::printf("%-72s %-10s %s\n", "KEY", "SIZE", "INODES");
  int64_t bytes = 0, inodes = 0;
  for (const auto& k : keys) {
    auto u = sn.GetUsage(k);
    if (!u) return ReportError(u.error());
    bytes += u->bytes;
    inodes += u->inodes;
    std::printf("%-72s %-10s %lld\n", k.c_str(), HumanBytes(u->bytes).c_str(),
                static_cast<long long>(u->inodes));
  }
  if (f.key.empty())
    std::printf("%-72s %-10s %lld\n", "TOTAL", HumanBytes(bytes).c_str(),
                static_cast<long long>(inodes));
  return kExitOk;
}

void Add(CLI::App* parent, const char* name, const char* help, GlobalOptions& global,
         int& exit_code, std::shared_ptr<SnapshotFlags> f, Body body,
         const std::function<void(CLI::App*)>& args = {}) {
  auto* cmd = parent->add_subcommand(name, help);
  if (args) args(cmd);
  cmd->callback([&global, &exit_code, f, body] { exit_code = WithSnapshotter(global, *f, body); });
}

}  // namespace

void RegisterSnapshot(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<SnapshotFlags>();
  auto* cmd = app.add_subcommand("snapshot", "Inspect and remove snapshots (--snapshotter kind)");
  cmd->require_subcommand(1);
  Add(cmd, "ls", "List snapshots: KEY KIND PARENT", global, exit_code, f, Ls,
      [f](CLI::App* c) { c->add_flag("--json", f->json, "Print JSON"); });
  Add(cmd, "info", "Show a snapshot as JSON", global, exit_code, f, Info,
      [f](CLI::App* c) { c->add_option("key", f->key, "Snapshot key or name")->required(); });
  Add(cmd, "mounts", "Show how to mount an active snapshot or view", global, exit_code, f, Mounts,
      [f](CLI::App* c) {
        c->add_option("key", f->key, "Snapshot key")->required();
        c->add_option("target", f->target,
                      "Print `mount` command lines for this directory instead of JSON");
      });
  Add(cmd, "rm", "Remove snapshots (refused for a snapshot others are built on)", global, exit_code,
      f, Rm,
      [f](CLI::App* c) { c->add_option("key", f->keys, "Snapshot keys or names")->required(); });
  Add(cmd, "usage", "Show disk usage of one snapshot or all", global, exit_code, f, Usage,
      [f](CLI::App* c) { c->add_option("key", f->key, "Snapshot key or name"); });
}

}  // namespace cli
