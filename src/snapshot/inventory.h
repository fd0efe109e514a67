#pragma once
// A raw look at every snapshot of a root, of every snapshotter kind, for
// checking the store (upkeep/fsck.h): the rows of the `snapshots` table as
// stored (the parent by id, so a dangling parent shows), their unsynced
// marks, the id counter, and the entries under <root>/snapshots/.
//
// Reads only: no Settle, no overlay probe, no table is created (a root
// without the table has an empty inventory). Safe to call while other
// processes use the root; see ReadInventory for the order of the reads.

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "snapshot/snapshotter.h"

namespace snapshot {

struct Row {
  int64_t id = 0;
  std::string snapshotter;  // "overlayfs" | "native"
  std::string name;
  SnapshotKind kind = SnapshotKind::kActive;
  int64_t parent_id = 0;  // 0: none
  std::map<std::string, std::string> labels;
  bool synced = true;
  std::string unsynced_boot_id;  // the boot an unsynced commit happened in
};

struct Inventory {
  // Names under <root>/snapshots/, listed *before* the rows were read: a
  // directory a Prepare creates later is not listed, and one whose row a
  // Remove deletes meanwhile shows as a numeric name without a row.
  std::vector<std::string> entries;
  std::vector<Row> rows;  // by id
  // The AUTOINCREMENT counter when the rows were read: every id handed out
  // so far is at most this; an uncommitted Prepare's directory is last_id + 1.
  int64_t last_id = 0;
  std::string boot_id;  // the running kernel's (BootId())
};

// Errors: from SQLite (DataLoss, Unavailable…) and from listing
// <root>/snapshots (a missing directory is an empty list).
[[nodiscard]] common::Result<Inventory> ReadInventory(const std::filesystem::path& root);

// The ids of the rows now (to tell a concurrent Remove from a directory
// that went missing).
[[nodiscard]] common::Result<std::set<int64_t>> RowIds(const std::filesystem::path& root);

// <root>/snapshots/<id>
[[nodiscard]] std::filesystem::path SnapshotDir(const std::filesystem::path& root, int64_t id);

// /proc/sys/kernel/random/boot_id, or "unknown" without /proc.
[[nodiscard]] std::string BootId();

}  // namespace snapshot
