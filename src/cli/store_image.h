#pragma once
// An image of the store as the source of a copy out of it (`gantry save`,
// `gantry copy gantry:NAME …`): the image the store holds whole.

#include <atomic>
#include <memory>
#include <string>

#include "common/error.h"
#include "image/pull.h"
#include "registry/source.h"

namespace cli {

// image::OpenStoreSource, except that ResolveTop answers the platform
// manifest the store holds (image::StoreSource::PlatformManifest) when
// the record's target is an index: the store lacks the index's other
// platforms, and the platform to keep is the one pulled, whichever the
// host is. Errors: OpenStoreSource's.
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageSource>> OpenStoreImage(
    const image::PullStore& store, const std::string& name, const std::atomic<bool>* cancel);

}  // namespace cli
