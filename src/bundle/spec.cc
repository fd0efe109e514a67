// config.json from an image config: runc's `runc spec` defaults with the
// image's process settings.

#include "bundle/spec.h"

#include <algorithm>

namespace bundle {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using nlohmann::json;

constexpr size_t kMaxHostname = 64;  // HOST_NAME_MAX: sethostname(2) refuses longer

std::string_view EnvName(std::string_view kv) { return kv.substr(0, kv.find('=')); }

Result<std::vector<std::string>> MergeEnv(const std::vector<std::string>& image,
                                          const std::vector<std::string>& overrides) {
  std::vector<std::string> env = image;
  for (const std::string& kv : overrides) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return MakeError(Errc::kInvalidArgument, "env `" + kv + "`: expected NAME=VALUE");
    auto it = std::find_if(env.begin(), env.end(),
                           [&](const std::string& e) { return EnvName(e) == EnvName(kv); });
    if (it != env.end())
      *it = kv;
    else
      env.push_back(kv);
  }
  if (std::none_of(env.begin(), env.end(),
                   [](const std::string& e) { return EnvName(e) == "PATH"; }))
    env.insert(env.begin(), std::string(kDefaultPath));
  return env;
}

json Mount(std::string_view destination, std::string_view type, std::string_view source,
           std::vector<std::string> options = {}) {
  json m = {{"destination", destination}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = std::move(options);
  return m;
}

json DefaultMounts() {
  return json::array({
      Mount("/proc", "proc", "proc"),
      Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      Mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      Mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      Mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      Mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  });
}

json DefaultLinux() {
  json ns = json::array();
  for (const char* t : {"pid", "network", "ipc", "uts", "mount"}) ns.push_back({{"type", t}});
  return {
      {"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
      {"namespaces", std::move(ns)},
      {"maskedPaths",
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/proc/scsi"}},
      {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
  };
}

}  // namespace

Result<json> MakeSpec(const ImageRuntimeConfig& image, const BundleOptions& options,
                      const std::filesystem::path& rootfs) {
  std::vector<std::string> args = image.entrypoint;
  const auto& cmd = options.args.empty() ? image.cmd : options.args;
  args.insert(args.end(), cmd.begin(), cmd.end());
  if (args.empty())
    return MakeError(Errc::kInvalidArgument,
                     "no command to run: the image has no Entrypoint or Cmd; give one after `--`");

  ASSIGN_OR_RETURN(std::vector<std::string> env, MergeEnv(image.env, options.env));

  std::string cwd = image.working_dir.empty() ? "/" : image.working_dir;
  if (cwd.front() != '/') cwd.insert(cwd.begin(), '/');

  std::string hostname =
      options.hostname.empty() ? std::string(kDefaultHostname) : options.hostname;
  if (hostname.size() > kMaxHostname || hostname.find('\0') != std::string::npos)
    return MakeError(Errc::kInvalidArgument, "hostname `" + hostname + "`: longer than " +
                                                 std::to_string(kMaxHostname) +
                                                 " bytes or not text");

  const std::string& user_spec = options.user.empty() ? image.user : options.user;
  ASSIGN_OR_RETURN(ResolvedUser user, ResolveUser(user_spec, rootfs));
  json user_json = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additional_gids.empty()) user_json["additionalGids"] = user.additional_gids;

  json caps = json::array();
  for (std::string_view c : kDefaultCapabilities) caps.push_back(c);

  json annotations = json::object();
  for (const auto& [k, v] : image.labels) annotations[k] = v;
  if (!image.stop_signal.empty())
    annotations[std::string(kAnnotationStopSignal)] = image.stop_signal;

  json spec = {
      {"ociVersion", kOciVersion},
      {"process",
       {{"terminal", false},
        {"user", std::move(user_json)},
        {"args", std::move(args)},
        {"env", std::move(env)},
        {"cwd", std::move(cwd)},
        {"capabilities",
         {{"bounding", caps},
          {"effective", caps},
          {"permitted", caps},
          {"inheritable", json::array()},
          {"ambient", json::array()}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", options.readonly}}},
      {"hostname", std::move(hostname)},
      {"mounts", DefaultMounts()},
      {"linux", DefaultLinux()},
  };
  if (options.userns) {
    const IdRange& r = *options.userns;
    json map =
        json::array({{{"containerID", r.container_id}, {"hostID", r.host_id}, {"size", r.size}}});
    spec["linux"]["namespaces"].push_back({{"type", "user"}});
    spec["linux"]["uidMappings"] = map;
    spec["linux"]["gidMappings"] = map;
  }
  spec["linux"]["seccomp"] = DefaultSeccomp(std::vector<std::string_view>(
      std::begin(kDefaultCapabilities), std::end(kDefaultCapabilities)));
  if (!annotations.empty()) spec["annotations"] = std::move(annotations);
  return spec;
}

}  // namespace bundle
