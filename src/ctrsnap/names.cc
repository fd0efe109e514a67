#include "ctrsnap/names.h"

#include <charconv>

namespace ctrsnap {

std::optional<CtrKey> ParseCtrKey(std::string_view name) {
  const size_t a = name.find('/');
  if (a == std::string_view::npos || a == 0) return std::nullopt;
  const size_t b = name.find('/', a + 1);
  if (b == std::string_view::npos || b == a + 1 || b + 1 >= name.size()) return std::nullopt;
  CtrKey k;
  const std::string_view seq = name.substr(a + 1, b - a - 1);
  auto [end, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), k.seq);
  if (ec != std::errc() || end != seq.data() + seq.size()) return std::nullopt;
  k.ns = std::string(name.substr(0, a));
  k.key = std::string(name.substr(b + 1));
  return k;
}

bool IsChainId(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256:";
  if (s.size() != kPrefix.size() + 64 || !s.starts_with(kPrefix)) return false;
  for (char c : s.substr(kPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string ChainIdOf(std::string_view name, const std::map<std::string, std::string>& labels) {
  if (auto it = labels.find(std::string(kLabelSnapshotRef));
      it != labels.end() && IsChainId(it->second))
    return it->second;
  if (auto k = ParseCtrKey(name); k && IsChainId(k->key)) return k->key;
  return "";
}

}  // namespace ctrsnap
