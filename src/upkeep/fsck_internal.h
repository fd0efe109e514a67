#pragma once
// The passes of `gantry fsck` (upkeep/fsck.h): fsck_content.cc (blobs,
// images, partial downloads, leases), fsck_snapshots.cc (snapshots,
// mounts), fsck.cc (locking, rounds, repairs of content).

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/digest.h"
#include "oci/descriptor.h"
#include "snapshot/inventory.h"
#include "upkeep/fsck.h"

namespace upkeep::internal {

// Problem kinds (upkeep/fsck.h).
inline constexpr std::string_view kBlobCorrupt = "blob-corrupt";
inline constexpr std::string_view kBlobSize = "blob-size";
inline constexpr std::string_view kBlobMissing = "blob-missing";
inline constexpr std::string_view kBlobUnrecorded = "blob-unrecorded";
inline constexpr std::string_view kImage = "image";
inline constexpr std::string_view kSnapshotParent = "snapshot-parent";
inline constexpr std::string_view kSnapshotDir = "snapshot-dir";
inline constexpr std::string_view kStray = "stray";
inline constexpr std::string_view kIngestOversize = "ingest-oversize";
inline constexpr std::string_view kIngestCorrupt = "ingest-corrupt";
inline constexpr std::string_view kMount = "mount";
inline constexpr std::string_view kDatabase = "database";
inline constexpr std::string_view kLease = "lease";

// One check of the store: what the passes found and what they share.
struct FsckScan {
  FsckScan(const store::ContentStore& c, store::MetadataDb& m, const FsckOptions& o)
      : content(c), db(m), options(o), root(c.root()) {}

  const store::ContentStore& content;
  store::MetadataDb& db;
  const FsckOptions& options;
  std::filesystem::path root;
  FsckReport report;

  std::map<common::Digest, store::BlobRecord> rows;
  std::set<common::Digest> files;
  std::set<common::Digest> corrupt;
  // Blobs image records use, with the size (-1 when unknown) and media
  // type their descriptors give.
  std::map<common::Digest, oci::Descriptor> needed;
  // Sizes that the descriptors in every stored manifest give (a killed
  // pull's manifest tells how large its partial downloads may grow).
  std::map<common::Digest, int64_t> known_sizes;
  snapshot::Inventory snapshots;

  void Problem(std::string_view kind, std::string subject, std::string detail) {
    report.problems.push_back({std::string(kind), std::move(subject), std::move(detail)});
  }
  void Note(std::string what, int64_t count) {
    if (count > 0) report.notes.push_back({std::move(what), count});
  }
};

// Images, blobs, partial downloads, leases, and the database itself.
[[nodiscard]] common::Status CheckContent(FsckScan& scan);
// Snapshot rows and directories, and mounts.
[[nodiscard]] common::Status CheckSnapshots(FsckScan& scan);

// Repairs of the snapshot and mount problems of `scan`: appends to
// `out.repairs` and `out.errors`.
void RepairSnapshots(const FsckScan& scan, const std::vector<FsckProblem>& problems,
                     FsckReport& out);

// SHA-256 of a file, read in chunks; a small file that is a manifest adds
// to `learn->known_sizes` (when not null). Errors: read failures.
[[nodiscard]] common::Result<common::Digest> HashFile(int fd, const std::string& path,
                                                      FsckScan* learn = nullptr);

}  // namespace upkeep::internal
