// The container's filesystem view, built by the init in its own mount
// namespace: runc's order (propagation, rootfs bind, mounts, /dev,
// pivot_root, then sysctls, read-only and masked paths, read-only root).

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/fs.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Result;
using common::Status;
using common::UniqueFd;

std::unexpected<common::Error> MountError(const std::string& what, const std::string& where,
                                          int err = errno) {
  return common::ErrnoError("mount " + what + " on `" + where + "`", err);
}

// Flags the kernel keeps locked on a mount (inherited from a more
// privileged namespace): a bind remount must repeat them or get EPERM.
unsigned long LockedFlags(const std::string& path) {
  struct statvfs sv {};
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

Status BindRemount(const std::string& path, unsigned long flags, const std::string& shown) {
  unsigned long f = MS_BIND | MS_REMOUNT | flags;
  if (::mount("", path.c_str(), nullptr, f, nullptr) == 0) return {};
  if (errno != EPERM) return MountError("(remount)", shown);
  // Keep the atime mode only if the caller set none.
  unsigned long locked = LockedFlags(path);
  if (flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)) locked &= ~(MS_NOATIME | MS_RELATIME);
  if (::mount("", path.c_str(), nullptr, f | locked, nullptr) != 0)
    return MountError("(remount)", shown);
  return {};
}

constexpr unsigned long kRemountable =
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
    MS_STRICTATIME | MS_NOSYMFOLLOW | MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK | MS_LAZYTIME;

// Propagation and recursive attributes, on the mount now at `dest`.
Status FinishMount(int root_fd, const Mount& m) {
  if (m.propagation.empty() && !m.rec_attr_set && !m.rec_attr_clr) return {};
  ASSIGN_OR_RETURN(UniqueFd fd, OpenInRoot(root_fd, m.destination, false, true));
  for (unsigned long p : m.propagation)
    if (::mount("", FdPath(fd.get()).c_str(), nullptr, p, nullptr) != 0)
      return MountError("(propagation)", m.destination);
  if (m.rec_attr_set || m.rec_attr_clr) {
    mount_attr attr{};
    attr.attr_set = m.rec_attr_set;
    attr.attr_clr = m.rec_attr_clr;
    if (::syscall(SYS_mount_setattr, fd.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                  sizeof attr) != 0)
      return common::ErrnoError("set recursive mount attributes on `" + m.destination + "`");
  }
  return {};
}

