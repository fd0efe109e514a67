#include "common/row_format.h"

#include <algorithm>
#include <cctype>

namespace common {
namespace {

constexpr std::string_view kTable = "table";
constexpr size_t kMinColumn = 10;  // docker's tabwriter: minwidth 10, padding 3
constexpr size_t kPadding = 3;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string KnownFields(std::span<const FormatField> fields) {
  std::string out;
  for (const auto& f : fields) out += (out.empty() ? "." : ", .") + std::string(f.name);
  return out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 't' || s[i + 1] == 'n')) {
      out += s[i + 1] == 't' ? '\t' : '\n';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<RowFormat> RowFormat::Parse(std::string_view text, std::span<const FormatField> fields) {
  RowFormat f;
  for (const auto& field : fields) f.headers_.emplace_back(field.header);
  if (text.starts_with(kTable) &&
      (text.size() == kTable.size() || text[kTable.size()] == ' ' || text[kTable.size()] == '\t')) {
    f.table_ = true;
    text.remove_prefix(kTable.size());
  }
  text = Trim(text);
  if (text.empty())
    return MakeError(Errc::kInvalidArgument, "format: empty (fields: " + KnownFields(fields) + ")");
  const std::string body = Unescape(text);
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t open = body.find("{{", pos);
    if (open == std::string::npos) {
      f.pieces_.push_back({body.substr(pos)});
      break;
    }
    if (open > pos) f.pieces_.push_back({body.substr(pos, open - pos)});
    const size_t close = body.find("}}", open + 2);
    if (close == std::string::npos)
      return MakeError(Errc::kInvalidArgument,
                       "format: unterminated `{{` at `" + body.substr(open, 20) + "`");
    const std::string_view action = Trim(std::string_view(body).substr(open + 2, close - open - 2));
    const bool plain = action.size() > 1 && action[0] == '.' &&
                       std::all_of(action.begin() + 1, action.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                       });
    if (!plain)
      return MakeError(Errc::kInvalidArgument,
                       "format: unsupported `" + body.substr(open, close + 2 - open) +
                           "`: only {{.Field}} placeholders (fields: " + KnownFields(fields) + ")");
    auto it = std::find_if(fields.begin(), fields.end(),
                           [&](const FormatField& x) { return x.name == action.substr(1); });
    if (it == fields.end())
      return MakeError(Errc::kInvalidArgument, "format: unknown field `" + std::string(action) +
                                                   "` (fields: " + KnownFields(fields) + ")");
    f.pieces_.push_back({{}, static_cast<int>(it - fields.begin())});
    pos = close + 2;
  }
  return f;
}

bool RowFormat::Uses(size_t index) const {
  return std::any_of(pieces_.begin(), pieces_.end(),
                     [&](const Piece& p) { return p.field == static_cast<int>(index); });
}

std::string RowFormat::Line(const std::vector<std::string>& values) const {
  std::string out;
  for (const auto& p : pieces_) out += p.field < 0 ? p.text : values[p.field];
  return out;
}

std::string RowFormat::Render(const std::vector<std::vector<std::string>>& rows) const {
  std::vector<std::string> lines;
  lines.reserve(rows.size());
  for (const auto& r : rows) lines.push_back(Line(r));
  return RenderLines(std::move(lines));
}

std::string RowFormat::RenderLines(std::vector<std::string> rows) const {
  if (!table_) {
    std::string out;
    for (const auto& r : rows) out += r + "\n";
    return out;
  }
  std::vector<std::string> lines;
  lines.reserve(rows.size() + 1);
  auto add = [&](std::string line) {
    if (line.find('\n') == std::string::npos) {
      lines.push_back(std::move(line));  // the usual case: one line per row
      return;
    }
    for (auto& l : SplitLines(line)) lines.push_back(std::move(l));
  };
  add(Line(headers_));
  for (auto& r : rows) add(std::move(r));
  return AlignColumns(lines);
}

std::string AlignColumns(const std::vector<std::string>& lines) {
  // Two passes over the text, holding no cells: the columns' widths (only
  // cells followed by a tab take part), then the padded text.
  std::vector<size_t> widths;
  size_t text = 0;
  for (const auto& line : lines) {
    text += line.size() + 1;
    size_t start = 0;
    for (size_t i = 0;; ++i) {
      const size_t tab = line.find('\t', start);
      if (tab == std::string::npos) break;
      if (widths.size() <= i) widths.resize(i + 1, 0);
      widths[i] = std::max(widths[i], tab - start);
      start = tab + 1;
    }
  }
  size_t padded = 0;  // a line's most padding: every column at its width
  for (size_t w : widths) padded += std::max(kMinColumn, w + kPadding);
  std::string out;
  out.reserve(text + lines.size() * padded);
  for (const auto& line : lines) {
    size_t start = 0;
    for (size_t i = 0;; ++i) {
      const size_t tab = line.find('\t', start);
      if (tab == std::string::npos) {
        out.append(line, start);
        break;
      }
      out.append(line, start, tab - start);
      out.append(std::max(kMinColumn, widths[i] + kPadding) - (tab - start), ' ');
      start = tab + 1;
    }
    out += '\n';
  }
  return out;
}

}  // namespace common
