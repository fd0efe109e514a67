#pragma once
// Finding image records by what a user types:
//  - a reference, normalised; one that does not name its registry
//    ("app:v1", "org/app") is looked up as Docker reads it
//    (docker.io/library/app:v1) and, when there is no such image, under
//    localhost/ (localhost/app:v1), where images pulled from OCI layouts
//    are recorded. Docker Hub's name comes first so that what a short name
//    meant before an image from a layout arrived does not change;
//    `localhost/app:v1` names the other one when both exist;
//  - a name@digest;
//  - an image id (config digest, full or a unique prefix of at least 12
//    hex characters);
//  - `oci:DIR[:TAG]`: the image(s) `gantry pull oci:DIR[:TAG]` recorded,
//    whatever name they were given (--name), found by the layout labels
//    the pull writes (registry/source.h); an image recorded before those
//    labels existed is found under the name such a pull records by
//    default.

#include <string>
#include <vector>

#include "common/error.h"
#include "store/metadata.h"

namespace cli {

// Every record the text names (several when an id names a multi-tag image,
// or a layout was pulled under several names). NotFound naming what was
// looked for when none; InvalidArgument for text that is neither a
// reference nor an id, and for `oci:DIR` without TAG when images of
// several tags of DIR were pulled.
[[nodiscard]] common::Result<std::vector<store::ImageRecord>> FindImages(store::MetadataDb& db,
                                                                         const std::string& text);

}  // namespace cli
