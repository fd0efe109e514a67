// The seccomp profile `gantry bundle` writes: in effect Docker's (and
// containerd's) default profile, resolved for the bundle's capability set
// and this build's architecture: everything else fails with EPERM.

#include <algorithm>
#include <sstream>

#include "bundle/spec.h"

namespace bundle {
namespace {

using json = nlohmann::json;

// Allowed for every container.
constexpr std::string_view kAllowed =
    "accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 "
    "clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime "
    "clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect "
    "copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old "
    "epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit "
    "exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir "
    "fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr "
    "flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync "
    "ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents "
    "getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 "
    "getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid "
    "getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname "
    "getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch "
    "inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents "
    "io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit "
    "io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule "
    "landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat "
    "listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise "
    "membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 "
    "mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive "
    "mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget "
    "msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat "
    "_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc "
    "pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 "
    "process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead "
    "readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg "
    "remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq "
    "rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend "
    "rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity "
    "sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min "
    "sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 "
    "sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp "
    "select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 "
    "sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 "
    "setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid "
    "setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid "
    "setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt "
    "shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall "
    "socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync "
    "sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete "
    "timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 "
    "timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 "
    "times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat "
    "utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev "
    // Allowed since Linux 4.8, where ptrace can no longer bypass seccomp.
    "process_vm_readv process_vm_writev ptrace";

// Allowed only with a capability in the bounding set.
struct CapGated {
  std::string_view cap;
  std::string_view names;
};
constexpr CapGated kCapGated[] = {
    {"CAP_DAC_READ_SEARCH", "open_by_handle_at"},
    {"CAP_SYS_ADMIN",
     "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
     "mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname "
     "sethostname setns syslog umount umount2 unshare"},
    {"CAP_SYS_BOOT", "reboot"},
    {"CAP_SYS_CHROOT", "chroot"},
    {"CAP_SYS_MODULE", "delete_module init_module finit_module"},
    {"CAP_SYS_PACCT", "acct"},
    {"CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise"},
    {"CAP_SYS_RAWIO", "iopl ioperm"},
    {"CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"},
    {"CAP_SYS_TTY_CONFIG", "vhangup"},
    {"CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"},
    {"CAP_SYSLOG", "syslog"},
    {"CAP_BPF", "bpf"},
    {"CAP_PERFMON", "perf_event_open"},
};

// clone(2) flags that make namespaces: CLONE_NEWNS, NEWCGROUP, NEWUTS,
// NEWIPC, NEWUSER, NEWPID, NEWNET (0x7E020000). Without CAP_SYS_ADMIN clone
// must have none of them.
constexpr uint64_t kNamespaceCloneFlags = 0x7E020000;
constexpr int kEperm = 1, kEnosys = 38;

void Split(std::string_view s, std::vector<std::string>& out) {
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;) out.push_back(w);
}

json Rule(std::vector<std::string> names, const char* action) {
  return {{"names", std::move(names)}, {"action", action}};
}

json Arg(unsigned index, uint64_t value, const char* op) {
  return {{"index", index}, {"value", value}, {"valueTwo", 0}, {"op", op}};
}

}  // namespace

json DefaultSeccomp(const std::vector<std::string_view>& caps) {
  auto has = [&](std::string_view c) {
    return std::find(caps.begin(), caps.end(), c) != caps.end();
  };
  std::vector<std::string> allowed;
  Split(kAllowed, allowed);
  std::vector<std::string> arches;
#if defined(__x86_64__)
  arches = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  allowed.insert(allowed.end(), {"arch_prctl", "modify_ldt"});
#elif defined(__aarch64__)
  arches = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
  allowed.insert(allowed.end(), {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                                 "breakpoint", "cacheflush", "set_tls"});
#endif
  for (const CapGated& g : kCapGated)
    if (has(g.cap)) Split(g.names, allowed);
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());

  json syscalls = json::array();
  syscalls.push_back(Rule(allowed, "SCMP_ACT_ALLOW"));
  // socket(2) of every family but AF_VSOCK (40).
  json socket = Rule({"socket"}, "SCMP_ACT_ALLOW");
  socket["args"] = {Arg(0, 40, "SCMP_CMP_NE")};
  syscalls.push_back(std::move(socket));
  // personality(2): PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
  // and the query 0xffffffff.
  for (uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    json p = Rule({"personality"}, "SCMP_ACT_ALLOW");
    p["args"] = {Arg(0, persona, "SCMP_CMP_EQ")};
    syscalls.push_back(std::move(p));
  }
  if (!has("CAP_SYS_ADMIN")) {
    json clone = Rule({"clone"}, "SCMP_ACT_ALLOW");
    clone["args"] = {Arg(0, kNamespaceCloneFlags, "SCMP_CMP_MASKED_EQ")};
    syscalls.push_back(std::move(clone));
    // clone3's flags are behind a pointer, out of a filter's reach: ENOSYS
    // makes libc fall back to clone, which is checked above.
    json clone3 = Rule({"clone3"}, "SCMP_ACT_ERRNO");
    clone3["errnoRet"] = kEnosys;
    syscalls.push_back(std::move(clone3));
  }
  return {{"defaultAction", "SCMP_ACT_ERRNO"},
          {"defaultErrnoRet", kEperm},
          {"architectures", std::move(arches)},
          {"syscalls", std::move(syscalls)}};
}

}  // namespace bundle
