#include "ociruntime/runtime_config.h"

#include <sched.h>
#include <sys/capability.h>
#include <sys/mount.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "common/fs.h"
#include "common/log.h"
#include "ociruntime/runtime_config_json.h"

namespace ociruntime::rt {
namespace {

namespace fs = std::filesystem;
using namespace cfg;

Status ParseCaps(const json& proc, Capabilities& caps) {
  CFG_FIELD(j, proc, "capabilities", object, std::string("process"));
  if (!j) return {};
  caps.present = true;
  const std::pair<const char*, uint64_t*> sets[] = {{"bounding", &caps.bounding},
                                                    {"effective", &caps.effective},
                                                    {"permitted", &caps.permitted},
                                                    {"inheritable", &caps.inheritable},
                                                    {"ambient", &caps.ambient}};
  for (const auto& [key, mask] : sets) {
    std::vector<std::string> names;
    TRY(GetStrings(*j, key, "process.capabilities", names));
    for (const std::string& n : names) {
      auto cap = CapabilityFromName(n);
      if (!cap) {
        // runc skips capabilities it does not know (newer than libcap here).
        LOG(Warn) << "unknown capability ignored" << common::Kv("name", n);
        continue;
      }
      *mask |= uint64_t{1} << *cap;
    }
  }
  return {};
}

constexpr std::array<std::pair<std::string_view, int>, 16> kRlimits{{
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
}};

Status ParseProcessObject(const json* proc, Process& p) {
  const std::string w = "process";
  TRY(GetBool(*proc, "terminal", w, p.terminal));
  TRY(GetStrings(*proc, "args", w, p.args));
  if (p.args.empty()) return Invalid("process.args: must not be empty");
  TRY(GetStrings(*proc, "env", w, p.env));
  TRY(GetString(*proc, "cwd", w, p.cwd));
  if (p.cwd.empty() || p.cwd[0] != '/')
    return Invalid("process.cwd: must be an absolute path, got `" + p.cwd + "`");
  TRY(GetBool(*proc, "noNewPrivileges", w, p.no_new_privileges));
  TRY(GetString(*proc, "apparmorProfile", w, p.apparmor_profile));
  TRY(GetString(*proc, "selinuxLabel", w, p.selinux_label));
  std::optional<int64_t> oom;
  TRY(GetInt(*proc, "oomScoreAdj", w, oom));
  if (oom) {
    if (*oom < -1000 || *oom > 1000)
      return Invalid("process.oomScoreAdj: must be in [-1000, 1000]");
    p.oom_score_adj = static_cast<int>(*oom);
  }
  CFG_FIELD(cs, *proc, "consoleSize", object, w);
  if (cs) {
    unsigned h = 0, wd = 0;
    TRY(GetUnsigned(*cs, "height", w + ".consoleSize", h));
    TRY(GetUnsigned(*cs, "width", w + ".consoleSize", wd));
    p.console_size = std::make_pair(h, wd);
  }
  CFG_FIELD(user, *proc, "user", object, w);
  if (user) {
    TRY(GetUnsigned(*user, "uid", "process.user", p.uid));
    TRY(GetUnsigned(*user, "gid", "process.user", p.gid));
    CFG_FIELD(um, *user, "umask", number_unsigned, std::string("process.user"));
    if (um) p.umask = static_cast<mode_t>(um->get<uint64_t>() & 07777);
    CFG_FIELD(ag, *user, "additionalGids", array, std::string("process.user"));
    if (ag)
      for (const json& g : *ag) {
        if (!g.is_number_unsigned())
          return Invalid("process.user.additionalGids: expected integers");
        p.additional_gids.push_back(g.get<gid_t>());
      }
  }
  TRY(ParseCaps(*proc, p.caps));
  CFG_FIELD(rl, *proc, "rlimits", array, w);
  if (rl)
    for (const json& r : *rl) {
      if (!r.is_object()) return Invalid("process.rlimits: expected objects");
      Rlimit lim;
      TRY(GetString(r, "type", "process.rlimits", lim.name));
      auto it = std::find_if(kRlimits.begin(), kRlimits.end(),
                             [&](const auto& k) { return k.first == lim.name; });
      if (it == kRlimits.end())
        return Invalid("process.rlimits: unknown rlimit `" + lim.name + "`");
      lim.resource = it->second;
      TRY(GetUnsigned(r, "soft", "process.rlimits", lim.soft));
      TRY(GetUnsigned(r, "hard", "process.rlimits", lim.hard));
      if (lim.soft > lim.hard)
        return Invalid("process.rlimits: " + lim.name + " soft limit above the hard limit");
      p.rlimits.push_back(lim);
    }
  return {};
}

Status ParseHooks(const json& root, Hooks& hooks) {
  CFG_FIELD(h, root, "hooks", object, std::string("config"));
  if (!h) return {};
  const std::pair<const char*, std::vector<Hook>*> kinds[] = {
      {"prestart", &hooks.prestart},
      {"createRuntime", &hooks.create_runtime},
      {"createContainer", &hooks.create_container},
      {"startContainer", &hooks.start_container},
      {"poststart", &hooks.poststart},
      {"poststop", &hooks.poststop}};
  for (const auto& [kind, out] : kinds) {
    const std::string w = std::string("hooks.") + kind;
    CFG_FIELD(list, *h, kind, array, std::string("hooks"));
    if (!list) continue;
    for (const json& j : *list) {
      if (!j.is_object()) return Invalid(w + ": expected objects");
      Hook hook;
      TRY(GetString(j, "path", w, hook.path));
      if (hook.path.empty() || hook.path[0] != '/')
        return Invalid(w + ".path: must be an absolute path, got `" + hook.path + "`");
      TRY(GetStrings(j, "args", w, hook.args));
      TRY(GetStrings(j, "env", w, hook.env));
      std::optional<int64_t> timeout;
      TRY(GetInt(j, "timeout", w, timeout));
      if (timeout) {
        if (*timeout <= 0) return Invalid(w + ".timeout: must be positive");
        hook.timeout = static_cast<int>(std::min<int64_t>(*timeout, 1 << 30));
      }
      out->push_back(std::move(hook));
    }
  }
  return {};
}

Status ParseProcess(const json& root, Config& c) {
  CFG_FIELD(proc, root, "process", object, std::string("config"));
  if (!proc) return Invalid("config: `process` is required");
  return ParseProcessObject(proc, c.process);
}

constexpr std::array<std::pair<std::string_view, int>, 8> kNamespaces{{
    {"pid", CLONE_NEWPID},
    {"network", CLONE_NEWNET},
    {"mount", CLONE_NEWNS},
    {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},
    {"user", CLONE_NEWUSER},
    {"cgroup", CLONE_NEWCGROUP},
    {"time", CLONE_NEWTIME},
}};

Status ParseIdMaps(const json& linux, const char* key, std::vector<IdMap>& out) {
  CFG_FIELD(j, linux, key, array, std::string("linux"));
  if (!j) return {};
  for (const json& m : *j) {
    if (!m.is_object()) return Invalid(std::string("linux.") + key + ": expected objects");
    IdMap im;
    std::string w = std::string("linux.") + key;
    TRY(GetUnsigned(m, "containerID", w, im.container_id));
    TRY(GetUnsigned(m, "hostID", w, im.host_id));
    TRY(GetUnsigned(m, "size", w, im.size));
    out.push_back(im);
  }
  return {};
}

Status ParseLinux(const json& root, Config& c) {
  CFG_FIELD(linux, root, "linux", object, std::string("config"));
  if (!linux) return {};
  const std::string w = "linux";
  CFG_FIELD(nss, *linux, "namespaces", array, w);
  if (nss)
    for (const json& n : *nss) {
      if (!n.is_object()) return Invalid("linux.namespaces: expected objects");
      std::string type, path;
      TRY(GetString(n, "type", "linux.namespaces", type));
      TRY(GetString(n, "path", "linux.namespaces", path));
      auto it = std::find_if(kNamespaces.begin(), kNamespaces.end(),
                             [&](const auto& k) { return k.first == type; });
      if (it == kNamespaces.end())
        return Invalid("linux.namespaces: unknown namespace type `" + type + "`");
      if (c.FindNamespace(it->second))
        return Invalid("linux.namespaces: duplicate namespace type `" + type + "`");
      c.namespaces.push_back({it->second, path});
    }
  TRY(ParseIdMaps(*linux, "uidMappings", c.uid_mappings));
  TRY(ParseIdMaps(*linux, "gidMappings", c.gid_mappings));
  CFG_FIELD(sysctl, *linux, "sysctl", object, w);
  if (sysctl)
    for (const auto& [k, v] : sysctl->items()) {
      if (!v.is_string()) return Invalid("linux.sysctl." + k + ": expected string");
      if (k.empty() || k.find("..") != std::string::npos || k.find('/') != std::string::npos)
        return Invalid("linux.sysctl: invalid key `" + k + "`");
      c.sysctls.emplace_back(k, v.get<std::string>());
    }
  TRY(ParseResources(*linux, c.resources));
  TRY(GetString(*linux, "cgroupsPath", w, c.cgroups_path));
  std::string prop;
  TRY(GetString(*linux, "rootfsPropagation", w, prop));
  if (!prop.empty()) {
    auto flag = PropagationFlag(prop);
    if (!flag) return Invalid("linux.rootfsPropagation: unknown value `" + prop + "`");
    c.rootfs_propagation = *flag;
  }
  TRY(GetStrings(*linux, "maskedPaths", w, c.masked_paths));
  TRY(GetStrings(*linux, "readonlyPaths", w, c.readonly_paths));
  TRY(ParseDevices(*linux, c));
  TRY(ParseSeccomp(*linux, c.seccomp));
  return {};
}

Status Validate(Config& c) {
  const Namespace* user = c.FindNamespace(CLONE_NEWUSER);
  if (user && !user->path.empty())
    return common::MakeError(Errc::kUnimplemented,
                             "linux.namespaces: joining a user namespace by path is not supported");
  if (user && user->path.empty() && (c.uid_mappings.empty() || c.gid_mappings.empty()))
    return Invalid("linux: a new user namespace needs uidMappings and gidMappings");
  if (const Namespace* t = c.FindNamespace(CLONE_NEWTIME); t && t->path.empty())
    return common::MakeError(Errc::kUnimplemented,
                             "linux.namespaces: a new time namespace is not supported");
  if (!c.FindNamespace(CLONE_NEWNS))
    return Invalid("linux.namespaces: a mount namespace is required");
  if ((!c.hostname.empty() || c.domainname) && !c.FindNamespace(CLONE_NEWUTS))
    return Invalid("hostname: setting it needs a new uts namespace");
  for (const auto& [key, value] : c.sysctls) {
    bool net = key.starts_with("net.");
    bool ipc = key.starts_with("kernel.msg") || key.starts_with("kernel.sem") ||
               key.starts_with("kernel.shm") || key.starts_with("fs.mqueue.");
    if ((net && !c.FindNamespace(CLONE_NEWNET)) || (ipc && !c.FindNamespace(CLONE_NEWIPC)) ||
        (!net && !ipc && key != "kernel.hostname" && key != "kernel.domainname"))
      return Invalid("linux.sysctl: `" + key + "` is not namespaced for this container");
  }
  std::error_code ec;
  if (!fs::is_directory(c.rootfs, ec))
    return common::MakeError(
        Errc::kNotFound, "rootfs `" + c.rootfs.string() + "` does not exist or is not a directory");
  return {};
}

}  // namespace

bool Mount::IsBind() const { return (flags & MS_BIND) != 0; }

const Namespace* Config::FindNamespace(int flag) const {
  for (const Namespace& n : namespaces)
    if (n.flag == flag) return &n;
  return nullptr;
}

Result<std::string> NormalizeContainerPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view comp = path.substr(i, j - i);
    if (comp == "..") {
      if (parts.empty()) return Invalid("path `" + std::string(path) + "` climbs above /");
      parts.pop_back();
    } else if (!comp.empty() && comp != ".") {
      parts.push_back(comp);
    }
    i = j + 1;
  }
  std::string out;
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? std::string("/") : out;
}

