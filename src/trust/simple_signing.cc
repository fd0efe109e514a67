#include "trust/simple_signing.h"

#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "trust/config_internal.h"
#include "trust/policy_json.h"

namespace trust {

namespace {

using Json = nlohmann::json;

std::unexpected<common::Error> PayloadError(std::string_view path, std::string_view what) {
  return common::MakeError(common::Errc::kDataLoss,
                           internal::OneLine("invalid signature payload: at " + std::string(path) +
                                             ": " + std::string(what)));
}

// `value` at `path` is an object with exactly the keys `keys`.
common::Status ExpectExactKeys(const Json& value, std::string_view path,
                               std::initializer_list<std::string_view> keys) {
  if (!value.is_object()) return PayloadError(path, "not a JSON object");
  for (const auto& [key, member] : value.items()) {
    bool known = false;
    for (std::string_view k : keys) known = known || key == k;
    if (!known) return PayloadError(path, "unknown key " + internal::Quoted(key));
  }
  for (std::string_view k : keys)
    if (!value.contains(k)) return PayloadError(path, "missing key " + internal::Quoted(k));
  return {};
}

common::Result<std::string> PayloadString(const Json& object, std::string_view path,
                                          std::string_view key) {
  const Json& v = object.at(key);
  std::string where = internal::MemberPath(path, key);
  if (!v.is_string()) return PayloadError(where, "not a string");
  return v.get<std::string>();
}

common::Status CheckOptional(const Json& optional, PayloadType type) {
  // cosign writes "optional": null when there are no annotations;
  // containers/image accepts that only in sigstore payloads.
  if (optional.is_null() && type == PayloadType::kSigstore) return {};
  if (!optional.is_object()) return PayloadError("$.optional", "not a JSON object");
  if (optional.contains("creator") && !optional["creator"].is_string())
    return PayloadError("$.optional.creator", "not a string");
  if (optional.contains("timestamp")) {
    const Json& t = optional["timestamp"];
    // containers/image reads a float64 and wants it integral.
    bool integral =
        t.is_number_integer() || (t.is_number_float() && std::isfinite(t.get<double>()) &&
                                  std::trunc(t.get<double>()) == t.get<double>());
    if (!integral) return PayloadError("$.optional.timestamp", "not an integer");
  }
  return {};
}

}  // namespace

std::string_view PayloadTypeName(PayloadType type) {
  return type == PayloadType::kSimpleSigning ? "atomic container signature"
                                             : "cosign container image signature";
}

common::Result<SignedClaim> ParseSignedPayload(std::string_view json, PayloadType type) {
  auto doc = internal::ParseStrictJson(json);
  if (!doc) {
    return common::MakeError(
        common::Errc::kDataLoss,
        internal::OneLine("invalid signature payload: " + doc.error().message));
  }
  TRY(ExpectExactKeys(*doc, "$", {"critical", "optional"}));
  TRY(CheckOptional((*doc)["optional"], type));
  const Json& critical = (*doc)["critical"];
  TRY(ExpectExactKeys(critical, "$.critical", {"type", "image", "identity"}));
  ASSIGN_OR_RETURN(std::string type_name, PayloadString(critical, "$.critical", "type"));
  if (type_name != PayloadTypeName(type)) {
    return PayloadError("$.critical.type", "unexpected signature type " +
                                               internal::Quoted(type_name) + ", want " +
                                               internal::Quoted(PayloadTypeName(type)));
  }
  const Json& image = critical["image"];
  TRY(ExpectExactKeys(image, "$.critical.image", {"docker-manifest-digest"}));
  ASSIGN_OR_RETURN(std::string digest_text,
                   PayloadString(image, "$.critical.image", "docker-manifest-digest"));
  auto digest = common::Digest::Parse(digest_text);
  if (!digest) {
    return PayloadError(
        "$.critical.image.docker-manifest-digest",
        "invalid digest " + internal::Quoted(digest_text) + ": " + digest.error().message);
  }
  const Json& identity = critical["identity"];
  TRY(ExpectExactKeys(identity, "$.critical.identity", {"docker-reference"}));
  ASSIGN_OR_RETURN(std::string reference,
                   PayloadString(identity, "$.critical.identity", "docker-reference"));
  return SignedClaim{.docker_reference = std::move(reference),
                     .manifest_digest = std::move(*digest)};
}

}  // namespace trust
