// The containerd_snapshots table (schema version 2): the snapshots
// containerd names through the snapshotter door. Each runs on the
// connection whose mutex the Txn holds.

#include <nlohmann/json.hpp>

#include "store/metadata.h"
#include "store/metadata_internal.h"

namespace store {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

constexpr std::string_view kColumns =
    "snapshotter, name, target, parent, labels, created_ns, updated_ns";

Result<ContainerdSnapshotRecord> ReadRecord(const SqliteDb& db, SqliteStmt& st,
                                            std::string_view op) {
  ContainerdSnapshotRecord r;
  r.snapshotter = st.ColumnText(0);
  r.name = st.ColumnText(1);
  r.target = st.ColumnText(2);
  r.parent = st.ColumnText(3);
  auto j = nlohmann::json::parse(st.ColumnText(4), nullptr, false);
  if (!j.is_object())
    return MakeError(Errc::kDataLoss, std::string(op) + ": sqlite `" + db.path().string() +
                                          "`: corrupt row: labels of " + Quoted(r.name) +
                                          " are not a JSON object");
  for (auto& [k, v] : j.items()) {
    if (!v.is_string())
      return MakeError(Errc::kDataLoss, std::string(op) + ": sqlite `" + db.path().string() +
                                            "`: corrupt row: label " + Quoted(k) + " of " +
                                            Quoted(r.name) + " is not a string");
    r.labels[k] = v.get<std::string>();
  }
  r.created_ns = st.ColumnInt(5);
  r.updated_ns = st.ColumnInt(6);
  return r;
}

}  // namespace

#define REQUIRE_ACTIVE(op) \
  if (state_ == nullptr)   \
  return MakeError(Errc::kFailedPrecondition, std::string(op) + ": transaction is not active")

Status Txn::PutContainerdSnapshot(const ContainerdSnapshotRecord& r) {
  const std::string op = "put containerd snapshot " + Quoted(r.name);
  REQUIRE_ACTIVE(op);
  if (r.snapshotter.empty() || r.name.empty() || r.target.empty())
    return MakeError(Errc::kInvalidArgument, op + ": empty snapshotter, name or target");
  const int64_t now = state_->NowNs();
  ASSIGN_OR_RETURN(
      SqliteStmt st,
      state_->db.Prepare("INSERT INTO containerd_snapshots (" + std::string(kColumns) +
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                             "ON CONFLICT (snapshotter, name) DO UPDATE SET target = ?3, "
                             "parent = ?4, labels = ?5, updated_ns = ?7",
                         op));
  TRY(st.Bind(1, r.snapshotter));
  TRY(st.Bind(2, r.name));
  TRY(st.Bind(3, r.target));
  TRY(st.Bind(4, r.parent));
  TRY(st.Bind(5, nlohmann::json(r.labels).dump()));
  TRY(st.Bind(6, r.created_ns != 0 ? r.created_ns : now));
  TRY(st.Bind(7, now));
  return st.Run();
}

Result<ContainerdSnapshotRecord> Txn::GetContainerdSnapshot(std::string_view snapshotter,
                                                            std::string_view name) {
  const std::string op = "get containerd snapshot " + Quoted(name);
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("SELECT " + std::string(kColumns) +
                                                         " FROM containerd_snapshots "
                                                         "WHERE snapshotter = ?1 AND name = ?2",
                                                     op));
  TRY(st.Bind(1, snapshotter));
  TRY(st.Bind(2, name));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return MakeError(Errc::kNotFound, op + ": no such snapshot");
  return ReadRecord(state_->db, st, op);
}

Status Txn::DeleteContainerdSnapshot(std::string_view snapshotter, std::string_view name) {
  const std::string op = "delete containerd snapshot " + Quoted(name);
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("DELETE FROM containerd_snapshots "
                                                     "WHERE snapshotter = ?1 AND name = ?2",
                                                     op));
  TRY(st.Bind(1, snapshotter));
  TRY(st.Bind(2, name));
  TRY(st.Run());
  if (state_->db.Changes() == 0) return MakeError(Errc::kNotFound, op + ": no such snapshot");
  return {};
}

Result<std::vector<ContainerdSnapshotRecord>> Txn::ListContainerdSnapshots() {
  const std::string op = "list containerd snapshots";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("SELECT " + std::string(kColumns) +
                                                         " FROM containerd_snapshots "
                                                         "ORDER BY snapshotter, name",
                                                     op));
  std::vector<ContainerdSnapshotRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(ContainerdSnapshotRecord r, ReadRecord(state_->db, st, op));
    out.push_back(std::move(r));
  }
  return out;
}

#undef REQUIRE_ACTIVE

}  // namespace store
