#pragma once
// containerd's filter syntax (containerd v1.6 `filters` package), for the
// fields containerd's snapshot metadata filters on: `name`, `parent`,
// `kind` ("active" | "view" | "committed") and `labels.<key>`.
//
//   filter    := selector ("," selector)*          every selector must match
//   selector  := fieldpath [operator value]        no operator: the field is present
//   fieldpath := field ("." field)*
//   field     := "quoted" | [A-Za-z0-9_]+
//   operator  := "==" | "!=" | "~="                 ~= is a regular expression
//   value     := quoted | a run of characters up to "," or white space
//
// A value of `==`/`!=` may be quoted only with "…" (Go string escapes); one
// of `~=` also with /…/ or |…|. Several filter strings match when any of
// them matches; none matches everything. A label key is its fieldpath after
// `labels` joined with "." (so `labels.a.b` is the label "a.b"), which is
// why containerd quotes keys that hold other characters:
// `labels."containerd.io/snapshot.ref"==sha256:…`.
//
// Thread-safety: a parsed Filter is immutable.

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace ctrsnap {

// What a filter looks at: containerd's view of a snapshot.
struct FilterFields {
  std::string name;
  std::string parent;
  std::string kind;  // "active" | "view" | "committed"
  const std::map<std::string, std::string>* labels = nullptr;
};

struct Selector {
  enum class Op { kPresent, kEqual, kNotEqual, kMatches };
  std::vector<std::string> fieldpath;
  Op op = Op::kPresent;
  std::string value;
  std::shared_ptr<const std::regex> re;  // for kMatches
};

class Filter {
 public:
  // Parses containerd filter strings. Errors: InvalidArgument naming the
  // filter and the position, e.g. "filter `name==`: position 6: expected
  // a value".
  [[nodiscard]] static common::Result<Filter> Parse(const std::vector<std::string>& filters);
  // Parses one filter string (one conjunction).
  [[nodiscard]] static common::Result<std::vector<Selector>> ParseOne(std::string_view filter);

  [[nodiscard]] bool Match(const FilterFields& f) const;
  // Whether every selector of one alternative matches.
  [[nodiscard]] static bool MatchAll(const std::vector<Selector>& selectors, const FilterFields& f);

  // The alternatives (any of them), each a conjunction of selectors.
  const std::vector<std::vector<Selector>>& alternatives() const { return any_; }

  // Whether `selectors` has an `==` selector on the field `key` ("name",
  // "parent", "kind" or "labels.<label key>"), and its value.
  [[nodiscard]] static bool EqualValue(const std::vector<Selector>& selectors, std::string_view key,
                                       std::string* value);

 private:
  std::vector<std::vector<Selector>> any_;
};

// Go-style unquoting of a quoted string whose first and last characters
// are the same quote ('"', '/' or '|'). Errors: InvalidArgument.
[[nodiscard]] common::Result<std::string> Unquote(std::string_view quoted);

}  // namespace ctrsnap
