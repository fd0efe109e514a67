#pragma once
// The metadata database, <root>/metadata.db (SQLite): image records, the
// blobs they use, and leases that protect what a pull is still building
// from garbage collection. The schema and its user_version are documented
// in docs/store.md.
//
// Concurrency: the database is opened in WAL mode with a 10 s busy timeout
// and foreign keys on, so several gantry processes (CLI pulls, the CRI
// server, a prune) can use it at once; every write runs in a
// `BEGIN IMMEDIATE` transaction, so writers queue on the database lock
// instead of failing on a stale snapshot. One MetadataDb is one connection;
// its methods are thread-safe (an internal mutex serialises them).
//
// Errors, for every method: Unavailable when the database stayed locked
// past the busy timeout; DataLoss when SQLite reports corruption or a row
// does not parse; PermissionDenied / ResourceExhausted from the OS. Every
// message names the operation and the database path.
//
// Transactions: each MetadataDb method is its own transaction. To group
// several changes, Begin() a Txn and call the same operations on it; it
// rolls back unless Commit() is called:
//
//   ASSIGN_OR_RETURN(store::Txn txn, db.Begin());
//   TRY(txn.DeleteImage(name));
//   ASSIGN_OR_RETURN(auto users, txn.ImagesByTarget(digest));
//   if (users.empty()) TRY(txn.DeleteBlob(digest));
//   TRY(txn.Commit());
//   // only now delete files (containerd's rule: files after the commit)
//
// A Txn holds the connection's mutex for its whole life: other threads'
// calls on the same MetadataDb wait for it, and the owning thread must not
// call MetadataDb methods (or Begin again) while it holds one; that fails
// with FailedPrecondition rather than deadlocking.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "oci/descriptor.h"
#include "store/lease_hold.h"

namespace store {

inline constexpr int kMetadataSchemaVersion = 4;

// Lease resource kinds.
inline constexpr std::string_view kLeaseContent = "content";    // id: a digest string
inline constexpr std::string_view kLeaseSnapshot = "snapshot";  // id: a snapshot key

struct ImageRecord {
  // Normalised reference: "host/path:tag" or "host/path@sha256:…". The
  // store treats it as an opaque non-empty key; normalising is the
  // registry module's job.
  std::string name;
  oci::Descriptor target;  // the manifest or index the name points at
  int64_t created_ns = 0;  // Unix ns; 0 on PutImage means "now"
  int64_t updated_ns = 0;  // set by PutImage
  std::map<std::string, std::string> labels;

  friend bool operator==(const ImageRecord&, const ImageRecord&) = default;
};

struct BlobRecord {
  common::Digest digest;
  int64_t size = 0;
  std::string media_type;
  int64_t created_ns = 0;

  friend bool operator==(const BlobRecord&, const BlobRecord&) = default;
};

// Counts over the whole database (Txn::Totals): cheap aggregates for
// metrics, not a disk-usage report (upkeep/usage.h is that).
struct StoreTotals {
  int64_t images = 0;      // image records
  int64_t blobs = 0;       // blob rows
  int64_t blob_bytes = 0;  // the sum of their sizes
};

// A count a process adds to the store's counters (Txn::AddCounters) for
// `gantry serve` to report (docs/metrics.md): `name` a metric's name,
// `labels` its label values in the metric's label-name order.
struct CounterDelta {
  std::string name;
  std::vector<std::string> labels;
  int64_t value = 0;
};

struct LeaseRecord {
  std::string id;
  int64_t created_ns = 0;
  int64_t expires_ns = 0;
};

// A snapshot containerd names through the snapshotter door
// (src/ctrsnap/door.h): while the row exists, containerd holds `target`
// and garbage collection keeps it (with its parent chain).
struct ContainerdSnapshotRecord {
  std::string snapshotter;  // the gantry snapshotter: "overlayfs" | "native"
  std::string name;         // containerd's key for it ("<namespace>/<n>/<key>", or a chainID)
  std::string target;       // the gantry snapshot's name
  std::string parent = {};  // containerd's name of its parent; "" for none
  std::map<std::string, std::string> labels = {};  // containerd's labels
  int64_t created_ns = 0;  // 0 on Put means "now" (an existing row keeps its own)
  int64_t updated_ns = 0;  // set by Put

