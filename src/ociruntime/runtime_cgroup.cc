#include "ociruntime/runtime_cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <sstream>
#include <thread>
#include <tuple>

#include "common/fs.h"
#include "common/log.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Result;
using common::Status;

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) j = s.size();
    out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 3)), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct CgMount {
  std::string mountpoint, root, fstype;
  std::vector<std::string> superopts;
};

std::vector<CgMount> CgroupMounts() {
  std::vector<CgMount> out;
  auto text = common::ReadFile("/proc/self/mountinfo", 16u << 20);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    auto left = Split(std::string_view(line).substr(0, sep), ' ');
    auto right = Split(std::string_view(line).substr(sep + 3), ' ');
    if (left.size() < 6 || right.size() < 3) continue;
    if (right[0] != "cgroup" && right[0] != "cgroup2") continue;
    out.push_back({Unescape(left[4]), Unescape(left[3]), right[0], Split(right[2], ',')});
  }
  return out;
}

std::string Join(const std::string& a, const std::string& b) {
  if (b.empty() || b == "/") return a;
  if (a.empty() || a == "/") return b[0] == '/' ? b : "/" + b;
  return a + (b[0] == '/' ? "" : "/") + b;
}

// The host directory of cgroup `path` in a hierarchy mounted with `m`.
std::string HostDir(const CgMount& m, const std::string& path) {
  std::string rel = path;
  if (m.root != "/" && rel.starts_with(m.root)) rel = rel.substr(m.root.size());
  return Join(m.mountpoint, rel);
}

Status WriteCg(const std::string& dir, const char* file, const std::string& value) {
  std::string path = dir + "/" + file;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return common::ErrnoError("open `" + std::string(file) + "` in `" + dir + "`");
  common::UniqueFd ufd(fd);
  ssize_t n = ::write(fd, value.data(), value.size());
  if (n < 0)
    return common::ErrnoError("write `" + std::string(file) + "` = " + value + " in `" + dir + "`");
  return {};
}