// /sys/fs/cgroup: a tmpfs with the container's own cgroup of each v1
// hierarchy bound below it, or its cgroup2 directory. As runc and crun do,
// "ro" applies to the cgroup binds; the tmpfs itself stays writable.
Status MountCgroups(int root_fd, const Mount& m, const CgroupSet& cgroups) {
  unsigned long flags = (m.flags & kRemountable) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  ASSIGN_OR_RETURN(UniqueFd target, OpenInRoot(root_fd, m.destination, true, true));
  if (cgroups.v2) {
    const CgroupDir* u = cgroups.Unified();
    if (!u) return common::MakeError(Errc::kInternal, "no cgroup2 directory for the container");
    if (::mount(u->path.c_str(), FdPath(target.get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
      return MountError("`" + u->path + "`", m.destination);
    ASSIGN_OR_RETURN(UniqueFd top, OpenInRoot(root_fd, m.destination, false, true));
    return BindRemount(FdPath(top.get()), flags, m.destination);
  }
  if (::mount("tmpfs", FdPath(target.get()).c_str(), "tmpfs", flags & ~MS_RDONLY, "mode=755") != 0)
    return MountError("tmpfs", m.destination);
  ASSIGN_OR_RETURN(UniqueFd dir_path, OpenInRoot(root_fd, m.destination, false, true));
  UniqueFd dir(::openat(dir_path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return common::ErrnoError("open `" + m.destination + "`");
  for (const CgroupDir& d : cgroups.dirs) {
    if (d.controllers.empty()) continue;  // a hybrid host's cgroup2: runc leaves it out too
    std::string name = d.root.substr(d.root.rfind('/') + 1);
    std::string sub = m.destination + "/" + name;
    if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST)
      return common::ErrnoError("create `" + sub + "`");
    ASSIGN_OR_RETURN(UniqueFd t, OpenInRoot(root_fd, sub, false, true));
    if (::mount(d.path.c_str(), FdPath(t.get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
      return MountError("`" + d.path + "`", sub);
    ASSIGN_OR_RETURN(UniqueFd top, OpenInRoot(root_fd, sub, false, true));
    TRY(BindRemount(FdPath(top.get()), flags, sub));
    // Co-mounted controllers ("cpu,cpuacct") get a link per controller.
    if (name.find(',') != std::string::npos) {
      size_t i = 0;
      while (i <= name.size()) {
        size_t j = name.find(',', i);
        if (j == std::string::npos) j = name.size();
        std::string link = name.substr(i, j - i);
        if (::symlinkat(name.c_str(), dir.get(), link.c_str()) != 0 && errno != EEXIST)
          return common::ErrnoError("symlink `" + m.destination + "/" + link + "`");
        i = j + 1;
      }
    }
  }
  return {};
}

Status MountOne(int root_fd, const Mount& m, const CgroupSet& cgroups) {
  if (m.type == "cgroup" || m.type == "cgroup2") return MountCgroups(root_fd, m, cgroups);
  bool dir = true;
  if (m.IsBind()) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0)
      return common::ErrnoError("bind mount source `" + m.source + "`");
    dir = S_ISDIR(st.st_mode);
  }
  ASSIGN_OR_RETURN(UniqueFd target, OpenInRoot(root_fd, m.destination, true, dir));
  std::string tpath = FdPath(target.get());
  if (m.IsBind()) {
    if (::mount(m.source.c_str(), tpath.c_str(), nullptr, MS_BIND | (m.flags & MS_REC), nullptr) !=
        0)
      return MountError("`" + m.source + "`", m.destination);
    if (unsigned long f = m.flags & kRemountable; f != 0) {
      // The fd names the directory under the new mount; reopen to reach it.
      ASSIGN_OR_RETURN(UniqueFd top, OpenInRoot(root_fd, m.destination, false, dir));
      TRY(BindRemount(FdPath(top.get()), f, m.destination));
    }
    return FinishMount(root_fd, m);
  }
  unsigned long flags = m.flags & ~(MS_REMOUNT | MS_BIND | MS_REC);
  const char* data = m.data.empty() ? nullptr : m.data.c_str();
  if (::mount(m.source.c_str(), tpath.c_str(), m.type.c_str(), flags, data) != 0) {
    int err = errno;
    // sysfs cannot be mounted without a new network namespace: bind the
    // host's, as runc does.
    if (m.type == "sysfs" && err == EPERM) {
      if (::mount("/sys", tpath.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        return MountError("`/sys`", m.destination);
      ASSIGN_OR_RETURN(UniqueFd top, OpenInRoot(root_fd, m.destination, false, true));
      TRY(BindRemount(FdPath(top.get()), flags & kRemountable, m.destination));
      return FinishMount(root_fd, m);
    }
    return MountError(m.type + " `" + m.source + "`", m.destination, err);
  }
  return FinishMount(root_fd, m);
}

struct DefaultDevice {
  const char* name;
  unsigned major, minor;
};
constexpr DefaultDevice kDefaultDevices[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

Status MakeDevice(int root_fd, const Device& d, bool userns) {
  std::string parent = d.path.substr(0, d.path.rfind('/'));
  std::string name = d.path.substr(d.path.rfind('/') + 1);
  ASSIGN_OR_RETURN(UniqueFd pdir, OpenInRoot(root_fd, parent, true, true));
  UniqueFd dir(::openat(pdir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return common::ErrnoError("open `" + parent + "`");
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  dev_t dev = makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
  if (!userns && ::mknodat(dir.get(), name.c_str(), type | (d.mode & 07777), dev) == 0) {
    if (::fchownat(dir.get(), name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) != 0 ||
        ::fchmodat(dir.get(), name.c_str(), d.mode & 07777, 0) != 0)
      return common::ErrnoError("set owner and mode of `" + d.path + "`");
    return {};
  }
  if (!userns && errno == EEXIST) return {};
  if (!userns && errno != EPERM) return common::ErrnoError("mknod `" + d.path + "`");
  // In a user namespace (or where mknod is refused) bind the host's node.
  int f = ::openat(dir.get(), name.c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0000);
  if (f < 0) return common::ErrnoError("create `" + d.path + "`");
  ::close(f);
  ASSIGN_OR_RETURN(UniqueFd t, OpenInRoot(root_fd, d.path, false, false));
  if (::mount(d.path.c_str(), FdPath(t.get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
    return MountError("`" + d.path + "`", d.path);
  return {};
}

Status SetupDev(int root_fd, const Config& c, bool userns) {
  for (const Mount& m : c.mounts)
    if (m.destination == "/dev" && m.IsBind()) return {};  // the host's /dev: leave it
  for (const DefaultDevice& dd : kDefaultDevices) {
    Device d{.path = std::string("/dev/") + dd.name,
             .type = 'c',
             .major = dd.major,
             .minor = dd.minor,
             .mode = 0666,
             .uid = 0,
             .gid = 0};
    TRY(MakeDevice(root_fd, d, userns));
  }
  for (const Device& d : c.devices) TRY(MakeDevice(root_fd, d, userns));
  ASSIGN_OR_RETURN(UniqueFd dev_path, OpenInRoot(root_fd, "/dev", true, true));
  UniqueFd dev(::openat(dev_path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dev) return common::ErrnoError("open `/dev`");
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"},
      {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
  };
  for (const auto& [target, name] : links)
    if (::symlinkat(target, dev.get(), name) != 0 && errno != EEXIST)
      return common::ErrnoError(std::string("symlink `/dev/") + name + "`");
  if (::access("/proc/kcore", F_OK) == 0 && ::symlinkat("/proc/kcore", dev.get(), "core") != 0 &&
      errno != EEXIST)
    return common::ErrnoError("symlink `/dev/core`");
  if (::unlinkat(dev.get(), "ptmx", 0) != 0 && errno != ENOENT)
    return common::ErrnoError("remove `/dev/ptmx`");
  if (::symlinkat("pts/ptmx", dev.get(), "ptmx") != 0)
    return common::ErrnoError("symlink `/dev/ptmx`");
  return {};
}

// The mount `path` is on (the last of those stacked on its mount point)
// and whether it propagates to or from others, from /proc/self/mountinfo.
struct MountOf {
  std::string point = "/";
  bool shared = false, unbindable = false;
};

MountOf MountHolding(const std::string& path) {
  MountOf best;
  auto text = common::ReadFile("/proc/self/mountinfo", 16u << 20);
  if (!text) return best;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + pos, end - pos);
    pos = end + 1;
    // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPER
    size_t f = 0;
    for (int i = 0; i < 4 && f != std::string_view::npos; ++i) f = line.find(' ', f + 1);
    if (f == std::string_view::npos) continue;
    size_t e = line.find(' ', f + 1);
    std::string mp(line.substr(f + 1, e - f - 1));
    bool under = path == mp || (path.starts_with(mp) && (mp == "/" || path[mp.size()] == '/'));
    if (!under || mp.size() < best.point.size()) continue;
    size_t dash = line.find(" - ", e);
    std::string_view optional = e == std::string_view::npos || dash == std::string_view::npos
                                    ? std::string_view()
                                    : line.substr(e, dash - e);
    best.point = mp;
    best.shared = optional.find(" shared:") != std::string_view::npos;
    best.unbindable = optional.find(" unbindable") != std::string_view::npos;
  }
  return best;
}

}  // namespace

Status PrepareRootfs(const Config& c, const CgroupSet& cgroups, bool userns) {
  unsigned long prop = c.rootfs_propagation ? c.rootfs_propagation : MS_SLAVE | MS_REC;
  if (::mount("", "/", nullptr, prop, nullptr) != 0) return MountError("(propagation)", "/");
  // The rootfs is bound onto itself below. Where the mount it is on is
  // still shared (a non-recursive mode left it so, or "shared" made it),
  // that bind and every mount on top would propagate to the host's peers,
  // and pivot_root refuses a new root on a shared mount; a bind from an
  // unbindable mount fails. So that mount is made private first, as runc
  // does; the mode asked for is applied to the new root after pivot_root.
  std::string rootfs = c.rootfs.string();
  if (MountOf holder = MountHolding(rootfs); holder.shared || holder.unbindable)
    if (::mount("", holder.point.c_str(), nullptr, MS_PRIVATE, nullptr) != 0)
      return MountError("(private)", holder.point);
  if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return MountError("rootfs `" + rootfs + "`", rootfs);
  UniqueFd root_fd(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return common::ErrnoError("open rootfs `" + rootfs + "`");
  for (const Mount& m : c.mounts) TRY(MountOne(root_fd.get(), m, cgroups));
  return SetupDev(root_fd.get(), c, userns);
}

Status EnterRootfs(const Config& c, bool no_pivot) {
  std::string rootfs = c.rootfs.string();
  if (no_pivot) {
    if (::chdir(rootfs.c_str()) != 0) return common::ErrnoError("chdir `" + rootfs + "`");
    if (::mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0)
      return MountError("(move) `" + rootfs + "`", "/");
    if (::chroot(".") != 0) return common::ErrnoError("chroot `" + rootfs + "`");
    if (::chdir("/") != 0) return common::ErrnoError("chdir `/`");
    return {};
  }
  UniqueFd old_root(::open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  UniqueFd new_root(::open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!old_root || !new_root) return common::ErrnoError("open roots for pivot_root");
  if (::fchdir(new_root.get()) != 0) return common::ErrnoError("chdir `" + rootfs + "`");
  // pivot_root(".", "."): the old root ends up mounted on top of the new
  // one, where it is detached below without needing a directory for it.
  if (::syscall(SYS_pivot_root, ".", ".") != 0)
    return common::ErrnoError("pivot_root `" + rootfs + "`");
  if (::fchdir(old_root.get()) != 0) return common::ErrnoError("chdir to the old root");
  // Keep the unmount from propagating to the host.
  if (::mount("", ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
    return MountError("(slave)", "the old root");
  if (::umount2(".", MNT_DETACH) != 0) return common::ErrnoError("unmount the old root");
  if (::chdir("/") != 0) return common::ErrnoError("chdir `/`");
  return {};
}

Status FinishRootfs(const Config& c) {
  // A missing process.cwd is created, as runc and crun do (images name a
  // WorkingDir they do not contain), as root and before the root may turn
  // read-only; the container's own mounts are in place, so it lands where
  // the process will see it.
  ::umask(022);
  TRY(common::MkdirAll(c.process.cwd, 0755));
  for (const auto& [key, value] : c.sysctls) {
    std::string path = "/proc/sys/" + key;
    for (size_t i = 10; i < path.size(); ++i)
      if (path[i] == '.') path[i] = '/';
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), value.data(), value.size()) < 0)
      return common::ErrnoError("set sysctl `" + key + "` to `" + value + "`");
  }
  for (const std::string& p : c.readonly_paths) {
    if (::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) continue;
      return MountError("read-only path", p);
    }
    TRY(BindRemount(p, MS_RDONLY, p));
  }
  for (const std::string& p : c.masked_paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return common::ErrnoError("stat masked path `" + p + "`");
    }
    int rc = S_ISDIR(st.st_mode) ? ::mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY, nullptr)
                                 : ::mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
    if (rc != 0) return MountError("mask", p);
  }
  if (c.root_readonly) TRY(BindRemount("/", MS_RDONLY, "/"));
  if (c.rootfs_propagation && ::mount("", "/", nullptr, c.rootfs_propagation, nullptr) != 0)
    return MountError("(propagation)", "/");
  return {};
}

}  // namespace ociruntime::rt
