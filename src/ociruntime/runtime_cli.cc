#include "ociruntime/runtime_cli.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

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
      line = std::string("time=\"") + stamp + "\" level=error msg=" + nlohmann::json(e.message).dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
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
    "  ps [--format table|json] ID\n";

void PrintTable(const std::vector<ContainerInfo>& list) {
  // runc's tabwriter: cells padded to max(12, width + 3).
  std::vector<std::array<std::string, 6>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
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

Result<int> Dispatch(const std::string& cmd, const std::vector<std::string>& args, size_t from,
                     const RuntimeOptions& ro) {
  if (cmd == "create" || cmd == "run") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from,
                                          {{"bundle", true}, {"b", true}, {"pid-file", true},
                                           {"console-socket", true}, {"no-pivot", false},
                                           {"no-new-keyring", false}, {"preserve-fds", true},
                                           {"detach", false}, {"d", false}, {"keep", false},
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
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from,
                                          {{"format", true}, {"f", true}, {"quiet", false}, {"q", false}},
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
  if (cmd == "ps") {
    ASSIGN_OR_RETURN(Parsed p, ParseFlags(args, from, {{"format", true}, {"f", true}}, false));
    ASSIGN_OR_RETURN(std::string id, OneId(p, "ps"));
    ASSIGN_OR_RETURN(std::vector<pid_t> pids, Pids(ro, id));
    if ((p.Has("format") ? p.Get("format") : p.Get("f")) == "json") {
      std::cout << nlohmann::json(pids).dump() << "\n";
    } else {
      std::cout << "PID\n";
      for (pid_t pid : pids) std::cout << pid << "\n";
    }
    return 0;
  }
  return Usage("unknown command `" + cmd + "`");
}

}  // namespace

int RuntimeMain(const std::vector<std::string>& args, std::string_view prog) {
  auto globals = ParseFlags(args, 0,
                            {{"root", true}, {"log", true}, {"log-format", true}, {"debug", false},
                             {"systemd-cgroup", false}, {"rootless", true}, {"criu", true},
                             {"help", false}, {"h", false}, {"version", false}, {"v", false}},
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
    return log.Report(common::MakeError(Errc::kUnimplemented,
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
