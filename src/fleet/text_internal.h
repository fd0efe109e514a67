#pragma once
// Internal to fleet/: the comma lists of --peers and --peers-allow.

#include <string_view>
#include <vector>

namespace fleet::internal {

// The entries of a comma list, blanks (space, tab, CR) around each
// trimmed, empty ones left out.
[[nodiscard]] std::vector<std::string_view> CommaList(std::string_view text);

// `s` without leading and trailing blanks.
[[nodiscard]] std::string_view TrimBlanks(std::string_view s);

}  // namespace fleet::internal
