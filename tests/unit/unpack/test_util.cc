#include "unit/unpack/test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "common/digest.h"
#include "common/fs.h"

namespace unpack::testing {

namespace fs = std::filesystem;
using oci::Compression;

common::Result<size_t> ChunkedSource::Read(std::span<std::byte> buf) {
  ++reads_;
  size_t n = std::min({buf.size(), chunk_, data_.size() - pos_});
  std::memcpy(buf.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Sandbox::Sandbox() {
  auto t = common::TempDir::Create("unpack-test");
  if (!t) {
    ADD_FAILURE() << t.error().message;
    return;
  }
  tmp_ = std::move(*t);
  fs::create_directory(root());
  if (!common::AtomicWriteFile(canary(), kCanaryContent, 0644)) ADD_FAILURE() << "write canary";
  auto fd = common::Open(root().string(), O_PATH | O_DIRECTORY);
  if (!fd) {
    ADD_FAILURE() << fd.error().message;
    return;
  }
  root_fd_ = std::move(*fd);
}

bool Sandbox::Untouched() const {
  auto c = ReadAll(canary());
  if (!c || *c != kCanaryContent) return false;
  auto st = Lstat(canary());
  if (!st || !S_ISREG(st->st_mode)) return false;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir())) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names == std::vector<std::string>{"canary", "root"};
}

common::Result<ApplyResult> Sandbox::Apply(const std::string& blob, const ApplyOptions& options,
                                           size_t chunk) const {
  ChunkedSource src(blob, chunk);
  return ApplyLayer(src, root_fd(), options);
}

std::string Tar(const std::vector<fixtures::TarEntry>& entries) {
  auto t = fixtures::BuildTar(entries);
  if (!t) {
    ADD_FAILURE() << t.error().message;
    return {};
  }
  return *t;
}

std::string Blob(const std::vector<fixtures::TarEntry>& entries, fixtures::Compression c) {
  auto b = fixtures::Compress(Tar(entries), c);
  if (!b) {
    ADD_FAILURE() << b.error().message;
    return {};
  }
  return *b;
}

fixtures::Compression ToFixture(Compression c) {
  switch (c) {
    case Compression::kNone:
      return fixtures::Compression::kNone;
    case Compression::kGzip:
      return fixtures::Compression::kGzip;
    case Compression::kZstd:
      return fixtures::Compression::kZstd;
  }
  return fixtures::Compression::kNone;
}

ApplyOptions Unprivileged(WhiteoutMode mode, Compression c) {
  ApplyOptions o;
  o.compression = c;
  o.whiteouts = mode;
  o.privileged = false;
  return o;
}

namespace {
la_ssize_t AppendTo(archive*, void* client, const void* buf, size_t len) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}
}  // namespace

