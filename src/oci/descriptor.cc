#include "oci/descriptor.h"

#include <limits>

namespace oci {

using common::Errc;
using common::MakeError;
using common::Result;

nlohmann::json DescriptorToJson(const Descriptor& d) {
  nlohmann::json j = nlohmann::json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
  return j;
}

void to_json(nlohmann::json& j, const Descriptor& d) { j = DescriptorToJson(d); }

Result<Descriptor> DescriptorFromJson(const nlohmann::json& j) {
  auto bad = [](std::string why) {
    return MakeError(Errc::kInvalidArgument, "parse descriptor: " + std::move(why));
  };
  if (!j.is_object()) return bad("not a JSON object");

  auto mt = j.find("mediaType");
  if (mt == j.end() || !mt->is_string()) return bad("`mediaType` must be a string");

  auto dg = j.find("digest");
  if (dg == j.end() || !dg->is_string()) return bad("`digest` must be a string");
  auto digest = common::Digest::Parse(dg->get_ref<const std::string&>());
  if (!digest) return std::unexpected(std::move(digest.error()).Wrap("parse descriptor"));

  auto sz = j.find("size");
  if (sz == j.end()) return bad("`size` is missing");
  int64_t size = 0;
  if (sz->is_number_unsigned()) {
    auto u = sz->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return bad("`size` is out of range");
    size = static_cast<int64_t>(u);
  } else if (sz->is_number_integer()) {
    size = sz->get<int64_t>();
    if (size < 0) return bad("`size` is negative");
  } else {
    return bad("`size` must be an integer");
  }

  Descriptor d{.media_type = mt->get<std::string>(),
               .digest = std::move(*digest),
               .size = size,
               .annotations = {},
               .urls = {},
               .artifact_type = {}};

  if (auto an = j.find("annotations"); an != j.end() && !an->is_null()) {
    if (!an->is_object()) return bad("`annotations` must be an object");
    for (auto it = an->begin(); it != an->end(); ++it) {
      if (!it.value().is_string()) return bad("annotation `" + it.key() + "` must be a string");
      d.annotations.emplace(it.key(), it.value().get<std::string>());
    }
  }
  if (auto urls = j.find("urls"); urls != j.end() && !urls->is_null()) {
    if (!urls->is_array()) return bad("`urls` must be an array");
    for (const auto& u : *urls) {
      if (!u.is_string()) return bad("`urls` entries must be strings");
      d.urls.push_back(u.get<std::string>());
    }
  }
  if (auto at = j.find("artifactType"); at != j.end() && !at->is_null()) {
    if (!at->is_string()) return bad("`artifactType` must be a string");
    d.artifact_type = at->get<std::string>();
  }
  return d;
}

}  // namespace oci
