#include "ociruntime/runtime_cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/capability.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "ociruntime/runtime.h"

namespace ociruntime {
namespace {

using common::Errc;
using common::Result;

struct FlagSpec {
  std::string_view name;  // without dashes
  bool takes_value;
};

struct Parsed {
  std::map<std::string, std::string, std::less<>> values;
  std::set<std::string, std::less<>> bools;
  std::vector<std::string> positional;
  size_t consumed = 0;  // arguments used (up to the command, for globals)

  std::string Get(std::string_view k) const {
    auto it = values.find(k);
    return it == values.end() ? std::string() : it->second;
  }
  bool Has(std::string_view k) const { return bools.contains(k) || values.contains(k); }
  // Every value of a repeatable flag given under either name, in order.
  std::vector<std::string> All(std::string_view a, std::string_view b) const {
    std::vector<std::string> out;
    for (const auto& [name, value] : repeated)
      if (name == a || name == b) out.push_back(value);
    return out;
  }
  std::vector<std::pair<std::string, std::string>> repeated;
};

std::unexpected<common::Error> Usage(std::string msg) {
  return common::MakeError(Errc::kInvalidArgument, std::move(msg));
}

// Go-style flags: -f, --f, -f=v, --f=v, -f v. With `stop_at_positional`
// parsing ends at the first positional argument (the global options).
Result<Parsed> ParseFlags(const std::vector<std::string>& args, size_t from,
                          std::initializer_list<FlagSpec> specs, bool stop_at_positional) {
  Parsed p;
  size_t i = from;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      for (++i; i < args.size(); ++i) p.positional.push_back(args[i]);
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      if (stop_at_positional) break;
      p.positional.push_back(a);
      continue;
    }
    std::string_view body(a);
    body.remove_prefix(body.starts_with("--") ? 2 : 1);
    std::optional<std::string> value;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs)
      if (s.name == body) spec = &s;
    if (!spec) return Usage("flag provided but not defined: -" + std::string(body));
    if (spec->takes_value) {
      if (!value) {
        if (i + 1 >= args.size()) return Usage("flag needs an argument: -" + std::string(body));
        value = args[++i];
      }
      p.values[std::string(body)] = *value;
      p.repeated.emplace_back(std::string(body), *value);
    } else if (!value || *value == "true" || *value == "1") {
      p.bools.insert(std::string(body));
    } else if (*value != "false" && *value != "0") {
      return Usage("invalid boolean value `" + *value + "` for -" + std::string(body));
    }
  }
  p.consumed = i;
  return p;
}

class ErrorLog {
 public:
  ErrorLog(std::string_view prog, const std::string& path, bool json) : prog_(prog), json_(json) {
    if (!path.empty()) fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  }
  ~ErrorLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  ErrorLog(const ErrorLog&) = delete;
  ErrorLog& operator=(const ErrorLog&) = delete;

  int Report(const common::Error& e) const {
    std::cerr << prog_ << ": " << e.message << std::endl;
    if (fd_ < 0) return 1;
    time_t now = ::time(nullptr);
    tm t{};
    gmtime_r(&now, &t);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &t);
    std::string line;
    if (json_) {
      nlohmann::ordered_json j;
      j["level"] = "error";
      j["msg"] = e.message;
      j["time"] = stamp;
      line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      line =
          std::string("time=\"") + stamp + "\" level=error msg=" +
          nlohmann::json(e.message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
          "\n";
    }
    ssize_t n = ::write(fd_, line.data(), line.size());
    (void)n;
    return 1;
  }

 private:
  std::string_view prog_;
  int fd_ = -1;
  bool json_;
};

Result<std::string> OneId(const Parsed& p, const char* cmd) {
  if (p.positional.size() != 1)
    return Usage(std::string(cmd) + ": expected exactly one container id, got " +
                 std::to_string(p.positional.size()) + " arguments");
  return p.positional[0];
}

