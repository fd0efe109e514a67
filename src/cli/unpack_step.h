#pragma once
// The line `gantry pull`, `gantry unpack` and `gantry bundle` print about
// an unpack (the unpack itself is image/pull.h's and image/unpacker.h's).

#include <cstdio>
#include <string>

#include "image/unpacker.h"
#include "snapshot/snapshotter.h"

namespace cli {

// "NAME: unpacked N layer(s), SIZE, into KIND snapshots (chain …)", or
// "NAME: already unpacked (KIND, chain …)"; nothing when `out` is null.
void PrintUnpackSummary(FILE* out, const std::string& name, const snapshot::Snapshotter& sn,
                        const image::UnpackResult& r);

}  // namespace cli
