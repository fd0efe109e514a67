// Mounting a snapshot's mounts (mount.h): bind mounts, and overlays through
// mount(2) while their options fit one page, through fsconfig "lowerdir+"
// beyond it.

#include "snapshot/mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string_view>

namespace snapshot {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;

// fsconfig(2) copies a string value of at most 255 bytes (strndup_user with
// a 256-byte bound).
constexpr size_t kMaxFsconfigString = 255;

bool HasOption(const MountSpec& m, std::string_view o) {
  return std::find(m.options.begin(), m.options.end(), o) != m.options.end();
}

// The layers of an overlay's "lowerdir=" option, topmost first. The
// snapshotter joins store paths with ':' and escapes nothing.
std::vector<std::string> Lowers(const MountSpec& m) {
  std::vector<std::string> out;
  constexpr std::string_view kKey = "lowerdir=";
  for (const std::string& o : m.options) {
    if (!o.starts_with(kKey)) continue;
    out.clear();  // as in mount(2), the last lowerdir= wins
    std::string_view list = std::string_view(o).substr(kKey.size());
    while (!list.empty()) {
      size_t colon = list.find(':');
      if (colon != 0) out.emplace_back(list.substr(0, colon));
      if (colon == std::string_view::npos) break;
      list.remove_prefix(colon + 1);
    }
  }
  return out;
}

// The errors the kernel logged on an fs context ("overlay: too many lower
// directories, limit is 500"), joined with "; "; "" when there are none.
std::string KernelErrors(int fs_fd) {
  std::string out;
  char buf[512];
  // Each read returns one message and fails with ENODATA once they are all
  // read; the kernel keeps at most eight.
  for (int i = 0; i < 8; ++i) {
    ssize_t n = ::read(fs_fd, buf, sizeof buf);
    if (n <= 0) break;
    std::string_view msg(buf, static_cast<size_t>(n));
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    if (!msg.starts_with("e ")) continue;  // warnings and information
    msg.remove_prefix(2);
    if (!out.empty()) out += "; ";
    out += msg;
  }
  return out;
}

// A step of building the overlay failed with `err`. The kernel's own words
// are added when it logged any, else `hint`. EINVAL and ENOSYS mean that
// this kernel cannot build this overlay (too many layers, no lowerdir+, no
// fsopen): a precondition of the machine, not a bad argument of the caller.
std::unexpected<common::Error> BuildError(const std::string& what, int fs_fd, int err,
                                          std::string_view hint = {}) {
  std::string log = fs_fd >= 0 ? KernelErrors(fs_fd) : std::string();
  auto e = ErrnoError(what, err);
  if (!log.empty())
    e.error().message += " (" + log + ")";
  else if (!hint.empty())
    e.error().message += " (" + std::string(hint) + ")";
  if (err == EINVAL || err == ENOSYS) e.error().code = Errc::kFailedPrecondition;
  return e;
}

// The new mount API: an fs context configured option by option, the lower
// layers one per "lowerdir+" call, so no option string is ever longer than
// one path.
Result<common::MountGuard> MountOverlayByFsconfig(const MountSpec& m,
                                                  const std::vector<std::string>& lowers,
                                                  const fs::path& target, bool readonly,
                                                  const std::string& what) {
  int fd = ::fsopen("overlay", FSOPEN_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return BuildError(
        what + ": fsopen", -1, err,
        err == ENOSYS ? "options beyond a page need the new mount API, Linux 5.2" : "");
  }
  common::UniqueFd ctx(fd);
  // Read-only as mount(2)'s MS_RDONLY makes it: the superblock ("ro", so
  // overlayfs writes nothing to an upper layer) and the mount.
  if (readonly && ::fsconfig(ctx.get(), FSCONFIG_SET_FLAG, "ro", nullptr, 0) != 0) {
    const int err = errno;
    return BuildError(what + ": option `ro`", ctx.get(), err);
  }
  for (const std::string& o : m.options) {
    if (o == "ro" || o == "rw" || o.starts_with("lowerdir=")) continue;
    const size_t eq = o.find('=');
    const std::string key = o.substr(0, eq);
    const int rc =
        eq == std::string::npos
            ? ::fsconfig(ctx.get(), FSCONFIG_SET_FLAG, key.c_str(), nullptr, 0)
            : ::fsconfig(ctx.get(), FSCONFIG_SET_STRING, key.c_str(), o.c_str() + eq + 1, 0);
    if (rc != 0) {
      const int err = errno;
      return BuildError(what + ": option `" + key + "`", ctx.get(), err);
    }
  }
  for (size_t i = 0; i < lowers.size(); ++i) {
    if (::fsconfig(ctx.get(), FSCONFIG_SET_STRING, "lowerdir+", lowers[i].c_str(), 0) == 0)
      continue;
    const int err = errno;
    std::string_view hint;
    if (lowers[i].size() > kMaxFsconfigString)
      hint = "fsconfig takes paths of at most 255 bytes";
    else if (i == 0 && err == EINVAL)
      hint = "options beyond a page need lowerdir+, Linux 6.8";
    return BuildError(what + ": add layer " + std::to_string(i + 1) + " `" + lowers[i] + "`",
                      ctx.get(), err, hint);
  }
  if (::fsconfig(ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    const int err = errno;
    return BuildError(what + ": create", ctx.get(), err);
  }
  int mfd = ::fsmount(ctx.get(), FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
  if (mfd < 0) {
    const int err = errno;
    return BuildError(what + ": fsmount", ctx.get(), err);
  }
  // Attached nowhere until move_mount: on its failure, closing the fd drops it.
  common::UniqueFd mnt(mfd);
  if (::move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return ErrnoError(what + ": move_mount");
  return common::MountGuard(target.string());
}

Result<common::MountGuard> MountOverlay(const MountSpec& m, const fs::path& target, bool readonly) {
  const std::vector<std::string> lowers = Lowers(m);
  const std::string what = "mount overlay of " + std::to_string(lowers.size()) + " layer" +
                           (lowers.size() == 1 ? "" : "s") + " on `" + target.string() + "`";
  const std::string data = m.Data();
  const long page = ::sysconf(_SC_PAGESIZE);
  // mount(2) copies one page of options and cuts the string at its last
  // byte: beyond that the lowerdir list would end in a truncated path. Below
  // it, mount(2) is kept as it works on every kernel.
  if (static_cast<long>(data.size()) < (page > 0 ? page : 4096)) {
    if (::mount(m.source.c_str(), target.c_str(), "overlay", readonly ? MS_RDONLY : 0,
                data.c_str()) != 0)
      return ErrnoError(what);
    return common::MountGuard(target.string());
  }
  return MountOverlayByFsconfig(m, lowers, target, readonly, what);
}

Result<common::MountGuard> MountBind(const MountSpec& m, const fs::path& target, bool readonly) {
  const unsigned long flags = MS_BIND | (HasOption(m, "rbind") ? MS_REC : 0);
  ASSIGN_OR_RETURN(common::MountGuard g, common::Mount(m.source, target.string(), "", flags));
  // A bind mount ignores MS_RDONLY until it is remounted (`g` detaches the
  // bind mount if that fails).
  if (readonly &&
      ::mount("", target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
    return ErrnoError("remount `" + target.string() + "` read-only");
  return g;
}

}  // namespace

Result<common::MountGuard> MountAt(const std::vector<MountSpec>& mounts, const fs::path& target,
                                   const MountOptions& options) {
  if (mounts.size() != 1)
    return MakeError(Errc::kInvalidArgument, "mount on `" + target.string() +
                                                 "`: expected one mount, got " +
                                                 std::to_string(mounts.size()));
  const MountSpec& m = mounts.front();
  const bool readonly = options.readonly || HasOption(m, "ro");
  if (m.type == "bind") return MountBind(m, target, readonly);
  if (m.type == "overlay") return MountOverlay(m, target, readonly);
  return MakeError(Errc::kInvalidArgument,
                   "mount on `" + target.string() + "`: unsupported mount type `" + m.type + "`");
}

std::string MountCommand(const MountSpec& m, const fs::path& target) {
  if (m.type == "bind") {
    std::string line = std::string("mount ") + (HasOption(m, "rbind") ? "--rbind " : "--bind ") +
                       m.source + " " + target.string();
    if (HasOption(m, "ro")) line += " && mount -o remount,bind,ro " + target.string();
    return line;
  }
  std::string opts;
  for (const auto& o : m.options) opts += (opts.empty() ? "" : ",") + o;
  return "mount -t " + m.type + " " + m.source + " -o " + opts + " " + target.string();
}

}  // namespace snapshot