std::string ReadCg(const std::string& dir, const char* file) {
  auto r = common::ReadFile(dir + "/" + file, 1u << 20);
  if (!r) return {};
  std::string s = std::move(*r);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool Has(const std::string& dir, const char* file) {
  return ::access((dir + "/" + file).c_str(), F_OK) == 0;
}

bool HasController(const CgroupDir& d, std::string_view name) {
  for (const std::string& c : Split(d.controllers, ','))
    if (c == name) return true;
  return false;
}

// WriteCg for the limit in config field `field`: a file this kernel does
// not have (blkio weights without BFQ, a page size it does not know…) is
// a limit it cannot enforce, said so.
Status WriteLimit(const std::string& dir, const std::string& file, const std::string& value,
                  const std::string& field) {
  if (!Has(dir, file.c_str()))
    return common::MakeError(
        Errc::kFailedPrecondition,
        field + ": not supported by this kernel (no `" + file + "` in `" + dir + "`)");
  return Wrap(WriteCg(dir, file.c_str(), value), field);
}

std::string DeviceLine(const BlkioDevice& d, const std::string& value) {
  return std::to_string(d.major) + ":" + std::to_string(d.minor) + " " + value;
}

// The v1 controllers `r` sets limits for, each with the field asking for
// it. runc's conditions: a value given and not zero.
std::vector<std::pair<const char*, const char*>> NeededV1(const Resources& r) {
  std::vector<std::pair<const char*, const char*>> out;
  auto need = [&](bool cond, const char* controller, const char* field) {
    if (cond) out.emplace_back(controller, field);
  };
  auto set = [](const auto& v) { return v && *v != 0; };
  need(set(r.memory_limit) || set(r.memory_reservation) || set(r.memory_swap) ||
           (r.memory_swappiness && *r.memory_swappiness >= 0) || r.disable_oom_killer,
       "memory", "linux.resources.memory");
  need(set(r.pids_limit), "pids", "linux.resources.pids");
  need(set(r.cpu_shares) || set(r.cpu_quota) || set(r.cpu_period) || set(r.cpu_rt_period) ||
           set(r.cpu_rt_runtime),
       "cpu", "linux.resources.cpu");
  need(!r.cpuset_cpus.empty() || !r.cpuset_mems.empty(), "cpuset", "linux.resources.cpu");
  need(r.blkio_weight || r.blkio_leaf_weight || !r.blkio_weight_device.empty() ||
           !r.blkio_leaf_weight_device.empty() || !r.blkio_read_bps.empty() ||
           !r.blkio_write_bps.empty() || !r.blkio_read_iops.empty() || !r.blkio_write_iops.empty(),
       "blkio", "linux.resources.blockIO");
  need(r.net_cls_classid != 0, "net_cls", "linux.resources.network.classID");
  need(!r.net_prio.empty(), "net_prio", "linux.resources.network.priorities");
  need(!r.hugepage_limits.empty(), "hugetlb", "linux.resources.hugepageLimits");
  need(!r.rdma.empty(), "rdma", "linux.resources.rdma");
  return out;
}

// On a v1 (or hybrid) host, a limit whose hierarchy is not mounted cannot
// be enforced: refused, as runc refuses it ("cannot set pids limit"),
// rather than run without. So is any container without the devices
// hierarchy (`with_devices`: create; update leaves device rules alone).
Status CheckV1Controllers(const CgroupSet& set, const Resources& r, bool with_devices) {
  auto mounted = [&](std::string_view controller) {
    return std::any_of(set.dirs.begin(), set.dirs.end(),
                       [&](const CgroupDir& d) { return HasController(d, controller); });
  };
  if (with_devices && !mounted("devices"))
    return common::MakeError(Errc::kFailedPrecondition,
                             "linux.resources.devices: the cgroup v1 controller `devices` is not "
                             "mounted on this host: device access cannot be restricted");
  for (const auto& [controller, field] : NeededV1(r))
    if (!mounted(controller))
      return common::MakeError(Errc::kFailedPrecondition,
                               std::string(field) + ": the cgroup v1 controller `" + controller +
                                   "` is not mounted on this host");
  return {};
}

Status ApplyV1(const CgroupDir& d, const Resources& r, const std::vector<Device>* devices) {
  const std::string& p = d.path;
  if (HasController(d, "memory")) {
    if (r.memory_limit) {
      auto st = WriteCg(p, "memory.limit_in_bytes", std::to_string(*r.memory_limit));
      // Raising the limit above the current memory+swap limit is refused
      // (EINVAL) until memsw is raised first (`update`).
      if (!st && st.error().sys_errno == EINVAL && r.memory_swap && *r.memory_swap != -1 &&
          Has(p, "memory.memsw.limit_in_bytes")) {
        TRY(WriteCg(p, "memory.memsw.limit_in_bytes", std::to_string(*r.memory_swap)));
        st = WriteCg(p, "memory.limit_in_bytes", std::to_string(*r.memory_limit));
      }
      TRY(st);
    }
    if (r.memory_swap) {
      if (!Has(p, "memory.memsw.limit_in_bytes")) {
        if (*r.memory_swap != -1 && (!r.memory_limit || *r.memory_swap != *r.memory_limit))
          return common::MakeError(Errc::kFailedPrecondition,
                                   "linux.resources.memory.swap: swap accounting is disabled on "
                                   "this host (no memory.memsw.limit_in_bytes)");
      } else {
        TRY(WriteCg(p, "memory.memsw.limit_in_bytes", std::to_string(*r.memory_swap)));
      }
    }
    if (r.memory_reservation)
      TRY(WriteCg(p, "memory.soft_limit_in_bytes", std::to_string(*r.memory_reservation)));
    if (r.memory_swappiness && *r.memory_swappiness >= 0)
      TRY(WriteCg(p, "memory.swappiness", std::to_string(*r.memory_swappiness)));
    if (r.disable_oom_killer) TRY(WriteCg(p, "memory.oom_control", "1"));
  }
  if (HasController(d, "pids") && r.pids_limit)
    TRY(WriteCg(p, "pids.max", *r.pids_limit > 0 ? std::to_string(*r.pids_limit) : "max"));
  if (HasController(d, "cpu")) {
    if (r.cpu_shares && *r.cpu_shares) TRY(WriteCg(p, "cpu.shares", std::to_string(*r.cpu_shares)));
    if (r.cpu_period && *r.cpu_period)
      TRY(WriteCg(p, "cpu.cfs_period_us", std::to_string(*r.cpu_period)));
    if (r.cpu_quota && *r.cpu_quota)
      TRY(WriteCg(p, "cpu.cfs_quota_us", std::to_string(*r.cpu_quota)));
    // Without CONFIG_RT_GROUP_SCHED these files do not exist.
    if (r.cpu_rt_period && *r.cpu_rt_period)
      TRY(WriteLimit(p, "cpu.rt_period_us", std::to_string(*r.cpu_rt_period),
                     "linux.resources.cpu.realtimePeriod"));
    if (r.cpu_rt_runtime && *r.cpu_rt_runtime)
      TRY(WriteLimit(p, "cpu.rt_runtime_us", std::to_string(*r.cpu_rt_runtime),
                     "linux.resources.cpu.realtimeRuntime"));
  }
  if (HasController(d, "cpuset")) {
    if (!r.cpuset_cpus.empty()) TRY(WriteCg(p, "cpuset.cpus", r.cpuset_cpus));
    if (!r.cpuset_mems.empty()) TRY(WriteCg(p, "cpuset.mems", r.cpuset_mems));
  }
  if (HasController(d, "blkio")) {
    // Weights are BFQ's where it is the I/O scheduler (CFQ, which had
    // blkio.weight, left the kernel in 5.0); without either, refused.
    bool bfq = Has(p, "blkio.bfq.weight");
    const std::string w = "linux.resources.blockIO.";
    if (r.blkio_weight)
      TRY(WriteLimit(p, bfq ? "blkio.bfq.weight" : "blkio.weight", std::to_string(r.blkio_weight),
                     w + "weight"));
    if (r.blkio_leaf_weight)
      TRY(WriteLimit(p, "blkio.leaf_weight", std::to_string(r.blkio_leaf_weight),
                     w + "leafWeight"));
    const std::tuple<const std::vector<BlkioDevice>*, const char*, const char*> per_device[] = {
        {&r.blkio_weight_device, bfq ? "blkio.bfq.weight_device" : "blkio.weight_device",
         "weightDevice"},
        {&r.blkio_leaf_weight_device, "blkio.leaf_weight_device", "weightDevice"},
        {&r.blkio_read_bps, "blkio.throttle.read_bps_device", "throttleReadBpsDevice"},
        {&r.blkio_write_bps, "blkio.throttle.write_bps_device", "throttleWriteBpsDevice"},
        {&r.blkio_read_iops, "blkio.throttle.read_iops_device", "throttleReadIOPSDevice"},
        {&r.blkio_write_iops, "blkio.throttle.write_iops_device", "throttleWriteIOPSDevice"}};
    for (const auto& [list, file, field] : per_device)
      for (const BlkioDevice& bd : *list)
        TRY(WriteLimit(p, file, DeviceLine(bd, std::to_string(bd.value)), w + field));
  }
  if (HasController(d, "net_cls") && r.net_cls_classid)
    TRY(WriteCg(p, "net_cls.classid", std::to_string(r.net_cls_classid)));
  if (HasController(d, "net_prio"))
    for (const auto& [iface, prio] : r.net_prio)
      TRY(WriteCg(p, "net_prio.ifpriomap", iface + " " + std::to_string(prio)));
  if (HasController(d, "hugetlb"))
    for (const auto& [size, limit] : r.hugepage_limits)
      TRY(WriteLimit(p, "hugetlb." + size + ".limit_in_bytes", std::to_string(limit),
                     "linux.resources.hugepageLimits"));
  if (HasController(d, "rdma"))
    for (const auto& [dev, limits] : r.rdma) TRY(WriteCg(p, "rdma.max", dev + " " + limits));
  if (devices && HasController(d, "devices")) {
    auto rule = [](char type, int64_t maj, int64_t min, const std::string& access) {
      if (type == 'a') return std::string("a");
      auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
      return std::string(1, type) + " " + num(maj) + ":" + num(min) + " " + access;
    };
    for (const DeviceRule& dr : r.devices)
      TRY(WriteCg(p, dr.allow ? "devices.allow" : "devices.deny",
                  rule(dr.type, dr.major, dr.minor, dr.access)));
    // runc's default allow list, appended after the config's rules.
    static constexpr const char* kAllowed[] = {"c *:* m",   "b *:* m",     "c 1:3 rwm", "c 1:8 rwm",
                                               "c 1:7 rwm", "c 5:0 rwm",   "c 1:5 rwm", "c 1:9 rwm",
                                               "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm"};
    for (const char* a : kAllowed) TRY(WriteCg(p, "devices.allow", a));
    for (const Device& dev : *devices)
      if (dev.type == 'c' || dev.type == 'b' || dev.type == 'u')
        TRY(WriteCg(p, "devices.allow",
                    rule(dev.type == 'u' ? 'c' : dev.type, dev.major, dev.minor, "rwm")));
  }
  return {};
}

// What cgroup v2 has no file for: refused rather than dropped.
Status RefuseV1Only(const Resources& r) {
  const std::string w = "linux.resources.";
  if (r.net_cls_classid || !r.net_prio.empty())
    return common::MakeError(Errc::kFailedPrecondition,
                             w + "network: net_cls and net_prio are cgroup v1 controllers; this "
                                 "host has cgroup v2 only");
  if ((r.cpu_rt_period && *r.cpu_rt_period) || (r.cpu_rt_runtime && *r.cpu_rt_runtime))
    return common::MakeError(Errc::kFailedPrecondition,
                             w + "cpu.realtimeRuntime: cgroup v2 has no real-time limits");
  if (r.blkio_leaf_weight || !r.blkio_leaf_weight_device.empty())
    return common::MakeError(Errc::kFailedPrecondition,
                             w + "blockIO.leafWeight: cgroup v2 has no leaf weights");
  return {};
}

// blockIO on cgroup v2: io.*, runc's mapping.
Status ApplyV2Io(const std::string& p, const Resources& r) {
  const std::string w = "linux.resources.";
  // io.bfq.weight takes blkio's 10..1000 as is; io.weight is 1..10000.
  bool bfq = Has(p, "io.bfq.weight");
  auto weight = [&](uint64_t v) {
    return std::to_string(bfq ? v : 1 + (std::clamp<uint64_t>(v, 10, 1000) - 10) * 9999 / 990);
  };
  const char* weight_file = bfq ? "io.bfq.weight" : "io.weight";
  if (r.blkio_weight) TRY(WriteLimit(p, weight_file, weight(r.blkio_weight), w + "blockIO.weight"));
  for (const BlkioDevice& bd : r.blkio_weight_device)
    TRY(WriteLimit(p, weight_file, DeviceLine(bd, weight(bd.value)), w + "blockIO.weightDevice"));
  const std::tuple<const std::vector<BlkioDevice>*, const char*, const char*> throttles[] = {
      {&r.blkio_read_bps, "rbps", "throttleReadBpsDevice"},
      {&r.blkio_write_bps, "wbps", "throttleWriteBpsDevice"},
      {&r.blkio_read_iops, "riops", "throttleReadIOPSDevice"},
      {&r.blkio_write_iops, "wiops", "throttleWriteIOPSDevice"}};
  for (const auto& [list, key, field] : throttles)
    for (const BlkioDevice& bd : *list)
      TRY(WriteLimit(p, "io.max", DeviceLine(bd, std::string(key) + "=" + std::to_string(bd.value)),
                     w + "blockIO." + field));
  return {};
}

Status ApplyV2(const std::string& p, const Resources& r) {
  TRY(RefuseV1Only(r));
  auto need = [&](const char* file, const char* controller) -> Status {
    if (Has(p, file)) return {};
    return common::MakeError(
        Errc::kFailedPrecondition,
        std::string("cgroup v2 controller `") + controller + "` is not enabled for `" + p + "`");
  };
  if (r.memory_limit) {
    TRY(need("memory.max", "memory"));
    TRY(WriteCg(p, "memory.max", *r.memory_limit < 0 ? "max" : std::to_string(*r.memory_limit)));
  }
  if (r.memory_reservation) {
    TRY(need("memory.low", "memory"));
    TRY(WriteCg(p, "memory.low", std::to_string(*r.memory_reservation)));
  }
  if (r.memory_swap) {
    // The spec's swap is memory+swap; memory.swap.max is the swap alone.
    std::string v = "max";
    if (*r.memory_swap >= 0) {
      if (!r.memory_limit || *r.memory_limit < 0 || *r.memory_swap < *r.memory_limit)
        return common::MakeError(Errc::kInvalidArgument,
                                 "linux.resources.memory.swap: must be at least the memory limit");
      v = std::to_string(*r.memory_swap - *r.memory_limit);
    }
    TRY(need("memory.swap.max", "memory (swap)"));
    TRY(WriteCg(p, "memory.swap.max", v));
  }
  if (r.pids_limit) {
    TRY(need("pids.max", "pids"));
    TRY(WriteCg(p, "pids.max", *r.pids_limit > 0 ? std::to_string(*r.pids_limit) : "max"));
  }
  if (r.cpu_shares && *r.cpu_shares) {
    TRY(need("cpu.weight", "cpu"));
    uint64_t s = std::clamp<uint64_t>(*r.cpu_shares, 2, 262144);
    TRY(WriteCg(p, "cpu.weight", std::to_string(1 + ((s - 2) * 9999) / 262142)));
  }
  if ((r.cpu_quota && *r.cpu_quota) || (r.cpu_period && *r.cpu_period)) {
    TRY(need("cpu.max", "cpu"));
    std::string quota = r.cpu_quota && *r.cpu_quota > 0 ? std::to_string(*r.cpu_quota) : "max";
    uint64_t period = r.cpu_period && *r.cpu_period ? *r.cpu_period : 100000;
    TRY(WriteCg(p, "cpu.max", quota + " " + std::to_string(period)));
  }
  if (!r.cpuset_cpus.empty()) {
    TRY(need("cpuset.cpus", "cpuset"));
    TRY(WriteCg(p, "cpuset.cpus", r.cpuset_cpus));
  }
  if (!r.cpuset_mems.empty()) {
    TRY(need("cpuset.mems", "cpuset"));
    TRY(WriteCg(p, "cpuset.mems", r.cpuset_mems));
  }
  TRY(ApplyV2Io(p, r));
  for (const auto& [size, limit] : r.hugepage_limits)
    TRY(WriteLimit(p, "hugetlb." + size + ".max", std::to_string(limit),
                   "linux.resources.hugepageLimits"));
  for (const auto& [dev, limits] : r.rdma)
    TRY(WriteLimit(p, "rdma.max", dev + " " + limits, "linux.resources.rdma"));
  for (const auto& [file, value] : r.unified) TRY(WriteCg(p, file.c_str(), value));
  return {};
}

// Enables the controllers the limits use in `dir`'s cgroup.subtree_control.
void EnableV2Controllers(const std::string& dir) {
  std::string have = " " + ReadCg(dir, "cgroup.controllers") + " ";
  std::string enabled = " " + ReadCg(dir, "cgroup.subtree_control") + " ";
  std::string want;
  for (const char* c : {"cpu", "cpuset", "memory", "pids", "io", "hugetlb"}) {
    std::string tok = std::string(" ") + c + " ";
    if (have.find(tok) != std::string::npos && enabled.find(tok) == std::string::npos)
      want += std::string(want.empty() ? "+" : " +") + c;
  }
  if (want.empty()) return;
  if (auto st = WriteCg(dir, "cgroup.subtree_control", want); !st)
    LOG(Debug) << "enable cgroup controllers" << common::Kv("dir", dir)
               << common::Kv("error", st.error().message);
}

// mkdir -p of `d.path` below `d.root`, recording what was created.
Status MakeDirs(const CgroupDir& d, bool v2, std::vector<std::string>& created) {
  std::string cur = d.root;
  std::string rel = d.path.substr(d.root.size());
  bool cpuset = HasController(d, "cpuset");
  for (const std::string& comp : Split(rel, '/')) {
    if (comp.empty()) continue;
    if (v2) EnableV2Controllers(cur);
    std::string parent = cur;
    cur += "/" + comp;
    if (::mkdir(cur.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return common::ErrnoError("create cgroup `" + cur + "`");
    }
    created.push_back(cur);
    if (cpuset) {
      // A v1 cpuset cgroup starts with empty sets and refuses tasks.
      TRY(WriteCg(cur, "cpuset.cpus", ReadCg(parent, "cpuset.cpus")));
      TRY(WriteCg(cur, "cpuset.mems", ReadCg(parent, "cpuset.mems")));
    }
  }
  return {};
}

void RemoveDirs(const std::vector<std::string>& created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it)
    if (::rmdir(it->c_str()) != 0 && errno != ENOENT)
      LOG(Debug) << "keep cgroup" << common::Kv("dir", *it) << common::Kv("errno", errno);
}

const CgroupDir* ProcsDir(const CgroupSet& set) {
  if (const CgroupDir* u = set.Unified()) return u;
  for (const CgroupDir& d : set.dirs)
    if (HasController(d, "pids")) return &d;
  return set.dirs.empty() ? nullptr : &set.dirs.front();
}

}  // namespace

