#include "bundle/top_chain_internal.h"

namespace bundle::internal {

common::Result<TopChain> UnpackedTopChain(store::ContentStore& content, store::MetadataDb& metadata,
                                          snapshot::Snapshotter& sn,
                                          const store::ImageRecord& record,
                                          const TopChainOptions& options) {
  ASSIGN_OR_RETURN(image::Image img, image::FromRecord(record));
  TopChain out;
  ASSIGN_OR_RETURN(out.parts, image::LoadImage(content, img));
  if (out.parts.chain_ids.empty()) return out;
  out.top = out.parts.chain_ids.back().str();
  if (auto st = sn.Stat(out.top); st && st->kind == snapshot::SnapshotKind::kCommitted) return out;
  if (options.on_unpack) options.on_unpack();
  image::UnpackOptions uo{.snapshotter = &sn, .metadata = &metadata, .cancel = options.cancel};
  ASSIGN_OR_RETURN(image::UnpackResult r, image::Unpack(content, uo, record));
  if (options.on_unpacked) options.on_unpacked(r);
  out.top = r.chain_ids.back().str();
  return out;
}

}  // namespace bundle::internal
