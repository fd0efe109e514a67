// `gantry bundle --userns C:H:S`: the id range, and a rootfs chown'd to it.

#include <ftw.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "bundle/spec.h"

namespace bundle {
namespace {

using common::Errc;

// nftw's callback has no user pointer: the walk's range and first error.
// One walk at a time per process (the CLI does one).
thread_local const IdRange* t_range = nullptr;
thread_local std::string* t_error = nullptr;

uint32_t Shift(uint32_t id, const IdRange& r) {
  if (id < r.container_id || id - r.container_id >= r.size) return id;
  return r.host_id + (id - r.container_id);
}

int Visit(const char* path, const struct stat* st, int type, FTW*) {
  const IdRange& r = *t_range;
  auto fail = [&](const char* what) {
    *t_error = std::string(what) + " `" + path + "`: " + strerror(errno);
    return 1;
  };
  if (type == FTW_NS || type == FTW_DNR) {
    errno = EACCES;
    return fail("read");
  }
  uid_t uid = Shift(st->st_uid, r);
  gid_t gid = Shift(st->st_gid, r);
  if (uid == st->st_uid && gid == st->st_gid) return 0;
  // chown clears security.capability and, on files, setuid/setgid.
  char caps[256];
  ssize_t ncaps =
      S_ISLNK(st->st_mode) ? -1 : ::lgetxattr(path, "security.capability", caps, sizeof caps);
  if (::lchown(path, uid, gid) != 0) return fail("chown");
  if (!S_ISLNK(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) &&
      ::chmod(path, st->st_mode & 07777) != 0)
    return fail("chmod");
  if (ncaps > 0 &&
      ::lsetxattr(path, "security.capability", caps, static_cast<size_t>(ncaps), 0) != 0)
    return fail("restore security.capability of");
  return 0;
}

}  // namespace

common::Result<IdRange> ParseIdRange(std::string_view text) {
  IdRange r;
  uint32_t* out[] = {&r.container_id, &r.host_id, &r.size};
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    size_t end = i < 2 ? text.find(':', pos) : text.size();
    std::string_view part =
        end == std::string_view::npos ? std::string_view() : text.substr(pos, end - pos);
    if (part.empty() || part.size() > 10 ||
        part.find_first_not_of("0123456789") != std::string_view::npos)
      return common::MakeError(Errc::kInvalidArgument, "--userns `" + std::string(text) +
                                                           "`: expected CONTAINER:HOST:SIZE");
    uint64_t v = std::stoull(std::string(part));
    if (v > UINT32_MAX)
      return common::MakeError(Errc::kInvalidArgument, "--userns: id out of range");
    *out[i] = static_cast<uint32_t>(v);
    pos = end + 1;
  }
  if (r.size == 0 || uint64_t{r.container_id} + r.size > (uint64_t{1} << 32) ||
      uint64_t{r.host_id} + r.size > (uint64_t{1} << 32))
    return common::MakeError(Errc::kInvalidArgument,
                             "--userns `" + std::string(text) + "`: empty or overflowing range");
  return r;
}

common::Status ShiftOwnership(const std::filesystem::path& rootfs, const IdRange& r) {
  std::string error;
  t_range = &r;
  t_error = &error;
  int rc = ::nftw(rootfs.c_str(), Visit, 64, FTW_PHYS | FTW_MOUNT);
  t_range = nullptr;
  t_error = nullptr;
  if (rc != 0) {
    if (error.empty()) return common::ErrnoError("walk `" + rootfs.string() + "`");
    return common::MakeError(Errc::kInternal, "shift rootfs ownership: " + error);
  }
  return {};
}

}  // namespace bundle
