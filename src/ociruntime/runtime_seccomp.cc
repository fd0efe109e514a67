// linux.seccomp: parsed with the config; compiled by libseccomp into a BPF
// program at create (cached under the runtime root: compiling Docker's
// profile for three architectures costs tens of milliseconds, reading it
// back tens of microseconds); the container's init (or an exec'd process)
// only hands the bytes to seccomp(2).

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include "common/fd.h"
#include "common/fs.h"
#include "ociruntime/runtime_config_json.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using namespace cfg;

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// An action name and its errnoRet to libseccomp's action value.
Result<uint32_t> Action(const std::string& name, std::optional<int64_t> errno_ret,
                        const std::string& where) {
  auto ret = [&](int64_t fallback) {
    return static_cast<uint16_t>(errno_ret ? *errno_ret : fallback);
  };
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret(EPERM));
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret(EPERM));
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") return SCMP_ACT_NOTIFY;
  return Invalid(where + ": unknown action `" + name + "`");
}

Result<scmp_compare> Op(const std::string& name, const std::string& where) {
  static constexpr std::pair<const char*, scmp_compare> kOps[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (const auto& [n, op] : kOps)
    if (name == n) return op;
  return Invalid(where + ": unknown operator `" + name + "`");
}

Result<uint32_t> Arch(const std::string& name, const std::string& where) {
  // "SCMP_ARCH_X86_64" → libseccomp's "x86_64".
  std::string n = name;
  if (n.starts_with("SCMP_ARCH_")) n = n.substr(10);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  uint32_t arch = seccomp_arch_resolve_name(n.c_str());
  if (arch == 0) return Invalid(where + ": unknown architecture `" + name + "`");
  return arch;
}

Status Check(int rc, const std::string& what) {
  if (rc == 0) return {};
  return common::ErrnoError("seccomp: " + what, -rc);
}

}  // namespace

Status cfg::ParseSeccomp(const json& linux, SeccompProgram& out) {
  CFG_FIELD(sc, linux, "seccomp", object, std::string("linux"));
  if (!sc) return {};
  const std::string w = "linux.seccomp";
  out.present = true;
  out.source = sc->dump();
  std::string default_name;
  TRY(GetString(*sc, "defaultAction", w, default_name));
  if (default_name.empty()) return Invalid(w + ".defaultAction: required");
  std::optional<int64_t> default_errno;
  TRY(GetInt(*sc, "defaultErrnoRet", w, default_errno));
  ASSIGN_OR_RETURN(out.default_action, Action(default_name, default_errno, w + ".defaultAction"));
  std::vector<std::string> arches;
  TRY(GetStrings(*sc, "architectures", w, arches));
  for (const std::string& a : arches) {
    ASSIGN_OR_RETURN(uint32_t arch, Arch(a, w + ".architectures"));
    out.arches.push_back(arch);
  }
  std::vector<std::string> flags;
  TRY(GetStrings(*sc, "flags", w, flags));
  for (const std::string& f : flags) {
    if (f == "SECCOMP_FILTER_FLAG_LOG")
      out.flags |= SECCOMP_FILTER_FLAG_LOG;
    else if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
      out.flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    else if (f == "SECCOMP_FILTER_FLAG_TSYNC")
      out.flags |= SECCOMP_FILTER_FLAG_TSYNC;
    else
      return Invalid(w + ".flags: unknown flag `" + f + "`");
  }
  TRY(GetString(*sc, "listenerPath", w, out.listener_path));
  TRY(GetString(*sc, "listenerMetadata", w, out.listener_metadata));
  if (!out.listener_path.empty() && out.listener_path[0] != '/')
    return Invalid(w + ".listenerPath: must be absolute");
  if (out.default_action == SCMP_ACT_NOTIFY)
    return Invalid(w + ".defaultAction: SCMP_ACT_NOTIFY cannot be the default");
  CFG_FIELD(syscalls, *sc, "syscalls", array, w);
  if (!syscalls) return {};
  for (size_t i = 0; i < syscalls->size(); ++i) {
    const json& r = (*syscalls)[i];
    const std::string rw = w + ".syscalls[" + std::to_string(i) + "]";
    if (!r.is_object()) return Invalid(rw + ": expected an object");
    SeccompRule rule;
    TRY(GetStrings(r, "names", rw, rule.names));
    std::string action_name;
    TRY(GetString(r, "action", rw, action_name));
    std::optional<int64_t> errno_ret;
    TRY(GetInt(r, "errnoRet", rw, errno_ret));
    ASSIGN_OR_RETURN(rule.action, Action(action_name, errno_ret, rw + ".action"));
    CFG_FIELD(args, r, "args", array, rw);
    if (args)
      for (const json& a : *args) {
        if (!a.is_object()) return Invalid(rw + ".args: expected objects");
        SeccompArg arg;
        std::string op_name;
        TRY(GetUnsigned(a, "index", rw + ".args", arg.index));
        TRY(GetUnsigned(a, "value", rw + ".args", arg.value));
        TRY(GetUnsigned(a, "valueTwo", rw + ".args", arg.value_two));
        TRY(GetString(a, "op", rw + ".args", op_name));
        if (arg.index > 5) return Invalid(rw + ".args: index must be 0..5");
        ASSIGN_OR_RETURN(scmp_compare op, Op(op_name, rw + ".args"));
        arg.op = static_cast<int>(op);
        rule.args.push_back(arg);
      }
    if (rule.action == SCMP_ACT_NOTIFY && out.listener_path.empty())
      return Invalid(rw + ".action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
    out.rules.push_back(std::move(rule));
  }
  return {};
}

namespace {

// libseccomp's work: the rules to BPF.
Status Compile(SeccompProgram& p) {
  Ctx ctx(seccomp_init(p.default_action));
  if (!ctx) return Invalid("linux.seccomp.defaultAction: refused by libseccomp");
  // We set no_new_privs ourselves, and load the program ourselves.
  TRY(Check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0), "no_new_privs attribute"));
  for (uint32_t arch : p.arches) {
    int rc = seccomp_arch_add(ctx.get(), arch);
    if (rc != 0 && rc != -EEXIST) TRY(Check(rc, "add architecture " + std::to_string(arch)));
  }
  for (const SeccompRule& rule : p.rules) {
    // A rule with the default action is what the default does anyway;
    // libseccomp refuses it.
    if (rule.action == p.default_action) continue;
    std::vector<scmp_arg_cmp> cmps;
    std::set<unsigned> indices;
    bool repeated = false;
    for (const SeccompArg& a : rule.args) {
      cmps.push_back(scmp_arg_cmp{a.index, static_cast<scmp_compare>(a.op), a.value, a.value_two});
      repeated |= !indices.insert(a.index).second;
    }
    for (const std::string& name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: runc skips it too
      // Conditions on one argument index cannot be ANDed by libseccomp:
      // one rule each (what they mean in profiles that repeat an index).
      if (!repeated) {
        TRY(Check(seccomp_rule_add_array(ctx.get(), rule.action, nr,
                                         static_cast<unsigned>(cmps.size()), cmps.data()),
                  "add rule for `" + name + "`"));
      } else {
        for (const scmp_arg_cmp& c : cmps)
          TRY(Check(seccomp_rule_add_array(ctx.get(), rule.action, nr, 1, &c),
                    "add rule for `" + name + "`"));
      }
    }
  }
  common::UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "seccomp", MFD_CLOEXEC)));
  if (!mem) return common::ErrnoError("memfd_create for seccomp");
  TRY(Check(seccomp_export_bpf(ctx.get(), mem.get()), "export the filter"));
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0)
    return common::MakeError(Errc::kInternal, "seccomp: exported filter has a bad size");
  p.bpf.resize(static_cast<size_t>(size));
  if (::pread(mem.get(), p.bpf.data(), p.bpf.size(), 0) != size)
    return common::ErrnoError("read the seccomp filter");
  return {};
}

