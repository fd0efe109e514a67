#pragma once
// Internal to the store module: RAII owners for an SQLite connection and a
// prepared statement, and the mapping of SQLite result codes onto Errc.
//
// Every error message names the operation and the database path:
//   "put image `docker.io/library/busybox:latest`: sqlite `/var/lib/gantry/metadata.db`:
//    database is locked"
//
// Thread-safety: none. The owner (MetadataDb) serialises all use of one
// connection with its own mutex; connections are opened SQLITE_OPEN_NOMUTEX.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace store {

// How long every connection to metadata.db lets the WAL grow
// (SqliteDb::KeepWalShort). Every process is the database's first
// connection, and the first connection reads the whole WAL back (one read
// per page, each checksummed) before its first query, so the WAL's length
// is paid by every command: SQLite's default of 1000 pages (4 MiB) costs a
// re-pull or a listing several milliseconds. At 100 a checkpoint (its
// pages written back, one fsync of the database file) comes every few
// pulls.
inline constexpr int kWalAutocheckpointPages = 100;

// Maps an SQLite result code (primary or extended) to an Error:
//   BUSY / LOCKED (after the busy timeout)   → Unavailable
//   CORRUPT / NOTADB                         → DataLoss
//   CONSTRAINT_PRIMARYKEY / _UNIQUE          → AlreadyExists
//   other CONSTRAINT (foreign key, check…)   → FailedPrecondition
//   FULL                                     → ResourceExhausted
//   PERM / READONLY / AUTH                   → PermissionDenied
//   CANTOPEN / IOERR                         → from the system errno, else Internal
//   anything else                            → Internal
// `db` may be null (open failures); when set, its error message, system
// errno and file name are used, otherwise `db_path`.
[[nodiscard]] common::Error SqliteError(sqlite3* db, int rc, std::string_view op,
                                        const std::filesystem::path& db_path = {});
[[nodiscard]] common::Errc ErrcFromSqlite(int rc);

class SqliteStmt;

// Owns one sqlite3 connection; closes it on destruction. Move-only.
class SqliteDb {
 public:
  // sqlite3_open_v2 with READWRITE|CREATE|NOMUTEX and extended result codes.
  [[nodiscard]] static common::Result<SqliteDb> Open(const std::filesystem::path& path);

  SqliteDb() = default;
  SqliteDb(SqliteDb&&) noexcept = default;
  SqliteDb& operator=(SqliteDb&&) noexcept = default;

  sqlite3* get() const { return db_.get(); }
  const std::filesystem::path& path() const { return path_; }

  // Runs one or more statements that return no rows we need.
  [[nodiscard]] common::Status Exec(std::string_view sql, std::string_view op);
  // Prepares one statement. Errors: as SqliteError, naming `op`.
  [[nodiscard]] common::Result<SqliteStmt> Prepare(std::string_view sql, std::string_view op);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  [[nodiscard]] common::Error Fail(int rc, std::string_view op) const {
    return SqliteError(db_.get(), rc, op, path_);
  }
  // sqlite3_busy_timeout.
  void SetBusyTimeout(int ms);

  // WAL upkeep in place of SQLite's wal_autocheckpoint (for a database in
  // WAL mode): a commit that leaves the WAL `pages` frames long or longer
  // checkpoints it (PASSIVE, as SQLite's autocheckpoint would), and closing
  // a connection whose commits saw that also truncates the WAL, so that
  // the next process reads none of it back. The truncation never waits:
  // while another connection reads or writes, the WAL stays as it is (a
  // later close truncates it).
  void KeepWalShort(int pages);

 private:
  struct WalUpkeep {
    int pages = 0;   // the threshold
    int frames = 0;  // the WAL's length after this connection's last commit
  };
  struct Closer {
    void operator()(sqlite3* db) const;
    std::unique_ptr<WalUpkeep> wal;  // set by KeepWalShort; the WAL hook's argument
  };
  // sqlite3_wal_hook of KeepWalShort; `arg` is the WalUpkeep.
  static int OnWalCommit(void* arg, sqlite3* db, const char* name, int frames);
  std::unique_ptr<sqlite3, Closer> db_;
  std::filesystem::path path_;
};

// One transaction of `db` committed without waiting for the WAL to reach
// the disk: SQLite's synchronous NORMAL while it lives, FULL (what every
// connection of the store uses) again after. A kill of the process loses
// nothing committed; a machine crash may lose the commit, or any later one
// before the next synced commit, and the database stays consistent. For
// writes whose loss in a crash is harmless. SQLite changes the level only
// outside a transaction: construct it before BEGIN, destroy it after
// COMMIT or ROLLBACK. Failing to lower the level only costs
// the sync; failing to restore it is logged.
class UnsyncedCommit {
 public:
  explicit UnsyncedCommit(SqliteDb& db);
  UnsyncedCommit(const UnsyncedCommit&) = delete;
  UnsyncedCommit& operator=(const UnsyncedCommit&) = delete;
  ~UnsyncedCommit();

 private:
  SqliteDb& db_;
};

// A prepared statement; finalized on destruction. Bind indexes are 1-based,
// column indexes 0-based (SQLite's convention). Move-only.
class SqliteStmt {
 public:
  SqliteStmt(SqliteStmt&&) noexcept = default;
  SqliteStmt& operator=(SqliteStmt&&) noexcept = default;

  [[nodiscard]] common::Status Bind(int index, int64_t value);
  [[nodiscard]] common::Status Bind(int index, std::string_view value);
  [[nodiscard]] common::Status BindNull(int index);

  // Steps once: true when a row is available, false when done.
  [[nodiscard]] common::Result<bool> Step();
  // Steps to completion, for statements that return no rows.
  [[nodiscard]] common::Status Run();
  // Resets to run again with new bindings (bindings are cleared).
  void Reset();

  int64_t ColumnInt(int col) const;
  std::string ColumnText(int col) const;
  // The same without a copy: valid until the next Step, Reset or column
  // call on this column with another type.
  std::string_view ColumnTextView(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  friend class SqliteDb;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  SqliteStmt(sqlite3_stmt* s, std::string op) : stmt_(s), op_(std::move(op)) {}
  [[nodiscard]] common::Status Check(int rc) const;

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  std::string op_;
};

}  // namespace store
