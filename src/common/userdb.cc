#include "common/userdb.h"

#include <charconv>

namespace common {
namespace {

constexpr uint32_t kMaxId = 0x7fffffff;

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    size_t j = s.find(sep, i);
    out.emplace_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

}  // namespace

std::optional<uint32_t> ParseUserId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > kMaxId) return std::nullopt;
  return static_cast<uint32_t>(v);
}

namespace {

// Lines of a colon-separated database, without comments and NIS entries.
template <class Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
    fn(Split(line, ':'));
  }
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  ForEachLine(text, [&](const std::vector<std::string>& f) {
    if (f.size() < 4 || f[0].empty()) return;
    auto uid = ParseUserId(f[2]);
    auto gid = ParseUserId(f[3]);
    if (!uid || !gid) return;
    out.push_back({.name = f[0], .uid = *uid, .gid = *gid, .home = f.size() > 5 ? f[5] : ""});
  });
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  ForEachLine(text, [&](const std::vector<std::string>& f) {
    if (f.size() < 3 || f[0].empty()) return;
    auto gid = ParseUserId(f[2]);
    if (!gid) return;
    GroupEntry g{.name = f[0], .gid = *gid, .members = {}};
    if (f.size() > 3)
      for (auto& m : Split(f[3], ','))
        if (!m.empty()) g.members.push_back(std::move(m));
    out.push_back(std::move(g));
  });
  return out;
}

}  // namespace common