// The cache key text: the profile as parsed and this libseccomp's version
// (a newer one may know more system calls).
std::string CacheKey(const SeccompProgram& p) {
  const scmp_version* v = seccomp_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->micro) + "\n" + p.source;
}

// FNV-1a: a file name only; a hit is confirmed by comparing the key text.
std::string NameOf(const std::string& key) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

Status CompileSeccomp(SeccompProgram& p, const std::filesystem::path& cache_dir) {
  if (!p.present || !p.bpf.empty()) return {};
  if (cache_dir.empty()) return Compile(p);
  // Cache file: the key's length (8 bytes), the key, the program.
  const std::string key = CacheKey(p);
  const std::filesystem::path file = cache_dir / NameOf(key);
  if (auto data = common::ReadFile(file, 64u << 20); data && data->size() > 8) {
    uint64_t n = 0;
    memcpy(&n, data->data(), 8);
    if (n == key.size() && data->size() > 8 + n && data->compare(8, n, key) == 0 &&
        (data->size() - 8 - n) % sizeof(sock_filter) == 0) {
      p.bpf = data->substr(8 + n);
      return {};
    }
  }
  TRY(Compile(p));
  // A cache that cannot be written only costs the next start a compile.
  uint64_t n = key.size();
  std::string data(reinterpret_cast<const char*>(&n), 8);
  data += key;
  data += p.bpf;
  if (::mkdir(cache_dir.c_str(), 0700) == 0 || errno == EEXIST)
    (void)common::AtomicWriteFile(file, data, 0600);
  return {};
}

Status LoadSeccomp(const SeccompProgram& p, int listener_sock, std::string_view message) {
  if (p.bpf.empty()) return {};
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(p.bpf.size() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<char*>(p.bpf.data()));
  unsigned flags = p.flags | (listener_sock >= 0 ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
  long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (fd < 0) return common::ErrnoError("load the seccomp filter");
  if (listener_sock < 0) return {};
  // runtime-spec: the state as data, the listener fd as SCM_RIGHTS.
  common::UniqueFd listener(static_cast<int>(fd));
  return Wrap(SendFd(listener_sock, listener.get(), message),
              "send the seccomp listener to `" + p.listener_path + "`");
}

std::string SeccompListenerMessage(const SeccompProgram& p, const std::string& state) {
  nlohmann::ordered_json j;
  j["ociVersion"] = kOciVersion;
  j["fds"] = {"seccompFd"};
  nlohmann::json st = nlohmann::json::parse(state);
  j["pid"] = st.value("pid", 0);
  j["metadata"] = p.listener_metadata;
  j["state"] = std::move(st);
  return j.dump();
}

}  // namespace ociruntime::rt
