#include "store/metadata.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "store/metadata_internal.h"

namespace store {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

namespace {

// Version 1. Timestamps are Unix nanoseconds; digests are "sha256:<hex>"
// strings. Keep docs/store.md in step with this text.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE images (
  name        TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
  media_type  TEXT NOT NULL,
  digest      TEXT NOT NULL,
  size        INTEGER NOT NULL CHECK (size >= 0),
  annotations TEXT NOT NULL DEFAULT '{}',
  created_ns  INTEGER NOT NULL,
  updated_ns  INTEGER NOT NULL
);
CREATE INDEX images_by_digest ON images (digest);

CREATE TABLE image_labels (
  image TEXT NOT NULL REFERENCES images (name) ON DELETE CASCADE ON UPDATE CASCADE,
  key   TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (image, key)
) WITHOUT ROWID;

CREATE TABLE blobs (
  digest     TEXT PRIMARY KEY NOT NULL,
  size       INTEGER NOT NULL CHECK (size >= 0),
  media_type TEXT NOT NULL,
  created_ns INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE leases (
  id         TEXT PRIMARY KEY NOT NULL,
  created_ns INTEGER NOT NULL,
  expires_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX leases_by_expiry ON leases (expires_ns);

CREATE TABLE lease_resources (
  lease TEXT NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
  kind  TEXT NOT NULL CHECK (kind IN ('content', 'snapshot')),
  id    TEXT NOT NULL,
  PRIMARY KEY (lease, kind, id)
) WITHOUT ROWID;
CREATE INDEX lease_resources_by_kind ON lease_resources (kind, id);
)sql";

// Version 2: the snapshots containerd names through the snapshotter door
// (src/ctrsnap/door.h): containerd's backend key, the gantry snapshot it
// stands for, and containerd's parent name and labels. Keep docs/store.md
// in step with this text.
constexpr std::string_view kSchemaV2 = R"sql(
CREATE TABLE containerd_snapshots (
  snapshotter TEXT NOT NULL,
  name        TEXT NOT NULL CHECK (name <> ''),
  target      TEXT NOT NULL CHECK (target <> ''),
  parent      TEXT NOT NULL DEFAULT '',
  labels      TEXT NOT NULL DEFAULT '{}',
  created_ns  INTEGER NOT NULL,
  updated_ns  INTEGER NOT NULL,
  PRIMARY KEY (snapshotter, name)
) WITHOUT ROWID;
CREATE INDEX containerd_snapshots_by_target ON containerd_snapshots (snapshotter, target);
CREATE INDEX containerd_snapshots_by_parent ON containerd_snapshots (snapshotter, parent);
)sql";

// Version 3: image pins (store/pins.cc). A pin names an image record by
// its name and belongs to an owner (a pre-pull list); the image need not
// exist yet, and deleting the image keeps the pin. Keep docs/store.md in
// step with this text.
constexpr std::string_view kSchemaV3 = R"sql(
CREATE TABLE pins (
  owner      TEXT NOT NULL CHECK (owner <> ''),
  name       TEXT NOT NULL CHECK (name <> ''),
  created_ns INTEGER NOT NULL,
  PRIMARY KEY (owner, name)
) WITHOUT ROWID;
CREATE INDEX pins_by_name ON pins (name);
)sql";

// Version 4: counters the CLI adds for what it did (pulls, prunes), read
// by `gantry serve` at each scrape (docs/metrics.md). `labels` holds the
// label values in the metric's label-name order, joined by "\x1f". Keep
// docs/store.md in step with this text.
constexpr std::string_view kSchemaV4 = R"sql(
CREATE TABLE counters (
  name   TEXT NOT NULL CHECK (name <> ''),
  labels TEXT NOT NULL,
  value  INTEGER NOT NULL CHECK (value >= 0),
  PRIMARY KEY (name, labels)
) WITHOUT ROWID;
)sql";

// Migrations[i] takes the schema from version i to i + 1.
constexpr std::string_view kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4};
static_assert(std::size(kMigrations) == kMetadataSchemaVersion);

