// Linux security modules: process.apparmorProfile applied, SELinux labels
// refused. Neither is ignored: a label that is not applied is refused.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Status;
using common::UniqueFd;

// runc's test: the securityfs directory, and the module's parameter.
bool AppArmorEnabled() {
  if (::access("/sys/kernel/security/apparmor", F_OK) != 0) return false;
  auto v = common::ReadFile("/sys/module/apparmor/parameters/enabled", 64);
  return v && v->starts_with("Y");
}

// selinuxfs mounted where libselinux looks for it first.
bool SelinuxEnabled() { return ::access("/sys/fs/selinux/enforce", F_OK) == 0; }

}  // namespace

Status CheckSecurityLabels(const Process& p) {
  if (!p.apparmor_profile.empty() && !AppArmorEnabled())
    return common::MakeError(Errc::kFailedPrecondition,
                             "process.apparmorProfile `" + p.apparmor_profile +
                                 "`: AppArmor is not enabled on this host");
  if (!p.selinux_label.empty())
    return common::MakeError(
        SelinuxEnabled() ? Errc::kUnimplemented : Errc::kFailedPrecondition,
        "process.selinuxLabel `" + p.selinux_label + "`: " +
            (SelinuxEnabled() ? "SELinux labels are not supported by gantry-runtime"
                              : "SELinux is not enabled on this host"));
  return {};
}

Status ApplyAppArmorProfile(const Process& p) {
  if (p.apparmor_profile.empty()) return {};
  // The profile takes effect at the next execve. The per-module file
  // (Linux 5.1+) first: with stacked modules /proc/self/attr/exec may
  // belong to another one.
  std::string what = "apply AppArmor profile `" + p.apparmor_profile + "`";
  UniqueFd fd(::open("/proc/thread-self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC));
  if (!fd && errno == ENOENT) fd.reset(::open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC));
  if (!fd) return common::ErrnoError(what);
  return Wrap(common::WriteAll(fd.get(), "exec " + p.apparmor_profile), what);
}

}  // namespace ociruntime::rt
