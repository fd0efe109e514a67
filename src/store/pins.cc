// The pins table (schema version 3): images kept by `prune --all` and
// reported pinned through the CRI, each pin owned by a pre-pull list.
// Each runs on the connection whose mutex the Txn holds.

#include <set>

#include "store/metadata.h"
#include "store/metadata_internal.h"

namespace store {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

#define REQUIRE_ACTIVE(op) \
  if (state_ == nullptr)   \
  return MakeError(Errc::kFailedPrecondition, std::string(op) + ": transaction is not active")

Status Txn::SetPins(std::string_view owner, const std::vector<std::string>& names) {
  const std::string op = "set pins of " + Quoted(owner);
  REQUIRE_ACTIVE(op);
  if (owner.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty owner");
  std::set<std::string> wanted;
  for (const auto& n : names) {
    if (n.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty image name");
    wanted.insert(n);
  }
  std::set<std::string> have;
  {
    ASSIGN_OR_RETURN(SqliteStmt st,
                     state_->db.Prepare("SELECT name FROM pins WHERE owner = ?1", op));
    TRY(st.Bind(1, owner));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      have.insert(st.ColumnText(0));
    }
  }
  for (const auto& n : have) {
    if (wanted.contains(n)) continue;
    ASSIGN_OR_RETURN(SqliteStmt st,
                     state_->db.Prepare("DELETE FROM pins WHERE owner = ?1 AND name = ?2", op));
    TRY(st.Bind(1, owner));
    TRY(st.Bind(2, n));
    TRY(st.Run());
  }
  const int64_t now = state_->NowNs();
  for (const auto& n : wanted) {
    if (have.contains(n)) continue;
    ASSIGN_OR_RETURN(
        SqliteStmt st,
        state_->db.Prepare("INSERT INTO pins (owner, name, created_ns) VALUES (?1, ?2, ?3)", op));
    TRY(st.Bind(1, owner));
    TRY(st.Bind(2, n));
    TRY(st.Bind(3, now));
    TRY(st.Run());
  }
  return {};
}

Result<std::vector<PinRecord>> Txn::ListPins() {
  const std::string op = "list pins";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(
      SqliteStmt st,
      state_->db.Prepare("SELECT owner, name, created_ns FROM pins ORDER BY name, owner", op));
  std::vector<PinRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(
        {.owner = st.ColumnText(0), .name = st.ColumnText(1), .created_ns = st.ColumnInt(2)});
  }
  return out;
}

#undef REQUIRE_ACTIVE

}  // namespace store