CreateOptions CreateOpts(const Parsed& p) {
  CreateOptions co;
  co.bundle = p.Get("bundle");
  if (co.bundle.empty()) co.bundle = p.Get("b");
  co.pid_file = p.Get("pid-file");
  co.console_socket = p.Get("console-socket");
  co.no_pivot = p.Has("no-pivot");
  co.no_new_keyring = p.Has("no-new-keyring");
  if (p.Has("preserve-fds")) co.preserve_fds = std::atoi(p.Get("preserve-fds").c_str());
  return co;
}

constexpr std::string_view kUsage =
    "usage: %s [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND\n"
    "commands:\n"
    "  create [--bundle B] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] ID\n"
    "  start ID\n"
    "  state ID\n"
    "  kill [--all] ID [SIGNAL]\n"
    "  delete [--force] ID\n"
    "  run [--bundle B] [--detach] [--pid-file F] [--console-socket S] ID\n"
    "  list [--format table|json] [--quiet]\n"
    "  ps [--format table|json] ID\n"
    "  exec [--process FILE] [--detach] [--pid-file F] [--console-socket S] [--tty]\n"
    "       [--env K=V]... [--cwd DIR] [--user UID[:GID]] [--additional-gids G]...\n"
    "       [--cap CAP]... [--no-new-privs] [--apparmor PROFILE] [--preserve-fds N]\n"
    "       ID [COMMAND ARGS...]\n"
    "  pause ID | resume ID\n"
    "  update [--resources FILE|-] [--memory N] [--memory-swap N] [--pids-limit N]\n"
    "         [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus L] ID\n"
    "  events --stats ID\n"
    "  features\n";

}  // namespace

std::string RuntimeUsage(std::string_view prog) {
  std::string usage(kUsage);
  usage.replace(usage.find("%s"), 2, prog);
  return usage;
}

namespace {

void PrintTable(const std::vector<ContainerInfo>& list) {
  // runc's tabwriter: cells padded to max(12, width + 3).
  std::vector<std::array<std::string, 6>> rows = {
      {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
  for (const ContainerInfo& c : list)
    rows.push_back({c.id, std::to_string(c.pid), c.status, c.bundle.string(), c.created, c.owner});
  std::array<size_t, 6> width{};
  for (const auto& r : rows)
    for (size_t i = 0; i < 6; ++i) width[i] = std::max({width[i], size_t{12}, r[i].size() + 3});
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < 6; ++i) {
      line += r[i];
      if (i < 5) line.append(width[i] - r[i].size(), ' ');
    }
    std::cout << line << "\n";
  }
}

// `ps` as a table read from /proc (runc runs ps(1) instead): UID, PID,
// PPID and the command line of each process in the container.
void PrintPsTable(const std::vector<pid_t>& pids) {
  std::printf("%-8s %-8s %-8s %s\n", "UID", "PID", "PPID", "CMD");
  for (pid_t pid : pids) {
    std::string dir = "/proc/" + std::to_string(pid);
    auto status = common::ReadFile(dir + "/status", 1u << 16);
    auto cmdline = common::ReadFile(dir + "/cmdline", 1u << 16);
    if (!status) continue;  // exited meanwhile
    auto field = [&](const char* key) {
      size_t at = status->find(std::string("\n") + key + ":");
      if (at == std::string::npos) return std::string("?");
      size_t b = status->find_first_not_of(" \t", at + strlen(key) + 2);
      size_t e = status->find_first_of(" \t\n", b);
      return status->substr(b, e - b);
    };
    std::string cmd = cmdline ? *cmdline : "";
    while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    std::printf("%-8s %-8d %-8s %s\n", field("Uid").c_str(), pid, field("PPid").c_str(),
                cmd.c_str());
  }
}

// `update`: --resources FILE ("-": stdin), or runc's single-limit flags.
Result<std::string> UpdateResources(const Parsed& p) {
  std::string file = p.Has("resources") ? p.Get("resources") : p.Get("r");
  if (!file.empty()) {
    std::string text;
    if (file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      ASSIGN_OR_RETURN(text, common::ReadFile(file, 16u << 20));
    }
    return text;
  }
  nlohmann::json r = nlohmann::json::object();
  auto num = [&](const char* flag, const char* section, const char* key) -> common::Status {
    if (!p.Has(flag)) return {};
    const std::string v = p.Get(flag);
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end) return Usage(std::string("update: --") + flag + ": not a number: " + v);
    r[section][key] = n;
    return {};
  };
  TRY(num("memory", "memory", "limit"));
  TRY(num("memory-swap", "memory", "swap"));
  TRY(num("memory-reservation", "memory", "reservation"));
  TRY(num("pids-limit", "pids", "limit"));
  TRY(num("cpu-shares", "cpu", "shares"));
  TRY(num("cpu-quota", "cpu", "quota"));
  TRY(num("cpu-period", "cpu", "period"));
  if (p.Has("cpuset-cpus")) r["cpu"]["cpus"] = p.Get("cpuset-cpus");
  if (p.Has("cpuset-mems")) r["cpu"]["mems"] = p.Get("cpuset-mems");
  if (r.empty()) return Usage("update: nothing to update (--resources FILE or a limit flag)");
  return r.dump();
}

