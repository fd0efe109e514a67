// config.json: mounts and their options, linux.resources, linux.devices.

#include <linux/mount.h>
#include <sys/mount.h>

#include <algorithm>
#include <array>

#include "ociruntime/runtime_config_json.h"

namespace ociruntime::rt::cfg {
namespace {

struct MountOpt {
  std::string_view name;
  bool clear;
  unsigned long flag;
};
constexpr std::array<MountOpt, 32> kMountOpts{{
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"iversion", false, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},
    {"loud", true, MS_SILENT},
    {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"noiversion", true, MS_I_VERSION},
    {"nolazytime", true, MS_LAZYTIME},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"silent", false, MS_SILENT},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
}};

constexpr std::array<std::pair<std::string_view, unsigned long>, 8> kPropagation{{
    {"private", MS_PRIVATE},
    {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},
    {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},
    {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE},
    {"runbindable", MS_UNBINDABLE | MS_REC},
}};

// "rro" → set RDONLY; "rrw" → clear RDONLY; … (mount_setattr, AT_RECURSIVE).
struct RecAttr {
  std::string_view name;
  bool clear;
  uint64_t attr;
};
constexpr std::array<RecAttr, 16> kRecAttrs{{
    {"rro", false, MOUNT_ATTR_RDONLY},
    {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},
    {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},
    {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},
    {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
    {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rnoatime", false, MOUNT_ATTR_NOATIME},
    {"rstrictatime", false, MOUNT_ATTR_STRICTATIME},
    {"rrelatime", false, MOUNT_ATTR_RELATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
    {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
    {"ratime", true, MOUNT_ATTR__ATIME},
}};

Status ParseMountOptions(const std::vector<std::string>& opts, Mount& m, const std::string& where) {
  for (const std::string& o : opts) {
    auto mo = std::find_if(kMountOpts.begin(), kMountOpts.end(),
                           [&](const MountOpt& k) { return k.name == o; });
    if (mo != kMountOpts.end()) {
      if (mo->clear) {
        m.flags &= ~mo->flag;
        m.clear_flags |= mo->flag;
      } else {
        m.flags |= mo->flag;
      }
      continue;
    }
    auto pr = std::find_if(kPropagation.begin(), kPropagation.end(),
                           [&](const auto& k) { return k.first == o; });
    if (pr != kPropagation.end()) {
      m.propagation.push_back(pr->second);
      continue;
    }
    auto ra = std::find_if(kRecAttrs.begin(), kRecAttrs.end(),
                           [&](const RecAttr& k) { return k.name == o; });
    if (ra != kRecAttrs.end()) {
      (ra->clear ? m.rec_attr_clr : m.rec_attr_set) |= ra->attr;
      if (ra->attr & MOUNT_ATTR__ATIME) m.rec_attr_clr |= MOUNT_ATTR__ATIME;
      continue;
    }
    if (o == "tmpcopyup" || o == "idmap" || o == "ridmap")
      return common::MakeError(Errc::kUnimplemented,
                               where + ": mount option `" + o + "` is not supported");
    if (!m.data.empty()) m.data += ',';
    m.data += o;
  }
  return {};
}

}  // namespace

Status ParseMounts(const json& root, Config& c) {
  CFG_FIELD(mounts, root, "mounts", array, std::string("config"));
  if (!mounts) return {};
  for (size_t i = 0; i < mounts->size(); ++i) {
    std::string where = "mounts[" + std::to_string(i) + "]";
    const json& j = (*mounts)[i];
    if (!j.is_object()) return Invalid(where + ": expected object");
    Mount m;
    std::string dest;
    std::vector<std::string> opts;
    TRY(GetString(j, "destination", where, dest));
    TRY(GetString(j, "type", where, m.type));
    TRY(GetString(j, "source", where, m.source));
    TRY(GetStrings(j, "options", where, opts));
    if (dest.empty()) return Invalid(where + ".destination: must not be empty");
    auto norm = NormalizeContainerPath(dest);
    if (!norm) return Invalid(where + ": mount destination `" + dest + "` is outside the rootfs");
    m.destination = *norm;
    TRY(ParseMountOptions(opts, m, where));
    if (m.type == "bind") m.flags |= MS_BIND;
    if (m.flags & MS_BIND) {
      m.type = "bind";
      if (m.source.empty()) return Invalid(where + ".source: a bind mount needs a source");
      if (m.source[0] != '/') m.source = (c.bundle / m.source).lexically_normal().string();
    } else if (m.type.empty()) {
      return Invalid(where + ".type: required for `" + dest + "`");
    }
    c.mounts.push_back(std::move(m));
  }
  return {};
}

std::optional<unsigned long> PropagationFlag(std::string_view name) {
  for (const auto& [n, flag] : kPropagation)
    if (n == name) return flag;
  return std::nullopt;
}

namespace {

// linux.resources.blockIO.
Status ParseBlockIO(const json& res, Resources& r) {
  const std::string w = "linux.resources.blockIO";
  CFG_FIELD(bio, res, "blockIO", object, std::string("linux.resources"));
  if (!bio) return {};
  TRY(GetUnsigned(*bio, "weight", w, r.blkio_weight));
  TRY(GetUnsigned(*bio, "leafWeight", w, r.blkio_leaf_weight));
  // Entries of `key`: a device and the numbers named in `values`.
  auto devices =
      [&](const char* key,
          std::initializer_list<std::pair<const char*, std::vector<BlkioDevice>*>> values)
      -> Status {
    const std::string where = w + "." + key;
    CFG_FIELD(list, *bio, key, array, w);
    if (!list) return {};
    for (const json& e : *list) {
      if (!e.is_object()) return Invalid(where + ": expected objects");
      std::optional<int64_t> major, minor;
      TRY(GetInt(e, "major", where, major));
      TRY(GetInt(e, "minor", where, minor));
      if (!major || !minor) return Invalid(where + ": needs major and minor");
      for (const auto& [name, out] : values) {
        CFG_FIELD(v, e, name, number_unsigned, where);
        if (v) out->push_back({*major, *minor, v->get<uint64_t>()});
      }
    }
    return {};
  };
  TRY(devices("weightDevice",
              {{"weight", &r.blkio_weight_device}, {"leafWeight", &r.blkio_leaf_weight_device}}));
  TRY(devices("throttleReadBpsDevice", {{"rate", &r.blkio_read_bps}}));
  TRY(devices("throttleWriteBpsDevice", {{"rate", &r.blkio_write_bps}}));
  TRY(devices("throttleReadIOPSDevice", {{"rate", &r.blkio_read_iops}}));
  TRY(devices("throttleWriteIOPSDevice", {{"rate", &r.blkio_write_iops}}));
  return {};
}

// linux.resources.network, hugepageLimits and rdma.
Status ParseNetworkHugepagesRdma(const json& res, Resources& r) {
  const std::string w = "linux.resources";
  CFG_FIELD(net, res, "network", object, w);
  if (net) {
    TRY(GetUnsigned(*net, "classID", w + ".network", r.net_cls_classid));
    CFG_FIELD(prios, *net, "priorities", array, w + ".network");
    if (prios)
      for (const json& e : *prios) {
        if (!e.is_object()) return Invalid(w + ".network.priorities: expected objects");
        std::string name;
        uint32_t prio = 0;
        TRY(GetString(e, "name", w + ".network.priorities", name));
        TRY(GetUnsigned(e, "priority", w + ".network.priorities", prio));
        if (name.empty() || name.find_first_of(" \n/") != std::string::npos)
          return Invalid(w + ".network.priorities: invalid interface name `" + name + "`");
        r.net_prio.emplace_back(name, prio);
      }
  }
  CFG_FIELD(huge, res, "hugepageLimits", array, w);
  if (huge)
    for (const json& e : *huge) {
      if (!e.is_object()) return Invalid(w + ".hugepageLimits: expected objects");
      std::string size;
      uint64_t limit = 0;
      TRY(GetString(e, "pageSize", w + ".hugepageLimits", size));
      TRY(GetUnsigned(e, "limit", w + ".hugepageLimits", limit));
      // It names a cgroup file: hugetlb.<size>.limit_in_bytes.
      if (size.empty() || size.find_first_not_of("0123456789KMGB") != std::string::npos)
        return Invalid(w + ".hugepageLimits: invalid pageSize `" + size + "`");
      r.hugepage_limits.emplace_back(size, limit);
    }
  CFG_FIELD(rdma, res, "rdma", object, w);
  if (rdma)
    for (const auto& [dev, limits] : rdma->items()) {
      const std::string where = w + ".rdma." + dev;
      if (!limits.is_object()) return Invalid(where + ": expected object");
      if (dev.empty() || dev.find_first_of(" \n") != std::string::npos)
        return Invalid(w + ".rdma: invalid device name `" + dev + "`");
      std::string line;
      for (const auto& [key, file_key] :
           {std::pair{"hcaHandles", "hca_handle"}, std::pair{"hcaObjects", "hca_object"}}) {
        CFG_FIELD(v, limits, key, number_unsigned, where);
        if (v)
          line += std::string(line.empty() ? "" : " ") + file_key + "=" +
                  std::to_string(v->get<uint64_t>());
      }
      r.rdma[dev] = line;
    }
  return {};
}

}  // namespace

Status ParseResources(const json& linux, Resources& r) {
  CFG_FIELD(res, linux, "resources", object, std::string("linux"));
  if (!res) return {};
  const std::string w = "linux.resources";
  CFG_FIELD(mem, *res, "memory", object, w);
  if (mem) {
    TRY(GetInt(*mem, "limit", w + ".memory", r.memory_limit));
    TRY(GetInt(*mem, "reservation", w + ".memory", r.memory_reservation));
    TRY(GetInt(*mem, "swap", w + ".memory", r.memory_swap));
    TRY(GetInt(*mem, "swappiness", w + ".memory", r.memory_swappiness));
    TRY(GetBool(*mem, "disableOOMKiller", w + ".memory", r.disable_oom_killer));
  }
  CFG_FIELD(pids, *res, "pids", object, w);
  if (pids) TRY(GetInt(*pids, "limit", w + ".pids", r.pids_limit));
  CFG_FIELD(cpu, *res, "cpu", object, w);
  if (cpu) {
    CFG_FIELD(shares, *cpu, "shares", number_unsigned, w + ".cpu");
    if (shares) r.cpu_shares = shares->get<uint64_t>();
    CFG_FIELD(period, *cpu, "period", number_unsigned, w + ".cpu");
    if (period) r.cpu_period = period->get<uint64_t>();
    TRY(GetInt(*cpu, "quota", w + ".cpu", r.cpu_quota));
    CFG_FIELD(rt_period, *cpu, "realtimePeriod", number_unsigned, w + ".cpu");
    if (rt_period) r.cpu_rt_period = rt_period->get<uint64_t>();
    TRY(GetInt(*cpu, "realtimeRuntime", w + ".cpu", r.cpu_rt_runtime));
    TRY(GetString(*cpu, "cpus", w + ".cpu", r.cpuset_cpus));
    TRY(GetString(*cpu, "mems", w + ".cpu", r.cpuset_mems));
  }
  TRY(ParseBlockIO(*res, r));
  TRY(ParseNetworkHugepagesRdma(*res, r));
  CFG_FIELD(devs, *res, "devices", array, w);
  if (devs)
    for (const json& d : *devs) {
      if (!d.is_object()) return Invalid(w + ".devices: expected objects");
      DeviceRule rule;
      std::string type = "a";
      std::optional<int64_t> major, minor;
      TRY(GetBool(d, "allow", w + ".devices", rule.allow));
      TRY(GetString(d, "type", w + ".devices", type));
      TRY(GetInt(d, "major", w + ".devices", major));
      TRY(GetInt(d, "minor", w + ".devices", minor));
      TRY(GetString(d, "access", w + ".devices", rule.access));
      if (type.size() != 1 || std::string_view("acb").find(type[0]) == std::string_view::npos)
        return Invalid(w + ".devices: unknown device type `" + type + "`");
      rule.type = type[0];
      rule.major = major.value_or(-1);
      rule.minor = minor.value_or(-1);
      r.devices.push_back(rule);
    }
  CFG_FIELD(unified, *res, "unified", object, w);
  if (unified)
    for (const auto& [k, v] : unified->items()) {
      if (!v.is_string()) return Invalid(w + ".unified." + k + ": expected string");
      if (k.find('/') != std::string::npos || k.starts_with("."))
        return Invalid(w + ".unified: invalid file name `" + k + "`");
      r.unified[k] = v.get<std::string>();
    }
  return {};
}

Status ParseDevices(const json& linux, Config& c) {
  CFG_FIELD(devs, linux, "devices", array, std::string("linux"));
  if (!devs) return {};
  for (const json& d : *devs) {
    if (!d.is_object()) return Invalid("linux.devices: expected objects");
    Device dev;
    std::string type;
    std::optional<int64_t> major, minor;
    TRY(GetString(d, "path", "linux.devices", dev.path));
    TRY(GetString(d, "type", "linux.devices", type));
    TRY(GetInt(d, "major", "linux.devices", major));
    TRY(GetInt(d, "minor", "linux.devices", minor));
    TRY(GetUnsigned(d, "fileMode", "linux.devices", dev.mode));
    TRY(GetUnsigned(d, "uid", "linux.devices", dev.uid));
    TRY(GetUnsigned(d, "gid", "linux.devices", dev.gid));
    auto norm = NormalizeContainerPath(dev.path);
    if (!norm || !norm->starts_with("/dev/"))
      return Invalid("linux.devices: path `" + dev.path + "` must be under /dev");
    dev.path = *norm;
    if (type.size() != 1 || std::string_view("cbup").find(type[0]) == std::string_view::npos)
      return Invalid("linux.devices: unknown type `" + type + "` for " + dev.path);
    dev.type = type[0];
    if (dev.type != 'p' && (!major || !minor))
      return Invalid("linux.devices: " + dev.path + " needs major and minor");
    dev.major = major.value_or(0);
    dev.minor = minor.value_or(0);
    c.devices.push_back(dev);
  }
  return {};
}

}  // namespace ociruntime::rt::cfg