  friend bool operator==(const ContainerdSnapshotRecord&,
                         const ContainerdSnapshotRecord&) = default;
};

// A pin: the image record `name` is kept by `gantry prune --all` and
// reported pinned through the CRI (kubelet's image GC skips it). Pins
// belong to an owner (a pre-pull list: image/prepull.h), which replaces
// its whole set at once; an image is pinned while any owner pins it. A pin
// may name an image not (yet) in the store.
struct PinRecord {
  std::string owner;
  std::string name;
  int64_t created_ns = 0;

  friend bool operator==(const PinRecord&, const PinRecord&) = default;
};

struct MetadataDbState;  // internal
class UnsyncedCommit;    // store/sqlite.h

// A transaction on one MetadataDb. Move-only; rolls back on destruction
// unless committed. REQUIRES: the MetadataDb outlives it.
class Txn {
 public:
  Txn(Txn&&) noexcept;
  Txn& operator=(Txn&&) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();

  // Errors: Unavailable (lock timeout). After a failed Commit the
  // transaction is still open and is rolled back by the destructor.
  [[nodiscard]] common::Status Commit();
  // Rolls back now; the destructor does the same. Idempotent.
  void Rollback();
  bool active() const { return state_ != nullptr; }

  // ---- images
  // Upsert by name. A new row gets created_ns = record.created_ns, or now
  // when 0; an existing row keeps its created_ns. updated_ns = now. Labels
  // are replaced. Errors: InvalidArgument for an empty name or negative size.
  [[nodiscard]] common::Status PutImage(const ImageRecord& record);
  // Errors: NotFound.
  [[nodiscard]] common::Result<ImageRecord> GetImage(std::string_view name);
  // Sorted by name.
  [[nodiscard]] common::Result<std::vector<ImageRecord>> ListImages();
  // ListImages one record at a time: `fn` gets each, in name order, as it
  // is read, so that a listing of many images holds one in memory. `fn`
  // runs inside the transaction (it must not use the MetadataDb: see
  // Begin); its error stops the walk and is returned as it is.
  [[nodiscard]] common::Status ForEachImage(const std::function<common::Status(ImageRecord&&)>& fn);
  // Errors: NotFound.
  [[nodiscard]] common::Status DeleteImage(std::string_view name);
  // Sets the label `key` of the image `name` to `value` (an empty value
  // removes it), leaving its other labels and updated_ns alone: state kept
  // beside the record, such as its publication into containerd. A later
  // PutImage of the name replaces it with the record's labels.
  // Errors: NotFound (no such image); InvalidArgument for an empty key.
  [[nodiscard]] common::Status SetImageLabel(std::string_view name, std::string_view key,
                                             std::string_view value);
  // Records whose target digest is `digest`, sorted by name.
  [[nodiscard]] common::Result<std::vector<ImageRecord>> ImagesByTarget(
      const common::Digest& digest);

  // ---- blobs
  // Idempotent. Errors: FailedPrecondition when the digest is already
  // recorded with a different size; InvalidArgument for a negative size.
  [[nodiscard]] common::Status PutBlob(const common::Digest& digest, int64_t size,
                                       std::string_view media_type);
  // Errors: NotFound.
  [[nodiscard]] common::Result<BlobRecord> GetBlob(const common::Digest& digest);
  // Errors: NotFound.
  [[nodiscard]] common::Status DeleteBlob(const common::Digest& digest);
  // Sorted by digest string.
  [[nodiscard]] common::Result<std::vector<BlobRecord>> ListBlobs();
  // Image records, blob rows and the blobs' total size, from two
  // aggregate queries (no rows are read out).
  [[nodiscard]] common::Result<StoreTotals> Totals();

  // ---- counters (what CLI commands did, for the metrics of `gantry serve`)
  // Adds each delta's value to its (name, labels) row, creating it at 0.
  // Errors: InvalidArgument for an empty name, a negative value or a label
  // value holding "\x1f" (nothing is added: the transaction's caller
  // rolls back).
  [[nodiscard]] common::Status AddCounters(std::span<const CounterDelta> deltas);
  // Every row, sorted by name, then labels.
  [[nodiscard]] common::Result<std::vector<CounterDelta>> ListCounters();