// runtime-spec's features document (features.md): what this runtime
// implements, so that callers can detect it.
std::string FeaturesJson() {
  nlohmann::ordered_json j;
  j["ociVersionMin"] = "1.0.0";
  j["ociVersionMax"] = "1.2.0";
  j["hooks"] = {"prestart",       "createRuntime", "createContainer",
                "startContainer", "poststart",     "poststop"};
  j["mountOptions"] = {"async",         "atime",      "bind",       "defaults",   "dev",
                       "diratime",      "dirsync",    "exec",       "iversion",   "lazytime",
                       "loud",          "mand",       "noatime",    "nodev",      "nodiratime",
                       "noexec",        "noiversion", "nolazytime", "nomand",     "norelatime",
                       "nostrictatime", "nosuid",     "private",    "rbind",      "relatime",
                       "remount",       "ro",         "rprivate",   "rshared",    "rslave",
                       "runbindable",   "rw",         "shared",     "silent",     "slave",
                       "strictatime",   "suid",       "sync",       "unbindable", "rro",
                       "rrw",           "rnosuid",    "rsuid",      "rnodev",     "rdev",
                       "rnoexec",       "rexec"};
  nlohmann::ordered_json linux;
  linux["namespaces"] = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"};
  std::vector<std::string> caps;
  for (int c = 0; c <= 40; ++c) {
    char* name = cap_to_name(static_cast<cap_value_t>(c));
    if (!name) continue;
    std::string n = name;
    cap_free(name);
    if (!n.starts_with("cap_")) continue;
    for (char& ch : n) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
    caps.push_back(n);
  }
  linux["capabilities"] = caps;
  linux["cgroup"] = {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}};
  linux["seccomp"] = {
      {"enabled", true},
      {"actions",
       {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
        "SCMP_ACT_TRAP"}},
      {"operators",
       {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
      {"archs",
       {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"}},
      {"knownFlags",
       {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"}},
      {"supportedFlags",
       {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"}}};
  linux["apparmor"] = {{"enabled", true}};
  linux["selinux"] = {{"enabled", false}};
  j["linux"] = linux;
  j["annotations"] = {{"io.github.gantry.runtime.version", "0.1.0"}};
  return j.dump(4);
}

Result<int> Dispatch(const std::string& cmd, const std::vector<std::string>& args, size_t from,
                     const RuntimeOptions& ro) {
  if (cmd == "create" || cmd == "run") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from,
                                          {{"bundle", true},
                                           {"b", true},
                                           {"pid-file", true},
                                           {"console-socket", true},
                                           {"no-pivot", false},
                                           {"no-new-keyring", false},
                                           {"preserve-fds", true},
                                           {"detach", false},
                                           {"d", false},
                                           {"keep", false},
                                           {"no-subreaper", false}},
                                          false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, cmd.c_str()));
    if (cmd == "create") {
      TRY(Create(ro, id, CreateOpts(p)));
      return 0;
    }
    return Run(ro, id, CreateOpts(p), p.Has("detach") || p.Has("d"));
  }
  if (cmd == "start" || cmd == "state") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {}, false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, cmd.c_str()));
    if (cmd == "start") {
      TRY(Start(ro, id));
    } else {
      ASSIGN_OR_RETURN(ContainerInfo info, State(ro, id));
      std::cout << info.json << std::endl;
    }
    return 0;
  }
  if (cmd == "kill") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {{"all", false}, {"a", false}}, false));
    if (p.positional.empty() || p.positional.size() > 2)
      return Usage("kill: usage: kill [--all] ID [SIGNAL]");
    int sig = SIGTERM;
    if (p.positional.size() == 2) {
      ASSIGN_OR_RETURN(sig, ParseSignal(p.positional[1]));
    }
    TRY(Kill(ro, p.positional[0], sig, p.Has("all") || p.Has("a")));
    return 0;
  }
  if (cmd == "delete") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {{"force", false}, {"f", false}}, false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, "delete"));
    TRY(Delete(ro, id, p.Has("force") || p.Has("f")));
    return 0;
  }
  if (cmd == "list") {
    ASSIGN_OR_RETURN(
        Parsed p,
        ParseFlags(args, from, {{"format", true}, {"f", true}, {"quiet", false}, {"q", false}},
                   false));
    std::string format = p.Has("format") ? p.Get("format") : p.Get("f");
    ASSIGN_OR_RETURN(std::vector<ContainerInfo> list, List(ro));
    if (p.Has("quiet") || p.Has("q")) {
      for (const ContainerInfo& c : list) std::cout << c.id << "\n";
    } else if (format == "json") {
      std::string out = "[";
      for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + list[i].json;
      std::cout << out << "]\n";
    } else if (format.empty() || format == "table") {
      PrintTable(list);
    } else {
      return Usage("list: unknown format `" + format + "`");
    }
    return 0;
  }
  if (cmd == "exec") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from,
                                          {{"process", true},
                                           {"p", true},
                                           {"console-socket", true},
                                           {"detach", false},
                                           {"d", false},
                                           {"pid-file", true},
                                           {"tty", false},
                                           {"t", false},
                                           {"cwd", true},
                                           {"env", true},
                                           {"e", true},
                                           {"user", true},
                                           {"u", true},
                                           {"additional-gids", true},
                                           {"g", true},
                                           {"cap", true},
                                           {"c", true},
                                           {"no-new-privs", false},
                                           {"preserve-fds", true},
                                           {"process-label", true},
                                           {"apparmor", true},
                                           {"ignore-paused", false},
                                           {"cgroup", true}},
                                          true));
    // Flags stop at the id; what follows is the command, flags included.
    std::vector<std::string> rest = p.positional;  // after a "--"
    rest.insert(rest.end(), args.begin() + static_cast<long>(p.consumed), args.end());
    if (rest.empty()) return Usage("exec: usage: exec [flags] ID [COMMAND ARGS...]");
    ExecOptions eo;
    std::string id = rest[0];
    eo.args.assign(rest.begin() + 1, rest.end());
    if (!eo.args.empty() && eo.args[0] == "--") eo.args.erase(eo.args.begin());
    eo.process_file = p.Has("process") ? p.Get("process") : p.Get("p");
    eo.console_socket = p.Get("console-socket");
    eo.detach = p.Has("detach") || p.Has("d");
    eo.pid_file = p.Get("pid-file");
    eo.tty = p.Has("tty") || p.Has("t");
    eo.cwd = p.Get("cwd");
    eo.env = p.All("env", "e");
    eo.user = p.Has("user") ? p.Get("user") : p.Get("u");
    for (const std::string& g : p.All("additional-gids", "g"))
      eo.additional_gids.push_back(static_cast<uint32_t>(std::strtoul(g.c_str(), nullptr, 10)));
    eo.caps = p.All("cap", "c");
    eo.no_new_privs = p.Has("no-new-privs");
    eo.apparmor_profile = p.Get("apparmor");
    eo.process_label = p.Get("process-label");
    if (p.Has("preserve-fds")) eo.preserve_fds = std::atoi(p.Get("preserve-fds").c_str());
    return Exec(ro, id, eo);
  }
  if (cmd == "pause" || cmd == "resume") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {}, false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, cmd.c_str()));
    TRY(cmd == "pause" ? Pause(ro, id) : Resume(ro, id));
    return 0;
  }
  if (cmd == "update") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from,
                                          {{"resources", true},
                                           {"r", true},
                                           {"memory", true},
                                           {"memory-swap", true},
                                           {"memory-reservation", true},
                                           {"pids-limit", true},
                                           {"cpu-shares", true},
                                           {"cpu-quota", true},
                                           {"cpu-period", true},
                                           {"cpuset-cpus", true},
                                           {"cpuset-mems", true}},
                                          false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, "update"));
    ASSIGN_OR_RETURN(std::string resources, UpdateResources(p));
    TRY(Update(ro, id, resources));
    return 0;
  }
  if (cmd == "events") {
    ASSIGN_OR_RETURN(Parsed p,
                     ParseFlags(args, from, {{"stats", false}, {"interval", true}}, false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, "events"));
    if (!p.Has("stats"))
      return common::MakeError(Errc::kUnimplemented,
                               "events: only --stats is supported (no event stream)");
    ASSIGN_OR_RETURN(std::string event, StatsEvent(ro, id));
    std::cout << event << std::endl;
    return 0;
  }
  if (cmd == "features") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {}, false));
    if (!p.positional.empty()) return Usage("features: takes no arguments");
    std::cout << FeaturesJson() << std::endl;
    return 0;
  }
  if (cmd == "ps") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {{"format", true}, {"f", true}}, false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, "ps"));
    ASSIGN_OR_RETURN(std::vector<pid_t> pids, Pids(ro, id));
    if ((p.Has("format") ? p.Get("format") : p.Get("f")) == "json") {
      std::cout << nlohmann::json(pids).dump() << "\n";
    } else {
      PrintPsTable(pids);
    }
    return 0;
  }
  return Usage("unknown command `" + cmd + "`");
}

}  // namespace

