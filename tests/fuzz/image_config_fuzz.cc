// Image config parsing (oci/manifest.h ParseImageConfig): a blob from
// the registry, verified by digest but written by whoever built the image.

#include "fuzz_util.h"
#include "oci/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  auto config = oci::ParseImageConfig(fuzz::AsText(data, size));
  if (!config) return 0;
  auto chain = oci::ChainIds(config->diff_ids);
  fuzz::Check(chain.size() == config->diff_ids.size(), "one chainID per diffID");
  fuzz::Check(chain.empty() || chain.front() == config->diff_ids.front(),
              "the first chainID is the first diffID");
  (void)oci::PlatformMatch(oci::HostPlatform(), oci::NormalizePlatform(config->platform));
  return 0;
}