  // ---- leases
  // Creates a lease with a new random id that expires `ttl` from now, and
  // returns its hold (store/lease_hold.h): the hold file is taken before
  // the row is inserted, so no lease row is ever without one. Dropping the
  // hold (a rollback, an error) leaves the lease abandoned, for the next
  // prune. Errors: InvalidArgument when ttl <= 0; file-system errors of
  // the hold file.
  [[nodiscard]] common::Result<LeaseHold> CreateLease(std::chrono::seconds ttl);
  // Moves the expiry to `ttl` from now. Errors: NotFound; InvalidArgument.
  [[nodiscard]] common::Status RenewLease(std::string_view lease, std::chrono::seconds ttl);
  // Idempotent. `kind` is kLeaseContent or kLeaseSnapshot.
  // Errors: NotFound when the lease does not exist or has expired;
  // InvalidArgument for another kind or an empty id.
  [[nodiscard]] common::Status AddLeaseResource(std::string_view lease, std::string_view kind,
                                                std::string_view id);
  // Errors: NotFound when the lease does not hold the resource.
  [[nodiscard]] common::Status RemoveLeaseResource(std::string_view lease, std::string_view kind,
                                                   std::string_view id);
  // Deletes the lease and its resources (any lease: prune deletes those
  // of dead holders). A caller deleting its own lease releases its hold
  // after the commit. Errors: NotFound.
  [[nodiscard]] common::Status DeleteLease(std::string_view lease);
  // Distinct ids of `kind` held by unexpired leases, sorted.
  // Errors: InvalidArgument for an unknown kind.
  [[nodiscard]] common::Result<std::vector<std::string>> LeasedResources(std::string_view kind);
  // Every lease, expired or not, sorted by id.
  [[nodiscard]] common::Result<std::vector<LeaseRecord>> ListLeases();
  // Deletes leases whose expiry is at or before now, with their resources.
  [[nodiscard]] common::Status DeleteExpiredLeases();

  // ---- containerd's snapshots (the snapshotter door)
  // Upsert by (snapshotter, name). Errors: InvalidArgument for an empty
  // snapshotter, name or target.
  [[nodiscard]] common::Status PutContainerdSnapshot(const ContainerdSnapshotRecord& record);
  // Errors: NotFound.
  [[nodiscard]] common::Result<ContainerdSnapshotRecord> GetContainerdSnapshot(
      std::string_view snapshotter, std::string_view name);
  // Errors: NotFound.
  [[nodiscard]] common::Status DeleteContainerdSnapshot(std::string_view snapshotter,
                                                        std::string_view name);
  // Every row, sorted by snapshotter, then name.
  [[nodiscard]] common::Result<std::vector<ContainerdSnapshotRecord>> ListContainerdSnapshots();

  // ---- pins
  // Makes `names` the whole set of `owner`'s pins: pins of the owner not
  // in `names` are deleted, new ones created (now), kept ones keep their
  // created_ns. An empty `names` drops every pin of the owner.
  // Errors: InvalidArgument for an empty owner or name.
  [[nodiscard]] common::Status SetPins(std::string_view owner,
                                       const std::vector<std::string>& names);
  // Every pin, sorted by name, then owner.
  [[nodiscard]] common::Result<std::vector<PinRecord>> ListPins();

 private:
  friend class MetadataDb;
  Txn(MetadataDbState* state, std::unique_lock<std::mutex> lock);
  void End();

  MetadataDbState* state_ = nullptr;
  std::unique_lock<std::mutex> lock_;
  std::unique_ptr<UnsyncedCommit> unsynced_;  // BeginUnsynced's; End restores FULL
};

class MetadataDb {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  struct Options {
    // Time source for created/updated stamps and lease expiry; tests inject
    // one. Null means std::chrono::system_clock::now.
    Clock now;
    std::chrono::milliseconds busy_timeout = std::chrono::seconds(10);
  };

  // Opens (creating if needed) <root>/metadata.db and migrates the schema
  // to kMetadataSchemaVersion. Creates `root` if missing.
  // Errors: FailedPrecondition when the database has a newer user_version
  // than this gantry knows; DataLoss when the file is not a database or is
  // corrupt; as above.
  [[nodiscard]] static common::Result<MetadataDb> Open(const std::filesystem::path& root,
                                                       Options options);
  [[nodiscard]] static common::Result<MetadataDb> Open(const std::filesystem::path& root) {
    return Open(root, Options{});
  }
  static std::filesystem::path DbPath(const std::filesystem::path& root) {
    return root / "metadata.db";
  }

  MetadataDb(MetadataDb&&) noexcept;
  MetadataDb& operator=(MetadataDb&&) noexcept;
  ~MetadataDb();

  const std::filesystem::path& path() const;

  // `BEGIN IMMEDIATE`: takes the database write lock now (waiting up to
  // the busy timeout), so the transaction cannot fail later for a stale
  // read snapshot. Errors: Unavailable; FailedPrecondition when this
  // thread already holds a Txn of this object.
  [[nodiscard]] common::Result<Txn> Begin();