int RuntimeMain(const std::vector<std::string>& args, std::string_view prog) {
  auto globals = ParseFlags(args, 0,
                            {{"root", true},
                             {"log", true},
                             {"log-format", true},
                             {"debug", false},
                             {"systemd-cgroup", false},
                             {"rootless", true},
                             {"criu", true},
                             {"help", false},
                             {"h", false},
                             {"version", false},
                             {"v", false}},
                            true);
  if (!globals) {
    std::cerr << prog << ": " << globals.error().message << "\n";
    return 1;
  }
  const Parsed& g = *globals;
  std::string format = g.Has("log-format") ? g.Get("log-format") : "text";
  ErrorLog log(prog, g.Get("log"), format == "json");
  if (format != "text" && format != "json")
    return log.Report(Usage("unknown --log-format `" + format + "`").error());
  if (g.Has("version") || g.Has("v")) {
    std::cout << prog << " version 0.1.0\nspec: 1.2.0\n";
    return 0;
  }
  if (g.Has("help") || g.Has("h") || g.consumed >= args.size()) {
    fprintf(g.consumed >= args.size() && !g.Has("help") && !g.Has("h") ? stderr : stdout,
            kUsage.data(), std::string(prog).c_str());
    return g.consumed >= args.size() && !g.Has("help") && !g.Has("h") ? 1 : 0;
  }
  common::SetLogLevel(g.Has("debug") ? common::LogLevel::Debug : common::LogLevel::Warn);
  if (g.Has("systemd-cgroup"))
    return log.Report(
        common::MakeError(Errc::kUnimplemented,
                          "--systemd-cgroup: the systemd cgroup driver is not supported")
            .error());
  RuntimeOptions ro;
  if (g.Has("root")) ro.root = g.Get("root");
  const std::string& cmd = args[g.consumed];
  auto rc = Dispatch(cmd, args, g.consumed + 1, ro);
  if (!rc) return log.Report(rc.error());
  return *rc;
}

}  // namespace ociruntime
