// Image reference parsing (registry/reference.h): the text of a user's or a
// CRI client's image name. A parsed reference must print to a form that
// parses back to the same reference, in both its full and familiar forms.

#include <string>

#include "fuzz_util.h"
#include "registry/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  auto ref = registry::ImageRef::Parse(fuzz::AsText(data, size));
  if (!ref) return 0;
  fuzz::Check(ref->name().size() <= registry::kMaxNameLength, "name longer than the limit");
  fuzz::Check(!ref->tag() || ref->tag()->size() <= registry::kMaxTagLength,
              "tag longer than the limit");
  auto again = registry::ImageRef::Parse(ref->str());
  fuzz::Check(again && *again == *ref, "str() does not parse back to the same reference");
  auto familiar = registry::ImageRef::Parse(ref->familiar());
  fuzz::Check(familiar && *familiar == *ref,
              "familiar() does not parse back to the same reference");
  (void)ref->manifest_reference();
  (void)ref->registry_host();
  return 0;
}
