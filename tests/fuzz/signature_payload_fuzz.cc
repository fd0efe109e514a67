// Signature payloads (trust/simple_signing.h): the JSON a GPG or sigstore
// signature signs. Parsed only after the signature verifies, but from
// whoever holds a trusted key. Errors must stay one line; a parsed claim
// has a digest that prints and parses back to itself.

#include <string>

#include "common/digest.h"
#include "fuzz_util.h"
#include "trust/simple_signing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  for (trust::PayloadType type :
       {trust::PayloadType::kSimpleSigning, trust::PayloadType::kSigstore}) {
    auto claim = trust::ParseSignedPayload(fuzz::AsText(data, size), type);
    if (!claim) {
      fuzz::Check(claim.error().message.find('\n') == std::string::npos,
                  "error message spans lines");
      continue;
    }
    auto again = common::Digest::Parse(claim->manifest_digest.str());
    fuzz::Check(again && *again == claim->manifest_digest, "digest does not parse back");
  }
  return 0;
}
