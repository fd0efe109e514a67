#include "cli/store_open.h"

#include "common/fs.h"

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

common::Result<OpenedSnapshotters> OpenAllSnapshotters(const GlobalOptions& global) {
  OpenedSnapshotters out;
  ASSIGN_OR_RETURN(std::unique_ptr<snapshot::Snapshotter> first, OpenSnapshotter(global));
  snapshot::Kind other = first->kind() == snapshot::Kind::kOverlay ? snapshot::Kind::kNative
                                                                   : snapshot::Kind::kOverlay;
  out.owned.push_back(std::move(first));
  // Overlay snapshots can only exist where overlay can be mounted.
  if (other == snapshot::Kind::kNative || snapshot::OverlaySupported(global.root)) {
    ASSIGN_OR_RETURN(std::unique_ptr<snapshot::Snapshotter> second,
                     common::Wrap(snapshot::Open(global.root,
                                                 {.kind = other, .fallback_to_native = false}),
                                  "open snapshotter " + std::string(snapshot::KindName(other))));
    out.owned.push_back(std::move(second));
  }
  for (const auto& s : out.owned) out.all.push_back(s.get());
  return out;
}

}  // namespace cli
