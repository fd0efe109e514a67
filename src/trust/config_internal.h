#pragma once
// Helpers shared by the policy.json and registries.d parsers: the paths
// their errors name, and base64 as Go's encoding/json reads []byte.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace trust::internal {

// `path` extended by an object member: ".name" when the key is a plain
// identifier, else "[\"key\"]" with JSON escapes, so that the result stays
// on one line ("$.transports.docker[\"docker.io/library\"]").
[[nodiscard]] std::string MemberPath(std::string_view path, std::string_view key);
// `path` extended by an array index: "$.default[0]".
[[nodiscard]] std::string IndexPath(std::string_view path, size_t index);
// A key quoted for a message: "\"keyPth\"" with JSON escapes.
[[nodiscard]] std::string Quoted(std::string_view text);

// `message` with control characters (a newline in a scope key, say)
// written as escapes, so that an error stays one line.
[[nodiscard]] std::string OneLine(std::string message);

// Standard base64 with padding (RFC 4648 §4), the whole input; nullopt
// when it is not.
[[nodiscard]] std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace trust::internal
