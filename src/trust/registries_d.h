#pragma once
// registries.d: where signatures of images are stored, as
// containers-registries.d(5) configures it for skopeo, podman and CRI-O
// (default directory /etc/containers/registries.d).
//
// Every *.yaml file of the directory is read (other names are skipped, as
// containers/image skips them), and they are merged:
//
//   default-docker:                       # at most one, in one file
//     lookaside: https://sigs.example.com
//   docker:
//     registry.example.com:               # a scope (trust/scope.h)
//       lookaside: https://sigs.example.com/registry
//       lookaside-staging: file:///srv/staging   # for writers; never read
//     registry.example.com/team/app:
//       use-sigstore-attachments: true
//
// A section has `lookaside` (the base URL signatures are read from; the
// older name `sigstore` is accepted, `lookaside` wins when a section has
// both), `lookaside-staging` / `sigstore-staging` (for writing signatures:
// parsed, checked to be strings, never used), and `use-sigstore-attachments`
// (read sigstore signatures attached in the registry). Each setting comes
// from the most specific scope that sets it, then default-docker, as
// containers/image's docker/registries_d.go looks them up: a repository
// section that sets only use-sigstore-attachments still gets the host's
// lookaside.
//
// Strictness (errors are InvalidArgument, one line naming the file and the
// YAML path with its line): a scope in two files, or twice in one, and
// default-docker in two files are errors, as in containers/image; unlike
// containers/image (which ignores unknown keys), an unknown key, a
// scope that could never match, and a lookaside that is not an absolute
// file://, http:// or https:// URL are errors too.
//
// Values are immutable after loading; thread-compatible.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"
#include "registry/reference.h"

namespace trust {

// One configuration section.
struct RegistrySection {
  std::optional<std::string> lookaside;
  std::optional<std::string> sigstore;  // the older name of lookaside
  std::optional<std::string> lookaside_staging;
  std::optional<std::string> sigstore_staging;
  std::optional<bool> use_sigstore_attachments;
  std::string file;  // the file it was read from, for messages

  // The base URL to read signatures from: lookaside, else sigstore.
  [[nodiscard]] const std::optional<std::string>& ReadUrl() const {
    return lookaside ? lookaside : sigstore;
  }
  friend bool operator==(const RegistrySection&, const RegistrySection&) = default;
};

struct RegistriesD {
  std::optional<RegistrySection> default_docker;
  std::map<std::string, RegistrySection, std::less<>> docker;  // scope → section

  // The lookaside base URL for `image`, or nullopt when none is configured.
  // (containers/image then falls back to file:///var/lib/containers/sigstore,
  // or ~/.local/share/containers/sigstore when not root; that default is the
  // caller's decision, not this file's.)
  [[nodiscard]] std::optional<std::string> LookasideFor(const registry::ImageRef& image) const;
  // Whether sigstore attachments are read for `image`; false unless set.
  [[nodiscard]] bool UseSigstoreAttachments(const registry::ImageRef& image) const;
};

// Parses one YAML file's text; `file` names it in errors. Errors:
// InvalidArgument.
[[nodiscard]] common::Result<RegistriesD> ParseRegistriesFile(std::string_view text,
                                                              std::string_view file);

// Loads and merges every *.yaml file of `dir`, in name order. A missing
// directory is an empty configuration. Errors: InvalidArgument (a bad file,
// a scope or default-docker defined twice); those of reading the directory
// or a file.
[[nodiscard]] common::Result<RegistriesD> LoadRegistriesD(const std::filesystem::path& dir);

// The URL of one signature in lookaside storage, containers/image's layout
// (docs/signature-protocols.md there):
//   <base>/<repo_path>@<algorithm>=<hex>/signature-<index + 1>
// e.g. ("https://sigs.example.com", "library/busybox", sha256:ab…, 0) →
// "https://sigs.example.com/library/busybox@sha256=ab…/signature-1".
// `repo_path` is the repository path without the host (ImageRef::path()).
// `index` counts from 0; the file names count from 1. A query or fragment
// of `base` stays at the end. The path is appended as containers/image
// appends it, so a base ending in '/' gives "//".
[[nodiscard]] std::string LookasideSignatureUrl(std::string_view base, std::string_view repo_path,
                                                const common::Digest& manifest_digest,
                                                size_t index);

}  // namespace trust
