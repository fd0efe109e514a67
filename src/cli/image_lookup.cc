#include "cli/image_lookup.h"

#include "registry/pull.h"
#include "registry/reference.h"

namespace cli {
namespace {

bool IsHexPrefix(std::string_view s) {
  if (s.size() < 12 || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

common::Result<std::vector<store::ImageRecord>> FindImages(store::MetadataDb& db,
                                                           const std::string& text) {
  std::string id = text.starts_with("sha256:") ? text.substr(7) : text;
  if (IsHexPrefix(id)) {
    ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db.ListImages());
    std::vector<store::ImageRecord> out;
    for (auto& r : all) {
      auto it = r.labels.find(std::string(registry::kLabelConfig));
      bool config_match = it != r.labels.end() && it->second.starts_with("sha256:" + id);
      if (config_match || r.target.digest.hex().starts_with(id)) out.push_back(std::move(r));
    }
    if (!out.empty()) return out;
    if (id.size() == 64 || text.starts_with("sha256:"))
      return common::MakeError(common::Errc::kNotFound, "image `" + text + "` not found");
  }
  auto ref = registry::ImageRef::Parse(text);
  if (!ref) return std::unexpected(ref.error());
  auto rec = db.GetImage(ref->str());
  if (!rec) {
    if (rec.error().code == common::Errc::kNotFound)
      return common::MakeError(common::Errc::kNotFound, "image `" + ref->str() + "` not found");
    return std::unexpected(rec.error());
  }
  return std::vector<store::ImageRecord>{std::move(*rec)};
}

}  // namespace cli