Result<CgroupSet> PlanCgroups(const std::string& cgroups_path, const std::string& id) {
  if (cgroups_path.find(':') != std::string::npos)
    return common::MakeError(Errc::kInvalidArgument,
                             "linux.cgroupsPath `" + cgroups_path +
                                 "`: the systemd form slice:prefix:name is not supported");
  auto own_text = common::ReadFile("/proc/self/cgroup", 1u << 20);
  if (!own_text) return std::unexpected(own_text.error().Wrap("read own cgroups"));
  std::vector<CgMount> mounts = CgroupMounts();
  CgroupSet set;
  std::istringstream in(*own_text);
  std::string line;
  bool any_v1 = false;
  while (std::getline(in, line)) {
    auto f = Split(line, ':');
    if (f.size() < 3) continue;
    std::string controllers = f[1];
    std::string own = line.substr(f[0].size() + f[1].size() + 2);
    // A hierarchy can be mounted more than once (a tool's or a test's own
    // cgroup2 mount, a bind mount of a subtree). Prefer, as runc's fixed
    // /sys/fs/cgroup paths do, the mount under /sys/fs/cgroup, then one of
    // the hierarchy's root, then the earliest in mountinfo: another mount
    // may go away while the container lives.
    const CgMount* m = nullptr;
    int best = -1;
    for (const CgMount& cm : mounts) {
      if (controllers.empty() ? cm.fstype != "cgroup2" : cm.fstype != "cgroup") continue;
      bool all = true;
      for (const std::string& c : Split(controllers, ','))
        if (!controllers.empty() &&
            std::find(cm.superopts.begin(), cm.superopts.end(), c) == cm.superopts.end())
          all = false;
      if (!all) continue;
      const int rank =
          (cm.mountpoint.starts_with("/sys/fs/cgroup/") || cm.mountpoint == "/sys/fs/cgroup" ? 2
                                                                                             : 0) +
          (cm.root == "/" ? 1 : 0);
      if (rank > best) {
        best = rank;
        m = &cm;
      }
    }
    if (!m) continue;  // listed but not mounted here
    std::string path;
    if (cgroups_path.empty()) {
      path = Join(own, id);
    } else {
      auto norm = NormalizeContainerPath(cgroups_path);
      if (!norm)
        return common::MakeError(Errc::kInvalidArgument,
                                 "linux.cgroupsPath `" + cgroups_path + "` climbs above the root");
      path = cgroups_path[0] == '/' ? *norm : Join(own, *norm);
    }
    if (path == "/" || path.empty())
      return common::MakeError(Errc::kInvalidArgument, "linux.cgroupsPath must not be the root");
    set.dirs.push_back({m->mountpoint, controllers, HostDir(*m, path)});
    if (!controllers.empty()) any_v1 = true;
  }
  if (set.dirs.empty())
    return common::MakeError(Errc::kUnavailable, "no cgroup hierarchy is mounted");
  set.v2 = !any_v1;
  return set;
}

