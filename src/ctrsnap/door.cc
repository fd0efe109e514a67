#include "ctrsnap/door.h"

#include <chrono>
#include <set>

#include "common/log.h"
#include "ctrsnap/filter.h"
#include "ctrsnap/names.h"
#include "store/store_lock.h"

namespace ctrsnap {
namespace {

using common::Errc;
using common::MakeError;
using snapshot::SnapshotKind;

constexpr std::string_view kLabelKeyRef = "labels.containerd.io/snapshot.ref";
// Rows whose gantry snapshot is gone are dropped by Cleanup only once they
// are this old: a Commit in another thread may be between its two steps.
constexpr int64_t kDanglingRowAgeNs = int64_t{60} * 1000 * 1000 * 1000;

std::string Q(std::string_view s) { return "`" + std::string(s) + "`"; }

FilterFields Fields(const Info& i) {
  return FilterFields{.name = i.name,
                      .parent = i.parent,
                      .kind = std::string(snapshot::SnapshotKindName(i.kind)),
                      .labels = &i.labels};
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

common::Status ValidateLabels(const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : labels) {
    if (k.size() + v.size() > kMaxLabelBytes)
      return MakeError(Errc::kInvalidArgument, "label key and value greater than maximum size (" +
                                                   std::to_string(kMaxLabelBytes) +
                                                   " bytes), key: " + k.substr(0, 10));
  }
  return {};
}

Door::Door(std::filesystem::path root, snapshot::Snapshotter& sn, store::MetadataDb& db)
    : root_(std::move(root)), sn_(sn), db_(db), kind_(snapshot::KindName(sn.kind())) {}

common::Result<std::optional<store::ContainerdSnapshotRecord>> Door::Row(const std::string& name) {
  auto r = db_.GetContainerdSnapshot(kind_, name);
  if (r) return std::optional<store::ContainerdSnapshotRecord>(std::move(*r));
  if (r.error().code == Errc::kNotFound) return std::optional<store::ContainerdSnapshotRecord>();
  return std::unexpected(r.error());
}

common::Result<std::string> Door::Resolve(const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> row, Row(name));
  return row ? row->target : name;
}

common::Result<Info> Door::InfoOf(const store::ContainerdSnapshotRecord& row) {
  auto gi = sn_.Stat(row.target);
  if (!gi) {
    if (gi.error().code == Errc::kNotFound)
      return MakeError(Errc::kNotFound, "snapshot " + Q(row.name) + " does not exist");
    return std::unexpected(gi.error());
  }
  return Info{.name = row.name,
              .parent = row.parent,
              .kind = gi->kind,
              .labels = row.labels,
              .created_ns = row.created_ns,
              .updated_ns = row.updated_ns};
}

common::Result<std::vector<snapshot::MountSpec>> Door::Prepare(
    const std::string& key, const std::string& parent,
    const std::map<std::string, std::string>& labels) {
  return Create(key, parent, labels, /*view=*/false);
}

common::Result<std::vector<snapshot::MountSpec>> Door::View(
    const std::string& key, const std::string& parent,
    const std::map<std::string, std::string>& labels) {
  return Create(key, parent, labels, /*view=*/true);
}

common::Result<std::vector<snapshot::MountSpec>> Door::Create(
    const std::string& key, const std::string& parent,
    const std::map<std::string, std::string>& labels, bool view) {
  const std::string op = std::string(view ? "view" : "prepare") + " snapshot " + Q(key);
  if (key.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty key");
  TRY(common::Wrap(ValidateLabels(labels), op));
  std::lock_guard lk(write_mu_);
  ASSIGN_OR_RETURN(store::StoreLock lock, common::Wrap(store::StoreLock::Shared(root_), op));
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> existing, Row(key));
  if (existing)
    return MakeError(Errc::kAlreadyExists, op + ": snapshot " + Q(key) + " already exists");

  std::string gparent;
  if (!parent.empty()) {
    ASSIGN_OR_RETURN(gparent, Resolve(parent));
    auto pi = sn_.Stat(gparent);
    if (!pi) {
      if (pi.error().code == Errc::kNotFound)
        return MakeError(Errc::kNotFound,
                         op + ": parent snapshot " + Q(parent) + " does not exist");
      return std::unexpected(pi.error().Wrap(op));
    }
    // containerd's storage answers InvalidArgument here (not
    // FailedPrecondition, its code for a Commit of what is not active).
    if (pi->kind != SnapshotKind::kCommitted)
      return MakeError(Errc::kInvalidArgument,
                       op + ": parent snapshot " + Q(parent) + " is not committed");
  }

  // The remote-snapshot protocol: the layer containerd is about to fetch
  // and apply is a chain gantry has committed on the same parent.
  if (auto ref = labels.find(std::string(kLabelSnapshotRef));
      ref != labels.end() && IsChainId(ref->second)) {
    const std::string& chain = ref->second;
    auto ci = sn_.Stat(chain);
    if (!ci && ci.error().code != Errc::kNotFound) return std::unexpected(ci.error().Wrap(op));
    if (ci && ci->kind == SnapshotKind::kCommitted && ci->parent == gparent) {
      ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> held, Row(chain));
      if (!held) {
        TRY(common::Wrap(
            db_.PutContainerdSnapshot({.snapshotter = kind_,
                                       .name = chain,
                                       .target = chain,
                                       .parent = parent,
                                       .labels = {{std::string(kLabelSnapshotRef), chain}}}),
            op));
      }
      LOG(Debug) << "remote snapshot: gantry has the chain" << common::Kv("key", key)
                 << common::Kv("chain", chain);
      return MakeError(Errc::kAlreadyExists, op + ": target snapshot " + Q(chain) + " exists");
    }
  }

