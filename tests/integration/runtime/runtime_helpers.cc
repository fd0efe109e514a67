#include "integration/runtime/runtime_helpers.h"

#include <elf.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "fixtures/crun.h"
#include "fixtures/require.h"

namespace rttest {
namespace {

constexpr const char* kBusybox = "/bin/busybox";

constexpr const char* kApplets[] = {
    "sh",    "echo",  "cat",  "id",       "ls",   "sleep",   "hostname", "true",
    "false", "touch", "grep", "wc",       "stat", "awk",     "sort",     "pwd",
    "env",   "kill",  "ps",   "readlink", "test", "[",       "tty",      "mkdir",
    "rm",    "head",  "tr",   "cut",      "stty", "unshare", "chown",    "chroot"};

// A static ELF has no PT_INTERP program header.
bool IsStaticBusybox() {
  auto data = common::ReadFile(kBusybox, 64u << 20);
  if (!data || data->size() < sizeof(Elf64_Ehdr)) return false;
  Elf64_Ehdr eh;
  memcpy(&eh, data->data(), sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) return false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    size_t off = eh.e_phoff + size_t{i} * eh.e_phentsize;
    if (off + sizeof(Elf64_Phdr) > data->size()) return false;
    Elf64_Phdr ph;
    memcpy(&ph, data->data() + off, sizeof ph);
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

}  // namespace

bool HaveStaticBusybox() {
  static const bool ok = ::access(kBusybox, X_OK) == 0 && IsStaticBusybox();
  return ok;
}

const fs::path& SharedRootfs() {
  static std::once_flag once;
  static common::TempDir dir;
  static fs::path rootfs;
  std::call_once(once, [] {
    auto d = common::TempDir::Create("gantry-rt-rootfs");
    if (!d) return;
    dir = std::move(*d);
    rootfs = dir.path() / "rootfs";
    // Reachable by a user namespace's mapped root, too.
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read |
                                    fs::perms::group_exec | fs::perms::others_read |
                                    fs::perms::others_exec);
    for (const char* sub : {"bin", "etc", "proc", "sys", "dev", "tmp", "root"})
      fs::create_directories(rootfs / sub);
    fs::permissions(rootfs / "tmp", fs::perms::all | fs::perms::sticky_bit);
    fs::copy_file(kBusybox, rootfs / "bin/busybox");
    for (const char* a : kApplets) fs::create_symlink("busybox", rootfs / "bin" / a);
    std::ofstream(rootfs / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                            "user:x:1000:1000:user:/tmp:/bin/sh\n";
    std::ofstream(rootfs / "etc/group") << "root:x:0:\ngroup10:x:10:user\n"
                                           "group20:x:20:user\nuser:x:1000:\n";
  });
  return rootfs;
}

json DefaultConfig(const std::vector<std::string>& args) {
  json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  auto mount = [](const char* dest, const char* type, const char* src, json opts) {
    json m = {{"destination", dest}, {"type", type}, {"source", src}};
    if (!opts.empty()) m["options"] = opts;
    return m;
  };
  return {
      {"ociVersion", "1.0.2-dev"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env",
         {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", SharedRootfs().string()}, {"readonly", true}}},
      {"hostname", "gantry-test"},
      {"mounts",
       {mount("/proc", "proc", "proc", json::array()),
        mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
        mount("/dev/pts", "devpts", "devpts",
              {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
        mount("/dev/shm", "tmpfs", "shm",
              {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
        mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
        mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
        mount("/sys/fs/cgroup", "cgroup", "cgroup",
              {"nosuid", "noexec", "nodev", "relatime", "ro"})}},
      {"linux",
       {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
  };
}

fs::path CopyRootfs(const fs::path& dest) {
  fs::copy(SharedRootfs(), dest, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::permissions(dest / "tmp", fs::perms::all | fs::perms::sticky_bit);
  return dest;
}

void Bundle::Write() const { std::ofstream(dir.path() / "config.json") << config.dump(2); }

Bundle MakeBundle(const std::vector<std::string>& args) {
  auto d = common::TempDir::Create("gantry-rt-bundle");
  Bundle b{.dir = std::move(*d), .config = DefaultConfig(args)};
  b.Write();
  return b;
}

std::vector<std::string> Runtime::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = prefix;
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

fixtures::CommandResult Runtime::Cmd(const std::vector<std::string>& args,
                                     std::chrono::seconds timeout) const {
  fixtures::RunOptions options;
  options.timeout = timeout;
  auto r = fixtures::RunCommand(Argv(args), options);
  if (!r) return {.exit_code = -1, .out = "", .err = r.error().message};
  return *r;
}

fixtures::CommandResult Runtime::CmdWithInput(const std::vector<std::string>& args,
                                              const std::string& input) const {
  fixtures::RunOptions options;
  options.timeout = std::chrono::seconds(60);
  options.stdin_data = input;
  auto r = fixtures::RunCommand(Argv(args), options);
  if (!r) return {.exit_code = -1, .out = "", .err = r.error().message};
  return *r;
}

fixtures::CommandResult Runtime::Detached(const std::vector<std::string>& args,
                                          const fs::path& log) const {
  fixtures::SpawnOptions so;
  so.argv = Argv(args);
  so.stdout_path = so.stderr_path = log;
  so.die_with_parent = false;  // the container outlives this call
  auto child = fixtures::Child::Spawn(so);
  if (!child) return {.exit_code = -1, .out = "", .err = child.error().message};
  auto status = child->WaitFor(fixtures::Clock::now() + std::chrono::seconds(60));
  fixtures::CommandResult r;
  r.exit_code = status && *status ? **status : -1;
  auto text = common::ReadFile(log);
  if (text) r.err = *text;
  return r;
}

std::optional<json> Runtime::State(const std::string& id) const {
  auto r = Cmd({"state", id});
  if (r.exit_code != 0) return std::nullopt;
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool Runtime::WaitStatus(const std::string& id, const std::string& want) const {
  return fixtures::WaitUntil(
      [&] {
        auto s = State(id);
        return s && s->value("status", "") == want;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(20));
}

void DeleteAll(const std::vector<Runtime>& runtimes) {
  for (const Runtime& rt : runtimes) {
    auto list = rt.Cmd({"list", "--quiet"});
    std::istringstream in(list.out);
    std::string id;
    while (std::getline(in, id))
      if (!id.empty()) (void)rt.Cmd({"delete", "--force", id});
  }
}

Runtime Gantry(const fs::path& dir) {
  return {"gantry", {GANTRY_RUNTIME_BIN, "--root", (dir / "gantry-root").string()}};
}

namespace {
std::vector<std::string> CrunArgv(const fs::path& dir) {
  std::vector<std::string> argv = fixtures::CrunCommand();
  argv.push_back("--root");
  argv.push_back((dir / "crun-root").string());
  return argv;
}
}  // namespace

std::vector<Runtime> AllRuntimes(const fs::path& dir) {
  // runc, crun and unshare are installed by scripts/setup.sh; the tests
  // REQUIRE_TOOLS them, so every comparison always has all three.
  return {Gantry(dir),
          {"runc", {"runc", "--root", (dir / "runc-root").string()}},
          {"crun", CrunArgv(dir)}};
}

Runtime InPrivateMountNamespace(const Runtime& rt, const std::string& prelude) {
  Runtime out{rt.name, {"unshare", "-m", "sh", "-c", prelude + " && exec \"$0\" \"$@\""}};
  out.prefix.insert(out.prefix.end(), rt.prefix.begin(), rt.prefix.end());
  return out;
}

common::Result<CgroupV2Host> CgroupV2Host::Create(const fs::path& dir) {
  CgroupV2Host host;
  host.root_ = dir / "cgroup2";
  TRY(common::MkdirAll(host.root_));
  ASSIGN_OR_RETURN(
      host.mount_,
      common::Wrap(common::Mount("none", host.root_.string(), "cgroup2", 0, ""), "mount cgroup2"));
  host.subtree_control_ = common::ReadFile(host.root_ / "cgroup.subtree_control").value_or("");
  return host;
}

CgroupV2Host::~CgroupV2Host() {
  if (mount_.target().empty()) return;
  auto after = common::ReadFile(root_ / "cgroup.subtree_control");
  std::istringstream in(after.value_or(""));
  for (std::string c; in >> c;)
    if (subtree_control_.find(c) == std::string::npos)
      std::ofstream(root_ / "cgroup.subtree_control") << "-" << c;
}

Runtime CgroupV2Host::On(const Runtime& rt) {
  return InPrivateMountNamespace(
      rt, "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup");
}

common::UniqueFd ListenUnix(const std::string& path) {
  common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (!fd || path.size() >= sizeof addr.sun_path) return {};
  strcpy(addr.sun_path, path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 1) != 0)
    return {};
  return fd;
}

int ReceiveFd(int listener, std::chrono::milliseconds timeout) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
  common::UniqueFd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return -1;
  std::string data;
  return RecvFd(conn.get(), data);
}

int RecvFd(int conn, std::string& data) {
  char buf[8192];
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  int fd = -1;
  ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0) return -1;
  data.assign(buf, static_cast<size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

std::string ReadUntil(int fd, const std::function<bool(const std::string&)>& done,
                      std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = fixtures::Clock::now() + timeout;
  while (!done(out)) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - fixtures::Clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

common::UniqueFd CreateWithConsole(const Runtime& rt, const fs::path& bundle,
                                   const std::string& sock, const std::string& id,
                                   std::string& why) {
  common::UniqueFd listener = ListenUnix(sock);
  if (!listener) {
    why = "cannot listen on " + sock;
    return {};
  }
  fixtures::SpawnOptions so;
  so.argv = rt.Argv({"create", "--bundle", bundle.string(), "--console-socket", sock, id});
  auto create = fixtures::Child::Spawn(so);
  if (!create) {
    why = create.error().message;
    return {};
  }
  common::UniqueFd master(ReceiveFd(listener.get()));
  if (!master) why = rt.name + " sent no pty";
  auto status = create->Wait();
  if (!status || *status != 0) {
    why = rt.name + ": create failed";
    return {};
  }
  if (master && rt.Cmd({"start", id}).exit_code != 0) {
    why = rt.name + ": start failed";
    return {};
  }
  return master;
}

void RuntimeSuite::SetUp() {
  REQUIRE_ROOT("namespaces, mounts, cgroups");
  // busybox-static, runc and crun are installed by scripts/setup.sh:
  // missing is a failure.
  ASSERT_TRUE(HaveStaticBusybox()) << "/bin/busybox must be Debian's busybox-static";
  REQUIRE_TOOLS("runc", "crun", "unshare");
  auto d = common::TempDir::Create("gantry-rts");
  ASSERT_TRUE(d) << d.error().message;
  dir_ = std::move(*d);
  runtimes_ = AllRuntimes(dir_.path());
}

std::string UniqueId(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

namespace {

// Adds the directories named `id` at or below `dir` to `out`. Tests running
// beside this one create and remove cgroups all the time: a directory that
// vanishes while it is listed ends its own listing only, never the walk (a
// recursive_directory_iterator stops at the first such error and made
// RuntimeUpdate miss a live container's cgroup under ctest -j2).
void FindCgroupDirs(const fs::path& dir, const std::string& id, int depth,
                    std::vector<std::string>& out) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_symlink(type_ec) || !it->is_directory(type_ec)) continue;
    if (it->path().filename() == id) out.push_back(it->path().string());
    if (depth < 6) FindCgroupDirs(it->path(), id, depth + 1, out);
  }
}

}  // namespace

std::vector<std::string> CgroupDirsNamed(const std::string& id, const fs::path& root) {
  std::vector<std::string> out;
  FindCgroupDirs(root, id, 0, out);
  return out;
}

std::vector<std::string> MountsMentioning(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(path) != std::string::npos) out.push_back(line);
  return out;
}

std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace rttest
