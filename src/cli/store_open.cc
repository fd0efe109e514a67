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

}  // namespace cli
