#pragma once
// Opening the store at --root for a command.

#include <memory>

#include "cli/app.h"
#include "common/error.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace cli {

struct OpenedStore {
  std::unique_ptr<store::ContentStore> content;
  std::unique_ptr<store::MetadataDb> metadata;
};

// Creates the root if needed and opens the content store and metadata.db.
[[nodiscard]] common::Result<OpenedStore> OpenStore(const GlobalOptions& global);

}  // namespace cli
