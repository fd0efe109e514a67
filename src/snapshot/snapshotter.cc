#include "snapshot/snapshotter.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "snapshot/fs_util.h"
#include "snapshot/inventory.h"
#include "store/sqlite.h"

namespace snapshot {
namespace {

using common::Errc;
using common::MakeError;
namespace fs = std::filesystem;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS snapshots (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  snapshotter TEXT NOT NULL,
  name        TEXT NOT NULL,
  parent_id   INTEGER REFERENCES snapshots(id),
  kind        TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
  labels      TEXT NOT NULL DEFAULT '{}',
  created_ns  INTEGER NOT NULL,
  updated_ns  INTEGER NOT NULL,
  UNIQUE (snapshotter, name)
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
CREATE TABLE IF NOT EXISTS snapshot_unsynced (
  id           INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
  boot_id      TEXT NOT NULL,
  committed_ns INTEGER NOT NULL
);
)sql";

// How many of kSchema's tables and indexes a store has (kSchemaObjects when
// it has them all). Keep the names in step with kSchema.
constexpr std::string_view kCountSchemaObjects =
    "SELECT count(*) FROM sqlite_master WHERE name IN "
    "('snapshots', 'snapshots_parent', 'snapshot_unsynced')";
constexpr int64_t kSchemaObjects = 3;

// Every query that reads whole rows selects these columns, in this order
// (ReadRow), from `snapshots s`.
constexpr std::string_view kSelectRow =
    "SELECT s.id, s.name, COALESCE(p.name, ''), s.kind, s.labels, s.created_ns, s.updated_ns, "
    "COALESCE(s.parent_id, 0), u.id IS NULL "
    "FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id "
    "LEFT JOIN snapshot_unsynced u ON u.id = s.id ";

// Snapshots committed in another boot that were never synced, and every
// snapshot built on them (their ids).
constexpr std::string_view kSelectLost =
    "WITH RECURSIVE lost(id) AS ("
    " SELECT u.id FROM snapshot_unsynced u JOIN snapshots s ON s.id = u.id WHERE u.boot_id != ?1"
    " UNION SELECT s.id FROM snapshots s JOIN lost ON s.parent_id = lost.id) "
    "SELECT id FROM lost";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SnapshotKind KindFromText(const std::string& s) {
  if (s == "committed") return SnapshotKind::kCommitted;
  if (s == "view") return SnapshotKind::kView;
  return SnapshotKind::kActive;
}

std::string LabelsToJson(const std::map<std::string, std::string>& labels) {
  return nlohmann::json(labels).dump();
}

std::map<std::string, std::string> LabelsFromJson(const std::string& s) {
  std::map<std::string, std::string> out;
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_object())
    for (auto& [k, v] : j.items())
      if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

struct Row {
  Info info;
  int64_t parent_id = 0;
};

std::mutex g_probe_mu;
std::map<std::string, bool> g_probe_cache;

// Whether an overlay superblock of base/{lower,upper,work} can be created
// through the new mount API (fsopen, fsconfig, FSCONFIG_CMD_CREATE). The
// kernel checks the layers and the work directory when it creates the
// superblock, as for a mount, but nothing is attached anywhere: closing the
// context frees it, and no child in a mount namespace of its own is needed
// (on a busy machine the exit of that child, tearing the namespace and its
// mount down, took 30-60 ms of a cold pull). false when this kernel or this
// process cannot tell so (no fsopen, EPERM in a user namespace, or a
// failure that mount(2) might not share): the caller mounts to find out.
bool OverlayCreatesIn(const fs::path& base) {
  int fd = ::fsopen("overlay", FSOPEN_CLOEXEC);
  if (fd < 0) return false;
  common::UniqueFd ctx(fd);
  for (auto [key, dir] :
       {std::pair{"lowerdir", "lower"}, {"upperdir", "upper"}, {"workdir", "work"}}) {
    const std::string path = (base / dir).string();
    if (::fsconfig(ctx.get(), FSCONFIG_SET_STRING, key, path.c_str(), 0) != 0) return false;
  }
  return ::fsconfig(ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0;
}

// Whether an overlay with upper and work dirs in `base` mounts: as
// OverlayCreatesIn says when it can, else tried in a child in a private
// mount namespace: the mount dies with the child, so a kill -9 of this
// process at any moment leaves no mount behind (only the scratch
// directory, which the next probe removes once it is old). Not MountAt:
// after fork() only async-signal-safe calls are allowed here, and the
// probe's one lower layer always fits mount(2)'s page anyway.
bool OverlayMountsIn(const fs::path& base) {
  if (OverlayCreatesIn(base)) return true;
  std::string target = (base / "merged").string();
  std::string data = "lowerdir=" + (base / "lower").string() +
                     ",upperdir=" + (base / "upper").string() +
                     ",workdir=" + (base / "work").string();
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // Only async-signal-safe calls: the parent may have threads.
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(2);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(2);
    ::_exit(::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) == 0 ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool ProbeOverlay(const fs::path& root) {
  if (::geteuid() != 0) return false;
  // Scratch directories of probes killed mid-way (an hour is far longer
  // than any probe takes).
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.path().filename().string().starts_with("overlay-probe.")) continue;
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime > 3600)
      (void)RemoveTree(e.path());
  }
  auto scratch = common::TempDir::Create("overlay-probe", root);
  if (!scratch) return false;
  fs::path base = scratch->path();
  for (const char* d : {"lower", "upper", "work", "merged"}) {
    if (::mkdir((base / d).c_str(), 0700) != 0) return false;
  }
  bool ok = OverlayMountsIn(base);
  if (!ok) LOG(Debug) << "overlay probe failed" << common::Kv("root", root.string());
  return ok;  // the TempDir removes the scratch tree
}

// The probe's answer is kept in the store, so that not every command
// forks a child to mount: <root>/overlay-supported holds the facts it
// depends on (OverlayProbeKey), written once a probe succeeded. A file
// that says anything else (another kernel or boot, the root moved to
// another file system, a torn write) is not an answer: the probe runs and
// rewrites it. Failures are not kept: the next command probes again (an
// overlay module loaded meanwhile counts at once). Not fsynced: a cache
// that a crash loses is probed again.
constexpr std::string_view kOverlayCacheName = "overlay-supported";

bool HasCapSysAdmin() {
  __user_cap_header_struct h{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &h, d) != 0) return false;
  return (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

// What an overlay probe's answer holds for: this kernel (release and
// boot: a module can be loaded or blacklisted across a reboot), the file
// system the root is on, and this user namespace. "" when one of them
// cannot be read (then nothing is cached).
std::string OverlayProbeKey(const fs::path& root) {
  struct utsname u {};
  struct statfs sfs {};
  struct stat st {
  }, ns{};
  if (::uname(&u) != 0 || ::statfs(root.c_str(), &sfs) != 0 || ::stat(root.c_str(), &st) != 0 ||
      ::stat("/proc/self/ns/user", &ns) != 0)
    return "";
  const std::string boot = BootId();
  if (boot == "unknown") return "";
  std::ostringstream key;
  key << "overlay supported\nkernel " << u.release << "\nboot " << boot << "\nfs " << std::hex
      << static_cast<unsigned long>(sfs.f_type) << " dev " << static_cast<unsigned long>(st.st_dev)
      << "\nuserns " << std::dec << static_cast<unsigned long>(ns.st_ino) << "\n";
  return key.str();
}

bool OverlayCached(const fs::path& root, const std::string& key) {
  auto fd = common::Open((root / kOverlayCacheName).string(), O_RDONLY | O_NOFOLLOW);
  if (!fd) return false;
  char buf[512];
  ssize_t n = ::read(fd->get(), buf, sizeof buf);
  return n > 0 && std::string_view(buf, static_cast<size_t>(n)) == key;
}

void CacheOverlay(const fs::path& root, const std::string& key) {
  const std::string path = (root / kOverlayCacheName).string();
  auto fd = common::Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
  if (!fd || !common::WriteAll(fd->get(), key))
    LOG(Debug) << "cannot keep the overlay probe's answer" << common::Kv("path", path);
}

class SnapshotterImpl final : public Snapshotter {
 public:
  SnapshotterImpl(Kind kind, fs::path root, store::SqliteDb db, std::string boot_id,
                  std::chrono::nanoseconds settle_age)
      : kind_(kind),
        root_(std::move(root)),
        db_(std::move(db)),
        boot_id_(std::move(boot_id)),
        settle_age_(settle_age) {}

  Kind kind() const override { return kind_; }
  bool independent_layers() const override { return kind_ == Kind::kOverlay; }

  common::Result<std::vector<MountSpec>> Prepare(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels) override {
    return Create(key, parent, SnapshotKind::kActive, labels);
  }

  common::Result<std::vector<MountSpec>> View(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels) override {
    return Create(key, parent, SnapshotKind::kView, labels);
  }

  common::Result<std::vector<MountSpec>> Mounts(const std::string& key) override {
    std::lock_guard lk(mu_);
    ASSIGN_OR_RETURN(Row row, GetRow(key));
    if (row.info.kind == SnapshotKind::kCommitted)
      return MakeError(Errc::kFailedPrecondition, "mounts of snapshot `" + key +
                                                      "`: committed snapshots are not mountable; "
                                                      "make a view of it");
    return MountsFor(row);
  }

  common::Result<fs::path> WritableDir(const std::string& key) override {
    std::lock_guard lk(mu_);
    ASSIGN_OR_RETURN(Row row, GetRow(key));
    if (row.info.kind != SnapshotKind::kActive)
      return MakeError(Errc::kFailedPrecondition, "snapshot `" + key + "` is " +
                                                      std::string(SnapshotKindName(row.info.kind)) +
                                                      ", not active");
    return FsPath(row.info.id);
  }

  common::Result<fs::path> FsDir(const std::string& key) override {
    std::lock_guard lk(mu_);
    ASSIGN_OR_RETURN(Row row, GetRow(key));
    return FsPath(row.info.id);
  }

  common::Status Commit(const std::string& name, const std::string& key,
                        const std::map<std::string, std::string>& labels,
                        const std::optional<std::string>& new_parent) override {
    std::lock_guard lk(mu_);
    auto op = "commit snapshot `" + key + "` as `" + name + "`";
    // The row waits for no sync: the snapshot is unsynced anyway (below),
    // and a machine crash that loses the row leaves what losing the files
    // would (Settle removes such a snapshot): the active snapshot, with
    // its lease, or an orphan directory; nothing refers to the name, as
    // any later synced commit (the image record) syncs this one first.
    store::UnsyncedCommit unsynced(db_);
    TRY(db_.Exec("BEGIN IMMEDIATE", op));
    Rollback rb{db_};
    ASSIGN_OR_RETURN(Row row, GetRow(key));
    if (row.info.kind != SnapshotKind::kActive)
      return MakeError(Errc::kFailedPrecondition, op + ": snapshot is not active");
    int64_t parent_id = row.parent_id;
    if (new_parent) {
      if (row.parent_id != 0)
        return MakeError(Errc::kFailedPrecondition, op + ": it already has a parent");
      if (!independent_layers())
        return MakeError(Errc::kFailedPrecondition,
                         op + ": the native snapshotter cannot re-parent a layer");
      if (!new_parent->empty()) {
        ASSIGN_OR_RETURN(Row p, GetRow(*new_parent));
        if (p.info.kind != SnapshotKind::kCommitted)
          return MakeError(Errc::kFailedPrecondition,
                           op + ": parent `" + *new_parent + "` is not committed");
        parent_id = p.info.id;
      }
    }
    // Like containerd, the committed snapshot gets the labels given to
    // Commit; the active snapshot's labels (e.g. "being extracted") end.
    const std::map<std::string, std::string>& merged = labels;
    ASSIGN_OR_RETURN(store::SqliteStmt st,
                     db_.Prepare("UPDATE snapshots SET name = ?1, kind = 'committed', "
                                 "parent_id = ?2, labels = ?3, updated_ns = ?4 WHERE id = ?5",
                                 op));
    TRY(st.Bind(1, name));
    if (parent_id != 0)
      TRY(st.Bind(2, parent_id));
    else
      TRY(st.BindNull(2));
    TRY(st.Bind(3, LabelsToJson(merged)));
    TRY(st.Bind(4, NowNs()));
    TRY(st.Bind(5, row.info.id));
    if (auto r = st.Run(); !r) {
      if (r.error().code == Errc::kAlreadyExists)
        return MakeError(Errc::kAlreadyExists, op + ": snapshot `" + name + "` already exists");
      return r;
    }
    // Not synced yet: Settle() syncs it later, or removes it after a reboot.
    ASSIGN_OR_RETURN(store::SqliteStmt mark,
                     db_.Prepare("INSERT OR REPLACE INTO snapshot_unsynced (id, boot_id, "
                                 "committed_ns) VALUES (?1, ?2, ?3)",
                                 op));
    TRY(mark.Bind(1, row.info.id));
    TRY(mark.Bind(2, boot_id_));
    TRY(mark.Bind(3, NowNs()));
    TRY(mark.Run());
    TRY(db_.Exec("COMMIT", op));
    rb.done = true;
    // An overlay layer's workdir is of no use once committed.
    (void)RemoveTree(WorkPath(row.info.id));
    return {};
  }

  common::Status Remove(const std::string& key) override {
    std::lock_guard lk(mu_);
    auto op = "remove snapshot `" + key + "`";
    TRY(db_.Exec("BEGIN IMMEDIATE", op));
    Rollback rb{db_};
    ASSIGN_OR_RETURN(Row row, GetRow(key));
    ASSIGN_OR_RETURN(store::SqliteStmt children,
                     db_.Prepare("SELECT name FROM snapshots WHERE parent_id = ?1 LIMIT 1", op));
    TRY(children.Bind(1, row.info.id));
    ASSIGN_OR_RETURN(bool has_child, children.Step());
    if (has_child)
      return MakeError(Errc::kFailedPrecondition,
                       op + ": snapshot `" + children.ColumnText(0) + "` depends on it");
    ASSIGN_OR_RETURN(store::SqliteStmt del, db_.Prepare("DELETE FROM snapshots WHERE id = ?1", op));
    TRY(del.Bind(1, row.info.id));
    TRY(del.Run());
    TRY(db_.Exec("COMMIT", op));
    rb.done = true;
    // Files after the commit; a failure leaves an orphan for Cleanup.
    if (auto st = RemoveTree(SnapshotDir(row.info.id)); !st)
      LOG(Warn) << "remove snapshot directory failed" << common::Kv("id", row.info.id)
                << common::Kv("error", st.error().message);
    return {};
  }

  common::Result<Info> Stat(const std::string& key) override {
    std::lock_guard lk(mu_);
    ASSIGN_OR_RETURN(Row row, GetRow(key));
    return row.info;
  }

  common::Result<std::vector<Info>> List() override {
    std::lock_guard lk(mu_);
    ASSIGN_OR_RETURN(store::SqliteStmt st,
                     db_.Prepare(std::string(kSelectRow) + "WHERE s.snapshotter = ?1 ORDER BY s.id",
                                 "list snapshots"));
    TRY(st.Bind(1, std::string(KindName(kind_))));
    std::vector<Info> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(ReadRow(st).info);
    }
    return out;
  }

  common::Result<Usage> GetUsage(const std::string& key) override {
    fs::path dir;
    {
      std::lock_guard lk(mu_);
      ASSIGN_OR_RETURN(Row row, GetRow(key));
      dir = FsPath(row.info.id);
    }
    return common::Wrap(TreeUsage(dir), "usage of snapshot `" + key + "`");
  }

  common::Result<int> Cleanup() override {
    std::set<int64_t> ids;
    {
      std::lock_guard lk(mu_);
      ASSIGN_OR_RETURN(store::SqliteStmt st,
                       db_.Prepare("SELECT id FROM snapshots", "clean snapshots"));
      for (;;) {
        ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        ids.insert(st.ColumnInt(0));
      }
    }
    int removed = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ / "snapshots", ec)) {
      std::string n = e.path().filename().string();
      char* end = nullptr;
      long long id = std::strtoll(n.c_str(), &end, 10);
      bool numeric = end != nullptr && *end == '\0' && !n.empty();
      // A directory newer than the id counter may be one a concurrent
      // Prepare has made but not yet inserted: those are skipped by age.
      if (numeric && ids.count(id)) continue;
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime < 60 && numeric)
        continue;
      if (auto r = RemoveTree(e.path()); r) ++removed;
    }
    return removed;
  }

  common::Result<SettleResult> Settle() override {
    SettleResult out;
    const std::string op = "settle snapshots";
    // 1. Lost: committed in an earlier boot and never synced, so their
    // files may not have reached the disk before the machine went down.
    // They and everything built on them go, in one transaction; images
    // that named them are unpacked again when next used.
    std::vector<int64_t> lost;
    {
      std::lock_guard lk(mu_);
      ASSIGN_OR_RETURN(std::vector<int64_t> any, LostIds(op));
      if (!any.empty()) {
        TRY(db_.Exec("BEGIN IMMEDIATE", op));
        Rollback rb{db_};
        ASSIGN_OR_RETURN(lost, LostIds(op));  // again, under the write lock
        ASSIGN_OR_RETURN(store::SqliteStmt del, db_.Prepare("DELETE FROM snapshots WHERE id IN (" +
                                                                std::string(kSelectLost) + ")",
                                                            op));
        TRY(del.Bind(1, boot_id_));
        TRY(del.Run());
        TRY(db_.Exec("COMMIT", op));
        rb.done = true;
      }
    }
    for (int64_t id : lost) {
      if (auto st = RemoveTree(SnapshotDir(id)); !st)
        LOG(Warn) << "remove snapshot directory failed" << common::Kv("id", id)
                  << common::Kv("error", st.error().message);
    }
    if (!lost.empty())
      LOG(Warn) << "removed snapshots committed before a reboot and never synced; their images "
                   "are unpacked again when used"
                << common::Kv("count", lost.size());
    out.removed = static_cast<int>(lost.size());

    // 2. Synced: committed in this boot at least settle_age ago. The kernel
    // has written most of it back by then, so one syncfs is cheap, and
    // after it the marks can go.
    const int64_t cutoff = NowNs() - settle_age_.count();
    {
      std::lock_guard lk(mu_);
      ASSIGN_OR_RETURN(store::SqliteStmt q, db_.Prepare("SELECT count(*) FROM snapshot_unsynced "
                                                        "WHERE boot_id = ?1 AND committed_ns <= ?2",
                                                        op));
      TRY(q.Bind(1, boot_id_));
      TRY(q.Bind(2, cutoff));
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row || q.ColumnInt(0) == 0) return out;
      out.synced = static_cast<int>(q.ColumnInt(0));
    }
    ASSIGN_OR_RETURN(common::UniqueFd dir,
                     common::Open((root_ / "snapshots").string(), O_RDONLY | O_DIRECTORY));
    if (::syncfs(dir.get()) != 0)
      return common::ErrnoError("syncfs `" + (root_ / "snapshots").string() + "`");
    std::lock_guard lk(mu_);
    ASSIGN_OR_RETURN(store::SqliteStmt del,
                     db_.Prepare("DELETE FROM snapshot_unsynced WHERE boot_id = ?1 AND "
                                 "committed_ns <= ?2",
                                 op));
    TRY(del.Bind(1, boot_id_));
    TRY(del.Bind(2, cutoff));
    TRY(del.Run());
    return out;
  }

  common::Status Init() {
    TRY(common::MkdirAll(root_ / "snapshots", 0700));
    TRY(db_.Exec("PRAGMA journal_mode=WAL", "open snapshots"));
    // SQLite's default, said here: every commit but an UnsyncedCommit's
    // waits for the WAL to reach the disk.
    TRY(db_.Exec("PRAGMA synchronous = FULL", "open snapshots"));
    TRY(db_.Exec("PRAGMA foreign_keys=ON", "open snapshots"));
    db_.KeepWalShort(store::kWalAutocheckpointPages);
    // Every store but a new one has the tables: a read finds them and
    // nothing is written. A new store creates them in one transaction,
    // unsynced: tables a machine crash loses are created again by the next
    // Open, and a synced commit that uses them syncs this one first.
    // A concurrent opener may create them between the read and the
    // write: IF NOT EXISTS makes the second a no-op.
    const std::string op = "create snapshots table";
    {
      ASSIGN_OR_RETURN(store::SqliteStmt q, db_.Prepare(kCountSchemaObjects, op));
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (row && q.ColumnInt(0) == kSchemaObjects) return {};
    }
    store::UnsyncedCommit unsynced(db_);
    TRY(db_.Exec("BEGIN IMMEDIATE", op));
    Rollback rb{db_};
    TRY(db_.Exec(kSchema, op));
    TRY(db_.Exec("COMMIT", op));
    rb.done = true;
    return {};
  }

 private:
  // Rolls back an open transaction unless marked done.
  struct Rollback {
    store::SqliteDb& db;
    bool done = false;
    ~Rollback() {
      if (!done) (void)db.Exec("ROLLBACK", "rollback");
    }
  };

  // REQUIRES: mu_ held.
  common::Result<std::vector<int64_t>> LostIds(const std::string& op) {
    ASSIGN_OR_RETURN(store::SqliteStmt st, db_.Prepare(std::string(kSelectLost), op));
    TRY(st.Bind(1, boot_id_));
    std::vector<int64_t> ids;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      ids.push_back(st.ColumnInt(0));
    }
    return ids;
  }

  fs::path SnapshotDir(int64_t id) const { return root_ / "snapshots" / std::to_string(id); }
  fs::path FsPath(int64_t id) const { return SnapshotDir(id) / "fs"; }
  fs::path WorkPath(int64_t id) const { return SnapshotDir(id) / "work"; }

  static Row ReadRow(store::SqliteStmt& st) {
    Row r;
    r.info.id = st.ColumnInt(0);
    r.info.name = st.ColumnText(1);
    r.info.parent = st.ColumnText(2);
    r.info.kind = KindFromText(st.ColumnText(3));
    r.info.labels = LabelsFromJson(st.ColumnText(4));
    r.info.created_ns = st.ColumnInt(5);
    r.info.updated_ns = st.ColumnInt(6);
    r.parent_id = st.ColumnInt(7);
    r.info.synced = st.ColumnInt(8) != 0;
    return r;
  }

  // REQUIRES: mu_ held.
  common::Result<Row> GetRow(const std::string& key) {
    ASSIGN_OR_RETURN(
        store::SqliteStmt st,
        db_.Prepare(std::string(kSelectRow) + "WHERE s.name = ?1 AND s.snapshotter = ?2",
                    "stat snapshot `" + key + "`"));
    TRY(st.Bind(1, key));
    TRY(st.Bind(2, std::string(KindName(kind_))));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return MakeError(Errc::kNotFound, "snapshot `" + key + "` does not exist");
    return ReadRow(st);
  }

  common::Result<Row> GetRowById(int64_t id) {
    ASSIGN_OR_RETURN(store::SqliteStmt st,
                     db_.Prepare(std::string(kSelectRow) + "WHERE s.id = ?1", "stat snapshot"));
    TRY(st.Bind(1, id));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row)
      return MakeError(Errc::kDataLoss, "snapshot id " + std::to_string(id) + " is missing");
    return ReadRow(st);
  }

  // The fs dirs of `row`'s ancestors, nearest first. REQUIRES: mu_ held.
  common::Result<std::vector<std::string>> Lowers(const Row& row) {
    std::vector<std::string> out;
    int64_t pid = row.parent_id;
    std::set<int64_t> seen;
    while (pid != 0) {
      if (!seen.insert(pid).second)
        return MakeError(Errc::kDataLoss, "snapshot parent chain of `" + row.info.name + "` loops");
      ASSIGN_OR_RETURN(Row p, GetRowById(pid));
      out.push_back(FsPath(p.info.id).string());
      pid = p.parent_id;
    }
    return out;
  }

  common::Result<std::vector<MountSpec>> MountsFor(const Row& row) {
    bool ro = row.info.kind == SnapshotKind::kView;
    if (kind_ == Kind::kNative)
      return std::vector<MountSpec>{
          {"bind", FsPath(row.info.id).string(), {ro ? "ro" : "rw", "rbind"}}};
    ASSIGN_OR_RETURN(std::vector<std::string> lowers, Lowers(row));
    if (lowers.empty())
      return std::vector<MountSpec>{
          {"bind", FsPath(row.info.id).string(), {ro ? "ro" : "rw", "rbind"}}};
    if (ro && lowers.size() == 1)
      return std::vector<MountSpec>{{"bind", lowers[0], {"ro", "rbind"}}};
    std::string lowerdir = "lowerdir=";
    for (size_t i = 0; i < lowers.size(); ++i) lowerdir += (i ? ":" : "") + lowers[i];
    std::vector<std::string> opts;
    if (!ro) {
      opts.push_back("workdir=" + WorkPath(row.info.id).string());
      opts.push_back("upperdir=" + FsPath(row.info.id).string());
    }
    opts.push_back(lowerdir);
    return std::vector<MountSpec>{{"overlay", "overlay", opts}};
  }

  common::Result<std::vector<MountSpec>> Create(const std::string& key, const std::string& parent,
                                                SnapshotKind kind,
                                                const std::map<std::string, std::string>& labels) {
    std::string op =
        std::string(kind == SnapshotKind::kView ? "view" : "prepare") + " snapshot `" + key + "`";
    if (key.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty key");
    std::lock_guard lk(mu_);
    // Declared before BEGIN and its Rollback: ends after the transaction.
    std::optional<store::UnsyncedCommit> unsynced;  // an extract snapshot's (kLabelExtract)
    if (kind == SnapshotKind::kActive && labels.contains(std::string(kLabelExtract)))
      unsynced.emplace(db_);
    TRY(db_.Exec("BEGIN IMMEDIATE", op));
    Rollback rb{db_};
    int64_t parent_id = 0;
    Row parent_row;
    if (!parent.empty()) {
      auto p = GetRow(parent);
      if (!p) return std::unexpected(p.error().Wrap(op));
      if (p->info.kind != SnapshotKind::kCommitted)
        return MakeError(Errc::kFailedPrecondition,
                         op + ": parent `" + parent + "` is not committed");
      parent_row = *p;
      parent_id = p->info.id;
    }
    ASSIGN_OR_RETURN(store::SqliteStmt ins,
                     db_.Prepare("INSERT INTO snapshots (name, parent_id, kind, labels, "
                                 "created_ns, updated_ns, snapshotter) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
                                 op));
    TRY(ins.Bind(1, key));
    if (parent_id != 0)
      TRY(ins.Bind(2, parent_id));
    else
      TRY(ins.BindNull(2));
    TRY(ins.Bind(3, std::string(SnapshotKindName(kind))));
    TRY(ins.Bind(4, LabelsToJson(labels)));
    TRY(ins.Bind(5, NowNs()));
    TRY(ins.Bind(6, std::string(KindName(kind_))));
    if (auto r = ins.Run(); !r) {
      if (r.error().code == Errc::kAlreadyExists)
        return MakeError(Errc::kAlreadyExists, op + ": snapshot `" + key + "` already exists");
      return std::unexpected(r.error());
    }
    int64_t id = sqlite3_last_insert_rowid(db_.get());
    // Directories before the commit: if we die before COMMIT, the row is
    // rolled back and the directory is an orphan for Cleanup.
    auto made = [&]() -> common::Status {
      // A directory already under this id is what a Create killed before its
      // COMMIT left (the rolled-back row hands the id out again): start
      // afresh rather than inherit its files or a partial copy of another
      // parent.
      TRY(RemoveTree(SnapshotDir(id)));
      TRY(common::MkdirAll(SnapshotDir(id), 0700));
      if (::mkdir(FsPath(id).c_str(), 0755) != 0 && errno != EEXIST)
        return common::ErrnoError("create `" + FsPath(id).string() + "`");
      if (kind_ == Kind::kOverlay && ::mkdir(WorkPath(id).c_str(), 0700) != 0 && errno != EEXIST)
        return common::ErrnoError("create `" + WorkPath(id).string() + "`");
      if (kind_ == Kind::kNative && parent_id != 0) TRY(CopyTree(FsPath(parent_id), FsPath(id)));
      return {};
    }();
    if (!made) {
      (void)RemoveTree(SnapshotDir(id));
      return std::unexpected(made.error().Wrap(op));
    }
    TRY(db_.Exec("COMMIT", op));
    rb.done = true;
    Row row;
    row.info.id = id;
    row.info.name = key;
    row.info.parent = parent;
    row.info.kind = kind;
    row.parent_id = parent_id;
    return MountsFor(row);
  }

  Kind kind_;
  fs::path root_;
  store::SqliteDb db_;
  const std::string boot_id_;
  const std::chrono::nanoseconds settle_age_;
  std::mutex mu_;
};

}  // namespace

