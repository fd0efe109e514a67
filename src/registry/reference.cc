#include "registry/reference.h"

#include <algorithm>
#include <cctype>

namespace registry {
namespace {

using common::Errc;
using common::MakeError;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Why `c` is not a valid path component, or empty when it is.
std::string ComponentProblem(std::string_view c) {
  if (c.empty()) return "empty path component";
  for (char ch : c)
    if (ch >= 'A' && ch <= 'Z') return "repository name must be lower-case";
  if (!IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back()))
    return "path component `" + std::string(c) + "` must start and end with [a-z0-9]";
  for (size_t i = 0; i < c.size();) {
    char ch = c[i];
    if (IsLowerAlnum(ch)) {
      ++i;
      continue;
    }
    // A separator: ".", "_", "__" or a run of "-".
    size_t j = i;
    if (ch == '-') {
      while (j < c.size() && c[j] == '-') ++j;
    } else if (ch == '_') {
      j = (i + 1 < c.size() && c[i + 1] == '_') ? i + 2 : i + 1;
    } else if (ch == '.') {
      j = i + 1;
    } else {
      return "invalid character `" + std::string(1, ch) + "` in path component `" + std::string(c) +
             "`";
    }
    if (j >= c.size() || !IsLowerAlnum(c[j]))
      return "path component `" + std::string(c) + "` has an invalid separator sequence";
    i = j;
  }
  return {};
}

std::string DomainProblem(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  if (!d.empty() && d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos) return "unterminated IPv6 address in domain";
    std::string_view v6 = d.substr(1, close - 1);
    if (v6.empty()) return "empty IPv6 address in domain";
    for (char ch : v6)
      if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.')
        return "invalid IPv6 address in domain";
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "unexpected characters after IPv6 address";
      port = rest.substr(1);
      if (port.empty()) return "empty port in domain";
    }
    host = {};
  } else {
    size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return "empty port in domain";
    }
  }
  for (char ch : port)
    if (ch < '0' || ch > '9') return "port `" + std::string(port) + "` must be numeric";
  if (port.size() > 5) return "port `" + std::string(port) + "` is out of range";
  if (!port.empty() && std::stoul(std::string(port)) > 65535)
    return "port `" + std::string(port) + "` is out of range";
  if (d.front() == '[') return {};
  if (host.empty()) return "empty host in domain";
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return "empty label in domain `" + std::string(d) + "`";
    if (!IsAlnum(label.front()) || !IsAlnum(label.back()))
      return "domain label `" + std::string(label) + "` must start and end with a letter or digit";
    for (char ch : label)
      if (!IsAlnum(ch) && ch != '-')
        return "invalid character `" + std::string(1, ch) + "` in domain `" + std::string(d) + "`";
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return {};
}

std::string TagProblem(std::string_view t) {
  if (t.empty()) return "empty tag";
  if (t.size() > kMaxTagLength)
    return "tag is " + std::to_string(t.size()) + " characters, the limit is " +
           std::to_string(kMaxTagLength);
  auto word = [](char c) { return IsAlnum(c) || c == '_'; };
  if (!word(t.front())) return "tag `" + std::string(t) + "` must start with [A-Za-z0-9_]";
  for (char c : t)
    if (!word(c) && c != '.' && c != '-')
      return "invalid character `" + std::string(1, c) + "` in tag `" + std::string(t) + "`";
  return {};
}

// Whether the first "/"-separated part of a name is read as its domain.
bool IsDomainPart(std::string_view first) {
  for (char c : first)
    if (c >= 'A' && c <= 'Z') return true;
  return first.find_first_of(".:[") != std::string_view::npos || first == "localhost";
}

// A bare 64-hex string, refused as a name: it would read as an image id.
bool IsImageIdLike(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  return true;
}

}  // namespace