std::optional<int> CapabilityFromName(std::string_view name) {
  std::string lower;
  for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (!lower.starts_with("cap_")) lower = "cap_" + lower;
  cap_value_t v = 0;
  if (cap_from_name(lower.c_str(), &v) != 0 || v < 0 || v > 63) return std::nullopt;
  return static_cast<int>(v);
}

Result<Config> ParseConfig(std::string_view text, const fs::path& bundle) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string_view what = e.what();
    if (auto p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
    return Invalid("config.json: invalid JSON: " + std::string(what));
  }
  if (!root.is_object()) return Invalid("config.json: expected a JSON object");
  Config c;
  c.bundle = bundle;
  TRY(GetString(root, "ociVersion", "config", c.oci_version));
  CFG_FIELD(r, root, "root", object, std::string("config"));
  if (!r) return Invalid("config: `root` is required");
  std::string rootfs;
  TRY(GetString(*r, "path", "root", rootfs));
  if (rootfs.empty()) return Invalid("root.path: must not be empty");
  c.rootfs = rootfs[0] == '/' ? fs::path(rootfs) : bundle / rootfs;
  c.rootfs = c.rootfs.lexically_normal();
  if (c.rootfs.string().size() > 1 && c.rootfs.string().back() == '/')
    c.rootfs = c.rootfs.parent_path();
  TRY(GetBool(*r, "readonly", "root", c.root_readonly));
  TRY(GetString(root, "hostname", "config", c.hostname));
  CFG_FIELD(dn, root, "domainname", string, std::string("config"));
  if (dn) c.domainname = dn->get<std::string>();
  CFG_FIELD(ann, root, "annotations", object, std::string("config"));
  if (ann)
    for (const auto& [k, v] : ann->items()) {
      if (!v.is_string()) return Invalid("annotations." + k + ": expected string");
      c.annotations[k] = v.get<std::string>();
    }
  TRY(ParseHooks(root, c.hooks));
  TRY(ParseProcess(root, c));
  TRY(ParseMounts(root, c));
  TRY(ParseLinux(root, c));
  TRY(Validate(c));
  return c;
}

