// ComputeUsage: sizes from the same mark as garbage collection.

#include "upkeep/usage.h"

#include <algorithm>
#include <map>
#include <set>

#include "upkeep/gc_internal.h"

namespace upkeep {
namespace {

using common::Digest;
using common::Errc;

// A blob or a snapshot, as a key of the items images share.
std::string BlobItem(const Digest& d) { return "b " + d.str(); }
std::string SnapshotItem(size_t snapshotter, const std::string& name) {
  return "s " + std::to_string(snapshotter) + " " + name;
}

// The committed snapshots of `refs` in one snapshotter: its chainIDs that
// exist, with their parents.
std::set<std::string> ImageSnapshots(const internal::ImageRefs& refs,
                                     const std::map<std::string, const snapshot::Info*>& by_name) {
  std::set<std::string> out;
  for (const auto& c : refs.chains) {
    std::string cur = c;
    while (!cur.empty()) {
      auto it = by_name.find(cur);
      if (it == by_name.end() || it->second->kind != snapshot::SnapshotKind::kCommitted ||
          !out.insert(cur).second)
        break;
      cur = it->second->parent;
    }
  }
  return out;
}

struct Sizes {
  std::map<Digest, int64_t> blobs;
  std::vector<std::map<std::string, int64_t>> snapshots;  // per snapshotter, by name

