#pragma once
// Times as text: RFC 3339 (what image configs record as `created`) and the
// wording docker uses for ages ("3 weeks ago") and instants.
//
// Pure functions of their arguments: the caller passes "now" (from
// common::Env::WallNow), so that tests fix the clock. Thread-safe.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace common {

using WallTime = std::chrono::system_clock::time_point;

// Parses an RFC 3339 date-time: "2023-11-14T22:13:20Z",
// "2023-11-14T22:13:20.123456789Z", "2023-11-14T23:13:20+01:00" (also "t"
// and "z", and a space instead of "T", as RFC 3339 allows). Fractions
// beyond the clock's resolution are truncated. nullopt when `text` is not
// one (out-of-range fields included): callers show the time as unknown.
[[nodiscard]] std::optional<WallTime> ParseRfc3339(std::string_view text);

// How long `d` is in docker's words (go-units' HumanDuration): "Less than
// a second", "1 second", "N seconds", "About a minute", "N minutes",
// "About an hour", "N hours" (under 48), "N days" (under two weeks),
// "N weeks" (under two months), "N months" (under two years), "N years".
// A negative duration (a time in the future) reads as "Less than a
// second".
[[nodiscard]] std::string HumanDuration(std::chrono::system_clock::duration d);

// "3 weeks ago" for `t` seen at `now`; "N/A" when `t` is unknown (as docker
// shows an image without a creation time).
[[nodiscard]] std::string TimeAgo(const std::optional<WallTime>& t, WallTime now);

// "2023-11-14 22:13:20 +0000 UTC" (Go's time.String(), which docker's
// CreatedAt uses; always UTC here); "N/A" when `t` is unknown.
[[nodiscard]] std::string FormatUtc(const std::optional<WallTime>& t);

// Parses a Go-style duration of whole units: one or more NUMBER UNIT
// pairs, UNIT one of s, m, h, d ("90s", "15m", "1h30m", "2d"). nullopt for
// anything else (no number, an unknown unit, a fraction, a sign,
// overflow). "0s" is zero.
[[nodiscard]] std::optional<std::chrono::seconds> ParseDuration(std::string_view text);

}  // namespace common
