// Request parsing for the registry door: pure functions over strings.

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "mirror/distribution_internal.h"
#include "oci/manifest.h"
#include "registry/reference.h"

namespace mirror {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Every "/"-separated part is a component.
bool IsValidPath(std::string_view path) {
  if (path.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!IsValidComponent(part)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

ApiError NameInvalid(std::string message) { return {400, "NAME_INVALID", std::move(message)}; }

// A non-negative decimal that fits int64 (no sign, no spaces).
std::optional<int64_t> ParseCount(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

}  // namespace

std::string ErrorBody(const ApiError& error) {
  nlohmann::json e = {{"code", error.code}, {"message", error.message}, {"detail", nullptr}};
  nlohmann::json body = {{"errors", nlohmann::json::array({e})}};
  // Replace invalid UTF-8 (a hostile path echoed in a message) rather than throw.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiResult<Route> ParseRoute(std::string_view path) {
  if (path == "/v2" || path == "/v2/")
    return Route{.endpoint = Endpoint::kBase, .name = {}, .reference = {}};
  auto unknown = [&] { return std::unexpected(ApiError{404, "UNSUPPORTED", "no such endpoint"}); };
  if (!path.starts_with("/v2/")) return unknown();
  std::string_view rest = path.substr(4);
  constexpr std::string_view kTags = "/tags/list";
  if (rest.ends_with(kTags)) {
    std::string_view name = rest.substr(0, rest.size() - kTags.size());
    if (name.empty()) return unknown();
    return Route{.endpoint = Endpoint::kTagsList, .name = std::string(name), .reference = {}};
  }
  size_t last = rest.rfind('/');
  if (last == std::string_view::npos || last + 1 == rest.size()) return unknown();
  std::string_view reference = rest.substr(last + 1);
  std::string_view before = rest.substr(0, last);
  size_t kind_at = before.rfind('/');
  if (kind_at == std::string_view::npos || kind_at == 0) return unknown();
  std::string_view kind = before.substr(kind_at + 1);
  std::string_view name = before.substr(0, kind_at);
  Endpoint endpoint;
  if (kind == "manifests") {
    endpoint = Endpoint::kManifest;
  } else if (kind == "blobs") {
    endpoint = Endpoint::kBlob;
  } else {
    return unknown();
  }
  return Route{
      .endpoint = endpoint, .name = std::string(name), .reference = std::string(reference)};
}

bool IsValidComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    if (c[i] == '_') {
      if (j < c.size() && c[j] == '_') ++j;
    } else if (c[i] == '-') {
      while (j < c.size() && c[j] == '-') ++j;
    } else if (c[i] != '.') {
      return false;
    }
    if (j >= c.size() || !IsLowerAlnum(c[j])) return false;
    i = j;
  }
  return true;
}

bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > registry::kMaxTagLength) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(tag.front())) return false;
  for (char c : tag)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

ApiResult<std::optional<std::string>> ResolveRepository(std::string_view name,
                                                        const std::optional<std::string>& ns) {
  if (name.size() > registry::kMaxNameLength)
    return std::unexpected(NameInvalid("repository name longer than " +
                                       std::to_string(registry::kMaxNameLength) + " characters"));
  std::string qualified;
  if (ns) {
    // The name is a path under the ns host; the host is ns alone.
    if (!IsValidPath(name))
      return std::unexpected(NameInvalid("invalid repository name `" + std::string(name) + "`"));
    const std::string& host = *ns;
    if (host.empty() || host.size() > registry::kMaxNameLength ||
        host.find_first_of("/@ \t") != std::string::npos)
      return std::unexpected(NameInvalid("invalid ns `" + host + "`: not a registry host"));
    // A host gantry would not read as a registry ("myreg") cannot have
    // pulled anything recorded under it: `gantry pull myreg/x` records
    // docker.io/myreg/x.
    if (!registry::NamesRegistry(host + "/x")) return std::optional<std::string>();
    qualified = host + "/" + std::string(name);
  } else {
    if (!registry::NamesRegistry(name)) {
      if (!IsValidPath(name))
        return std::unexpected(NameInvalid("invalid repository name `" + std::string(name) + "`"));
      return std::optional<std::string>();
    }
    size_t slash = name.find('/');
    if (!IsValidPath(name.substr(slash + 1)))
      return std::unexpected(NameInvalid("invalid repository name `" + std::string(name) + "`"));
    qualified = std::string(name);
  }
  // The reference grammar checks the host and the length, and normalises
  // (index.docker.io, library/) exactly as `gantry pull` did when it
  // recorded the image. The path has no ':' or '@', so nothing of it can
  // be read as a tag or digest.
  auto ref = registry::ImageRef::Parse(qualified);
  if (!ref) return std::unexpected(NameInvalid(ref.error().message));
  return std::optional<std::string>(ref->name());
}

RangeRequest ParseRange(const std::optional<std::string>& header, int64_t size) {
  RangeRequest whole{};
  if (!header) return whole;
  std::string_view h = Trim(*header);
  constexpr std::string_view kUnit = "bytes=";
  if (h.size() < kUnit.size() || !EqualsIgnoreCase(h.substr(0, kUnit.size()), kUnit)) return whole;
  std::string_view spec = Trim(h.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return whole;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  RangeRequest unsatisfiable{.kind = RangeRequest::Kind::kUnsatisfiable, .first = 0, .length = 0};
  if (a.empty()) {  // "-N": the last N bytes
    auto n = ParseCount(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) return unsatisfiable;
    int64_t len = std::min(*n, size);
    return {.kind = RangeRequest::Kind::kPartial, .first = size - len, .length = len};
  }
  auto first = ParseCount(a);
  if (!first) return whole;
  std::optional<int64_t> last;
  if (!b.empty()) {
    last = ParseCount(b);
    if (!last || *last < *first) return whole;
  }
  if (*first >= size) return unsatisfiable;
  int64_t end = last ? std::min(*last, size - 1) : size - 1;
  return {.kind = RangeRequest::Kind::kPartial, .first = *first, .length = end - *first + 1};
}

bool Accepts(const std::vector<std::string>& accept, std::string_view media_type) {
  bool any = false;
  size_t slash = media_type.find('/');
  std::string_view type = media_type.substr(0, slash);
  for (const std::string& header : accept) {
    std::string_view rest = header;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      size_t semi = item.find(';');
      std::string_view range = Trim(item.substr(0, semi));
      if (range.empty()) continue;
      any = true;
      // q=0 means "not acceptable" (RFC 9110 12.4.2).
      bool excluded = false;
      while (semi != std::string_view::npos) {
        item = item.substr(semi + 1);
        semi = item.find(';');
        std::string_view param = Trim(item.substr(0, semi));
        if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
          std::string_view q = param.substr(2);
          excluded = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
        }
      }
      if (excluded) continue;
      if (range == "*/*" || EqualsIgnoreCase(range, media_type)) return true;
      if (range.ends_with("/*") && slash != std::string_view::npos &&
          EqualsIgnoreCase(range.substr(0, range.size() - 2), type))
        return true;
    }
  }
  return !any;
}

bool IsManifestMediaType(std::string_view media_type) {
  return oci::ClassifyManifest(media_type).has_value();
}

std::string Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (EqualsIgnoreCase(k, name)) return v;
  return {};
}

}  // namespace mirror