namespace {

// A JSON object from `text`; `what` names it in errors.
Result<json> ParseObjectText(std::string_view text, const char* what) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    return Invalid(std::string(what) + ": invalid JSON: " + e.what());
  }
  if (!root.is_object()) return Invalid(std::string(what) + ": expected a JSON object");
  return root;
}

}  // namespace

Result<Process> ParseProcessJson(std::string_view text) {
  ASSIGN_OR_RETURN(json root, ParseObjectText(text, "process"));
  Process p;
  TRY(ParseProcessObject(&root, p));
  return p;
}

Result<Resources> ParseResourcesJson(std::string_view text) {
  ASSIGN_OR_RETURN(json root, ParseObjectText(text, "resources"));
  Resources r;
  TRY(ParseResources(json{{"resources", std::move(root)}}, r));
  return r;
}

Result<Config> LoadConfig(const fs::path& bundle) {
  fs::path file = bundle / "config.json";
  auto text = common::ReadFile(file, 16u << 20);
  if (!text) {
    if (text.error().code == Errc::kNotFound)
      return common::MakeError(Errc::kNotFound,
                               "bundle `" + bundle.string() + "` has no config.json");
    return std::unexpected(text.error().Wrap("read config"));
  }
  return ParseConfig(*text, bundle);
}

}  // namespace ociruntime::rt