  auto mounts = view ? sn_.View(key, gparent, labels) : sn_.Prepare(key, gparent, labels);
  if (!mounts) return std::unexpected(mounts.error());
  auto put = db_.PutContainerdSnapshot(
      {.snapshotter = kind_, .name = key, .target = key, .parent = parent, .labels = labels});
  if (!put) {
    if (auto rm = sn_.Remove(key); !rm)
      LOG(Warn) << "remove snapshot after a failed prepare" << common::Kv("key", key)
                << common::Kv("error", rm.error().message);
    return std::unexpected(put.error().Wrap(op));
  }
  return mounts;
}

common::Result<std::vector<snapshot::MountSpec>> Door::Mounts(const std::string& key) {
  ASSIGN_OR_RETURN(std::string target, Resolve(key));
  auto m = sn_.Mounts(target);
  if (!m && m.error().code == Errc::kNotFound)
    return MakeError(Errc::kNotFound, "mounts of snapshot " + Q(key) + ": it does not exist");
  return m;
}

common::Status Door::Commit(const std::string& name, const std::string& key,
                            const std::map<std::string, std::string>& labels) {
  const std::string op = "commit snapshot " + Q(key) + " as " + Q(name);
  if (name.empty() || key.empty())
    return MakeError(Errc::kInvalidArgument, op + ": empty name or key");
  TRY(common::Wrap(ValidateLabels(labels), op));
  std::lock_guard lk(write_mu_);
  ASSIGN_OR_RETURN(store::StoreLock lock, common::Wrap(store::StoreLock::Shared(root_), op));
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> taken, Row(name));
  if (taken) return MakeError(Errc::kAlreadyExists, op + ": snapshot " + Q(name) + " exists");
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> krow, Row(key));
  const std::string target = krow ? krow->target : key;
  auto ki = sn_.Stat(target);
  if (!ki) {
    if (ki.error().code == Errc::kNotFound)
      return MakeError(Errc::kNotFound, op + ": snapshot " + Q(key) + " does not exist");
    return std::unexpected(ki.error().Wrap(op));
  }
  if (ki->kind != SnapshotKind::kActive)
    return MakeError(Errc::kFailedPrecondition,
                     op + ": snapshot " + Q(key) + " is " +
                         std::string(snapshot::SnapshotKindName(ki->kind)) + ", not active");

  // A layer: committed under its bare chainID so that gantry's own pulls,
  // bundles and mounts find it; one gantry already has on the same parent
  // makes this copy redundant.
  const std::string chain = ChainIdOf(name, labels);
  std::string gname = name;
  bool redundant = false;
  auto same_chain = [&]() -> common::Result<bool> {
    auto ci = sn_.Stat(chain);
    if (!ci) {
      if (ci.error().code == Errc::kNotFound) return false;
      return std::unexpected(ci.error().Wrap(op));
    }
    if (ci->kind == SnapshotKind::kCommitted && ci->parent == ki->parent) return true;
    return MakeError(Errc::kAlreadyExists, op + ": gantry has snapshot " + Q(chain) +
                                               " on another parent or not committed");
  };
  if (!chain.empty()) {
    auto same = same_chain();
    if (same && *same)
      redundant = true;
    else if (same)
      gname = chain;
    // else: gantry's chain differs; keep containerd's own name
  }
  if (!redundant) {
    auto st = sn_.Commit(gname, target, labels);
    if (!st) {
      if (st.error().code != Errc::kAlreadyExists || gname != chain) return st;
      // A pull committed the same chain meanwhile.
      ASSIGN_OR_RETURN(bool same, same_chain());
      if (!same) return st;
      redundant = true;
    }
  }
  if (redundant) {
    gname = chain;
    if (auto rm = sn_.Remove(target); !rm)
      LOG(Warn) << "remove a layer gantry already has" << common::Kv("key", key)
                << common::Kv("error", rm.error().message);
  }
  ASSIGN_OR_RETURN(store::Txn txn, common::Wrap(db_.Begin(), op));
  if (krow) TRY(common::Wrap(txn.DeleteContainerdSnapshot(kind_, key), op));
  TRY(common::Wrap(txn.PutContainerdSnapshot({.snapshotter = kind_,
                                              .name = name,
                                              .target = gname,
                                              .parent = krow ? krow->parent : ki->parent,
                                              .labels = labels}),
                   op));
  return common::Wrap(txn.Commit(), op);
}

