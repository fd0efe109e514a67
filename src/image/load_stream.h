#pragma once
// `docker save x | gantry load`: every image of an archive read once from a
// pipe, through the one pull pipeline (image/pull.h), as `gantry load -i
// FILE` loads a file. A regular file on the descriptor (`gantry load <
// FILE`) is read in place instead, as -i FILE reads it (steps 1 and 3 are
// then skipped: nothing is copied, the pulls store the blobs), unless it is
// gzip-compressed. A gzip stream or file (`docker save x | gzip`, which
// docker load accepts) is inflated on the way (ArchiveContents::ReadStream).
//
// In order, LoadStream:
//  1. reads the archive to its end (archives::ArchiveContents::ReadStream):
//     each entry goes into an unnamed file of the content store as it goes
//     by, hashed on the way; memory stays at one buffer;
//  2. lists the images and names to record (archives::ListLoadItems, the
//     file load's rules; untagged images are named after `base`), opens
//     each as a source and checks that every blob it uses is there and, for
//     a layer whose diffID or name states its digest, that it has it;
//  3. gives those blobs their names in the store (a link each, no copy;
//     one fsync of blobs/ for all), under the store's shared lock, which
//     it releases before the pulls take it; the caller must not hold it;
//  4. runs PullImage for each name, over the opened source: the pipeline
//     finds the blobs present, unpacks the layers, checks the diffIDs and
//     records the image, as for any pull.
// A failure in 1 or 2 (a truncated stream, a bad manifest.json, an entry
// named `..`, a missing layer, a wrong diffID of a plain layer, duplicate
// names) leaves the store as it was: the unnamed files vanish with the
// process. After 3 the verified blobs stay (valid content, until a prune)
// whatever happens to the pulls; images recorded before a failed one stay
// recorded, as with a file.
//
// A prune between 3 and 4 may delete the new blobs (no record holds them
// yet): the pulls then store them again from the same files.
//
// Errors: ReadStream's and ListLoadItems' (naming `what`); OpenArchiveImage's
// and BlobEntries'; the store's; PullImage's. Thread-safety: as PullImage.

#include <functional>
#include <string>

#include "archive/archive_source.h"
#include "common/error.h"
#include "image/pull.h"

namespace image {

struct LoadStreamOptions {
  int fd = 0;                           // the stream; read to the archive's end; not closed
  std::string what = "standard input";  // the stream in errors
  std::string base = "stdin";           // `localhost/BASE:latest` for untagged images
  std::string name;                     // --name: the only image's name
  // Each image's pull: everything but `source` and `opened_source`, which
  // LoadStream sets. Its `platform` also chooses what an index commits.
  PullImageOptions pull{};
  // Called after each name is recorded, in archive order.
  std::function<void(const archives::LoadItem&, const PulledImage&)> on_loaded{};
};

[[nodiscard]] common::Status LoadStream(const PullStore& store, const LoadStreamOptions& options);

}  // namespace image
