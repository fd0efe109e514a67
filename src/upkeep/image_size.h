#pragma once
// The size of an image as `gantry images` and the CRI service report it.

#include <cstdint>

#include "image/image_record.h"
#include "store/content_store.h"

namespace upkeep {

// The bytes of the image's content in the store: its target (index or
// manifest), the platform manifest when it differs, the config and the
// compressed layers, as the manifest lists them. Layers shared with other
// images are counted in each (this is the image's own size, not what
// removing it frees; `gantry df` tells that). Falls back to the target's
// size alone when the manifest cannot be read from the store.
[[nodiscard]] int64_t ImageContentSize(const store::ContentStore& content,
                                       const image::Image& image);

}  // namespace upkeep
