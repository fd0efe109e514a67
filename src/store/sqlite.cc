#include "store/sqlite.h"

#include "common/log.h"

namespace store {

using common::Errc;
using common::Error;
using common::Result;
using common::Status;

Errc ErrcFromSqlite(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return Errc::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Errc::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Errc::kDataLoss;
    case SQLITE_CONSTRAINT:
      return Errc::kFailedPrecondition;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Errc::kResourceExhausted;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Errc::kPermissionDenied;
    case SQLITE_INTERRUPT:
      return Errc::kCancelled;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
      return Errc::kInvalidArgument;
    default:
      return Errc::kInternal;
  }
}

Error SqliteError(sqlite3* db, int rc, std::string_view op, const std::filesystem::path& db_path) {
  std::string path = db_path.string();
  if (db != nullptr) {
    const char* f = sqlite3_db_filename(db, "main");
    if (f != nullptr && *f != '\0') path = f;
  }
  std::string cause;
  if (db != nullptr && sqlite3_extended_errcode(db) == rc)
    cause = sqlite3_errmsg(db);
  else
    cause = sqlite3_errstr(rc);
  Error e;
  e.code = ErrcFromSqlite(rc);
  int primary = rc & 0xff;
  if (db != nullptr && (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR)) {
    e.sys_errno = sqlite3_system_errno(db);
    if (e.sys_errno != 0) e.code = common::ErrcFromErrno(e.sys_errno);
  }
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) cause += " (busy timeout expired)";
  e.message = std::string(op) + ": sqlite `" + path + "`: " + cause;
  return e;
}

void SqliteDb::Closer::operator()(sqlite3* db) const {
  if (wal != nullptr && wal->frames >= wal->pages) {
    // Without waiting for other connections: they would make it BUSY.
    sqlite3_busy_timeout(db, 0);
    int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    if (rc != SQLITE_OK) LOG(Debug) << "sqlite wal truncation skipped" << common::Kv("rc", rc);
  }
  int rc = sqlite3_close_v2(db);
  if (rc != SQLITE_OK) LOG(Debug) << "sqlite close failed" << common::Kv("rc", rc);
}

Result<SqliteDb> SqliteDb::Open(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db;
  db.db_.reset(raw);  // sqlite3_open_v2 may return a handle even on failure
  db.path_ = path;
  if (rc != SQLITE_OK) return std::unexpected(SqliteError(raw, rc, "open database", path));
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

void SqliteDb::SetBusyTimeout(int ms) { sqlite3_busy_timeout(db_.get(), ms); }

// Called after each commit of the connection, with no lock held, with the
// WAL's length in frames.
int SqliteDb::OnWalCommit(void* arg, sqlite3* db, const char* name, int frames) {
  auto* wal = static_cast<WalUpkeep*>(arg);
  wal->frames = frames;
  // As SQLite's own autocheckpoint: its errors are not the commit's.
  if (frames >= wal->pages)
    (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  return SQLITE_OK;
}

void SqliteDb::KeepWalShort(int pages) {
  Closer& c = db_.get_deleter();
  c.wal = std::make_unique<WalUpkeep>(WalUpkeep{.pages = pages, .frames = 0});
  sqlite3_wal_hook(db_.get(), &SqliteDb::OnWalCommit, c.wal.get());
}

Status SqliteDb::Exec(std::string_view sql, std::string_view op) {
  std::string text(sql);
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(Fail(rc, op));
  return {};
}

UnsyncedCommit::UnsyncedCommit(SqliteDb& db) : db_(db) {
  (void)db_.Exec("PRAGMA synchronous = NORMAL", "begin an unsynced transaction");
}

UnsyncedCommit::~UnsyncedCommit() {
  if (auto st = db_.Exec("PRAGMA synchronous = FULL", "end an unsynced transaction"); !st)
    LOG(Warn) << st.error().message;
}

Result<SqliteStmt> SqliteDb::Prepare(std::string_view sql, std::string_view op) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return std::unexpected(Fail(rc, op));
  }
  return SqliteStmt(s, std::string(op));
}

int64_t SqliteDb::Changes() const { return sqlite3_changes64(db_.get()); }

Status SqliteStmt::Check(int rc) const {
  if (rc == SQLITE_OK) return {};
  return std::unexpected(SqliteError(sqlite3_db_handle(stmt_.get()), rc, op_));
}

Status SqliteStmt::Bind(int index, int64_t value) {
  return Check(sqlite3_bind_int64(stmt_.get(), index, value));
}

Status SqliteStmt::Bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies, so the caller's buffer may go away.
  return Check(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT,
                                   SQLITE_UTF8));
}

Status SqliteStmt::BindNull(int index) { return Check(sqlite3_bind_null(stmt_.get(), index)); }

Result<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = SqliteError(sqlite3_db_handle(stmt_.get()), rc, op_);
  sqlite3_reset(stmt_.get());
  return std::unexpected(std::move(e));
}

Status SqliteStmt::Run() {
  for (;;) {
    auto row = Step();
    if (!row) return std::unexpected(std::move(row.error()));
    if (!*row) return {};
  }
}

void SqliteStmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

int64_t SqliteStmt::ColumnInt(int col) const { return sqlite3_column_int64(stmt_.get(), col); }

std::string SqliteStmt::ColumnText(int col) const { return std::string(ColumnTextView(col)); }

std::string_view SqliteStmt::ColumnTextView(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), col);
  if (p == nullptr) return {};
  int n = sqlite3_column_bytes(stmt_.get(), col);
  return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

bool SqliteStmt::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}

}  // namespace store