Status CreateCgroups(CgroupSet& set, const Resources& res, const std::vector<Device>& devices) {
  auto fail = [&](common::Error e) {
    RemoveDirs(set.created);
    set.created.clear();
    return std::unexpected(std::move(e));
  };
  if (!set.v2) TRY(CheckV1Controllers(set, res, true));
  for (const CgroupDir& d : set.dirs) {
    bool is_v2 = d.controllers.empty();
    if (auto st = MakeDirs(d, is_v2 && set.v2, set.created); !st) return fail(st.error());
    if (!is_v2) {
      if (auto st = ApplyV1(d, res, &devices); !st) return fail(st.error());
    } else if (set.v2) {
      if (auto st = ApplyV2(d.path, res); !st) return fail(st.error());
    } else if (!res.unified.empty()) {
      // Hybrid: only the unified files go to the cgroup2 hierarchy.
      Resources only;
      only.unified = res.unified;
      if (auto st = ApplyV2(d.path, only); !st) return fail(st.error());
    }
  }
  return {};
}

Status UpdateCgroups(const CgroupSet& set, const Resources& res) {
  if (!set.v2) TRY(CheckV1Controllers(set, res, false));
  for (const CgroupDir& d : set.dirs) {
    if (!d.controllers.empty()) {
      TRY(ApplyV1(d, res, nullptr));
    } else if (set.v2) {
      TRY(ApplyV2(d.path, res));
    } else if (!res.unified.empty()) {
      Resources only;
      only.unified = res.unified;
      TRY(ApplyV2(d.path, only));
    }
  }
  return {};
}