  int64_t Reclaimed(const internal::Plan& plan) const {
    int64_t n = 0;
    for (const auto& d : plan.garbage_blobs)
      if (auto it = blobs.find(d); it != blobs.end()) n += it->second;
    for (size_t i = 0; i < plan.snapshots.size(); ++i)
      for (const auto& info : plan.snapshots[i].remove)
        if (auto it = snapshots[i].find(info.name); it != snapshots[i].end()) n += it->second;
    return n;
  }
};

}  // namespace

common::Result<DiskUsage> ComputeUsage(const store::ContentStore& content,
                                       store::MetadataDb& metadata,
                                       std::span<snapshot::Snapshotter* const> snapshotters,
                                       const UsageOptions& options) {
  DiskUsage u;
  ASSIGN_OR_RETURN(std::vector<internal::SnapshotterState> snaps,
                   internal::ReadSnapshots(snapshotters));
  ASSIGN_OR_RETURN(internal::StoreState state, internal::ReadState(metadata, content));
  ASSIGN_OR_RETURN(auto refs, internal::RefsOfAll(content, state.images));
  for (const auto& [name, r] : refs)
    u.warnings.insert(u.warnings.end(), r.warnings.begin(), r.warnings.end());
  const internal::Plan plan = internal::MakePlan(state, refs, snaps, false);
  const internal::Plan plan_all = internal::MakePlan(state, refs, snaps, true);

  Sizes sizes;
  std::set<Digest> garbage(plan.garbage_blobs.begin(), plan.garbage_blobs.end());
  for (const Digest& d : state.blob_files) {
    auto size = content.Size(d);
    if (!size) {
      if (size.error().code == Errc::kNotFound) continue;  // removed since listed
      return std::unexpected(size.error());
    }
    sizes.blobs[d] = *size;
    ++u.content_total.count;
    u.content_total.bytes += *size;
    if (garbage.count(d))
      u.content_total.reclaimable += *size;
    else
      ++u.content_total.active;
  }

  std::vector<std::map<std::string, const snapshot::Info*>> by_name(snaps.size());
  sizes.snapshots.resize(snaps.size());
  std::vector<size_t> snapshotter_of;  // parallel to u.snapshots
  for (size_t i = 0; i < snaps.size(); ++i) {
    std::string kind(snapshot::KindName(snaps[i].snapshotter->kind()));
    for (const auto& info : snaps[i].infos) {
      by_name[i][info.name] = &info;
      auto usage = snaps[i].snapshotter->GetUsage(info.name);
      if (!usage) {
        if (usage.error().code == Errc::kNotFound) continue;
        return std::unexpected(usage.error());
      }
      sizes.snapshots[i][info.name] = usage->bytes;
      bool reclaimable = !plan.snapshots[i].kept.count(info.name);
      const bool held = state.containerd_snapshots.count(info.name) != 0;
      u.snapshots.push_back({.snapshotter = kind,
                             .info = info,
                             .usage = *usage,
                             .reclaimable = reclaimable,
                             .containerd = held});
      if (held) {
        ++u.containerd_snapshots;
        u.containerd_bytes += usage->bytes;
      }
      snapshotter_of.push_back(i);
      ++u.snapshots_total.count;
      u.snapshots_total.bytes += usage->bytes;
      if (reclaimable)
        u.snapshots_total.reclaimable += usage->bytes;
      else
        ++u.snapshots_total.active;
    }
  }

  // Which items each image uses, and how many images use each item.
  std::map<std::string, std::set<std::string>> items_of;
  std::map<std::string, int> users;
  std::map<std::string, int64_t> item_bytes;
  for (const auto& r : state.images) {
    const internal::ImageRefs& ir = refs.at(r.name);
    auto& items = items_of[r.name];
    for (const Digest& d : ir.blobs)
      if (auto it = sizes.blobs.find(d); it != sizes.blobs.end()) {
        items.insert(BlobItem(d));
        item_bytes[BlobItem(d)] = it->second;
      }
    for (size_t i = 0; i < snaps.size(); ++i)
      for (const auto& name : ImageSnapshots(ir, by_name[i])) {
        auto key = SnapshotItem(i, name);
        items.insert(key);
        auto it = sizes.snapshots[i].find(name);
        item_bytes[key] = it == sizes.snapshots[i].end() ? 0 : it->second;
      }
    for (const auto& item : items) ++users[item];
  }
  for (size_t k = 0; k < u.snapshots.size(); ++k)
    if (auto it = users.find(SnapshotItem(snapshotter_of[k], u.snapshots[k].info.name));
        it != users.end())
      u.snapshots[k].images = it->second;

  for (const auto& r : state.images) {
    const internal::ImageRefs& ir = refs.at(r.name);
    ImageUsage iu{.name = r.name, .id = ir.config, .created_ns = r.created_ns};
    for (const auto& item : items_of[r.name]) {
      int64_t b = item_bytes[item];
      (item[0] == 'b' ? iu.content_bytes : iu.snapshot_bytes) += b;
      if (users[item] >= 2) iu.shared += b;
    }
    iu.size = iu.content_bytes + iu.snapshot_bytes;
    iu.unique = iu.size - iu.shared;
    for (size_t i = 0; i < snaps.size() && !iu.unpacked; ++i) {
      auto it = by_name[i].find(ir.top);
      iu.unpacked = !ir.top.empty() && it != by_name[i].end() &&
                    it->second->kind == snapshot::SnapshotKind::kCommitted;
    }
    iu.containers = internal::UsersOf(ir, snaps);
    ++u.images_total.count;
    if (iu.containers > 0) ++u.images_total.active;
    u.images.push_back(std::move(iu));
  }
  for (const auto& [item, n] : users) {
    u.images_total.bytes += item_bytes[item];
    if (n >= 2) u.images_shared += item_bytes[item];
  }
  u.images_unique = u.images_total.bytes - u.images_shared;

  ASSIGN_OR_RETURN(internal::IngestEstimate ingest,
                   internal::EstimateIngest(content, options.ingest_min_age));
  u.ingest_total = {.count = ingest.total_files,
                    .active = ingest.total_files - ingest.files,
                    .bytes = ingest.total_bytes,
                    .reclaimable = ingest.bytes};

  int64_t plain = sizes.Reclaimed(plan);
  int64_t all = sizes.Reclaimed(plan_all);
  u.images_total.reclaimable = all - plain;
  u.reclaimable = plain + ingest.bytes;
  u.reclaimable_all = all + ingest.bytes;
  return u;
}

common::Result<DiskUsage> ComputeUsage(const store::ContentStore& content,
                                       store::MetadataDb& metadata,
                                       snapshot::Snapshotter& snapshotter,
                                       const UsageOptions& options) {
  snapshot::Snapshotter* one[] = {&snapshotter};
  return ComputeUsage(content, metadata, std::span<snapshot::Snapshotter* const>(one), options);
}

}  // namespace upkeep