common::Status Door::Remove(const std::string& key) {
  const std::string op = "remove snapshot " + Q(key);
  std::lock_guard lk(write_mu_);
  ASSIGN_OR_RETURN(store::StoreLock lock, common::Wrap(store::StoreLock::Shared(root_), op));
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> row, Row(key));
  if (!row) return MakeError(Errc::kNotFound, op + ": snapshot " + Q(key) + " does not exist");
  ASSIGN_OR_RETURN(std::vector<store::ContainerdSnapshotRecord> rows,
                   common::Wrap(db_.ListContainerdSnapshots(), op));
  bool shared = false;
  for (const auto& r : rows) {
    if (r.snapshotter != kind_ || r.name == key) continue;
    if (r.parent == key)
      return MakeError(Errc::kFailedPrecondition,
                       op + ": cannot remove snapshot with child " + Q(r.name));
    if (r.target == row->target) shared = true;
  }
  TRY(common::Wrap(db_.DeleteContainerdSnapshot(kind_, key), op));
  if (shared) return {};
  // containerd's hold is gone. Its own snapshots go with it; a layer
  // committed under its chainID stays for gantry's garbage collection,
  // which knows whether an image or a bundle still needs it.
  auto gi = sn_.Stat(row->target);
  if (!gi) return {};
  if (gi->kind == SnapshotKind::kCommitted && IsChainId(row->target)) return {};
  if (auto rm = sn_.Remove(row->target); !rm)
    LOG(Info) << "containerd's snapshot kept for gantry" << common::Kv("key", key)
              << common::Kv("snapshot", row->target) << common::Kv("reason", rm.error().message);
  return {};
}

