#pragma once
// Disk space a pull still needs, and the check that refuses a pull early
// when the store's file system cannot hold it.
//
//   SpaceNeed need = ComputeSpaceNeed(blobs, layers_to_unpack, held);
//   TRY(CheckSpace(need, content_dir, unpack_dir, kSpaceMargin));
//   // ResourceExhausted: "not enough space in `/var/lib/gantry`: need
//   //   1.2 GiB, 300.0 MiB free (--ignore-space-check to pull anyway)"
//
// What is counted, from the manifest alone (nothing is downloaded first):
//  - download: every blob not committed in the store, less the bytes of
//    its partial download (the pull resumes it);
//  - unpack: the unpacked size of each layer that will be unpacked, where
//    something states it: the layer descriptor's annotation
//    io.containers.estargz.uncompressed-size (written by eStargz and
//    zstd:chunked tools; containers/storage reads the same one), or the
//    blob size itself for an uncompressed tar layer. For a compressed
//    layer without that annotation nothing is counted: the manifest does
//    not tell, and a guessed ratio would refuse pulls that fit or let
//    through pulls that do not. Such layers are counted in
//    SpaceNeed::unknown_unpack and named in the refusal message.
//  - a fixed margin (kSpaceMargin) for metadata, directories and inodes.
// Free space is statvfs's f_bavail * f_frsize (what an unprivileged writer
// may use). When the content store and the snapshots are on different
// file systems each is checked for its own part.
//
// This is a check at one moment: other writers may fill the disk during
// the pull, and a pull that runs out of space anyway fails cleanly
// (image/fetch.h).
//
// Thread-safety: pure functions, and statvfs.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "oci/descriptor.h"

namespace image {

// The layer annotation that states the uncompressed tar size in bytes.
inline constexpr std::string_view kAnnotationUncompressedSize =
    "io.containers.estargz.uncompressed-size";
// Added to what a pull needs: the metadata database, snapshot directories
// and inodes, progress records.
inline constexpr int64_t kSpaceMargin = 16LL << 20;

struct SpaceNeed {
  int64_t download = 0;    // bytes of missing blobs, less their partials
  int64_t unpack = 0;      // stated unpacked bytes of the layers to unpack
  int unknown_unpack = 0;  // layers to unpack whose unpacked size is not stated
};

// The unpacked size of `layer` where something states it (see above).
[[nodiscard]] std::optional<int64_t> StatedUnpackedSize(const oci::Descriptor& layer);

// `blobs`: every blob the pull will fetch (config, layers; a digest listed
// twice counts once). `unpack`: the layers that will be unpacked (empty
// when nothing will be). `held`: bytes of each blob already in the store:
// its size when committed, the partial's size when a download was cut
// (absent: nothing). Pure.
[[nodiscard]] SpaceNeed ComputeSpaceNeed(const std::vector<oci::Descriptor>& blobs,
                                         const std::vector<oci::Descriptor>& unpack,
                                         const std::map<common::Digest, int64_t>& held);

// Free space of the file system holding a directory.
struct FsSpace {
  std::filesystem::path path;  // the directory asked about
  uint64_t fs_id = 0;          // st_dev: equal for one file system
  int64_t free = 0;            // f_bavail * f_frsize
};

// statvfs and stat of `dir`, or of its nearest existing ancestor when it
// does not exist yet (the result still names `dir`). Errors: from the
// system calls.
[[nodiscard]] common::Result<FsSpace> StatSpace(const std::filesystem::path& dir);

struct SpaceVerdict {
  bool enough = true;
  std::filesystem::path path;  // the file system found short (when !enough)
  int64_t need = 0;            // bytes needed there, margin included
  int64_t free = 0;
};

// Compares `need` plus `margin` with the free space: the download goes to
// `content`, the unpacked layers to `unpack` (nullopt: same as content).
// On one file system both parts add up. A need of nothing at all (every
// blob held, every layer unpacked) is always enough, margin or not. Pure.
[[nodiscard]] SpaceVerdict DecideSpace(const SpaceNeed& need, const FsSpace& content,
                                       const std::optional<FsSpace>& unpack, int64_t margin);

// "1.2 GiB", "300.0 MiB", "512 B": binary units, one decimal.
[[nodiscard]] std::string BinaryBytes(int64_t n);

// The one-line refusal for a verdict that is not enough, e.g. "not enough
// space in `/s`: need 1.2 GiB, 300.0 MiB free (the unpacked size of 2
// layers is not known and not counted) (--ignore-space-check to pull
// anyway)".
[[nodiscard]] std::string DescribeShortage(const SpaceVerdict& v, const SpaceNeed& need);

// StatSpace of `content_dir` and `unpack_dir` (empty: no unpack), then
// DecideSpace. Errors: ResourceExhausted with DescribeShortage's message;
// the errors of StatSpace.
[[nodiscard]] common::Status CheckSpace(const SpaceNeed& need,
                                        const std::filesystem::path& content_dir,
                                        const std::filesystem::path& unpack_dir, int64_t margin);

}  // namespace image
