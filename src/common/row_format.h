#pragma once
// Docker-style `--format` for listings: text with `{{.Field}}` placeholders,
// not a template engine.
//
//   static constexpr FormatField kFields[] = {{"Repository", "REPOSITORY"}, {"Tag", "TAG"}};
//   ASSIGN_OR_RETURN(RowFormat f, RowFormat::Parse("table {{.Repository}}\t{{.Tag}}", kFields));
//   std::fputs(f.Render({{"docker.io/library/busybox", "latest"}}).c_str(), stdout);
//
// What docker's `--format` offers that listings use, and nothing more:
//  - `{{.Name}}` (spaces inside the braces allowed) is replaced by the
//    row's value of field Name; names are case-sensitive, as in Go
//    templates;
//  - the two-character sequences `\t` and `\n` become a tab and a newline
//    (so that a shell argument can hold them);
//  - a leading `table` prints a header line first (the same text with each
//    placeholder replaced by its field's header) and lays the tab-separated
//    cells out as columns, as docker's tabwriter does (columns at least 10
//    wide, 3 spaces between them). Without `table` the rows are printed as
//    they are, one per line.
// Anything else in braces (`{{json .}}`, pipelines, `{{range}}`) is refused
// with an error naming the supported fields, rather than printed as text.
//
// Thread-safety: a RowFormat is an immutable value.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace common {

struct FormatField {
  std::string_view name;    // written as {{.Name}}
  std::string_view header;  // its column header in table mode
};

class RowFormat {
 public:
  // Parses `text` against `fields` (kept by index: Render's values follow
  // the same order). Errors: InvalidArgument for an unknown field, an
  // unsupported action or an unterminated "{{", naming it and listing the
  // known fields ("format: unknown field `.Foo` (fields: .Repository, .Tag)").
  [[nodiscard]] static Result<RowFormat> Parse(std::string_view text,
                                               std::span<const FormatField> fields);

  bool table() const { return table_; }
  // Whether the format uses field `index` (to skip computing the others).
  bool Uses(size_t index) const;

  // Every row rendered and followed by a newline, after a header in table
  // mode, with the columns aligned. REQUIRES: each row has one value per
  // field.
  [[nodiscard]] std::string Render(const std::vector<std::vector<std::string>>& rows) const;

  // Render in two steps, for a caller that keeps one row's values at a
  // time: Line gives a row's text, RenderLines what Render gives for the
  // rows of those lines. REQUIRES (Line): one value per field.
  [[nodiscard]] std::string Line(const std::vector<std::string>& values) const;
  [[nodiscard]] std::string RenderLines(std::vector<std::string> lines) const;

 private:
  struct Piece {
    std::string text;  // literal text, when field < 0
    int field = -1;
  };

  std::vector<Piece> pieces_;
  std::vector<std::string> headers_;
  bool table_ = false;
};

// Lays out `lines` of tab-separated cells in columns: every cell followed
// by a tab is padded to its column's width (the widest such cell plus 3
// spaces, at least 10); the last cell of a line is not padded. Lines are
// joined with newlines, each one ending with one.
[[nodiscard]] std::string AlignColumns(const std::vector<std::string>& lines);

}  // namespace common