common::Result<Info> Door::Stat(const std::string& key) {
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> row, Row(key));
  if (row) return InfoOf(*row);
  auto gi = sn_.Stat(key);
  if (!gi) {
    if (gi.error().code == Errc::kNotFound)
      return MakeError(Errc::kNotFound, "snapshot " + Q(key) + " does not exist");
    return std::unexpected(gi.error());
  }
  Info out{.name = key,
           .parent = gi->parent,
           .kind = gi->kind,
           .labels = gi->labels,
           .created_ns = gi->created_ns,
           .updated_ns = gi->updated_ns};
  if (gi->kind == SnapshotKind::kCommitted && IsChainId(key))
    out.labels[std::string(kLabelSnapshotRef)] = key;
  return out;
}

common::Result<Info> Door::Update(const Info& info, const std::vector<std::string>& fieldpaths) {
  const std::string op = "update snapshot " + Q(info.name);
  if (info.name.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty name");
  std::lock_guard lk(write_mu_);
  ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> row, Row(info.name));
  if (!row)
    return MakeError(Errc::kNotFound, op + ": snapshot " + Q(info.name) + " does not exist");
  std::map<std::string, std::string> labels = row->labels;
  if (fieldpaths.empty()) labels = info.labels;
  for (const std::string& p : fieldpaths) {
    if (p == "labels") {
      labels = info.labels;
    } else if (p.starts_with("labels.")) {
      const std::string k = p.substr(7);
      auto it = info.labels.find(k);
      if (it == info.labels.end() || it->second.empty())
        labels.erase(k);
      else
        labels[k] = it->second;
    } else {
      return MakeError(Errc::kInvalidArgument,
                       op + ": cannot update field " + Q(p) + " (only labels)");
    }
  }
  TRY(common::Wrap(ValidateLabels(labels), op));
  row->labels = std::move(labels);
  TRY(common::Wrap(db_.PutContainerdSnapshot(*row), op));
  ASSIGN_OR_RETURN(store::ContainerdSnapshotRecord now,
                   common::Wrap(db_.GetContainerdSnapshot(kind_, info.name), op));
  return InfoOf(now);
}

common::Status Door::List(const std::vector<std::string>& filters,
                          const std::function<common::Status(const Info&)>& fn) {
  ASSIGN_OR_RETURN(Filter filter, common::Wrap(Filter::Parse(filters), "list snapshots"));
  // Emits `info` if it matches; a parent==P selector also matches when P
  // is another of containerd's names for the same gantry parent, and the
  // snapshot is then shown with P as its parent (what containerd checks
  // when it adopts a snapshot).
  auto emit = [&](Info info, const std::string& gparent) -> common::Status {
    if (filter.alternatives().empty()) return fn(info);
    for (const auto& alt : filter.alternatives()) {
      Info shown = info;
      std::string asked;
      if (Filter::EqualValue(alt, "parent", &asked) && asked != info.parent) {
        std::string resolved;
        if (!asked.empty()) {
          ASSIGN_OR_RETURN(resolved, Resolve(asked));
        }
        if (resolved == gparent) shown.parent = asked;
      }
      if (Filter::MatchAll(alt, Fields(shown))) return fn(shown);
    }
    return {};
  };

  ASSIGN_OR_RETURN(std::vector<store::ContainerdSnapshotRecord> rows,
                   common::Wrap(db_.ListContainerdSnapshots(), "list snapshots"));
  std::set<std::string> seen;
  for (const auto& r : rows) {
    if (r.snapshotter != kind_) continue;
    auto gi = sn_.Stat(r.target);
    if (!gi) {
      if (gi.error().code == Errc::kNotFound) continue;  // gone with a crash: not containerd's
      return std::unexpected(gi.error().Wrap("list snapshots"));
    }
    seen.insert(r.name);
    TRY(emit(Info{.name = r.name,
                  .parent = r.parent,
                  .kind = gi->kind,
                  .labels = r.labels,
                  .created_ns = r.created_ns,
                  .updated_ns = r.updated_ns},
             gi->parent));
  }
  // The chains a snapshot.ref filter asks for that containerd does not hold
  // yet: what the remote-snapshot protocol adopts.
  for (const auto& alt : filter.alternatives()) {
    std::string chain;
    if (!Filter::EqualValue(alt, kLabelKeyRef, &chain) || !IsChainId(chain) || seen.count(chain))
      continue;
    auto gi = sn_.Stat(chain);
    if (!gi || gi->kind != SnapshotKind::kCommitted) continue;
    seen.insert(chain);
    TRY(emit(Info{.name = chain,
                  .parent = gi->parent,
                  .kind = gi->kind,
                  .labels = {{std::string(kLabelSnapshotRef), chain}},
                  .created_ns = gi->created_ns,
                  .updated_ns = gi->updated_ns},
             gi->parent));
  }
  return {};
}