std::string_view KindName(Kind k) { return k == Kind::kOverlay ? "overlayfs" : "native"; }

std::string_view SnapshotKindName(SnapshotKind k) {
  switch (k) {
    case SnapshotKind::kActive:
      return "active";
    case SnapshotKind::kView:
      return "view";
    case SnapshotKind::kCommitted:
      return "committed";
  }
  return "active";
}

std::string MountSpec::Data() const {
  std::string out;
  for (const auto& o : options) {
    if (o == "ro" || o == "rw" || o == "rbind" || o == "bind") continue;
    if (!out.empty()) out += ",";
    out += o;
  }
  return out;
}

bool OverlaySupported(const fs::path& root) {
  std::lock_guard lk(g_probe_mu);
  auto key = fs::absolute(root).string();
  auto it = g_probe_cache.find(key);
  if (it != g_probe_cache.end()) return it->second;
  // Only a process that may mount reads or writes the store's answer: a
  // root without CAP_SYS_ADMIN probes, and fails, as before.
  const std::string probe_key =
      ::geteuid() == 0 && HasCapSysAdmin() ? OverlayProbeKey(root) : std::string();
  bool ok = !probe_key.empty() && OverlayCached(root, probe_key);
  if (!ok) {
    ok = ProbeOverlay(root);
    if (ok && !probe_key.empty()) CacheOverlay(root, probe_key);
  }
  g_probe_cache[key] = ok;
  return ok;
}

