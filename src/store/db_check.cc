// PRAGMA quick_check of metadata.db, for `gantry fsck`.

#include "store/db_check.h"

#include "store/metadata.h"
#include "store/sqlite.h"

namespace store {

common::Result<std::vector<std::string>> QuickCheck(const std::filesystem::path& root) {
  ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(MetadataDb::DbPath(root)));
  db.SetBusyTimeout(10000);
  ASSIGN_OR_RETURN(SqliteStmt st, db.Prepare("PRAGMA quick_check(20)", "check database"));
  std::vector<std::string> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    std::string msg = st.ColumnText(0);
    if (msg != "ok") out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace store
