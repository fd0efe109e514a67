#include "archive/transport.h"

#include <array>
#include <utility>

#include "archive/archive_source.h"
#include "archive/destinations.h"
#include "registry/registry_destination.h"

namespace archives {
namespace {

using common::Errc;
using common::MakeError;
namespace fs = std::filesystem;

// An archive source, through the pull sources' own parser and opener.
common::Result<std::unique_ptr<registry::ImageSource>> OpenArchive(std::string_view prefix,
                                                                   const fs::path& path,
                                                                   const std::string& tag) {
  ASSIGN_OR_RETURN(registry::SourceSpec spec,
                   registry::ParseSourceSpec(std::string(prefix) + path.string() +
                                             (tag.empty() ? "" : ":" + tag)));
  return OpenArchiveSource(spec);
}

struct Prefix {
  std::string_view text;
  Transport::Kind kind;
};
constexpr std::array<Prefix, 5> kPrefixes{{
    {"docker://", Transport::Kind::kRegistry},
    {"oci:", Transport::Kind::kOciDir},
    {"oci-archive:", Transport::Kind::kOciArchive},
    {"docker-archive:", Transport::Kind::kDockerArchive},
    {"gantry:", Transport::Kind::kStore},
}};

// Transports of other tools, refused by name.
constexpr std::array<std::string_view, 6> kForeign{
    "containers-storage:", "docker-daemon:", "dir:", "ostree:", "sif:", "tarball:"};

}  // namespace

std::string_view TransportName(Transport::Kind kind) {
  for (const Prefix& p : kPrefixes)
    if (p.kind == kind) return p.text.substr(0, p.text.find(':'));
  return "?";
}

common::Result<Transport> ParseTransport(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return MakeError(Errc::kInvalidArgument,
                     "image name `" + std::string(text) + "`: " + std::string(why));
  };
  for (std::string_view foreign : kForeign)
    if (text.starts_with(foreign))
      return bad("the " + std::string(foreign.substr(0, foreign.size() - 1)) +
                 " transport is not supported (use docker://, oci:, oci-archive:, "
                 "docker-archive: or gantry:)");
  for (const Prefix& p : kPrefixes) {
    if (!text.starts_with(p.text)) continue;
    std::string_view rest = text.substr(p.text.size());
    Transport t{.kind = p.kind};
    if (p.kind == Transport::Kind::kRegistry || p.kind == Transport::Kind::kStore) {
      if (rest.empty()) return bad("no reference after the transport");
      t.tag = std::string(rest);
      auto ref = registry::ImageRef::Parse(rest);
      // gantry:NAME takes whatever names a store image (a short name, an
      // id): the store's lookup judges it.
      if (ref)
        t.ref = *ref;
      else if (p.kind == Transport::Kind::kRegistry)
        return bad(ref.error().message);
      return t;
    }
    const size_t colon = rest.find(':');
    t.path = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) t.tag = std::string(rest.substr(colon + 1));
    if (t.path.empty()) return bad("no path after the transport");
    if (colon != std::string_view::npos && t.tag.empty()) return bad("empty tag after the path");
    return t;
  }
  return bad(
      "no transport (docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], "
      "docker-archive:FILE[:REF] or gantry:NAME)");
}

common::Result<std::unique_ptr<registry::ImageSource>> OpenTransportSource(
    const Transport& t, const registry::ClientOptions& client) {
  switch (t.kind) {
    case Transport::Kind::kRegistry:
      return registry::OpenRegistrySource(t.ref, client);
    case Transport::Kind::kOciDir:
      return registry::OpenLayoutSource(t.path, t.tag);
    case Transport::Kind::kOciArchive:
      return OpenArchive("oci-archive:", t.path, t.tag);
    case Transport::Kind::kDockerArchive:
      return OpenArchive("docker-archive:", t.path, t.tag);
    case Transport::Kind::kStore:
      break;
  }
  return MakeError(Errc::kInternal, "open the store as a source here");
}

common::Result<std::unique_ptr<registry::ImageDestination>> OpenTransportDestination(
    const Transport& t, const registry::ClientOptions& client) {
  switch (t.kind) {
    case Transport::Kind::kRegistry:
      if (t.ref.digest())
        return MakeError(Errc::kInvalidArgument,
                         "copy to `" + t.ref.str() + "`: a destination needs a tag, not a digest");
      return registry::OpenRegistryDestination(t.ref, client);
    case Transport::Kind::kOciDir:
      return OpenLayoutDestination(t.path, t.tag);
    case Transport::Kind::kOciArchive:
      return OpenOciArchiveDestination(t.path, t.tag);
    case Transport::Kind::kDockerArchive:
      return OpenDockerArchiveDestination(t.path, t.tag);
    case Transport::Kind::kStore:
      break;
  }
  return MakeError(Errc::kInternal, "open the store as a destination here");
}

}  // namespace archives
