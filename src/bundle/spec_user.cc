// Users of a spec: /etc/passwd and /etc/group read safely from an untrusted
// rootfs, and runc's resolution of "user[:group]".

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "bundle/spec.h"
#include "bundle/spec_internal.h"
#include "common/fd.h"
#include "common/in_root.h"

namespace bundle {
namespace internal {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;
using common::UniqueFd;

}  // namespace

Result<std::optional<std::string>> ReadRootfsFile(const fs::path& rootfs, std::string_view rel,
                                                  bool use_openat2, size_t max_size) {
  const std::string what = "read `/" + std::string(rel) + "` of the image";
  if (rel.empty() || rel.front() == '/' || rel.find('\0') != std::string_view::npos)
    return MakeError(Errc::kInvalidArgument, what + ": not a relative path");
  ASSIGN_OR_RETURN(UniqueFd root, common::Open(rootfs.string(), O_PATH | O_DIRECTORY));

  auto found = common::OpenInRoot(root.get(), rel, {.use_openat2 = use_openat2});
  if (!found) {
    if (found.error().code == Errc::kNotFound) return std::optional<std::string>();
    return std::unexpected(std::move(found.error()).Wrap(what));
  }
  UniqueFd file = std::move(*found);

  // The O_PATH fd opened nothing (no FIFO waits for a writer, no device
  // driver runs): check the type before opening for reading.
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return ErrnoError(what);
  if (!S_ISREG(st.st_mode)) return MakeError(Errc::kInvalidArgument, what + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_size)
    return MakeError(Errc::kInvalidArgument,
                     what + ": larger than " + std::to_string(max_size) + " bytes");
  int fd = ::open(common::FdPath(file.get()).c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoError(what + ": reopen through /proc");
  UniqueFd in(fd);
  // Still the file checked above (not a magic-link surprise).
  struct stat st2 {};
  if (::fstat(in.get(), &st2) != 0) return ErrnoError(what);
  if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino || !S_ISREG(st2.st_mode))
    return MakeError(Errc::kInvalidArgument, what + ": changed while being opened");
  std::string out;
  out.resize(max_size + 1);
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(in.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(what);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_size)
    return MakeError(Errc::kInvalidArgument,
                     what + ": larger than " + std::to_string(max_size) + " bytes");
  out.resize(got);
  return std::optional<std::string>(std::move(out));
}

}  // namespace internal

namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

common::Result<ResolvedUser> ResolveUser(const std::string& spec,
                                         const std::filesystem::path& rootfs) {
  using common::Errc;
  using common::MakeError;
  const std::string what = "resolve user `" + spec + "`";
  std::string user = spec, group;
  if (size_t colon = spec.find(':'); colon != std::string::npos) {
    user = spec.substr(0, colon);
    group = spec.substr(colon + 1);
  }
  const bool numeric_user = AllDigits(user);
  std::optional<uint32_t> uid_arg;
  if (numeric_user) {
    uid_arg = common::ParseUserId(user);
    if (!uid_arg)
      return MakeError(Errc::kInvalidArgument, what + ": uid " + user + " is out of range");
  }

  ASSIGN_OR_RETURN(std::optional<std::string> passwd_text,
                   common::Wrap(internal::ReadRootfsFile(rootfs, "etc/passwd"), what));
  auto passwd = common::ParsePasswd(passwd_text.value_or(""));
  const common::PasswdEntry* entry = nullptr;
  for (const auto& p : passwd) {
    bool match = user.empty() ? p.uid == 0 : numeric_user ? p.uid == *uid_arg : p.name == user;
    if (match) {
      entry = &p;
      break;
    }
  }
  ResolvedUser out;
  std::string name;
  if (entry != nullptr) {
    out.uid = entry->uid;
    out.gid = entry->gid;
    name = entry->name;
  } else if (numeric_user) {
    out.uid = *uid_arg;
  } else if (!user.empty()) {
    return MakeError(Errc::kInvalidArgument,
                     what + ": no user `" + user + "` in the image's /etc/passwd" +
                         (passwd_text ? "" : " (the image has no /etc/passwd)"));
  }

  if (group.empty() && name.empty()) return out;
  ASSIGN_OR_RETURN(std::optional<std::string> group_text,
                   common::Wrap(internal::ReadRootfsFile(rootfs, "etc/group"), what));
  auto groups = common::ParseGroup(group_text.value_or(""));
  if (!group.empty()) {
    // An explicit group: no supplementary groups, as runc.
    if (AllDigits(group)) {
      auto gid = common::ParseUserId(group);
      if (!gid)
        return MakeError(Errc::kInvalidArgument, what + ": gid " + group + " is out of range");
      out.gid = *gid;
      return out;
    }
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const common::GroupEntry& g) { return g.name == group; });
    if (it == groups.end())
      return MakeError(Errc::kInvalidArgument,
                       what + ": no group `" + group + "` in the image's /etc/group" +
                           (group_text ? "" : " (the image has no /etc/group)"));
    out.gid = it->gid;
    return out;
  }
  for (const auto& g : groups) {
    if (std::find(g.members.begin(), g.members.end(), name) == g.members.end()) continue;
    if (std::find(out.additional_gids.begin(), out.additional_gids.end(), g.gid) ==
        out.additional_gids.end())
      out.additional_gids.push_back(g.gid);
  }
  return out;
}

}  // namespace bundle