  // As Begin, but its commit does not wait for the WAL to reach the disk
  // (store::UnsyncedCommit, store/sqlite.h: it survives a kill, a machine
  // crash may lose it). Only for writes whose loss in a crash is harmless.
  [[nodiscard]] common::Result<Txn> BeginUnsynced();

  // Single-operation transactions; see Txn for each contract.
  [[nodiscard]] common::Status PutImage(const ImageRecord& record);
  [[nodiscard]] common::Result<ImageRecord> GetImage(std::string_view name);
  [[nodiscard]] common::Result<std::vector<ImageRecord>> ListImages();
  [[nodiscard]] common::Status ForEachImage(const std::function<common::Status(ImageRecord&&)>& fn);
  [[nodiscard]] common::Status DeleteImage(std::string_view name);
  [[nodiscard]] common::Status SetImageLabel(std::string_view name, std::string_view key,
                                             std::string_view value);
  [[nodiscard]] common::Result<std::vector<ImageRecord>> ImagesByTarget(
      const common::Digest& digest);

  [[nodiscard]] common::Status PutBlob(const common::Digest& digest, int64_t size,
                                       std::string_view media_type);
  [[nodiscard]] common::Result<BlobRecord> GetBlob(const common::Digest& digest);
  [[nodiscard]] common::Status DeleteBlob(const common::Digest& digest);
  [[nodiscard]] common::Result<std::vector<BlobRecord>> ListBlobs();
  [[nodiscard]] common::Result<StoreTotals> Totals();
  // One transaction, committed unsynced (BeginUnsynced: a kill never loses
  // the counts, a machine crash may lose those of the last commands);
  // nothing is written for an empty `deltas`.
  [[nodiscard]] common::Status AddCounters(std::span<const CounterDelta> deltas);
  [[nodiscard]] common::Result<std::vector<CounterDelta>> ListCounters();

  [[nodiscard]] common::Result<LeaseHold> CreateLease(std::chrono::seconds ttl);
  [[nodiscard]] common::Status RenewLease(std::string_view lease, std::chrono::seconds ttl);
  [[nodiscard]] common::Status AddLeaseResource(std::string_view lease, std::string_view kind,
                                                std::string_view id);
  [[nodiscard]] common::Status RemoveLeaseResource(std::string_view lease, std::string_view kind,
                                                   std::string_view id);
  [[nodiscard]] common::Status DeleteLease(std::string_view lease);
  // Ends a lease this process holds: deletes its row (NotFound counts as
  // deleted: a prune collected it after it expired), then releases the
  // hold. On error the hold is kept; dropping it leaves the lease to the
  // next prune. A no-op when `hold` holds nothing.
  [[nodiscard]] common::Status DeleteLease(LeaseHold& hold);
  [[nodiscard]] common::Result<std::vector<std::string>> LeasedResources(std::string_view kind);
  [[nodiscard]] common::Result<std::vector<LeaseRecord>> ListLeases();
  [[nodiscard]] common::Status DeleteExpiredLeases();

  [[nodiscard]] common::Status PutContainerdSnapshot(const ContainerdSnapshotRecord& record);
  [[nodiscard]] common::Result<ContainerdSnapshotRecord> GetContainerdSnapshot(
      std::string_view snapshotter, std::string_view name);
  [[nodiscard]] common::Status DeleteContainerdSnapshot(std::string_view snapshotter,
                                                        std::string_view name);
  [[nodiscard]] common::Result<std::vector<ContainerdSnapshotRecord>> ListContainerdSnapshots();

  [[nodiscard]] common::Status SetPins(std::string_view owner,
                                       const std::vector<std::string>& names);
  [[nodiscard]] common::Result<std::vector<PinRecord>> ListPins();

  // SQLite's `PRAGMA data_version`: changes whenever another connection
  // (another MetadataDb, or another process) has committed since the last
  // call; this connection's own commits do not change it. Lets a
  // long-running reader (the CRI server) keep a cache and still see what
  // `gantry pull` or `gantry rmi` did. Errors: as for a read.
  [[nodiscard]] common::Result<int64_t> DataVersion();

 private:
  explicit MetadataDb(std::unique_ptr<MetadataDbState> state);
  // `BEGIN` (deferred) for read-only operations, which then do not take
  // the write lock.
  [[nodiscard]] common::Result<Txn> BeginRead();
  [[nodiscard]] common::Result<Txn> BeginWith(std::string_view sql, bool unsynced = false);

  std::unique_ptr<MetadataDbState> state_;
};

}  // namespace store
