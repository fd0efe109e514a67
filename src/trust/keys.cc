#include "trust/keys.h"

#include "common/fs.h"

namespace trust {

namespace {

// A keyring of a few keys is kilobytes; the bound keeps a wrong path
// (a disk image, /dev/zero) from being read whole.
constexpr size_t kMaxKeyFileSize = 1u << 20;

}  // namespace

common::Result<std::vector<PublicKeyBlob>> LoadRequirementKeys(const Requirement& requirement) {
  std::vector<PublicKeyBlob> keys;
  switch (requirement.key_source) {
    case KeySource::kPath:
    case KeySource::kPaths:
      for (const std::string& path : requirement.key_paths) {
        auto bytes = common::ReadFile(path, kMaxKeyFileSize);
        if (!bytes) return std::unexpected(std::move(bytes.error()).Wrap("read key"));
        keys.push_back({.source = path, .bytes = std::move(*bytes)});
      }
      return keys;
    case KeySource::kData:
    case KeySource::kDatas:
      for (size_t i = 0; i < requirement.key_data.size(); ++i) {
        std::string source = requirement.key_source == KeySource::kData
                                 ? std::string("keyData")
                                 : "keyDatas[" + std::to_string(i) + "]";
        keys.push_back({.source = std::move(source), .bytes = requirement.key_data[i]});
      }
      return keys;
    case KeySource::kNone:
    case KeySource::kFulcio:
    case KeySource::kPki:
      break;
  }
  return common::MakeError(
      common::Errc::kInvalidArgument,
      std::string(RequirementTypeName(requirement.type)) + " has no public keys to read");
}

}  // namespace trust
