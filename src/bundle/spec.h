#pragma once
// An OCI runtime-spec config.json from an image's config, with the defaults
// a runtime user expects from `runc spec` (and Docker's/containerd's
// capability set).
//
//   bundle::ImageRuntimeConfig img{.entrypoint = cfg.entrypoint, .cmd = cfg.cmd, …};
//   ASSIGN_OR_RETURN(nlohmann::json spec,
//                    bundle::MakeSpec(img, {.user = "app", .args = {"/bin/id"}}, rootfs));
//
// What MakeSpec writes (runtime-spec 1.0.2, as runc 1.1 `runc spec` does):
//   process.args   Entrypoint + Cmd; BundleOptions::args replaces Cmd only
//                  (the Entrypoint stays, as `docker run IMAGE ARGS…` does).
//   process.env    the image's Env, then BundleOptions::env ("K=V") replacing
//                  a variable of the same name in place or appended; PATH is
//                  added (the default below) when neither sets it.
//   process.cwd    WorkingDir ("/" when empty; a relative one is taken from /).
//   process.user   see "Users" below.
//   process.capabilities  bounding = effective = permitted = kDefaultCapabilities
//                  (Docker's and containerd's default set, larger than
//                  `runc spec`'s AUDIT_WRITE/KILL/NET_BIND_SERVICE: images
//                  expect chown, setuid, … to work as under Docker);
//                  inheritable and ambient empty.
//   process.rlimits RLIMIT_NOFILE 1024/1024; noNewPrivileges true;
//                  terminal false.
//   root           {"path": "rootfs", "readonly": BundleOptions::readonly}
//   hostname       BundleOptions::hostname, "gantry" when empty.
//   mounts         /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue,
//                  /sys (ro), /sys/fs/cgroup (ro), with runc's options.
//   linux          seccomp: DefaultSeccomp(kDefaultCapabilities);
//                  namespaces pid, network, ipc, uts, mount; the devices
//                  cgroup denying everything (the runtime adds its default
//                  devices); runc's maskedPaths and readonlyPaths.
//   userns         with BundleOptions::userns: a "user" namespace and
//                  uidMappings = gidMappings = that range (the rootfs must
//                  then be owned by the host range: ShiftOwnership below).
//   annotations    the image's Labels, and org.opencontainers.image.stopSignal
//                  when StopSignal is set (it wins over a label of that name).
//
// Users: the user is BundleOptions::user, or the image's User when that is
// empty, or root. Forms: "name", "uid", "name:group", "uid:gid",
// "uid:group", "name:gid" (and ":group" for root's). As runc resolves them:
//   - a numeric user is a uid (matching a passwd entry by uid, if any); a
//     name must have an entry in /etc/passwd;
//   - without a group, gid is the passwd entry's (0 for a uid without one)
//     and additionalGids are the gids of the /etc/group entries listing the
//     user's name as a member;
//   - with a group, gid is that group (a number, or a name that must be in
//     /etc/group) and there are no additionalGids;
//   - ids above 2^31-1 are refused.
// /etc/passwd and /etc/group are read through the rootfs, never outside it:
// symlinks (absolute or with "..") are resolved as if the rootfs were "/"
// (openat2 RESOLVE_IN_ROOT, or an equivalent component walk where openat2 is
// unavailable); magic links and mount crossings are refused; anything but a
// regular file of at most 4 MiB is refused. A missing file counts as empty.
//
// Errors (InvalidArgument unless stated): no command (empty Entrypoint and
// Cmd and no args); an --env entry without '=' or with an empty name; a
// user or group name that is not in the image's /etc/passwd or /etc/group
// (the message names the user and the file); an id out of range; an
// /etc/passwd or /etc/group that is not a regular file, is too large, or
// escapes the rootfs through a magic link or a mount; the errors of reading
// them (mapped from errno).
//
// Thread-safety: MakeSpec has no shared state beyond a process-wide cache
// of whether openat2 works.

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace bundle {

// The parts of an image config a runtime needs (oci::ImageConfig
// without the registry dependency).
struct ImageRuntimeConfig {
  std::vector<std::string> entrypoint{}, cmd{}, env{};
  std::string working_dir{}, user{}, stop_signal{};
  std::map<std::string, std::string> labels{};
};

// One id range of a user namespace: container ids [container_id,
// container_id + size) are host ids [host_id, host_id + size).
struct IdRange {
  uint32_t container_id = 0, host_id = 0, size = 0;
};

struct BundleOptions {
  bool readonly = false;  // root.readonly
  // A user namespace mapping uids and gids alike (--userns C:H:S).
  std::optional<IdRange> userns{};
  bool no_mount = false;            // see bundle.h; MakeSpec ignores it
  std::vector<std::string> env{};   // "K=V", applied after the image's Env
  std::string user{};               // overrides the image's User
  std::string hostname{};           // "" → "gantry"
  std::vector<std::string> args{};  // replaces Cmd when not empty
};

inline constexpr std::string_view kOciVersion = "1.0.2-dev";
inline constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
inline constexpr std::string_view kDefaultHostname = "gantry";
inline constexpr std::string_view kAnnotationStopSignal = "org.opencontainers.image.stopSignal";

// Docker's and containerd's default capability set, in their order.
inline constexpr std::string_view kDefaultCapabilities[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

// linux.seccomp as `gantry bundle` writes it: in effect Docker's (and
// containerd's) default profile for a container with bounding set `caps`
// on this build's architecture: default action ERRNO(EPERM); an allow list
// of ~350 system calls; socket(2) but AF_VSOCK; personality(2) with the
// usual personas only; without CAP_SYS_ADMIN, clone(2) without namespace
// flags and clone3(2) failing with ENOSYS (so libc falls back to clone);
// mount, unshare, setns, … only with CAP_SYS_ADMIN, and the other
// capability-gated calls (chroot, reboot, ptrace-like, clock setting, …)
// only with their capability.
[[nodiscard]] nlohmann::json DefaultSeccomp(const std::vector<std::string_view>& caps);

// "C:H:S" → {C, H, S}. Errors: InvalidArgument unless three numbers with
// S > 0 and neither range overflowing 32 bits.
[[nodiscard]] common::Result<IdRange> ParseIdRange(std::string_view text);

// Makes `rootfs` (a mounted, writable snapshot) owned as a user namespace
// mapping `r` sees it: every uid and gid in the container range is moved to
// the host range (ids outside it are left, and show as the overflow id).
// Symlinks are not followed and other mounts not entered; setuid/setgid
// bits and security.capability, which chown clears, are put back. On an
// overlay this copies up every file whose owner changes. Errors: those of
// the walk and of lchown, naming the path.
[[nodiscard]] common::Status ShiftOwnership(const std::filesystem::path& rootfs, const IdRange& r);

// The process user of a spec.
struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids{};
};

// Resolves `user` (forms above; "" is root) against the rootfs' /etc/passwd
// and /etc/group. Errors as MakeSpec's for users.
[[nodiscard]] common::Result<ResolvedUser> ResolveUser(const std::string& user,
                                                       const std::filesystem::path& rootfs);

// Builds config.json (see above). `rootfs` is read for /etc/passwd and
// /etc/group only (root's additionalGids are looked up too, as runc does).
[[nodiscard]] common::Result<nlohmann::json> MakeSpec(const ImageRuntimeConfig& image,
                                                      const BundleOptions& options,
                                                      const std::filesystem::path& rootfs);

}  // namespace bundle