Result<int64_t> QueryInt(SqliteDb& db, std::string_view sql, std::string_view op) {
  ASSIGN_OR_RETURN(SqliteStmt st, db.Prepare(sql, op));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return MakeError(Errc::kInternal, std::string(op) + ": no result row");
  return st.ColumnInt(0);
}

Status Migrate(SqliteDb& db) {
  const std::string op = "migrate schema";
  TRY(db.Exec("BEGIN IMMEDIATE", op));
  auto body = [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t version, QueryInt(db, "PRAGMA user_version", op));
    if (version > kMetadataSchemaVersion)
      return MakeError(Errc::kFailedPrecondition,
                       op + ": sqlite `" + db.path().string() + "`: schema version " +
                           std::to_string(version) + " is newer than this gantry supports (" +
                           std::to_string(kMetadataSchemaVersion) + ")");
    if (version < 0)
      return MakeError(Errc::kDataLoss,
                       op + ": sqlite `" + db.path().string() + "`: negative schema version");
    for (int64_t v = version; v < kMetadataSchemaVersion; ++v) {
      TRY(db.Exec(kMigrations[v], op + " to version " + std::to_string(v + 1)));
      TRY(db.Exec("PRAGMA user_version = " + std::to_string(v + 1), op));
      LOG(Debug) << "migrated metadata schema" << common::Kv("db", db.path().string())
                 << common::Kv("version", v + 1);
    }
    return {};
  };
  Status st = body();
  if (!st) {
    (void)db.Exec("ROLLBACK", op);
    return st;
  }
  return db.Exec("COMMIT", op);
}

// journal_mode returns the mode in effect; WAL needs shared memory, which
// some network file systems lack. Carry on in the default mode there.
Status UseWal(SqliteDb& db, std::string_view op) {
  ASSIGN_OR_RETURN(SqliteStmt st, db.Prepare("PRAGMA journal_mode = WAL", op));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (row && st.ColumnText(0) != "wal")
    LOG(Warn) << "metadata database is not in WAL mode" << common::Kv("db", db.path().string())
              << common::Kv("mode", st.ColumnText(0));
  return {};
}

// Creates <root>/metadata.db the way a blob is committed: built under a
// temporary name with no syncs (nothing in it is worth one until it is
// complete), fsynced once, then linked into place unless a concurrent
// opener was first. The name thus only ever holds a complete database in
// WAL mode at the current schema. Built in place, with synchronous FULL,
// the same database costs seven fsyncs (journal, directory, journal
// header, page one, WAL header, directory, commit) before the first
// command on a new store can start its work.
Status CreateDb(const std::filesystem::path& root) {
  const std::string op = "create metadata database";
  const std::filesystem::path path = MetadataDb::DbPath(root);
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      (root / ("metadata.db.new-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
          .string();
  // Also clears what a dead process of the same pid left under this name.
  auto remove_tmp = [&] {
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) ::unlink((tmp + suffix).c_str());
  };
  remove_tmp();
  auto build = [&]() -> Status {
    {
      ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(tmp));
      TRY(db.Exec("PRAGMA synchronous = OFF", op));
      TRY(UseWal(db, op));
      TRY(Migrate(db));
    }  // the last close checkpoints the WAL into the file and removes it
    ASSIGN_OR_RETURN(common::UniqueFd fd, common::Wrap(common::Open(tmp, O_RDONLY), op));
    if (::fsync(fd.get()) != 0) return common::ErrnoError(op + ": fsync `" + tmp + "`");
    if (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST)
      return common::ErrnoError(op + ": link `" + tmp + "` to `" + path.string() + "`");
    return common::Wrap(common::FsyncDir(root), op);
  };
  Status st = build();
  remove_tmp();
  return st;
}

// PRAGMA mmap_size: far more than any store's database.
constexpr int64_t kMetadataMmapBytes = int64_t{256} << 20;

}  // namespace

