// Mounting a snapshot's mounts (the data a snapshotter returns) at a
// bundle's rootfs.

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>

#include "ociruntime/bundle.h"

namespace ociruntime {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;

bool HasOption(const snapshot::MountSpec& m, std::string_view o) {
  return std::find(m.options.begin(), m.options.end(), o) != m.options.end();
}

std::vector<std::string> SplitList(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The new mount API, for an overlay whose options exceed the page that
// mount(2) copies: "lowerdir+" (Linux 6.8) takes one layer per call.
Result<common::MountGuard> MountOverlayFsconfig(const snapshot::MountSpec& m,
                                                const fs::path& target, bool readonly) {
  const std::string what = "mount overlay on `" + target.string() + "` (" +
                           std::to_string(m.Data().size()) + " bytes of options)";
  int fsfd = ::fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0) return ErrnoError(what + ": fsopen");
  common::UniqueFd fs_fd(fsfd);
  for (const std::string& o : m.options) {
    if (o == "ro" || o == "rw") continue;
    size_t eq = o.find('=');
    std::string key = o.substr(0, eq);
    if (eq == std::string::npos) {
      if (::fsconfig(fs_fd.get(), FSCONFIG_SET_FLAG, key.c_str(), nullptr, 0) != 0)
        return ErrnoError(what + ": option `" + key + "`");
      continue;
    }
    std::string value = o.substr(eq + 1);
    if (key == "lowerdir") {
      for (const std::string& layer : SplitList(value, ':')) {
        if (::fsconfig(fs_fd.get(), FSCONFIG_SET_STRING, "lowerdir+", layer.c_str(), 0) != 0)
          return ErrnoError(what + ": add lower layer `" + layer + "` (lowerdir+ needs Linux 6.8)");
      }
      continue;
    }
    if (::fsconfig(fs_fd.get(), FSCONFIG_SET_STRING, key.c_str(), value.c_str(), 0) != 0)
      return ErrnoError(what + ": option `" + key + "`");
  }
  if (::fsconfig(fs_fd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return ErrnoError(what + ": create");
  int mfd = ::fsmount(fs_fd.get(), FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
  if (mfd < 0) return ErrnoError(what + ": fsmount");
  common::UniqueFd mnt(mfd);
  if (::move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return ErrnoError(what + ": move_mount");
  return common::MountGuard(target.string());
}

}  // namespace

Result<common::MountGuard> MountSnapshot(const snapshot::MountSpec& m, const fs::path& target,
                                         bool readonly) {
  readonly = readonly || HasOption(m, "ro");
  if (m.type == "bind") {
    unsigned long flags = MS_BIND | (HasOption(m, "rbind") ? MS_REC : 0);
    ASSIGN_OR_RETURN(common::MountGuard g, common::Mount(m.source, target.string(), "", flags));
    // A bind mount ignores MS_RDONLY until it is remounted.
    if (readonly &&
        ::mount("", target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
      return ErrnoError("remount `" + target.string() + "` read-only");
    return g;
  }
  if (m.type != "overlay")
    return MakeError(Errc::kInvalidArgument,
                     "mount `" + target.string() + "`: unsupported mount type `" + m.type + "`");
  const std::string data = m.Data();
  const long page = ::sysconf(_SC_PAGESIZE);
  // mount(2) copies at most one page of options, NUL included.
  if (static_cast<long>(data.size()) >= (page > 0 ? page : 4096))
    return MountOverlayFsconfig(m, target, readonly);
  return common::Mount(m.source, target.string(), m.type, readonly ? MS_RDONLY : 0, data);
}

std::string MountCommand(const snapshot::MountSpec& m, const fs::path& target) {
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

}  // namespace ociruntime
