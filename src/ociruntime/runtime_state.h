#pragma once
// Container state on disk: ROOT/ID/state.json (replaced atomically by a
// rename) and
// ROOT/ID/exec.fifo, which exists from create until start, exactly as runc
// keeps it. The status is never stored; it is derived each time:
//   no live init (gone, zombie, or its pid reused) → stopped
//   exec.fifo present                              → created
//   the cgroup frozen (`pause`)                    → paused
//   otherwise                                      → running
//
// state.json fields (ours, not runc's internal format):
//   ociVersion, id, pid, pidStart (/proc/PID/stat starttime, against pid
//   reuse), bundle, rootfs, created (RFC 3339, nanoseconds), annotations,
//   cgroups: {v2, dirs: [[hierarchy root, controllers, leaf dir]…],
//   created: [dirs we made, parents first]}, and when config.json has
//   them, poststart / poststop: [{path, args, env, timeout}].

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "ociruntime/runtime_config.h"

namespace ociruntime::rt {

inline constexpr const char* kOciVersion = "1.2.0";
inline constexpr const char* kStateFile = "state.json";
inline constexpr const char* kExecFifo = "exec.fifo";

enum class ContainerStatus { kCreated, kRunning, kPaused, kStopped };
[[nodiscard]] const char* StatusName(ContainerStatus s);

// One hierarchy's directory for a container (see runtime_cgroup.h).
struct CgroupDir {
  std::string root;         // hierarchy mount point, e.g. /sys/fs/cgroup/memory
  std::string controllers;  // "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2
  std::string path;         // the container's directory in it
};

// The cgroups of one container.
struct CgroupSet {
  bool v2 = false;                   // pure cgroup v2 host
  std::vector<CgroupDir> dirs;       // one per hierarchy (the cgroup2 one included)
  std::vector<std::string> created;  // directories we created, parents first

  // The cgroup2 directory (pure v2 or hybrid), or null.
  const CgroupDir* Unified() const {
    for (const CgroupDir& d : dirs)
      if (d.controllers.empty()) return &d;
    return nullptr;
  }
};

struct State {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start = 0;
  std::filesystem::path bundle, rootfs;
  std::string created;
  std::map<std::string, std::string> annotations;
  CgroupSet cgroups;
  // config.json's hooks that run after create (kept so that start and
  // delete need not read config.json again); stored only when present.
  std::vector<Hook> poststart, poststop;
};

// runc's rule: [A-Za-z0-9_+.-]+, not "." or "..". Errors: InvalidArgument.
[[nodiscard]] common::Status ValidateId(std::string_view id);

// Now as RFC 3339 with nanoseconds, trailing zeros trimmed (Go's
// RFC3339Nano): "2026-11-27T01:44:28.217955229Z".
[[nodiscard]] std::string NowRfc3339Nano();

// /proc/PID/stat: start time (clock ticks after boot) and whether the
// process is a zombie; nullopt when there is no such process.
struct ProcStat {
  uint64_t start = 0;
  bool zombie = false;
};
[[nodiscard]] std::optional<ProcStat> ReadProcStat(pid_t pid);

// True when `pid` is still the container's init (same start time) and has
// not exited.
[[nodiscard]] bool InitAlive(const State& s);

[[nodiscard]] std::string StateToJson(const State& s);
[[nodiscard]] common::Result<State> StateFromJson(std::string_view text);

// Opens ROOT/ID and takes an exclusive flock on it (released when the fd
// closes). Errors: NotFound "container `ID` does not exist".
[[nodiscard]] common::Result<common::UniqueFd> LockContainerDir(const std::filesystem::path& root,
                                                                const std::string& id);

// Reads ROOT/ID/state.json. Errors: NotFound when the container does not
// exist (or is still being created).
[[nodiscard]] common::Result<State> LoadState(const std::filesystem::path& root,
                                              const std::string& id);

[[nodiscard]] common::Status SaveState(int dir_fd, const State& s);

// Derives the status (see above); `dir_fd` is ROOT/ID.
[[nodiscard]] ContainerStatus CurrentStatus(const State& s, int dir_fd);

// The OCI state document as runc prints it (`state`, `list --format json`).
// pid is 0 once stopped.
[[nodiscard]] std::string OciStateJson(const State& s, ContainerStatus status,
                                       const std::string& owner, int indent);

}  // namespace ociruntime::rt
