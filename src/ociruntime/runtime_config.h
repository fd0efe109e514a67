#pragma once
// The part of an OCI runtime bundle's config.json (runtime-spec 1.x) that
// the runtime acts on, parsed and validated once, before anything is
// created: a bad bundle fails here and leaves nothing behind.
//
// Paths are kept as given (mount destinations normalised); the rootfs is
// made absolute against the bundle. Capabilities are bit masks, mount
// options are split into mount(2) flags, propagation flags and data.

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace ociruntime::rt {

struct Mount {
  std::string destination;                 // normalised, absolute, never above "/"
  std::string type;                        // "bind" for bind mounts whatever the config said
  std::string source;                      // made absolute against the bundle for binds
  unsigned long flags = 0;                 // MS_* set by options (MS_BIND, MS_REC, MS_RDONLY…)
  unsigned long clear_flags = 0;           // MS_* explicitly cleared ("rw", "suid", …)
  std::vector<unsigned long> propagation;  // MS_PRIVATE|MS_REC, … in order
  std::string data;                        // options mount(2) passes to the filesystem
  // Recursive attributes ("rro", "rnosuid", …) applied with mount_setattr(2).
  uint64_t rec_attr_set = 0, rec_attr_clr = 0;
  bool IsBind() const;
};

struct Namespace {
  int flag = 0;      // CLONE_NEW*
  std::string path;  // empty: create a new one
};

struct Rlimit {
  int resource = 0;
  std::string name;  // "RLIMIT_NOFILE"
  rlim_t soft = 0;
  rlim_t hard = 0;
};

struct Capabilities {
  bool present = false;  // process.capabilities given at all
  uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
};

struct IdMap {
  uint32_t container_id = 0, host_id = 0, size = 0;
};

struct Device {
  std::string path;
  char type = 'c';  // 'c', 'b', 'u' or 'p'
  int64_t major = 0, minor = 0;
  mode_t mode = 0666;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct DeviceRule {
  bool allow = false;
  char type = 'a';                 // 'a', 'c' or 'b'
  int64_t major = -1, minor = -1;  // -1: any
  std::string access = "rwm";
};

// A per-device value of linux.resources.blockIO: a weight or a rate.
struct BlkioDevice {
  int64_t major = 0, minor = 0;
  uint64_t value = 0;
};

struct Resources {
  std::optional<int64_t> memory_limit, memory_reservation, memory_swap, memory_swappiness;
  bool disable_oom_killer = false;
  std::optional<int64_t> pids_limit;
  std::optional<uint64_t> cpu_shares, cpu_period, cpu_rt_period;
  std::optional<int64_t> cpu_quota, cpu_rt_runtime;
  std::string cpuset_cpus, cpuset_mems;
  std::vector<DeviceRule> devices;
  // blockIO; a weight of 0 is none. weightDevice entries are split by the
  // weight they carry.
  uint64_t blkio_weight = 0, blkio_leaf_weight = 0;
  std::vector<BlkioDevice> blkio_weight_device, blkio_leaf_weight_device;
  std::vector<BlkioDevice> blkio_read_bps, blkio_write_bps, blkio_read_iops, blkio_write_iops;
  // network: net_cls class id (0 is none) and net_prio's interface priorities.
  uint32_t net_cls_classid = 0;
  std::vector<std::pair<std::string, uint32_t>> net_prio;
  std::vector<std::pair<std::string, uint64_t>> hugepage_limits;  // page size ("2MB"), bytes
  std::map<std::string, std::string> rdma;     // device → "hca_handle=N hca_object=M"
  std::map<std::string, std::string> unified;  // linux.resources.unified (v2 files)
};

// A lifecycle hook (runtime-spec config.md#posix-platform-hooks).
struct Hook {
  std::string path;               // absolute
  std::vector<std::string> args;  // argv, args[0] included; empty: {path}
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds, > 0
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

// linux.seccomp (runtime_seccomp.cc). Parsing validates it and keeps the
// rules with libseccomp's action and operator values; CompileSeccomp makes
// `bpf`, the program of struct sock_filter.
struct SeccompArg {
  unsigned index = 0;
  int op = 0;  // enum scmp_compare
  uint64_t value = 0, value_two = 0;
};
struct SeccompRule {
  std::vector<std::string> names;
  uint32_t action = 0;  // SCMP_ACT_*
  std::vector<SeccompArg> args;
};
struct SeccompProgram {
  bool present = false;
  uint32_t default_action = 0;
  std::vector<uint32_t> arches;  // SCMP_ARCH_*, besides the native one
  std::vector<SeccompRule> rules;
  std::string source;  // linux.seccomp as JSON text: the compile cache's key
  unsigned flags = 0;  // SECCOMP_FILTER_FLAG_*
  std::string bpf;     // empty until compiled (and without linux.seccomp)
  // listenerPath: an AF_UNIX socket that gets the SCMP_ACT_NOTIFY listener
  // fd and the container's state; listenerMetadata is passed along.
  std::string listener_path, listener_metadata;
};

// Compiles `p` (no-op without linux.seccomp or when compiled already).
// With `cache_dir` the program is looked up there first (by the profile's
// text and libseccomp's version) and stored after a compile. Errors:
// those of libseccomp, naming the system call.
[[nodiscard]] common::Status CompileSeccomp(SeccompProgram& p,
                                            const std::filesystem::path& cache_dir);

struct Process {
  bool terminal = false;
  std::optional<std::pair<unsigned, unsigned>> console_size;  // height, width
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::optional<mode_t> umask;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  Capabilities caps;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile, selinux_label;  // empty: none
};

struct Config {
  std::string oci_version;
  std::filesystem::path bundle;  // absolute
  std::filesystem::path rootfs;  // absolute
  bool root_readonly = false;
  std::string hostname;
  std::optional<std::string> domainname;
  std::vector<Mount> mounts;
  Process process;
  std::vector<Namespace> namespaces;
  std::vector<IdMap> uid_mappings, gid_mappings;
  std::vector<std::pair<std::string, std::string>> sysctls;
  Resources resources;
  std::string cgroups_path;
  unsigned long rootfs_propagation = 0;  // 0: rslave
  std::vector<std::string> masked_paths, readonly_paths;
  std::vector<Device> devices;
  std::map<std::string, std::string> annotations;
  Hooks hooks;
  SeccompProgram seccomp;

  // The entry for `flag` (CLONE_NEWPID, …), or null when the container
  // shares the runtime's namespace of that type.
  const Namespace* FindNamespace(int flag) const;
};

// Reads and validates BUNDLE/config.json. Errors: NotFound (no config.json,
// missing rootfs), InvalidArgument (invalid JSON, a field of the wrong type,
// an unknown namespace type, capability, rlimit or mount option that cannot
// be honoured, empty process.args, a mount destination outside the
// rootfs), with the field named in the message.
[[nodiscard]] common::Result<Config> LoadConfig(const std::filesystem::path& bundle);

// Parses config.json text; `bundle` anchors relative paths.
[[nodiscard]] common::Result<Config> ParseConfig(std::string_view text,
                                                 const std::filesystem::path& bundle);

// A runtime-spec process object alone (`exec --process FILE`), validated
// as config.json's `process`. Errors: InvalidArgument naming the field.
[[nodiscard]] common::Result<Process> ParseProcessJson(std::string_view text);

// A LinuxResources object alone (`update --resources FILE`), validated as
// config.json's linux.resources. Errors: InvalidArgument naming the field.
[[nodiscard]] common::Result<Resources> ParseResourcesJson(std::string_view text);

// "/a/./b//c/" -> "/a/b/c"; "a" -> "/a". Errors (InvalidArgument) when ".."
// climbs above "/".
[[nodiscard]] common::Result<std::string> NormalizeContainerPath(std::string_view path);

// Name (with or without "CAP_", any case) → capability number.
[[nodiscard]] std::optional<int> CapabilityFromName(std::string_view name);

}  // namespace ociruntime::rt