common::Result<std::unique_ptr<Snapshotter>> Open(const fs::path& root, Options options) {
  TRY(common::MkdirAll(root, 0700));
  Kind kind = options.kind;
  if (kind == Kind::kOverlay && !OverlaySupported(root)) {
    if (!options.fallback_to_native)
      return MakeError(Errc::kFailedPrecondition,
                       "overlayfs cannot be mounted under `" + root.string() + "`");
    LOG(Warn) << "overlayfs cannot be mounted here; using the native snapshotter"
              << common::Kv("root", root.string());
    kind = Kind::kNative;
  }
  ASSIGN_OR_RETURN(store::SqliteDb db, store::SqliteDb::Open(root / "metadata.db"));
  db.SetBusyTimeout(10000);
  auto impl = std::make_unique<SnapshotterImpl>(
      kind, root, std::move(db), options.boot_id.empty() ? BootId() : options.boot_id,
      options.settle_age);
  TRY(impl->Init());
  if (options.settle) {
    auto settled = impl->Settle();
    if (!settled) return std::unexpected(settled.error().Wrap("open snapshotter"));
  }
  return std::unique_ptr<Snapshotter>(std::move(impl));
}

common::Result<std::vector<std::unique_ptr<Snapshotter>>> OpenAll(const fs::path& root,
                                                                  Kind preferred) {
  std::vector<std::unique_ptr<Snapshotter>> out;
  ASSIGN_OR_RETURN(std::unique_ptr<Snapshotter> first,
                   common::Wrap(Open(root, {.kind = preferred, .fallback_to_native = true}),
                                "open snapshotter " + std::string(KindName(preferred))));
  const Kind other = first->kind() == Kind::kOverlay ? Kind::kNative : Kind::kOverlay;
  out.push_back(std::move(first));
  if (other == Kind::kNative || OverlaySupported(root)) {
    ASSIGN_OR_RETURN(std::unique_ptr<Snapshotter> second,
                     common::Wrap(Open(root, {.kind = other, .fallback_to_native = false}),
                                  "open snapshotter " + std::string(KindName(other))));
    out.push_back(std::move(second));
  }
  return out;
}

}  // namespace snapshot
