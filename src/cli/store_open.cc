#include "cli/store_open.h"

#include "common/fs.h"
#include "common/log.h"

namespace cli {

common::Result<OpenedStore> OpenStore(const GlobalOptions& global) {
  if (auto st = common::MkdirAll(global.root, 0700); !st)
    return std::unexpected(st.error().Wrap("open store"));
  OpenedStore s;
  auto content = store::ContentStore::Open(global.root);
  if (!content) return std::unexpected(content.error().Wrap("open store"));
  s.content = std::make_unique<store::ContentStore>(std::move(*content));
  auto meta = store::MetadataDb::Open(global.root);
  if (!meta) return std::unexpected(meta.error().Wrap("open store"));
  s.metadata = std::make_unique<store::MetadataDb>(std::move(*meta));
  return s;
}

common::Result<std::unique_ptr<snapshot::Snapshotter>> OpenSnapshotter(
    const GlobalOptions& global) {
  snapshot::Options o;
  o.kind = global.snapshotter == "native" ? snapshot::Kind::kNative : snapshot::Kind::kOverlay;
  o.fallback_to_native = true;
  return common::Wrap(snapshot::Open(global.root, o), "open snapshotter " + global.snapshotter);
}

common::Result<PullTarget> OpenPullTarget(const GlobalOptions& global, bool unpack) {
  PullTarget t;
  ASSIGN_OR_RETURN(t.opened, OpenStore(global));
  if (unpack) {
    ASSIGN_OR_RETURN(t.snapshotter, OpenSnapshotter(global));
  }
  t.store = {
      .root = global.root, .content = t.opened.content.get(), .metadata = t.opened.metadata.get()};
  return t;
}

common::Result<OpenedSnapshotters> OpenAllSnapshotters(const GlobalOptions& global) {
  OpenedSnapshotters out;
  ASSIGN_OR_RETURN(out.owned, snapshot::OpenAll(global.root, global.snapshotter == "native"
                                                                 ? snapshot::Kind::kNative
                                                                 : snapshot::Kind::kOverlay));
  for (const auto& s : out.owned) out.all.push_back(s.get());
  return out;
}

void CountInStore(store::MetadataDb& db, std::span<const store::CounterDelta> deltas) {
  if (auto st = db.AddCounters(deltas); !st)
    LOG(Warn) << "count in the store's metrics" << common::Kv("error", st.error().message);
}

}  // namespace cli
