#pragma once
// Image names with a transport, as `gantry copy` (and skopeo) take them:
//   docker://REF                 a distribution registry
//   oci:DIR[:TAG]                an OCI image layout directory
//   oci-archive:FILE[:TAG]       a tar of an OCI image layout
//   docker-archive:FILE[:REF]    a `docker save` archive
//   gantry:NAME                  an image of gantry's own store
// DIR and FILE end at the first ':' (skopeo's rule), so that TAG and REF
// may themselves be references (`oci:/x:quay.io/org/app:v1`); a path
// holding ':' cannot be named. Transports of other tools
// (containers-storage:, docker-daemon:, dir:, …) are refused by name.
//
// Sources and destinations of every transport but gantry: (which needs
// the store: the CLI opens it, cli/cmd_copy.cc) are opened here. Where a
// transport's reader or writer is not part of this build, its Open fails
// with Unimplemented "… is not built in" (one function per missing piece,
// in transport.cc).

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"
#include "registry/client.h"
#include "registry/destination.h"
#include "registry/reference.h"
#include "registry/source.h"

namespace archives {

struct Transport {
  enum class Kind { kRegistry, kOciDir, kOciArchive, kDockerArchive, kStore } kind{};
  registry::ImageRef ref{};      // kRegistry; kStore when NAME parses as a reference
  std::filesystem::path path{};  // kOciDir, kOciArchive, kDockerArchive ("-": stdin/stdout)
  std::string tag{};  // TAG or REF after the path ("" = none); kRegistry, kStore: as typed
};

// Errors: InvalidArgument naming the text: no or an unknown transport, an
// empty path or name, a malformed reference.
[[nodiscard]] common::Result<Transport> ParseTransport(std::string_view text);

// "docker-archive" …, for messages.
[[nodiscard]] std::string_view TransportName(Transport::Kind kind);

// REQUIRES: kind != kStore. Errors: the source's or destination's; a
// destination of a registry name with a digest (a tag is needed):
// InvalidArgument.
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageSource>> OpenTransportSource(
    const Transport& t, const registry::ClientOptions& client);
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageDestination>> OpenTransportDestination(
    const Transport& t, const registry::ClientOptions& client);

}  // namespace archives