common::Result<ImageRef> ImageRef::Parse(std::string_view text) {
  auto fail = [&](const std::string& why) {
    // "oci:/dir:tag" reads as domain "oci:" with an empty port; say what
    // it is instead (commands that take layouts handle them before this).
    if (text.starts_with("oci:"))
      return MakeError(Errc::kInvalidArgument,
                       "parse reference `" + std::string(text) +
                           "`: an OCI layout (oci:DIR[:TAG]) is not an image reference here");
    return MakeError(Errc::kInvalidArgument, "parse reference `" + std::string(text) + "`: " + why);
  };
  if (text.empty()) return fail("empty reference");
  for (char c : text)
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c)))
      return fail("contains whitespace or control characters");

  ImageRef ref;
  std::string_view rest = text;

  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    auto d = common::Digest::Parse(rest.substr(at + 1));
    if (!d) return fail("invalid digest: " + d.error().message);
    ref.digest_ = std::move(*d);
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' that comes after the last '/'; a ':' before
  // it belongs to a port.
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    // "[::1]" alone has colons but inside brackets; the bracket check keeps
    // an IPv6 domain without a path from being mistaken for a tag.
    std::string_view tag = rest.substr(colon + 1);
    if (auto why = TagProblem(tag); !why.empty()) return fail(why);
    ref.tag_ = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return fail("empty repository name");

  std::string_view domain;
  std::string_view path = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, slash);
    if (IsDomainPart(first)) {
      domain = first;
      path = rest.substr(slash + 1);
    }
  }
  if (!domain.empty()) {
    if (auto why = DomainProblem(domain); !why.empty()) return fail(why);
    ref.domain_ = std::string(domain);
    if (ref.domain_ == "index.docker.io") ref.domain_ = std::string(kDefaultDomain);
  } else {
    ref.domain_ = std::string(kDefaultDomain);
  }
  if (path.empty()) return fail("empty repository path");
  if (domain.empty() && IsImageIdLike(path))
    return fail("a 64-character hexadecimal string is an image id, not a repository name");
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view comp = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (auto why = ComponentProblem(comp); !why.empty()) return fail(why);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  ref.path_ = std::string(path);
  if (ref.domain_ == kDefaultDomain && ref.path_.find('/') == std::string::npos)
    ref.path_ = "library/" + ref.path_;

  size_t name_len = ref.domain_.size() + 1 + ref.path_.size();
  if (name_len > kMaxNameLength)
    return fail("repository name is " + std::to_string(name_len) + " characters, the limit is " +
                std::to_string(kMaxNameLength));
  if (!ref.tag_ && !ref.digest_) ref.tag_ = std::string(kDefaultTag);
  return ref;
}

bool NamesRegistry(std::string_view text) {
  size_t slash = text.find('/');
  return slash != std::string_view::npos && IsDomainPart(text.substr(0, slash));
}

std::string ImageRef::name() const { return domain_ + "/" + path_; }

std::string ImageRef::str() const {
  std::string s = name();
  if (tag_) s += ":" + *tag_;
  if (digest_) s += "@" + digest_->str();
  return s;
}

std::string ImageRef::manifest_reference() const {
  return digest_ ? digest_->str() : tag_.value_or(std::string(kDefaultTag));
}

std::string ImageRef::familiar() const {
  std::string n = name();
  if (domain_ == kDefaultDomain) {
    // Only shortened where the short form parses back to this reference:
    // "library/" goes from a single component that is not image-id-like,
    // and the domain stays when the first component would be read as one
    // ("docker.io/foo.bar/x", "docker.io/localhost/x").
    std::string_view p = path_;
    if (std::string_view rest = p.substr(std::min(p.size(), size_t{8}));
        p.starts_with("library/") && rest.find('/') == std::string_view::npos &&
        !IsImageIdLike(rest))
      p = rest;
    size_t slash = p.find('/');
    if (slash == std::string_view::npos || !IsDomainPart(p.substr(0, slash))) n = std::string(p);
  }
  if (tag_) n += ":" + *tag_;
  if (digest_) n += "@" + digest_->str();
  return n;
}

ImageRef ImageRef::WithTag(std::string tag) const {
  ImageRef r = *this;
  r.tag_ = std::move(tag);
  r.digest_.reset();
  return r;
}

ImageRef ImageRef::WithDigest(common::Digest digest) const {
  ImageRef r = *this;
  r.digest_ = std::move(digest);
  return r;
}

std::string ImageRef::registry_host() const {
  return domain_ == kDefaultDomain ? "registry-1.docker.io" : domain_;
}

}  // namespace registry
