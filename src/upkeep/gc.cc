// Prune: mark (gc_plan.cc), then sweep in the order gc.h states.

#include "upkeep/gc.h"

#include <map>
#include <set>

#include "store/lease_hold.h"
#include "store/store_lock.h"
#include "upkeep/gc_internal.h"

namespace upkeep {
namespace {

using common::Digest;
using common::Errc;

struct Marked {
  internal::StoreState state;
  internal::Plan plan;
};

// `db` is the MetadataDb (dry run: reads only) or the Txn that will also
// delete what the plan drops.
template <class Db>
common::Result<Marked> Mark(Db& db, const store::ContentStore& content,
                            const std::vector<internal::SnapshotterState>& snaps, bool all,
                            GcReport& report) {
  Marked m;
  ASSIGN_OR_RETURN(m.state, internal::ReadState(db, content));
  ASSIGN_OR_RETURN(auto refs, internal::RefsOfAll(content, m.state.images));
  for (const auto& [name, r] : refs)
    report.warnings.insert(report.warnings.end(), r.warnings.begin(), r.warnings.end());
  m.plan = internal::MakePlan(m.state, refs, snaps, all);
  return m;
}

// Deletes expired leases and leases whose holder died (store/lease_hold.h),
// or, in a dry run, finds them and rolls back.
common::Status ExpireLeases(store::MetadataDb& db, const std::filesystem::path& root, bool dry_run,
                            GcReport& report) {
  ASSIGN_OR_RETURN(std::vector<std::string> abandoned, store::AbandonedLeases(root));
  ASSIGN_OR_RETURN(store::Txn txn, db.Begin());
  ASSIGN_OR_RETURN(std::vector<store::LeaseRecord> before, txn.ListLeases());
  TRY(txn.DeleteExpiredLeases());
  for (const auto& id : abandoned)
    if (auto st = txn.DeleteLease(id); !st && st.error().code != Errc::kNotFound)
      return std::unexpected(st.error());
  ASSIGN_OR_RETURN(std::vector<store::LeaseRecord> after, txn.ListLeases());
  std::set<std::string> live;
  for (const auto& l : after) live.insert(l.id);
  for (const auto& l : before)
    if (!live.count(l.id)) report.leases.push_back(l.id);
  if (dry_run) return {};
  TRY(txn.Commit());
  if (auto st = store::RemoveAbandonedHolds(root, abandoned); !st)
    report.errors.push_back(st.error().message);
  return {};
}

bool Cancelled(const GcOptions& o, GcReport& report) {
  if (o.cancel == nullptr || !o.cancel->load()) return false;
  if (report.errors.empty() || report.errors.back() != "prune cancelled")
    report.errors.push_back("prune cancelled");
  return true;
}

void SweepBlobs(store::ContentStore& content, const Marked& m, const GcOptions& options,
                GcReport& report) {
  const bool dry_run = options.dry_run;
  for (const Digest& d : m.plan.garbage_blobs) {
    // Stopping is safe anywhere: a file whose row is gone is collected by
    // the next run.
    if (Cancelled(options, report)) return;
    RemovedBlob b;
    b.digest = d;
    if (auto row = m.state.blob_rows.find(d); row != m.state.blob_rows.end())
      b.media_type = row->second.media_type;
    if (m.state.blob_files.count(d)) {
      auto size = content.Size(d);
      if (size) b.bytes = *size;
      if (!dry_run) {
        if (auto st = content.Delete(d); !st && st.error().code != Errc::kNotFound) {
          report.errors.push_back(st.error().message);
          continue;
        }
      }
    }
    report.blobs.push_back(std::move(b));
  }
}

void SweepSnapshots(const std::vector<internal::SnapshotterState>& snaps,
                    const internal::Plan& plan, const GcOptions& options, GcReport& report) {
  const bool dry_run = options.dry_run;
  for (size_t i = 0; i < snaps.size(); ++i) {
    snapshot::Snapshotter& sn = *snaps[i].snapshotter;
    for (const snapshot::Info& info : plan.snapshots[i].remove) {
      if (Cancelled(options, report)) return;
      RemovedSnapshot r{.snapshotter = std::string(snapshot::KindName(sn.kind())),
                        .key = info.name,
                        .parent = info.parent,
                        .kind = info.kind};
      if (auto u = sn.GetUsage(info.name); u) r.bytes = u->bytes;
      if (!dry_run) {
        if (auto st = sn.Remove(info.name); !st) {
          // Gone already is what we wanted; anything else (a child that
          // could not be removed first) leaves it for the next run.
          if (st.error().code != Errc::kNotFound) report.errors.push_back(st.error().message);
          continue;
        }
      }
      report.snapshots.push_back(std::move(r));
    }
  }
}

void SweepFiles(store::ContentStore& content, const std::vector<internal::SnapshotterState>& snaps,
                const GcOptions& options, GcReport& report) {
  auto est = internal::EstimateIngest(content, options.ingest_min_age);
  if (!est) {
    report.errors.push_back(est.error().message);
  } else {
    report.ingest_files = est->files;
    report.ingest_bytes = est->bytes;
  }
  if (options.dry_run || Cancelled(options, report)) return;
  if (auto freed = content.CleanIngest(options.ingest_min_age); freed) {
    report.ingest_bytes = *freed;
    if (*freed == 0) report.ingest_files = 0;
  } else {
    report.errors.push_back(freed.error().message);
  }
  // Every snapshotter of a root shares snapshots/ and Cleanup checks the
  // ids of all of them, so one call covers them all.
  if (!snaps.empty()) {
    if (auto n = snaps.front().snapshotter->Cleanup(); n)
      report.orphan_dirs = *n;
    else
      report.errors.push_back(n.error().message);
  }
}

}  // namespace

int64_t GcReport::blob_bytes() const {
  int64_t n = 0;
  for (const auto& b : blobs) n += b.bytes;
  return n;
}

int64_t GcReport::snapshot_bytes() const {
  int64_t n = 0;
  for (const auto& s : snapshots) n += s.bytes;
  return n;
}

int64_t GcReport::total_bytes() const { return blob_bytes() + snapshot_bytes() + ingest_bytes; }

std::vector<store::CounterDelta> GcCounterDeltas(const GcReport& report, std::string_view trigger) {
  std::vector<store::CounterDelta> out;
  if (report.dry_run) return out;
  out.push_back({.name = std::string(kGcRunsMetric), .labels = {std::string(trigger)}, .value = 1});
  const int64_t freed[] = {report.blob_bytes(), report.snapshot_bytes(), report.ingest_bytes};
  static_assert(std::size(freed) == kGcFreedKinds.size());
  for (size_t i = 0; i < kGcFreedKinds.size(); ++i) {
    if (freed[i] > 0)
      out.push_back({.name = std::string(kGcFreedBytesMetric),
                     .labels = {std::string(kGcFreedKinds[i])},
                     .value = freed[i]});
  }
  return out;
}

common::Result<GcReport> Prune(store::ContentStore& content, store::MetadataDb& metadata,
                               std::span<snapshot::Snapshotter* const> snapshotters,
                               const GcOptions& options) {
  GcReport report;
  report.dry_run = options.dry_run;
  ASSIGN_OR_RETURN(store::StoreLock lock,
                   common::Wrap(store::StoreLock::Exclusive(content.root(), options.cancel),
                                "prune: lock the store"));
  TRY(common::Wrap(ExpireLeases(metadata, content.root(), options.dry_run, report),
                   "prune: expire leases"));
  ASSIGN_OR_RETURN(std::vector<internal::SnapshotterState> snaps,
                   common::Wrap(internal::ReadSnapshots(snapshotters), "prune"));

  Marked m;
  if (options.dry_run) {
    ASSIGN_OR_RETURN(m, common::Wrap(Mark(metadata, content, snaps, options.all, report), "prune"));
    report.untagged = m.plan.untag;
  } else {
    // Untagging and the blob rows go in one transaction with the reads
    // that decided them; files are deleted only after it commits.
    ASSIGN_OR_RETURN(store::Txn txn, common::Wrap(metadata.Begin(), "prune"));
    ASSIGN_OR_RETURN(m, common::Wrap(Mark(txn, content, snaps, options.all, report), "prune"));
    for (const auto& name : m.plan.untag)
      TRY(common::Wrap(txn.DeleteImage(name), "prune: untag `" + name + "`"));
    for (const Digest& d : m.plan.garbage_blobs)
      if (m.state.blob_rows.count(d))
        TRY(common::Wrap(txn.DeleteBlob(d), "prune: delete blob row " + d.str()));
    TRY(common::Wrap(txn.Commit(), "prune"));
    report.untagged = m.plan.untag;
  }
  SweepBlobs(content, m, options, report);
  SweepSnapshots(snaps, m.plan, options, report);
  SweepFiles(content, snaps, options, report);
  return report;
}

common::Result<GcReport> Prune(store::ContentStore& content, store::MetadataDb& metadata,
                               snapshot::Snapshotter& snapshotter, const GcOptions& options) {
  snapshot::Snapshotter* one[] = {&snapshotter};
  return Prune(content, metadata, std::span<snapshot::Snapshotter* const>(one), options);
}

}  // namespace upkeep
