#pragma once
// /etc/passwd and /etc/group, parsed as runc (and libc) read them. Shared by
// the bundle builder (bundle/spec_user.cc: "user[:group]" of an image) and
// the runtime (ociruntime/runtime_process.cc: HOME of the container's
// process), which must read them alike and do not depend on each other.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace common {

// The largest /etc/passwd or /etc/group read (larger files are refused).
inline constexpr size_t kMaxUserFileSize = 4u << 20;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// name:password:uid:gid:gecos:home:shell, one per line. Empty lines,
// comments ('#'), NIS entries ('+', '-') and lines without a numeric uid
// and gid in range are skipped, as libc's parsers skip them.
std::vector<PasswdEntry> ParsePasswd(std::string_view text);
// name:password:gid:member,member…
std::vector<GroupEntry> ParseGroup(std::string_view text);

// A uid or gid: a decimal id in [0, 2^31-1] (runc's range); nullopt
// otherwise.
std::optional<uint32_t> ParseUserId(std::string_view s);

}  // namespace common
