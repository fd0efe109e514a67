#include "trust/policy_json.h"

#include <set>
#include <vector>

#include "common/bounded_json.h"
#include "trust/config_internal.h"

namespace trust::internal {
namespace {

using Json = nlohmann::json;

// A SAX pass that tracks the JSON path and stops at the first key an
// object repeats.
class DuplicateKeyFinder : public nlohmann::json_sax<Json> {
 public:
  std::string duplicate;  // "at PATH: duplicate key \"K\"" once found

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Push(true); }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      duplicate = "at " + f.path + ": duplicate key " + Quoted(k);
      return false;
    }
    f.key = k;
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return Push(false); }
  bool end_array() override {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  struct Frame {
    bool object = false;
    std::string path;
    std::set<std::string> keys;
    std::string key;
    size_t index = 0;
  };

  bool Push(bool object) {
    Frame f;
    f.object = object;
    f.path = ChildPath();
    frames_.push_back(std::move(f));
    return true;
  }
  bool Value() {
    ChildPath();
    return true;
  }
  // The path of the value that starts now; advances an array's index.
  std::string ChildPath() {
    if (frames_.empty()) return "$";
    Frame& f = frames_.back();
    return f.object ? MemberPath(f.path, f.key) : IndexPath(f.path, f.index++);
  }

  std::vector<Frame> frames_;
};

// A policy is a few kilobytes; these bounds keep a hostile or corrupt
// file from building a large tree (common/bounded_json.h).
constexpr common::JsonLimits kPolicyLimits{.max_values = 1 << 20, .max_depth = 32};

}  // namespace

common::Result<Json> ParseStrictJson(std::string_view text) {
  auto doc = common::ParseBoundedJson(text, kPolicyLimits);
  if (!doc) return doc;
  DuplicateKeyFinder finder;
  Json::sax_parse(text, &finder);
  if (!finder.duplicate.empty())
    return common::MakeError(common::Errc::kInvalidArgument, finder.duplicate);
  return doc;
}

}  // namespace trust::internal