namespace {

// The v1 freezer directory, or null (then cgroup2's cgroup.freeze is used).
const CgroupDir* FreezerDir(const CgroupSet& set) {
  for (const CgroupDir& d : set.dirs)
    if (HasController(d, "freezer")) return &d;
  return nullptr;
}

}  // namespace

bool CgroupFrozen(const CgroupSet& set) {
  if (const CgroupDir* f = FreezerDir(set)) return ReadCg(f->path, "freezer.state") == "FROZEN";
  const CgroupDir* u = set.Unified();
  return u && set.v2 && ReadCg(u->path, "cgroup.freeze") == "1";
}

Status FreezeCgroups(const CgroupSet& set, bool freeze) {
  using Clock = std::chrono::steady_clock;
  std::function<bool()> done;
  if (const CgroupDir* f = FreezerDir(set)) {
    const char* want = freeze ? "FROZEN" : "THAWED";
    TRY(WriteCg(f->path, "freezer.state", want));
    // FREEZING until every task has stopped.
    done = [f, want] { return ReadCg(f->path, "freezer.state") == want; };
  } else if (const CgroupDir* u = set.Unified(); u && set.v2 && Has(u->path, "cgroup.freeze")) {
    TRY(WriteCg(u->path, "cgroup.freeze", freeze ? "1" : "0"));
    std::string want = freeze ? "frozen 1" : "frozen 0";
    done = [u, want] { return ReadCg(u->path, "cgroup.events").find(want) != std::string::npos; };
  } else {
    return common::MakeError(Errc::kUnavailable,
                             "no freezer: neither the v1 freezer controller "
                             "nor cgroup.freeze is available");
  }
  auto deadline = Clock::now() + std::chrono::seconds(10);
  auto pause = std::chrono::microseconds(100);
  while (!done()) {
    if (Clock::now() > deadline)
      return common::MakeError(Errc::kUnavailable, freeze ? "the container did not freeze in 10 s"
                                                          : "the container did not thaw in 10 s");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(10000));
  }
  return {};
}

