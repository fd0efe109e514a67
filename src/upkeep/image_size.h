#pragma once
// The size of an image, and when it was built, as `gantry images` and the
// CRI service report them.

#include <cstdint>
#include <optional>
#include <string>

#include "image/image_record.h"
#include "store/content_store.h"

namespace upkeep {

// The bytes of the image's content in the store (image::ContentSize): its
// target (index or manifest), the platform manifest when it differs, the
// config and the compressed layers, as the manifest lists them. Layers
// shared with other images are counted in each (this is the image's own
// size, not what removing it frees; `gantry df` tells that). The record's
// (Image::content_size) when it has one, without reading any blob; else
// read from the manifest in the store, falling back to the target's size
// alone when the manifest cannot be read.
[[nodiscard]] int64_t ImageContentSize(const store::ContentStore& content,
                                       const image::Image& image);

// The image config's `created`, as written ("" when the config has none):
// the record's (Image::config_created) when it has one, without reading
// any blob; else read from the config in the store. nullopt when the
// record does not say and the config cannot be read or parsed (fsck
// reports those).
[[nodiscard]] std::optional<std::string> ImageCreated(const store::ContentStore& content,
                                                      const image::Image& image);

}  // namespace upkeep
