#pragma once
// OCI content descriptors (image-spec descriptor.md): what a manifest, an
// index or an image record points at.
//
//   {"mediaType": "application/vnd.oci.image.manifest.v1+json",
//    "digest": "sha256:…", "size": 7143,
//    "annotations": {"org.opencontainers.image.ref.name": "v1"}}

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/error.h"

namespace oci {

struct Descriptor {
  std::string media_type;
  common::Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;  // optional alternate locations (foreign layers)
  std::string artifact_type;      // optional "artifactType"

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

// OCI JSON. Empty optional fields (annotations, urls, artifactType) are
// omitted. Never fails.
[[nodiscard]] nlohmann::json DescriptorToJson(const Descriptor& d);

// Parses and validates a descriptor object: "mediaType" a string (required),
// "digest" a valid digest (required), "size" an integer in [0, 2^63)
// (required), "annotations" an object of strings, "urls" an array of
// strings, "artifactType" a string (all optional). Unknown fields such as
// "platform" or "data" are ignored here; callers that need them read the
// JSON themselves. Errors: InvalidArgument naming the field.
[[nodiscard]] common::Result<Descriptor> DescriptorFromJson(const nlohmann::json& j);

// nlohmann ADL hook so a Descriptor can be assigned into a json value.
// (There is deliberately no from_json: parsing can fail and must go through
// DescriptorFromJson, which returns a Result instead of throwing.)
void to_json(nlohmann::json& j, const Descriptor& d);

}  // namespace oci