// ---- MetadataDb ------------------------------------------------------------

MetadataDb::MetadataDb(std::unique_ptr<MetadataDbState> state) : state_(std::move(state)) {}
MetadataDb::MetadataDb(MetadataDb&&) noexcept = default;
MetadataDb& MetadataDb::operator=(MetadataDb&&) noexcept = default;
MetadataDb::~MetadataDb() = default;

const std::filesystem::path& MetadataDb::path() const { return state_->db.path(); }

Result<MetadataDb> MetadataDb::Open(const std::filesystem::path& root, Options options) {
  TRY(common::Wrap(common::MkdirAll(root), "open metadata database"));
  if (std::error_code ec; !std::filesystem::exists(DbPath(root), ec) && !ec) TRY(CreateDb(root));
  auto state = std::make_unique<MetadataDbState>();
  state->now = std::move(options.now);
  state->root = root;
  ASSIGN_OR_RETURN(state->db, SqliteDb::Open(DbPath(root)));
  SqliteDb& db = state->db;
  db.SetBusyTimeout(static_cast<int>(options.busy_timeout.count()));
  const std::string op = "open metadata database";
  TRY(UseWal(db, op));
  TRY(db.Exec("PRAGMA foreign_keys = ON", op));
  TRY(db.Exec("PRAGMA synchronous = FULL", op));
  // Every commit is already durable (FULL syncs the WAL), so the checkpoint
  // SQLite runs when the last connection closes only moves pages into the
  // main file, at the price of two more fsyncs at the end of every command.
  // The WAL is checkpointed by the commits instead, and truncated by the
  // close of a command that made it long (KeepWalShort), so that the next
  // open reads little of it back.
  db.KeepWalShort(kWalAutocheckpointPages);
  // Reads map the database file rather than copy each page into SQLite's
  // cache (pages still in the WAL are copied): a listing of many images
  // then faults in a few mappings instead of a fresh page per page read.
  // An I/O error while reading a mapped page is a SIGBUS instead of an
  // error, which the store survives as it survives a kill.
  TRY(db.Exec("PRAGMA mmap_size = " + std::to_string(kMetadataMmapBytes), op));
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  TRY(Migrate(db));
  return MetadataDb(std::move(state));
}

Result<Txn> MetadataDb::BeginWith(std::string_view sql, bool unsynced) {
  if (state_->txn_owner.load() == std::this_thread::get_id())
    return MakeError(Errc::kFailedPrecondition,
                     "begin transaction: sqlite `" + path().string() +
                         "`: this thread already holds a transaction on this connection");
  std::unique_lock<std::mutex> lock(state_->mu);
  // End restores the level before the lock is released, so no other
  // transaction of this connection commits unsynced.
  std::unique_ptr<UnsyncedCommit> level;
  if (unsynced) level = std::make_unique<UnsyncedCommit>(state_->db);
  TRY(state_->db.Exec(sql, "begin transaction"));
  state_->txn_owner.store(std::this_thread::get_id());
  Txn txn(state_.get(), std::move(lock));
  txn.unsynced_ = std::move(level);
  return txn;
}

