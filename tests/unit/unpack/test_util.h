#pragma once
// Helpers shared by the unpack unit and root tests: in-memory sources, a
// sandbox (root dir plus a canary outside it), layer builders and a tree
// snapshot for comparing results.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "fixtures/image_builder.h"
#include "unpack/apply.h"

namespace unpack::testing {

// Serves `data` in reads of at most `chunk` bytes (to exercise buffer
// boundaries in the decoders and the tar reader).
class ChunkedSource final : public ByteSource {
 public:
  explicit ChunkedSource(std::string data, size_t chunk = 1 << 20)
      : data_(std::move(data)), chunk_(chunk) {}
  common::Result<size_t> Read(std::span<std::byte> buf) override;
  size_t reads() const { return reads_; }

 private:
  std::string data_;
  size_t chunk_;
  size_t pos_ = 0;
  size_t reads_ = 0;
};

// A temp dir holding `root/` (the apply target) and `canary` (a file
// outside the root that no layer may touch).
class Sandbox {
 public:
  Sandbox();
  const std::filesystem::path& dir() const { return tmp_.path(); }
  std::filesystem::path root() const { return tmp_.path() / "root"; }
  std::filesystem::path canary() const { return tmp_.path() / "canary"; }
  int root_fd() const { return root_fd_.get(); }
  // The canary still has its content and the sandbox holds nothing else
  // but root/ and canary.
  bool Untouched() const;
  // Applies `blob` with `options` (compression must match the blob).
  common::Result<ApplyResult> Apply(const std::string& blob, const ApplyOptions& options,
                                    size_t chunk = 1 << 20) const;

  static constexpr char kCanaryContent[] = "canary: must never change\n";

 private:
  common::TempDir tmp_;
  common::UniqueFd root_fd_;
};

// BuildTar (then Compress) or fail the test; returns "" on failure.
std::string Tar(const std::vector<fixtures::TarEntry>& entries);
std::string Blob(const std::vector<fixtures::TarEntry>& entries, fixtures::Compression c);
fixtures::Compression ToFixture(oci::Compression c);

// Unprivileged options whatever the uid, for deterministic unit tests.
ApplyOptions Unprivileged(WhiteoutMode mode = WhiteoutMode::kOverlay,
                          oci::Compression c = oci::Compression::kNone);

// A pax tar with one sparse regular file `name` of apparent size `size`
// whose data regions are `segments` (offset, bytes), preceded by `before`
// entries. Holes are skipped by libarchive's writer, so a huge `size` is
// cheap.
struct SparseSegment {
  int64_t offset;
  std::string data;
};
std::string SparseTar(const std::vector<fixtures::TarEntry>& before, const std::string& name,
                      int64_t size, const std::vector<SparseSegment>& segments);

// Applies the layer blob `layer` of an OCI layout (read through FdSource)
// with its digests as the expected ones: `diff_id` from the config.
common::Result<ApplyResult> ApplyLayoutBlob(const std::filesystem::path& layout,
                                            const fixtures::BlobInfo& layer,
                                            const common::Digest& diff_id, int root_fd,
                                            ApplyOptions options);
oci::Compression FromMediaType(const std::string& media_type);

// File helpers (paths outside the code under test; lstat never follows).
std::optional<std::string> ReadAll(const std::filesystem::path& p);
std::optional<struct stat> Lstat(const std::filesystem::path& p);
std::optional<std::string> GetXattr(const std::filesystem::path& p, const std::string& name);
bool UserXattrsSupported(const std::filesystem::path& dir);
// Whether 0/0 character devices (overlay whiteouts) can be created in
// `dir`: always as root, and for anyone since Linux 5.8.
bool CanCreateWhiteouts(const std::filesystem::path& dir);
bool IsOverlayWhiteout(const std::filesystem::path& p);

// One line per entry below `dir` (sorted by path): type, mode, uid:gid,
// size and sha256 of regular files, symlink targets, rdev, and the xattrs
// listed in `xattrs`. Hardlink inode sharing is not represented.
std::map<std::string, std::string> Tree(const std::filesystem::path& dir,
                                        const std::vector<std::string>& xattrs = {});

}  // namespace unpack::testing