std::string SparseTar(const std::vector<fixtures::TarEntry>& before, const std::string& name,
                      int64_t size, const std::vector<SparseSegment>& segments) {
  // The leading entries come from the fixture builder (minus its two zero
  // end blocks), the sparse one from libarchive's pax writer directly.
  std::string out = Tar(before);
  if (out.size() < 1024) return {};
  out.resize(out.size() - 1024);

  archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  archive_write_add_filter_none(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, AppendTo, nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, size);
  archive_entry_set_mtime(e, 1700000000, 0);
  for (const auto& s : segments)
    archive_entry_sparse_add_entry(e, s.offset, static_cast<la_int64_t>(s.data.size()));
  if (archive_write_header(a, e) != ARCHIVE_OK)
    ADD_FAILURE() << "sparse header: " << archive_error_string(a);
  // The writer takes the whole file image and drops the holes itself, so
  // feed zeros for the holes in bounded chunks.
  static const std::string kZeros(1 << 20, '\0');
  int64_t pos = 0;
  for (const auto& s : segments) {
    while (pos < s.offset) {
      size_t n = static_cast<size_t>(std::min<int64_t>(s.offset - pos, kZeros.size()));
      archive_write_data(a, kZeros.data(), n);
      pos += static_cast<int64_t>(n);
    }
    archive_write_data(a, s.data.data(), s.data.size());
    pos += static_cast<int64_t>(s.data.size());
  }
  while (pos < size) {
    size_t n = static_cast<size_t>(std::min<int64_t>(size - pos, kZeros.size()));
    archive_write_data(a, kZeros.data(), n);
    pos += static_cast<int64_t>(n);
  }
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

Compression FromMediaType(const std::string& media_type) {
  if (media_type == fixtures::kMediaTypeLayerGzip) return Compression::kGzip;
  if (media_type == fixtures::kMediaTypeLayerZstd) return Compression::kZstd;
  return Compression::kNone;
}

common::Result<ApplyResult> ApplyLayoutBlob(const fs::path& layout, const fixtures::BlobInfo& layer,
                                            const common::Digest& diff_id, int root_fd,
                                            ApplyOptions options) {
  ASSIGN_OR_RETURN(common::UniqueFd fd,
                   common::Open((layout / "blobs/sha256" / layer.digest.hex()).string(), O_RDONLY));
  options.compression = FromMediaType(layer.media_type);
  options.expected_blob_digest = layer.digest;
  options.expected_diff_id = diff_id;
  FdSource src(fd.get());
  return ApplyLayer(src, root_fd, options);
}

std::optional<std::string> ReadAll(const fs::path& p) {
  auto r = common::ReadFile(p, 1u << 30);
  if (!r) return std::nullopt;
  return *r;
}

std::optional<struct stat> Lstat(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return std::nullopt;
  return st;
}

std::optional<std::string> GetXattr(const fs::path& p, const std::string& name) {
  std::string buf(64 << 10, '\0');
  ssize_t n = ::lgetxattr(p.c_str(), name.c_str(), buf.data(), buf.size());
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

bool UserXattrsSupported(const fs::path& dir) {
  fs::path probe = dir / ".xattr-probe";
  if (!common::AtomicWriteFile(probe, "x")) return false;
  bool ok = ::setxattr(probe.c_str(), "user.probe", "1", 1, 0) == 0;
  fs::remove(probe);
  return ok;
}

bool CanCreateWhiteouts(const fs::path& dir) {
  fs::path probe = dir / ".whiteout-probe";
  bool ok = ::mknod(probe.c_str(), S_IFCHR, makedev(0, 0)) == 0;
  ::unlink(probe.c_str());
  return ok;
}

bool IsOverlayWhiteout(const fs::path& p) {
  auto st = Lstat(p);
  return st && S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

std::map<std::string, std::string> Tree(const fs::path& dir,
                                        const std::vector<std::string>& xattrs) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    auto st = Lstat(p);
    if (!st) continue;
    std::ostringstream line;
    const mode_t type = st->st_mode & S_IFMT;
    line << (type == S_IFDIR   ? "dir"
             : type == S_IFREG ? "file"
             : type == S_IFLNK ? "symlink"
             : type == S_IFCHR ? "chr"
             : type == S_IFBLK ? "blk"
             : type == S_IFIFO ? "fifo"
                               : "other")
         << " mode=" << std::oct << (st->st_mode & 07777) << std::dec << " owner=" << st->st_uid
         << ":" << st->st_gid;
    if (type == S_IFREG) {
      auto data = ReadAll(p);
      line << " size=" << st->st_size
           << " sha256=" << (data ? common::Digest::Sha256Of(*data).short_hex() : "?");
    }
    if (type == S_IFLNK) line << " -> " << fs::read_symlink(p, ec).string();
    if (type == S_IFCHR || type == S_IFBLK)
      line << " rdev=" << major(st->st_rdev) << ":" << minor(st->st_rdev);
    if (type != S_IFLNK)
      for (const auto& x : xattrs)
        if (auto v = GetXattr(p, x))
          line << " " << x << "=" << common::Digest::Sha256Of(*v).short_hex(8);
    out[p.lexically_relative(dir).string()] = line.str();
  }
  return out;
}

}  // namespace unpack::testing
