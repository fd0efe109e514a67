#include "common/bounded_json.h"

#include <string>

namespace common {
namespace {

using nlohmann::json;

// The counting pass: nlohmann::json's SAX interface, building nothing.
// Two passes rather than one counting wrapper around the tree builder:
// that builder (nlohmann::detail::json_sax_dom_parser) is not public API
// and has changed its constructor between releases, while the SAX
// interface is documented. The price is parsing an accepted document
// twice; configs are read a few times per command and are kilobytes.
// The lexer still holds one string token at a time, so this pass needs
// at most the longest string of the document.
class Counter {
 public:
  explicit Counter(const JsonLimits& limits) : limits_(limits) {}

  bool null() { return Value(); }
  bool boolean(bool) { return Value(); }
  bool number_integer(json::number_integer_t) { return Value(); }
  bool number_unsigned(json::number_unsigned_t) { return Value(); }
  bool number_float(json::number_float_t, const json::string_t&) { return Value(); }
  bool string(json::string_t&) { return Value(); }
  bool binary(json::binary_t&) { return Value(); }
  bool start_object(std::size_t) { return Open(); }
  bool key(json::string_t&) { return true; }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(); }
  bool end_array() { return Close(); }
  bool parse_error(std::size_t position, const std::string&, const json::exception&) {
    error_ = "invalid JSON at byte " + std::to_string(position);
    return false;
  }

  // Why the pass stopped; "" when it did not.
  const std::string& error() const { return error_; }

 private:
  bool Value() {
    if (++values_ <= limits_.max_values) return true;
    error_ = "more than " + std::to_string(limits_.max_values) + " JSON values";
    return false;
  }
  bool Open() {
    if (++depth_ > limits_.max_depth) {
      error_ = "nested deeper than " + std::to_string(limits_.max_depth) + " levels";
      return false;
    }
    return Value();
  }
  bool Close() {
    --depth_;
    return true;
  }

  const JsonLimits& limits_;
  int64_t values_ = 0;
  int depth_ = 0;
  std::string error_;
};

}  // namespace

Result<json> ParseBoundedJson(std::string_view text, const JsonLimits& limits) {
  Counter counter(limits);
  if (!json::sax_parse(text, &counter)) {
    return MakeError(Errc::kInvalidArgument,
                     counter.error().empty() ? "invalid JSON" : counter.error());
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  // The counting pass accepted the same bytes with the same parser.
  if (j.is_discarded()) return MakeError(Errc::kInvalidArgument, "invalid JSON");
  return j;
}

}  // namespace common
