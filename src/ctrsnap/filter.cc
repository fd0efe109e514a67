#include "ctrsnap/filter.h"

#include <cctype>

#include "common/digest.h"

namespace ctrsnap {
namespace {

using common::Errc;
using common::MakeError;

bool IsFieldChar(char c) { return c == '_' || std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsQuoteChar(char c) { return c == '"' || c == '/' || c == '|'; }
bool IsOperatorChar(char c) { return c == '=' || c == '!' || c == '~'; }
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The canonical name of a field path: "labels.<key>" joins the label key's
// parts with "." as containerd's adaptor does.
std::string FieldKey(const std::vector<std::string>& fieldpath) {
  std::string out;
  for (size_t i = 0; i < fieldpath.size(); ++i) {
    if (i) out += '.';
    out += fieldpath[i];
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  common::Result<std::vector<Selector>> Run() {
    std::vector<Selector> out;
    for (;;) {
      ASSIGN_OR_RETURN(Selector s, ParseSelector());
      out.push_back(std::move(s));
      SkipSpace();
      if (pos_ == in_.size()) return out;
      if (in_[pos_] != ',') return Fail("unexpected input `" + std::string(1, in_[pos_]) + "`");
      ++pos_;
    }
  }

 private:
  std::unexpected<common::Error> Fail(const std::string& why) const {
    return MakeError(Errc::kInvalidArgument, "filter `" + std::string(in_) + "`: position " +
                                                 std::to_string(pos_) + ": " + why);
  }

  void SkipSpace() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
  }

  // A quoted literal starting at pos_ (its quote character), returned with
  // its quotes; pos_ ends after the closing quote.
  common::Result<std::string_view> ScanQuoted() {
    const size_t start = pos_;
    const char quote = in_[pos_++];
    while (pos_ < in_.size() && in_[pos_] != quote) {
      if (in_[pos_] == '\n') break;
      if (in_[pos_] == '\\') ++pos_;
      ++pos_;
    }
    if (pos_ >= in_.size() || in_[pos_] != quote) {
      pos_ = start;
      return Fail("quoted literal not terminated");
    }
    ++pos_;
    return in_.substr(start, pos_ - start);
  }

  common::Result<std::string> ParseField() {
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == '"') {
      const size_t at = pos_;
      ASSIGN_OR_RETURN(std::string_view q, ScanQuoted());
      auto u = Unquote(q);
      if (!u) {
        pos_ = at;
        return Fail(u.error().message);
      }
      return *u;
    }
    const size_t start = pos_;
    while (pos_ < in_.size() && IsFieldChar(in_[pos_])) ++pos_;
    if (pos_ == start) return Fail("expected a field or a quoted field");
    return std::string(in_.substr(start, pos_ - start));
  }

  common::Result<Selector> ParseSelector() {
    Selector s;
    ASSIGN_OR_RETURN(std::string first, ParseField());
    s.fieldpath.push_back(std::move(first));
    for (;;) {
      SkipSpace();
      if (pos_ < in_.size() && in_[pos_] == '.') {
        ++pos_;
        ASSIGN_OR_RETURN(std::string f, ParseField());
        s.fieldpath.push_back(std::move(f));
        continue;
      }
      break;
    }
    if (pos_ == in_.size() || in_[pos_] == ',') return s;  // presence
    if (!IsOperatorChar(in_[pos_])) return Fail("expected an operator (==, != or ~=)");
    const size_t op_start = pos_;
    while (pos_ < in_.size() && IsOperatorChar(in_[pos_])) ++pos_;
    const std::string_view op = in_.substr(op_start, pos_ - op_start);
    if (op == "==")
      s.op = Selector::Op::kEqual;
    else if (op == "!=")
      s.op = Selector::Op::kNotEqual;
    else if (op == "~=")
      s.op = Selector::Op::kMatches;
    else {
      pos_ = op_start;
      return Fail("unsupported operator `" + std::string(op) + "`");
    }
    SkipSpace();
    if (pos_ == in_.size()) return Fail("expected a value");
    const char c = in_[pos_];
    if (IsQuoteChar(c)) {
      const size_t at = pos_;
      if (c != '"' && s.op != Selector::Op::kMatches) return Fail("invalid quote encountered");
      ASSIGN_OR_RETURN(std::string_view q, ScanQuoted());
      auto u = Unquote(q);
      if (!u) {
        pos_ = at;
        return Fail(u.error().message);
      }
      s.value = std::move(*u);
    } else if (c == ',' || c == '.' || IsOperatorChar(c)) {
      return Fail("expected a value");
    } else {
      const size_t start = pos_;
      while (pos_ < in_.size() && in_[pos_] != ',' && !IsSpace(in_[pos_])) ++pos_;
      s.value = std::string(in_.substr(start, pos_ - start));
    }
    if (s.op == Selector::Op::kMatches) {
      try {
        s.re = std::make_shared<const std::regex>(s.value, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return Fail("bad regular expression `" + s.value + "`: " + e.what());
      }
    }
    return s;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

bool MatchOne(const Selector& s, const FilterFields& f) {
  std::string value;
  bool present = false;
  const std::string& head = s.fieldpath.front();
  if (head == "name") {
    value = f.name;
    present = s.fieldpath.size() == 1;
  } else if (head == "parent") {
    value = f.parent;
    present = s.fieldpath.size() == 1;
  } else if (head == "kind") {
    value = f.kind;
    present = s.fieldpath.size() == 1 && !f.kind.empty();
  } else if (head == "labels" && s.fieldpath.size() > 1 && f.labels != nullptr) {
    std::vector<std::string> rest(s.fieldpath.begin() + 1, s.fieldpath.end());
    auto it = f.labels->find(FieldKey(rest));
    if (it != f.labels->end()) {
      value = it->second;
      present = true;
    }
  }
  if (!present) value.clear();
  switch (s.op) {
    case Selector::Op::kPresent:
      return present;
    case Selector::Op::kEqual:
      return present && value == s.value;
    case Selector::Op::kNotEqual:
      return value != s.value;
    case Selector::Op::kMatches:
      return s.re && std::regex_search(value, *s.re);
  }
  return false;
}

}  // namespace

common::Result<std::string> Unquote(std::string_view q) {
  auto bad = [&](const std::string& why) {
    return MakeError(Errc::kInvalidArgument, "unquote `" + std::string(q) + "`: " + why);
  };
  if (q.size() < 2 || q.front() != q.back() || !IsQuoteChar(q.front()))
    return bad("not a quoted string");
  const char quote = q.front();
  std::string_view s = q.substr(1, q.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == quote) return bad("unescaped quote");
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return bad("trailing backslash");
    const char e = s[i + 1];
    i += 2;
    switch (e) {
      case 'a':
        out += '\a';
        continue;
      case 'b':
        out += '\b';
        continue;
      case 'f':
        out += '\f';
        continue;
      case 'n':
        out += '\n';
        continue;
      case 'r':
        out += '\r';
        continue;
      case 't':
        out += '\t';
        continue;
      case 'v':
        out += '\v';
        continue;
      case '\\':
        out += '\\';
        continue;
      default:
        break;
    }
    if (e == quote) {
      out += e;
      continue;
    }
    if (e >= '0' && e <= '7') {
      if (i + 2 > s.size()) return bad("illegal octal escape");
      int v = e - '0';
      for (int k = 0; k < 2; ++k) {
        const char d = s[i++];
        if (d < '0' || d > '7') return bad("illegal octal escape");
        v = v * 8 + (d - '0');
      }
      if (v > 255) return bad("octal escape out of range");
      out += static_cast<char>(v);
      continue;
    }
    int n = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (n == 0) return bad("illegal escape sequence `\\" + std::string(1, e) + "`");
    if (i + static_cast<size_t>(n) > s.size()) return bad("short hexadecimal escape");
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      const int h = common::HexDigitValue(s[i++]);
      if (h < 0) return bad("illegal hexadecimal escape");
      v = v * 16 + static_cast<uint32_t>(h);
    }
    if (e == 'x') {
      out += static_cast<char>(v);
    } else {
      if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return bad("invalid Unicode code point");
      AppendUtf8(out, v);
    }
  }
  return out;
}

common::Result<std::vector<Selector>> Filter::ParseOne(std::string_view filter) {
  return Parser(filter).Run();
}

common::Result<Filter> Filter::Parse(const std::vector<std::string>& filters) {
  Filter f;
  for (const std::string& s : filters) {
    ASSIGN_OR_RETURN(std::vector<Selector> one, ParseOne(s));
    f.any_.push_back(std::move(one));
  }
  return f;
}

bool Filter::MatchAll(const std::vector<Selector>& selectors, const FilterFields& f) {
  for (const Selector& s : selectors)
    if (!MatchOne(s, f)) return false;
  return true;
}

bool Filter::Match(const FilterFields& f) const {
  if (any_.empty()) return true;
  for (const auto& all : any_)
    if (MatchAll(all, f)) return true;
  return false;
}

bool Filter::EqualValue(const std::vector<Selector>& selectors, std::string_view key,
                        std::string* value) {
  for (const Selector& s : selectors) {
    if (s.op != Selector::Op::kEqual || FieldKey(s.fieldpath) != key) continue;
    if (value != nullptr) *value = s.value;
    return true;
  }
  return false;
}

}  // namespace ctrsnap