Result<int64_t> MetadataDb::DataVersion() {
  std::lock_guard<std::mutex> lock(state_->mu);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("PRAGMA data_version", "read data version"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return MakeError(Errc::kInternal, "read data version: no row");
  return st.ColumnInt(0);
}

Result<Txn> MetadataDb::Begin() { return BeginWith("BEGIN IMMEDIATE"); }
Result<Txn> MetadataDb::BeginUnsynced() { return BeginWith("BEGIN IMMEDIATE", /*unsynced=*/true); }
Result<Txn> MetadataDb::BeginRead() { return BeginWith("BEGIN DEFERRED"); }

// The single-operation forms: a read opens a deferred transaction, a write
// an immediate one that is committed here. The Txn operation names itself
// in its errors; `op` names the begin and commit steps around it.
#define GANTRY_READ_OP(op, call)                                     \
  auto txn = BeginRead();                                            \
  if (!txn) return std::unexpected(std::move(txn.error()).Wrap(op)); \
  return txn->call
#define GANTRY_WRITE_OP(op, call)                                                        \
  auto txn = Begin();                                                                    \
  if (!txn) return std::unexpected(std::move(txn.error()).Wrap(op));                     \
  auto r = txn->call;                                                                    \
  if (!r) return r;                                                                      \
  if (auto c = txn->Commit(); !c) return std::unexpected(std::move(c.error()).Wrap(op)); \
  return r

namespace {
std::string Q(std::string_view s) { return "`" + std::string(s) + "`"; }
}  // namespace

Status MetadataDb::PutImage(const ImageRecord& record) {
  GANTRY_WRITE_OP("put image " + Q(record.name), PutImage(record));
}
Result<ImageRecord> MetadataDb::GetImage(std::string_view name) {
  GANTRY_READ_OP("get image " + Q(name), GetImage(name));
}
Result<std::vector<ImageRecord>> MetadataDb::ListImages() {
  GANTRY_READ_OP("list images", ListImages());
}
Status MetadataDb::ForEachImage(const std::function<Status(ImageRecord&&)>& fn) {
  GANTRY_READ_OP("list images", ForEachImage(fn));
}
Status MetadataDb::DeleteImage(std::string_view name) {
  GANTRY_WRITE_OP("delete image " + Q(name), DeleteImage(name));
}
Status MetadataDb::SetImageLabel(std::string_view name, std::string_view key,
                                 std::string_view value) {
  GANTRY_WRITE_OP("label image " + Q(name), SetImageLabel(name, key, value));
}
Result<std::vector<ImageRecord>> MetadataDb::ImagesByTarget(const common::Digest& digest) {
  GANTRY_READ_OP("list images of " + digest.str(), ImagesByTarget(digest));
}
Status MetadataDb::PutBlob(const common::Digest& digest, int64_t size,
                           std::string_view media_type) {
  GANTRY_WRITE_OP("put blob " + digest.str(), PutBlob(digest, size, media_type));
}
Result<BlobRecord> MetadataDb::GetBlob(const common::Digest& digest) {
  GANTRY_READ_OP("get blob " + digest.str(), GetBlob(digest));
}
Status MetadataDb::DeleteBlob(const common::Digest& digest) {
  GANTRY_WRITE_OP("delete blob record " + digest.str(), DeleteBlob(digest));
}
Result<std::vector<BlobRecord>> MetadataDb::ListBlobs() {
  GANTRY_READ_OP("list blobs", ListBlobs());
}
Result<StoreTotals> MetadataDb::Totals() { GANTRY_READ_OP("count images and blobs", Totals()); }
Status MetadataDb::AddCounters(std::span<const CounterDelta> deltas) {
  if (deltas.empty()) return {};
  auto txn = BeginUnsynced();
  if (!txn) return std::unexpected(std::move(txn.error()).Wrap("add counters"));
  TRY(txn->AddCounters(deltas));
  if (auto c = txn->Commit(); !c) return std::unexpected(std::move(c.error()).Wrap("add counters"));
  return {};
}
Result<std::vector<CounterDelta>> MetadataDb::ListCounters() {
  GANTRY_READ_OP("list counters", ListCounters());
}
Result<LeaseHold> MetadataDb::CreateLease(std::chrono::seconds ttl) {
  GANTRY_WRITE_OP("create lease", CreateLease(ttl));
}
Status MetadataDb::RenewLease(std::string_view lease, std::chrono::seconds ttl) {
  GANTRY_WRITE_OP("renew lease " + Q(lease), RenewLease(lease, ttl));
}
Status MetadataDb::AddLeaseResource(std::string_view lease, std::string_view kind,
                                    std::string_view id) {
  GANTRY_WRITE_OP("add " + std::string(kind) + " " + Q(id) + " to lease " + Q(lease),
                  AddLeaseResource(lease, kind, id));
}
Status MetadataDb::RemoveLeaseResource(std::string_view lease, std::string_view kind,
                                       std::string_view id) {
  GANTRY_WRITE_OP("remove " + std::string(kind) + " " + Q(id) + " from lease " + Q(lease),
                  RemoveLeaseResource(lease, kind, id));
}
Status MetadataDb::DeleteLease(std::string_view lease) {
  GANTRY_WRITE_OP("delete lease " + Q(lease), DeleteLease(lease));
}
Status MetadataDb::DeleteLease(LeaseHold& hold) {
  if (!hold.held()) return {};
  if (auto st = DeleteLease(hold.lease()); !st && st.error().code != Errc::kNotFound) return st;
  hold.Release();
  return {};
}
Result<std::vector<std::string>> MetadataDb::LeasedResources(std::string_view kind) {
  GANTRY_READ_OP("list leased " + std::string(kind) + " resources", LeasedResources(kind));
}
Status MetadataDb::PutContainerdSnapshot(const ContainerdSnapshotRecord& record) {
  GANTRY_WRITE_OP("put containerd snapshot " + Q(record.name), PutContainerdSnapshot(record));
}
Result<ContainerdSnapshotRecord> MetadataDb::GetContainerdSnapshot(std::string_view snapshotter,
                                                                   std::string_view name) {
  GANTRY_READ_OP("get containerd snapshot " + Q(name), GetContainerdSnapshot(snapshotter, name));
}
Status MetadataDb::DeleteContainerdSnapshot(std::string_view snapshotter, std::string_view name) {
  GANTRY_WRITE_OP("delete containerd snapshot " + Q(name),
                  DeleteContainerdSnapshot(snapshotter, name));
}
Result<std::vector<ContainerdSnapshotRecord>> MetadataDb::ListContainerdSnapshots() {
  GANTRY_READ_OP("list containerd snapshots", ListContainerdSnapshots());
}
Status MetadataDb::SetPins(std::string_view owner, const std::vector<std::string>& names) {
  GANTRY_WRITE_OP("set pins of " + Q(owner), SetPins(owner, names));
}
Result<std::vector<PinRecord>> MetadataDb::ListPins() { GANTRY_READ_OP("list pins", ListPins()); }
Result<std::vector<LeaseRecord>> MetadataDb::ListLeases() {
  GANTRY_READ_OP("list leases", ListLeases());
}
Status MetadataDb::DeleteExpiredLeases() {
  GANTRY_WRITE_OP("delete expired leases", DeleteExpiredLeases());
}

#undef GANTRY_READ_OP
#undef GANTRY_WRITE_OP

// ---- Txn -------------------------------------------------------------------

Txn::Txn(MetadataDbState* state, std::unique_lock<std::mutex> lock)
    : state_(state), lock_(std::move(lock)) {}

Txn::Txn(Txn&& o) noexcept
    : state_(std::exchange(o.state_, nullptr)),
      lock_(std::move(o.lock_)),
      unsynced_(std::move(o.unsynced_)) {}

Txn& Txn::operator=(Txn&& o) noexcept {
  if (this != &o) {
    Rollback();
    state_ = std::exchange(o.state_, nullptr);
    lock_ = std::move(o.lock_);
    unsynced_ = std::move(o.unsynced_);
  }
  return *this;
}

Txn::~Txn() { Rollback(); }

void Txn::End() {
  unsynced_.reset();
  state_->txn_owner.store(std::thread::id());
  state_ = nullptr;
  if (lock_.owns_lock()) lock_.unlock();
}

Status Txn::Commit() {
  if (state_ == nullptr)
    return MakeError(Errc::kFailedPrecondition, "commit transaction: not active");
  TRY(state_->db.Exec("COMMIT", "commit transaction"));
  End();
  return {};
}

void Txn::Rollback() {
  if (state_ == nullptr) return;
  if (auto st = state_->db.Exec("ROLLBACK", "roll back transaction"); !st)
    LOG(Debug) << st.error().message;
  End();
}

}  // namespace store
