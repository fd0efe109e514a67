#include "ociruntime/runtime_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "ociruntime/runtime_cgroup.h"

namespace ociruntime::rt {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::Result;
using common::Status;
using json = nlohmann::json;

std::unexpected<common::Error> NoSuchContainer(const std::string& id) {
  return common::MakeError(Errc::kNotFound, "container `" + id + "` does not exist");
}

}  // namespace

const char* StatusName(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::kCreated:
      return "created";
    case ContainerStatus::kRunning:
      return "running";
    case ContainerStatus::kPaused:
      return "paused";
    case ContainerStatus::kStopped:
      return "stopped";
  }
  return "unknown";
}

Status ValidateId(std::string_view id) {
  bool ok = !id.empty() && id != "." && id != ".." && id.size() <= 1024;
  for (char c : id)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' || c == '.'))
      ok = false;
  if (!ok)
    return common::MakeError(Errc::kInvalidArgument,
                             "invalid container id `" + std::string(id) + "`");
  return {};
}

std::string NowRfc3339Nano() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  std::string out = buf;
  if (ts.tv_nsec != 0) {
    snprintf(buf, sizeof buf, ".%09ld", ts.tv_nsec);
    std::string frac = buf;
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  return out + "Z";
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // The command name may contain spaces and parentheses: fields resume
  // after the last ')'. Field 3 is the state, field 22 the start time.
  char* p = strrchr(buf, ')');
  if (!p) return std::nullopt;
  ProcStat st;
  int field = 2;
  char* save = nullptr;
  for (char* tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(nullptr, " ", &save)) {
    ++field;
    if (field == 3) st.zombie = tok[0] == 'Z' || tok[0] == 'X';
    if (field == 22) {
      st.start = strtoull(tok, nullptr, 10);
      return st;
    }
  }
  return std::nullopt;
}

bool InitAlive(const State& s) {
  auto st = ReadProcStat(s.pid);
  return st && !st->zombie && st->start == s.pid_start;
}

std::string StateToJson(const State& s) {
  json dirs = json::array();
  for (const CgroupDir& d : s.cgroups.dirs) dirs.push_back({d.root, d.controllers, d.path});
  json j = {
      {"ociVersion", kOciVersion},
      {"id", s.id},
      {"pid", s.pid},
      {"pidStart", s.pid_start},
      {"bundle", s.bundle.string()},
      {"rootfs", s.rootfs.string()},
      {"created", s.created},
      {"annotations", s.annotations},
      {"cgroups", {{"v2", s.cgroups.v2}, {"dirs", dirs}, {"created", s.cgroups.created}}},
  };
  auto hooks = [](const std::vector<Hook>& list) {
    json out = json::array();
    for (const Hook& h : list) {
      json o = {{"path", h.path}, {"args", h.args}, {"env", h.env}};
      if (h.timeout) o["timeout"] = *h.timeout;
      out.push_back(std::move(o));
    }
    return out;
  };
  if (!s.poststart.empty()) j["poststart"] = hooks(s.poststart);
  if (!s.poststop.empty()) j["poststop"] = hooks(s.poststop);
  return j.dump();
}

Result<State> StateFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return common::MakeError(Errc::kDataLoss, "state.json is not valid JSON");
  State s;
  try {
    s.id = j.at("id").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.pid_start = j.at("pidStart").get<uint64_t>();
    s.bundle = j.at("bundle").get<std::string>();
    s.rootfs = j.at("rootfs").get<std::string>();
    s.created = j.at("created").get<std::string>();
    s.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    const json& cg = j.at("cgroups");
    s.cgroups.v2 = cg.at("v2").get<bool>();
    for (const json& d : cg.at("dirs"))
      s.cgroups.dirs.push_back(
          {d.at(0).get<std::string>(), d.at(1).get<std::string>(), d.at(2).get<std::string>()});
    s.cgroups.created = cg.at("created").get<std::vector<std::string>>();
    for (const auto& [key, out] :
         {std::pair{"poststart", &s.poststart}, {"poststop", &s.poststop}}) {
      if (!j.contains(key)) continue;
      for (const json& h : j.at(key)) {
        Hook hook;
        hook.path = h.at("path").get<std::string>();
        hook.args = h.at("args").get<std::vector<std::string>>();
        hook.env = h.at("env").get<std::vector<std::string>>();
        if (h.contains("timeout")) hook.timeout = h.at("timeout").get<int>();
        out->push_back(std::move(hook));
      }
    }
  } catch (const json::exception& e) {
    return common::MakeError(Errc::kDataLoss, std::string("state.json: ") + e.what());
  }
  return s;
}

Result<common::UniqueFd> LockContainerDir(const fs::path& root, const std::string& id) {
  TRY(ValidateId(id));
  fs::path dir = root / id;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NoSuchContainer(id);
    return common::ErrnoError("open `" + dir.string() + "`");
  }
  common::UniqueFd ufd(fd);
  while (::flock(fd, LOCK_EX) != 0)
    if (errno != EINTR) return common::ErrnoError("lock `" + dir.string() + "`");
  return ufd;
}

Result<State> LoadState(const fs::path& root, const std::string& id) {
  TRY(ValidateId(id));
  auto text = common::ReadFile(root / id / kStateFile, 1u << 20);
  if (!text) {
    if (text.error().code == Errc::kNotFound) return NoSuchContainer(id);
    return std::unexpected(text.error());
  }
  return Wrap(StateFromJson(*text), "container `" + id + "`");
}

Status SaveState(int dir_fd, const State& s) {
  std::string data = StateToJson(s);
  const char* tmp = ".state.json.tmp";
  int fd = ::openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return common::ErrnoError("create state file");
  common::UniqueFd ufd(fd);
  if (auto st = common::WriteAll(fd, data); !st) {
    ::unlinkat(dir_fd, tmp, 0);
    return std::unexpected(st.error().Wrap("write state file"));
  }
  // No fsync: the state describes processes, which do not survive a
  // reboot either (the root is a tmpfs, /run, by default). The rename keeps
  // readers from seeing a partial file.
  if (::renameat(dir_fd, tmp, dir_fd, kStateFile) != 0) {
    int err = errno;
    ::unlinkat(dir_fd, tmp, 0);
    return common::ErrnoError("commit state file", err);
  }
  return {};
}

ContainerStatus CurrentStatus(const State& s, int dir_fd) {
  if (!InitAlive(s)) return ContainerStatus::kStopped;
  struct stat st {};
  if (::fstatat(dir_fd, kExecFifo, &st, AT_SYMLINK_NOFOLLOW) == 0) return ContainerStatus::kCreated;
  return CgroupFrozen(s.cgroups) ? ContainerStatus::kPaused : ContainerStatus::kRunning;
}

std::string OciStateJson(const State& s, ContainerStatus status, const std::string& owner,
                         int indent) {
  // An ordered object keeps runc's field order.
  nlohmann::ordered_json j;
  j["ociVersion"] = kOciVersion;
  j["id"] = s.id;
  j["pid"] = status == ContainerStatus::kStopped ? 0 : s.pid;
  j["status"] = StatusName(status);
  j["bundle"] = s.bundle.string();
  j["rootfs"] = s.rootfs.string();
  j["created"] = s.created;
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  j["owner"] = owner;
  return j.dump(indent);
}

}  // namespace ociruntime::rt