CgroupStats ReadCgroupStats(const CgroupSet& set) {
  auto num = [](const std::string& dir, const char* file) -> uint64_t {
    std::string v = ReadCg(dir, file);
    return v.empty() || v == "max" ? 0 : std::strtoull(v.c_str(), nullptr, 10);
  };
  CgroupStats st;
  for (const CgroupDir& d : set.dirs) {
    if (d.controllers.empty()) {
      if (!set.v2) continue;
      std::string cpu = ReadCg(d.path, "cpu.stat");
      if (size_t at = cpu.find("usage_usec "); at != std::string::npos)
        st.cpu_total_ns = std::strtoull(cpu.c_str() + at + 11, nullptr, 10) * 1000;
      st.memory_usage = num(d.path, "memory.current");
      st.memory_max_usage = num(d.path, "memory.peak");
      st.memory_limit = num(d.path, "memory.max");
      st.pids_current = num(d.path, "pids.current");
      st.pids_limit = num(d.path, "pids.max");
      continue;
    }
    if (HasController(d, "cpuacct")) st.cpu_total_ns = num(d.path, "cpuacct.usage");
    if (HasController(d, "memory")) {
      st.memory_usage = num(d.path, "memory.usage_in_bytes");
      st.memory_max_usage = num(d.path, "memory.max_usage_in_bytes");
      st.memory_limit = num(d.path, "memory.limit_in_bytes");
    }
    if (HasController(d, "pids")) {
      st.pids_current = num(d.path, "pids.current");
      st.pids_limit = num(d.path, "pids.max");
    }
  }
  return st;
}

