// fsck: snapshot rows and directories, and mounts that use the store.

#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "snapshot/snapshotter.h"
#include "upkeep/fsck_internal.h"
#include "upkeep/gc_internal.h"

namespace upkeep::internal {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLabelMountDir = "io.gantry.mount";  // bundle/image_mount.h

struct MountEntry {
  std::string id;     // the mount's id in the table
  std::string point;  // mount point
  std::string fstype;
  std::vector<std::string> dirs;  // overlay lower/upper/work directory paths
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

common::Result<std::vector<MountEntry>> ReadMounts(const fs::path& mountinfo) {
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(mountinfo, 64 << 20));
  std::vector<MountEntry> out;
  for (const std::string& line : Split(text, '\n')) {
    auto f = Split(line, ' ');
    auto sep = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || sep == f.end() || f.end() - sep < 4) continue;
    MountEntry m;
    m.id = f[0];
    m.point = Unescape(f[4]);
    m.fstype = *(sep + 1);
    if (m.fstype == "overlay") {
      // An overlay mounted through fsconfig (snapshot::MountAt, beyond one
      // page of options) shows one "lowerdir+=" option per layer instead of
      // a "lowerdir=" list.
      for (const std::string& opt : Split(*(sep + 3), ',')) {
        for (std::string_view key :
             {"lowerdir=", "lowerdir+=", "datadir+=", "upperdir=", "workdir="}) {
          if (!opt.starts_with(key)) continue;
          for (const auto& p : Split(opt.substr(key.size()), ':')) m.dirs.push_back(Unescape(p));
        }
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

// `path` strictly below `dir` (both lexically normal).
bool Below(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() + 1 && path.starts_with(dir) && path[dir.size()] == '/';
}

// The snapshot id whose directory `path` is in, or 0.
int64_t SnapshotIdOf(const std::string& path, const std::string& snapshots_dir) {
  if (!Below(path, snapshots_dir)) return 0;
  std::string rest = path.substr(snapshots_dir.size() + 1);
  std::string first = rest.substr(0, rest.find('/'));
  if (first.empty() || first.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoll(first);
}

bool IsDir(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Every snapshot built on one of `ids` (and those), by parent id.
std::set<int64_t> WithDescendants(const std::vector<snapshot::Row>& rows, std::set<int64_t> ids) {
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& r : rows)
      if (r.parent_id != 0 && ids.count(r.parent_id) && ids.insert(r.id).second) grew = true;
  }
  return ids;
}

std::string Subject(int64_t id) { return "snapshots/" + std::to_string(id); }

std::string Describe(const snapshot::Row& r) {
  return std::string(snapshot::SnapshotKindName(r.kind)) + " " + r.snapshotter + " snapshot `" +
         r.name + "`";
}

common::Status CheckMounts(FsckScan& s, const std::vector<snapshot::Row>& rows) {
  // Read twice around the rows: a mount in both tables was there while the
  // rows were read, so a bundle or mount being taken down meanwhile (unmount
  // first, then remove the snapshot) is not taken for a stray one.
  ASSIGN_OR_RETURN(std::vector<MountEntry> before, ReadMounts(s.options.mountinfo));
  ASSIGN_OR_RETURN(std::set<int64_t> ids, snapshot::RowIds(s.root));
  ASSIGN_OR_RETURN(std::vector<MountEntry> after, ReadMounts(s.options.mountinfo));
  std::set<std::string> seen;
  for (const auto& m : before) seen.insert(m.id + " " + m.point);
  std::error_code ec;
  const std::string root = fs::weakly_canonical(s.root, ec).lexically_normal().string();
  const std::string snaps = root + "/snapshots";
  std::set<std::string> points;
  for (const auto& m : after) {
    points.insert(m.point);
    if (!seen.count(m.id + " " + m.point)) continue;
    if (Below(m.point, root)) {
      ++s.report.checked.mounts;
      s.Problem(kMount, m.point, m.fstype + " mount under the store that gantry did not make");
      continue;
    }
    bool uses = false;
    for (const auto& d : m.dirs) {
      int64_t id = SnapshotIdOf(fs::path(d).lexically_normal().string(), snaps);
      if (id == 0) continue;
      uses = true;
      if (!ids.count(id)) {
        s.Problem(kMount, m.point,
                  "overlay uses the directory of snapshot id " + std::to_string(id) +
                      ", which no longer exists");
        break;
      }
    }
    if (uses) ++s.report.checked.mounts;
  }
  int unmounted = 0;
  for (const auto& r : rows) {
    auto it = r.labels.find(std::string(kLabelMountDir));
    if (it != r.labels.end() && ids.count(r.id) && !points.count(it->second)) ++unmounted;
  }
  s.Note("gantry mount views whose directory is not mounted (gantry umount DIR removes them)",
         unmounted);
  return {};
}

}  // namespace

common::Status CheckSnapshots(FsckScan& s) {
  ASSIGN_OR_RETURN(s.snapshots, snapshot::ReadInventory(s.root));
  const snapshot::Inventory& inv = s.snapshots;
  std::map<int64_t, const snapshot::Row*> by_id;
  std::set<int64_t> lost_roots;
  for (const auto& r : inv.rows) {
    by_id[r.id] = &r;
    if (!r.synced && r.unsynced_boot_id != inv.boot_id) lost_roots.insert(r.id);
  }
  // Settle (the next command) removes these; their files may be torn.
  std::set<int64_t> lost = WithDescendants(inv.rows, lost_roots);
  s.report.checked.snapshots = static_cast<int>(inv.rows.size());
  s.Note("snapshots committed before a reboot and never synced (the next command removes them)",
         static_cast<int64_t>(lost.size()));

  int unsynced = 0, extract = 0;
  std::map<int64_t, std::string> missing_dirs;
  for (const auto& r : inv.rows) {
    if (lost.count(r.id)) continue;
    if (!r.synced) ++unsynced;
    snapshot::Info info;
    info.name = r.name;
    info.kind = r.kind;
    info.labels = r.labels;
    if (IsExtract(info)) ++extract;
    if (r.parent_id != 0) {
      auto p = by_id.find(r.parent_id);
      std::set<int64_t> chain{r.id};
      const snapshot::Row* cur = &r;
      bool loops = false;
      while (cur->parent_id != 0 && by_id.count(cur->parent_id)) {
        cur = by_id[cur->parent_id];
        if (!chain.insert(cur->id).second) {
          loops = true;
          break;
        }
      }
      if (p == by_id.end())
        s.Problem(kSnapshotParent, Subject(r.id),
                  Describe(r) + ": parent snapshot id " + std::to_string(r.parent_id) +
                      " does not exist");
      else if (p->second->kind != snapshot::SnapshotKind::kCommitted)
        s.Problem(kSnapshotParent, Subject(r.id),
                  Describe(r) + ": parent `" + p->second->name + "` is " +
                      std::string(snapshot::SnapshotKindName(p->second->kind)));
      else if (loops)
        s.Problem(kSnapshotParent, Subject(r.id), Describe(r) + ": its parent chain loops");
    }
    fs::path dir = snapshot::SnapshotDir(s.root, r.id);
    if (!IsDir(dir / "fs"))
      missing_dirs[r.id] = Describe(r) + ": `fs` directory is missing";
    else if (r.kind == snapshot::SnapshotKind::kActive && r.snapshotter == "overlayfs" &&
             !IsDir(dir / "work"))
      missing_dirs[r.id] = Describe(r) + ": overlay `work` directory is missing";
  }
  s.Note(
      "snapshots committed in this boot and not yet synced (synced by the next command "
      "after 30 s)",
      unsynced);
  s.Note(
      "extract snapshots (an unpack in progress, or left by a killed one: prune removes "
      "those)",
      extract);
  if (!missing_dirs.empty()) {
    // A Remove deletes the row, then the directory: only a row still there
    // without its directory is damage.
    ASSIGN_OR_RETURN(std::set<int64_t> now, snapshot::RowIds(s.root));
    for (const auto& [id, detail] : missing_dirs)
      if (now.count(id)) s.Problem(kSnapshotDir, Subject(id), detail);
  }

  int orphans = 0;
  for (const auto& name : inv.entries) {
    bool numeric = !name.empty() && name.find_first_not_of("0123456789") == std::string::npos &&
                   name.size() < 18;
    if (numeric && by_id.count(std::stoll(name))) continue;
    // A killed Prepare leaves the directory of the id it was about to take
    // (last_id + 1); a killed Remove leaves that of a row it deleted.
    if (numeric && std::stoll(name) <= inv.last_id + 1)
      ++orphans;
    else
      s.Problem(kStray, "snapshots/" + name, "no snapshot has this directory");
  }
  s.Note("snapshot directories without a row (left by a killed process; prune removes them)",
         orphans);
  return CheckMounts(s, inv.rows);
}

void RepairSnapshots(const FsckScan& s, const std::vector<FsckProblem>& problems, FsckReport& out) {
  std::set<int64_t> broken;
  for (const auto& p : problems) {
    if (p.kind == kMount) {
      if (::umount2(p.subject.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || errno == EINVAL)
        out.repairs.push_back({"unmounted", p.subject});
      else
        out.errors.push_back(common::ErrnoError("unmount `" + p.subject + "`").error().message);
    } else if (p.kind == kSnapshotParent || p.kind == kSnapshotDir) {
      broken.insert(std::stoll(p.subject.substr(p.subject.find('/') + 1)));
    }
  }
  if (broken.empty()) return;
  const auto& rows = s.snapshots.rows;
  std::set<int64_t> doomed = WithDescendants(rows, broken);
  std::map<int64_t, const snapshot::Row*> by_id;
  for (const auto& r : rows) by_id[r.id] = &r;
  // Children before parents: deepest first.
  auto depth = [&](int64_t id) {
    int d = 0;
    for (int64_t cur = id; d < 10000 && by_id.count(cur) && by_id[cur]->parent_id != 0; ++d)
      cur = by_id[cur]->parent_id;
    return d;
  };
  std::vector<std::pair<int, int64_t>> order;
  for (int64_t id : doomed)
    if (by_id.count(id)) order.emplace_back(depth(id), id);
  std::sort(order.rbegin(), order.rend());
  std::map<std::string, std::unique_ptr<snapshot::Snapshotter>> sns;
  for (const auto& [d, id] : order) {
    const snapshot::Row& r = *by_id[id];
    auto& sn = sns[r.snapshotter];
    if (!sn) {
      auto kind = r.snapshotter == "native" ? snapshot::Kind::kNative : snapshot::Kind::kOverlay;
      auto opened =
          snapshot::Open(s.root, {.kind = kind, .fallback_to_native = false, .settle = false});
      if (!opened) {
        out.errors.push_back(opened.error().message);
        continue;
      }
      sn = std::move(*opened);
    }
    if (auto st = sn->Remove(r.name); !st && st.error().code != common::Errc::kNotFound) {
      out.errors.push_back(st.error().message);
      continue;
    }
    out.repairs.push_back({"removed " + Describe(r), Subject(id)});
  }
}

}  // namespace upkeep::internal
