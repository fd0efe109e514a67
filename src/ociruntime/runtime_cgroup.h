#pragma once
// Container cgroups, with the layout detected at run time from
// /proc/self/mountinfo and /proc/self/cgroup:
//   - cgroup v1: one directory per mounted hierarchy (memory, pids, cpu,
//     cpuset, devices, freezer, name=systemd, …), plus the cgroup2 mount of
//     a hybrid host (/sys/fs/cgroup/unified), which gets a directory too;
//   - pure cgroup v2: one directory; controllers enabled in the ancestors'
//     cgroup.subtree_control.
//
// Where the container's cgroup goes, per hierarchy (runc's cgroupfs rules):
//   linux.cgroupsPath empty    → <runtime's own cgroup>/<id>
//   linux.cgroupsPath absolute → that path from the hierarchy's root
//   linux.cgroupsPath relative → <runtime's own cgroup>/<path>
// So a runtime started from a service puts containers below it, as runc does.
// The systemd "slice:prefix:name" form is rejected (no systemd driver).
//
// Limits applied: memory (limit, reservation, swap, swappiness,
// disableOOMKiller), pids, cpu (shares/weight, quota, period, v1 real-time
// period and runtime), cpuset (cpus, mems; v1 parents inherit their
// parent's sets), blockIO (weights, per-device weights, throttles; v2's
// io.*), v1 network (net_cls class id, net_prio priorities), hugepage
// limits, rdma, v1 device rules (runc's default allow list after the
// config's rules), linux.resources.unified (v2). v2 device rules need eBPF
// and are not enforced.
//
// What the host cannot enforce is refused (FailedPrecondition, naming the
// field) before anything is created, as runc refuses it: a limit whose v1
// controller is not mounted, a v1 host without the devices hierarchy, a
// file the kernel does not have (blkio weights without BFQ, real-time
// limits without RT group scheduling, an unknown hugepage size), and on
// v2 what it has no controller for (net_cls/net_prio, leaf weights,
// real-time limits).

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "ociruntime/runtime_config.h"
#include "ociruntime/runtime_state.h"

namespace ociruntime::rt {

// Computes the directories for container `id` without touching anything.
// Errors: Unavailable when no cgroup hierarchy is mounted, InvalidArgument
// for a systemd-style or escaping cgroupsPath.
[[nodiscard]] common::Result<CgroupSet> PlanCgroups(const std::string& cgroups_path,
                                                    const std::string& id);

// Creates the directories and writes the limits. On error, whatever was
// created is removed again. Errors name the field or the file and value:
// "linux.resources.network.classID: the cgroup v1 controller `net_cls` is
// not mounted on this host", "write `memory.limit_in_bytes` = 1000 in
// `/sys/fs/cgroup/memory/x`: …".
[[nodiscard]] common::Status CreateCgroups(CgroupSet& set, const Resources& res,
                                           const std::vector<Device>& devices);

// `update`: writes the limits in `res` to the existing directories (device
// rules are left alone, as runc's update does).
[[nodiscard]] common::Status UpdateCgroups(const CgroupSet& set, const Resources& res);

// pause/resume: the v1 freezer hierarchy when mounted, else cgroup2's
// cgroup.freeze; returns once the kernel reports the state reached
// (bounded: Unavailable after 10 s, or when there is no freezer).
[[nodiscard]] common::Status FreezeCgroups(const CgroupSet& set, bool freeze);
// Whether pause left the container frozen.
[[nodiscard]] bool CgroupFrozen(const CgroupSet& set);

// What `events --stats` reports, read from the container's cgroups (0
// where a controller is missing; limits of "max" are 0).
struct CgroupStats {
  uint64_t cpu_total_ns = 0;
  uint64_t memory_usage = 0, memory_max_usage = 0, memory_limit = 0;
  uint64_t pids_current = 0, pids_limit = 0;
};
[[nodiscard]] CgroupStats ReadCgroupStats(const CgroupSet& set);

// Moves `pid` into every leaf (the unified one too unless `skip_unified`,
// for a child cloned straight into it with CLONE_INTO_CGROUP).
[[nodiscard]] common::Status JoinCgroups(const CgroupSet& set, pid_t pid, bool skip_unified);

// Moves the calling process, single-threaded, into every v1 leaf by
// writing "0" to `tasks`: moving only the current thread skips the
// cgroup_threadgroup_rwsem write lock (and its RCU grace period, several ms)
// that writing a pid to cgroup.procs takes. The cgroup2 leaf is joined
// through cgroup.procs unless `skip_unified`. Used by the container's init.
[[nodiscard]] common::Status JoinCgroupsSelf(const CgroupSet& set, bool skip_unified);

// The processes in the container's cgroup (empty when it is gone).
[[nodiscard]] std::vector<pid_t> CgroupPids(const CgroupSet& set);

// Signals every process in the cgroup; v1 with a freezer hierarchy freezes
// the cgroup around it so that no fork escapes.
[[nodiscard]] common::Status SignalCgroup(const CgroupSet& set, int sig);

// SIGKILLs what is left, waits (bounded) for the cgroup to empty, removes
// the leaves and the parents we created (those still in use by others are
// kept). Errors: Unavailable when processes did not go away in time.
[[nodiscard]] common::Status DestroyCgroups(const CgroupSet& set);

}  // namespace ociruntime::rt