Status JoinCgroups(const CgroupSet& set, pid_t pid, bool skip_unified) {
  std::string p = std::to_string(pid);
  for (const CgroupDir& d : set.dirs) {
    if (skip_unified && d.controllers.empty()) continue;
    TRY(WriteCg(d.path, "cgroup.procs", p));
  }
  return {};
}

Status JoinCgroupsSelf(const CgroupSet& set, bool skip_unified) {
  for (const CgroupDir& d : set.dirs) {
    if (d.controllers.empty()) {
      if (!skip_unified) TRY(WriteCg(d.path, "cgroup.procs", "0"));
      continue;
    }
    TRY(WriteCg(d.path, "tasks", "0"));
  }
  return {};
}

std::vector<pid_t> CgroupPids(const CgroupSet& set) {
  std::vector<pid_t> out;
  const CgroupDir* d = ProcsDir(set);
  if (!d) return out;
  std::istringstream in(ReadCg(d->path, "cgroup.procs"));
  pid_t pid;
  while (in >> pid) out.push_back(pid);
  return out;
}

Status SignalCgroup(const CgroupSet& set, int sig) {
  const CgroupDir* freezer = nullptr;
  for (const CgroupDir& d : set.dirs)
    if (HasController(d, "freezer")) freezer = &d;
  if (const CgroupDir* u = set.Unified();
      u && set.v2 && sig == SIGKILL && Has(u->path, "cgroup.kill"))
    return WriteCg(u->path, "cgroup.kill", "1");
  bool frozen = freezer && WriteCg(freezer->path, "freezer.state", "FROZEN").has_value();
  if (frozen) {
    for (int i = 0; i < 200 && ReadCg(freezer->path, "freezer.state") != "FROZEN"; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (pid_t pid : CgroupPids(set))
    if (::kill(pid, sig) != 0 && errno != ESRCH)
      LOG(Debug) << "signal" << common::Kv("pid", pid) << common::Kv("errno", errno);
  if (frozen) TRY(WriteCg(freezer->path, "freezer.state", "THAWED"));
  return {};
}

Status DestroyCgroups(const CgroupSet& set) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    std::vector<pid_t> pids = CgroupPids(set);
    if (pids.empty()) break;
    if (Clock::now() > deadline)
      return common::MakeError(
          Errc::kUnavailable,
          std::to_string(pids.size()) + " processes are still in the container's cgroup");
    (void)SignalCgroup(set, SIGKILL);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  // rmdir fails with EBUSY while the last tasks are still being torn down.
  for (const CgroupDir& d : set.dirs) {
    pause = std::chrono::microseconds(200);
    while (::rmdir(d.path.c_str()) != 0 && errno != ENOENT) {
      if (errno != EBUSY || Clock::now() > deadline)
        return common::ErrnoError("remove cgroup `" + d.path + "`");
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
  }
  std::vector<std::string> parents;
  for (const std::string& c : set.created)
    if (std::none_of(set.dirs.begin(), set.dirs.end(),
                     [&](const CgroupDir& d) { return d.path == c; }))
      parents.push_back(c);
  RemoveDirs(parents);
  return {};
}

}  // namespace ociruntime::rt
