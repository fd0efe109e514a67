#pragma once
// Internal to the config parser (runtime_config*.cc): typed access to
// optional JSON fields with errors that name the field, and the parsers of
// the larger sections.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "ociruntime/runtime_config.h"

namespace ociruntime::rt::cfg {

using common::Errc;
using common::Result;
using common::Status;
using json = nlohmann::json;

inline std::unexpected<common::Error> Invalid(std::string msg) {
  return common::MakeError(Errc::kInvalidArgument, std::move(msg));
}

// Typed access to optional fields: absent or null gives nullptr, a value of
// another type an error naming the field ("process.args: expected array").
inline Result<const json*> Field(const json& obj, const char* key, json::value_t want,
                                 const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  bool ok = it->type() == want;
  if (want == json::value_t::number_integer) ok = it->is_number_integer();
  if (want == json::value_t::number_unsigned) ok = it->is_number_unsigned();
  if (!ok) {
    const char* name = want == json::value_t::object            ? "object"
                       : want == json::value_t::array           ? "array"
                       : want == json::value_t::string          ? "string"
                       : want == json::value_t::boolean         ? "boolean"
                       : want == json::value_t::number_unsigned ? "non-negative integer"
                                                                : "integer";
    return Invalid(where + "." + key + ": expected " + name + ", got " + it->type_name());
  }
  return &*it;
}

// CFG_FIELD(v, obj, "key", string, where): `const json* v` or return the error.
#define CFG_FIELD(var, obj, key, kind, where) \
  ASSIGN_OR_RETURN(const json* var, Field(obj, key, json::value_t::kind, where))

inline Status GetString(const json& obj, const char* key, const std::string& where,
                        std::string& out) {
  CFG_FIELD(v, obj, key, string, where);
  if (v) out = v->get<std::string>();
  return {};
}

template <class T>
Status GetUnsigned(const json& obj, const char* key, const std::string& where, T& out) {
  CFG_FIELD(v, obj, key, number_unsigned, where);
  if (v) out = static_cast<T>(v->get<uint64_t>());
  return {};
}

inline Status GetInt(const json& obj, const char* key, const std::string& where,
                     std::optional<int64_t>& out) {
  CFG_FIELD(v, obj, key, number_integer, where);
  if (v) out = v->get<int64_t>();
  return {};
}

inline Status GetBool(const json& obj, const char* key, const std::string& where, bool& out) {
  CFG_FIELD(v, obj, key, boolean, where);
  if (v) out = v->get<bool>();
  return {};
}

inline Status GetStrings(const json& obj, const char* key, const std::string& where,
                         std::vector<std::string>& out) {
  CFG_FIELD(v, obj, key, array, where);
  if (!v) return {};
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      return Invalid(where + "." + key + "[" + std::to_string(i) + "]: expected string");
    out.push_back((*v)[i].get<std::string>());
  }
  return {};
}

// mounts[] (runtime_config_mounts.cc).
[[nodiscard]] Status ParseMounts(const json& root, Config& c);
// linux.resources.
[[nodiscard]] Status ParseResources(const json& linux, Resources& r);
// linux.devices.
[[nodiscard]] Status ParseDevices(const json& linux, Config& c);
// linux.seccomp, compiled by libseccomp (runtime_seccomp.cc). Errors:
// InvalidArgument for unknown actions, operators or architectures,
// Unimplemented for a listener (SCMP_ACT_NOTIFY).
[[nodiscard]] Status ParseSeccomp(const json& linux, SeccompProgram& out);
// "rprivate" → MS_PRIVATE|MS_REC, …; nullopt for an unknown name.
[[nodiscard]] std::optional<unsigned long> PropagationFlag(std::string_view name);

}  // namespace ociruntime::rt::cfg
