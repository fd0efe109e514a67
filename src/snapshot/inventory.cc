#include "snapshot/inventory.h"

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "store/sqlite.h"

namespace snapshot {
namespace {

namespace fs = std::filesystem;

struct ReadTxn {
  store::SqliteDb& db;
  ~ReadTxn() { (void)db.Exec("ROLLBACK", "end read"); }
};

common::Result<store::SqliteDb> OpenDb(const fs::path& root) {
  ASSIGN_OR_RETURN(store::SqliteDb db, store::SqliteDb::Open(root / "metadata.db"));
  db.SetBusyTimeout(10000);
  return db;
}

common::Result<bool> HasTable(store::SqliteDb& db) {
  ASSIGN_OR_RETURN(store::SqliteStmt st,
                   db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'snapshot_unsynced'",
                              "inventory snapshots"));
  return st.Step();
}

}  // namespace

fs::path SnapshotDir(const fs::path& root, int64_t id) {
  return root / "snapshots" / std::to_string(id);
}

std::string BootId() {
  std::string id;
  if (auto s = common::ReadFile("/proc/sys/kernel/random/boot_id"); s) id = *s;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  // Without /proc every open looks like the same boot: nothing is ever
  // taken for lost.
  return id.empty() ? "unknown" : id;
}

common::Result<Inventory> ReadInventory(const fs::path& root) {
  const std::string op = "inventory snapshots";
  Inventory inv;
  inv.boot_id = BootId();
  std::error_code ec;
  fs::path dir = root / "snapshots";
  fs::directory_iterator it(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  if (!ec) {
    for (; it != fs::directory_iterator(); it.increment(ec))
      inv.entries.push_back(it->path().filename().string());
    if (ec) return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  }

  ASSIGN_OR_RETURN(store::SqliteDb db, OpenDb(root));
  TRY(db.Exec("BEGIN", op));
  ReadTxn txn{db};
  ASSIGN_OR_RETURN(bool has, HasTable(db));
  if (!has) return inv;
  ASSIGN_OR_RETURN(store::SqliteStmt rows,
                   db.Prepare("SELECT s.id, s.snapshotter, s.name, s.kind, "
                              "COALESCE(s.parent_id, 0), s.labels, u.boot_id "
                              "FROM snapshots s LEFT JOIN snapshot_unsynced u ON u.id = s.id "
                              "ORDER BY s.id",
                              op));
  for (;;) {
    ASSIGN_OR_RETURN(bool row, rows.Step());
    if (!row) break;
    Row r;
    r.id = rows.ColumnInt(0);
    r.snapshotter = rows.ColumnText(1);
    r.name = rows.ColumnText(2);
    std::string kind = rows.ColumnText(3);
    r.kind = kind == "committed" ? SnapshotKind::kCommitted
             : kind == "view"    ? SnapshotKind::kView
                                 : SnapshotKind::kActive;
    r.parent_id = rows.ColumnInt(4);
    auto labels = nlohmann::json::parse(rows.ColumnText(5), nullptr, false);
    if (labels.is_object())
      for (auto& [k, v] : labels.items())
        if (v.is_string()) r.labels[k] = v.get<std::string>();
    r.synced = rows.ColumnIsNull(6);
    if (!r.synced) r.unsynced_boot_id = rows.ColumnText(6);
    inv.last_id = std::max(inv.last_id, r.id);
    inv.rows.push_back(std::move(r));
  }
  ASSIGN_OR_RETURN(store::SqliteStmt seq,
                   db.Prepare("SELECT seq FROM sqlite_sequence WHERE name = 'snapshots'", op));
  ASSIGN_OR_RETURN(bool have_seq, seq.Step());
  if (have_seq) inv.last_id = std::max(inv.last_id, seq.ColumnInt(0));
  return inv;
}

common::Result<std::set<int64_t>> RowIds(const fs::path& root) {
  ASSIGN_OR_RETURN(store::SqliteDb db, OpenDb(root));
  std::set<int64_t> ids;
  ASSIGN_OR_RETURN(bool has, HasTable(db));
  if (!has) return ids;
  ASSIGN_OR_RETURN(store::SqliteStmt st, db.Prepare("SELECT id FROM snapshots", "snapshot ids"));
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ids.insert(st.ColumnInt(0));
  }
  return ids;
}

}  // namespace snapshot
