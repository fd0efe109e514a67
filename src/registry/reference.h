#pragma once
// Image references with Docker's normalisation rules.
//
//   busybox                      → docker.io/library/busybox:latest
//   ghcr.io/org/app:v1           → ghcr.io/org/app:v1
//   localhost:5000/x@sha256:…    → localhost:5000/x@sha256:…  (no tag added)
//   host:port/ns/name:tag@sha256:… keeps both; the digest decides what is pulled
//
// Grammar (distribution's reference grammar):
//   reference  := name [":" tag] ["@" digest]
//   name       := [domain "/"] component ("/" component)*
//   domain     := host [":" port] ; host is a DNS name, IPv4 or "[" IPv6 "]"
//   component  := [a-z0-9]+ (separator [a-z0-9]+)* ; separator := "." | "_" | "__" | "-"+
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
// The first "/"-separated part is a domain when it contains "." or ":", is
// "localhost", or has upper-case letters; otherwise the domain is docker.io
// and a single-component name gets "library/". "index.docker.io" is
// normalised to "docker.io". The full name (domain/path) is at most 255
// characters. A bare 64-hex string is refused as ambiguous with an image id.

#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"

namespace registry {

inline constexpr std::string_view kDefaultDomain = "docker.io";
inline constexpr std::string_view kDefaultTag = "latest";
inline constexpr size_t kMaxNameLength = 255;
inline constexpr size_t kMaxTagLength = 128;

class ImageRef {
 public:
  // Parses and normalises. Errors: InvalidArgument, the message naming the
  // input and the reason ("parse reference `Foo/Bar`: repository name must
  // be lower-case").
  [[nodiscard]] static common::Result<ImageRef> Parse(std::string_view text);

  const std::string& domain() const { return domain_; }  // "docker.io", "localhost:5000"
  const std::string& path() const { return path_; }      // "library/busybox"
  const std::optional<std::string>& tag() const { return tag_; }
  const std::optional<common::Digest>& digest() const { return digest_; }

  // "docker.io/library/busybox"
  std::string name() const;
  // The full normalised form: name[:tag][@digest].
  std::string str() const;
  // The tag or digest the registry is asked for: digest if set, else tag.
  std::string manifest_reference() const;
  // Docker's short form: "busybox:latest" for docker.io/library/busybox:latest.
  // It always parses back to this reference, so it keeps "docker.io/" when
  // the first path component would read as a domain (docker.io/foo.bar/x)
  // and "library/" for nested or image-id-like paths.
  std::string familiar() const;

  // Returns a copy with the tag replaced and no digest / with the digest set.
  ImageRef WithTag(std::string tag) const;
  ImageRef WithDigest(common::Digest digest) const;

  // The host to contact for docker.io is registry-1.docker.io; every other
  // domain is its own host.
  std::string registry_host() const;

  friend bool operator==(const ImageRef&, const ImageRef&) = default;

 private:
  std::string domain_;
  std::string path_;
  std::optional<std::string> tag_;
  std::optional<common::Digest> digest_;
};

// Whether `text`, a reference as a user typed it, names its registry: its
// first "/"-separated part reads as a domain (the grammar above), as in
// "docker.io/busybox", "localhost/app", "127.0.0.1:5000/x". "busybox" and
// "org/app" do not (Parse puts them under docker.io).
[[nodiscard]] bool NamesRegistry(std::string_view text);

}  // namespace registry
