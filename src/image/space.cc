#include "image/space.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <set>

#include "oci/manifest.h"

namespace image {

using common::Errc;
using common::MakeError;

std::optional<int64_t> StatedUnpackedSize(const oci::Descriptor& layer) {
  auto it = layer.annotations.find(std::string(kAnnotationUncompressedSize));
  if (it != layer.annotations.end()) {
    const std::string& v = it->second;
    int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    // A malformed annotation states nothing; the layer is then as unknown
    // as one without it.
    if (ec == std::errc() && p == v.data() + v.size() && n >= 0) return n;
  }
  auto c = oci::LayerCompressionOf(layer.media_type);
  if (c && *c == oci::Compression::kNone) return layer.size;
  return std::nullopt;
}

SpaceNeed ComputeSpaceNeed(const std::vector<oci::Descriptor>& blobs,
                           const std::vector<oci::Descriptor>& unpack,
                           const std::map<common::Digest, int64_t>& held) {
  SpaceNeed need;
  std::set<common::Digest> seen;
  for (const oci::Descriptor& d : blobs) {
    if (!seen.insert(d.digest).second) continue;
    auto it = held.find(d.digest);
    const int64_t have = it == held.end() ? 0 : std::clamp<int64_t>(it->second, 0, d.size);
    need.download += d.size - have;
  }
  seen.clear();
  for (const oci::Descriptor& l : unpack) {
    if (!seen.insert(l.digest).second) continue;
    if (auto n = StatedUnpackedSize(l)) {
      need.unpack += *n;
    } else {
      ++need.unknown_unpack;
    }
  }
  return need;
}

common::Result<FsSpace> StatSpace(const std::filesystem::path& dir) {
  std::filesystem::path p = dir;
  for (;;) {
    struct statvfs vfs {};
    struct stat st {};
    if (::statvfs(p.c_str(), &vfs) == 0 && ::stat(p.c_str(), &st) == 0) {
      return FsSpace{
          .path = dir,
          .fs_id = static_cast<uint64_t>(st.st_dev),
          .free = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize)};
    }
    if (errno != ENOENT || !p.has_parent_path() || p.parent_path() == p)
      return common::ErrnoError("statvfs `" + p.string() + "`");
    p = p.parent_path();
  }
}

SpaceVerdict DecideSpace(const SpaceNeed& need, const FsSpace& content,
                         const std::optional<FsSpace>& unpack, int64_t margin) {
  // An image already in the store (and unpacked) writes only its record:
  // a full disk must not stop it from being pulled again.
  if (need.download == 0 && need.unpack == 0 && need.unknown_unpack == 0)
    return SpaceVerdict{.enough = true, .path = content.path, .need = 0, .free = content.free};
  auto verdict = [&](const FsSpace& fs, int64_t bytes) {
    const int64_t want = bytes + margin;
    return SpaceVerdict{.enough = want <= fs.free, .path = fs.path, .need = want, .free = fs.free};
  };
  if (!unpack || unpack->fs_id == content.fs_id)
    return verdict(content, need.download + need.unpack);
  SpaceVerdict c = verdict(content, need.download);
  if (!c.enough) return c;
  return verdict(*unpack, need.unpack);
}

std::string BinaryBytes(int64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while ((v >= 1024 || v <= -1024) && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string DescribeShortage(const SpaceVerdict& v, const SpaceNeed& need) {
  std::string m = "not enough space in `" + v.path.string() + "`: need " + BinaryBytes(v.need) +
                  ", " + BinaryBytes(v.free) + " free";
  if (need.unknown_unpack > 0)
    m += " (not counting the unpacked size of " + std::to_string(need.unknown_unpack) +
         (need.unknown_unpack == 1 ? " layer" : " layers") + ", which the manifest does not state)";
  m += " (--ignore-space-check to pull anyway)";
  return m;
}

common::Status CheckSpace(const SpaceNeed& need, const std::filesystem::path& content_dir,
                          const std::filesystem::path& unpack_dir, int64_t margin) {
  ASSIGN_OR_RETURN(FsSpace content, StatSpace(content_dir));
  std::optional<FsSpace> unpack;
  if (!unpack_dir.empty()) {
    ASSIGN_OR_RETURN(unpack, StatSpace(unpack_dir));
  }
  SpaceVerdict v = DecideSpace(need, content, unpack, margin);
  if (v.enough) return {};
  return MakeError(Errc::kResourceExhausted, DescribeShortage(v, need));
}

}  // namespace image