common::Result<snapshot::Usage> Door::Usage(const std::string& key) {
  ASSIGN_OR_RETURN(std::string target, Resolve(key));
  auto u = sn_.GetUsage(target);
  if (!u && u.error().code == Errc::kNotFound)
    return MakeError(Errc::kNotFound, "usage of snapshot " + Q(key) + ": it does not exist");
  return u;
}

common::Status Door::Cleanup() {
  const std::string op = "clean up snapshots";
  std::lock_guard lk(write_mu_);
  ASSIGN_OR_RETURN(int removed, common::Wrap(sn_.Cleanup(), op));
  if (removed > 0)
    LOG(Info) << "removed orphan snapshot directories" << common::Kv("count", removed);
  ASSIGN_OR_RETURN(std::vector<store::ContainerdSnapshotRecord> rows,
                   common::Wrap(db_.ListContainerdSnapshots(), op));
  const int64_t cutoff = NowNs() - kDanglingRowAgeNs;
  for (const auto& r : rows) {
    if (r.snapshotter != kind_ || r.updated_ns > cutoff) continue;
    auto gi = sn_.Stat(r.target);
    if (gi || gi.error().code != Errc::kNotFound) continue;
    if (auto st = db_.DeleteContainerdSnapshot(kind_, r.name);
        !st && st.error().code != Errc::kNotFound)
      return std::unexpected(st.error().Wrap(op));
    LOG(Info) << "dropped containerd's name of a snapshot that is gone"
              << common::Kv("name", r.name) << common::Kv("snapshot", r.target);
  }
  // Active snapshots and views under a containerd key without a row: a
  // Prepare or View killed between its two steps, which containerd saw
  // fail and never names. The same age rule keeps a call of another
  // process that is between its steps; gantry's own snapshots (bundles,
  // mounts, extracts) carry io.gantry.* labels and are never touched.
  auto gantrys = [](const snapshot::Info& i) {
    for (const auto& [k, v] : i.labels)
      if (k.starts_with("io.gantry.")) return true;
    return false;
  };
  ASSIGN_OR_RETURN(std::vector<snapshot::Info> all, common::Wrap(sn_.List(), op));
  for (const auto& i : all) {
    if (i.kind == SnapshotKind::kCommitted || i.created_ns > cutoff || !ParseCtrKey(i.name) ||
        gantrys(i))
      continue;
    ASSIGN_OR_RETURN(std::optional<store::ContainerdSnapshotRecord> row, Row(i.name));
    if (row) continue;
    if (auto rm = sn_.Remove(i.name); !rm) {
      LOG(Info) << "a snapshot containerd never named is kept" << common::Kv("snapshot", i.name)
                << common::Kv("reason", rm.error().message);
      continue;
    }
    LOG(Info) << "removed a snapshot containerd never named" << common::Kv("snapshot", i.name);
  }
  return {};
}

}  // namespace ctrsnap
