#include "cli/image_lookup.h"

#include <set>

#include "image/image_record.h"
#include "registry/reference.h"
#include "registry/source.h"

namespace cli {
namespace {

using common::Errc;
using common::MakeError;

// A record's image for matching; one whose labels do not parse matches by
// its name and target only (the command that reads it then says why).
image::Image MatchView(const store::ImageRecord& r) {
  auto img = image::FromRecord(r);
  return img ? std::move(*img) : image::FromRecordColumns(r);
}

bool IsHexPrefix(std::string_view s) {
  if (s.size() < 12 || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// `oci:DIR[:TAG]`: the records whose layout labels name DIR (and TAG when
// given), else the record under the name the pull records by default.
common::Result<std::vector<store::ImageRecord>> FindLayoutImages(store::MetadataDb& db,
                                                                 const std::string& text) {
  ASSIGN_OR_RETURN(registry::SourceSpec spec, registry::ParseSourceSpec(text));
  const std::string dir = registry::CanonicalLayoutDir(spec.layout_dir).string();
  ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db.ListImages());
  std::vector<store::ImageRecord> out;
  std::set<common::Digest> targets;
  std::string names;
  for (auto& r : all) {
    const image::Image img = MatchView(r);
    if (!img.layout || img.layout->dir != dir) continue;
    if (!spec.layout_tag.empty() && img.layout->ref_name != spec.layout_tag) continue;
    targets.insert(r.target.digest);
    names += (names.empty() ? "" : ", ") + r.name;
    out.push_back(std::move(r));
  }
  // Several names of one image are that image (as an id naming a
  // multi-tag image); different images are for the user to choose from.
  if (targets.size() > 1)
    return MakeError(Errc::kInvalidArgument,
                     "`" + text + "` names several images pulled from that layout (" + names +
                         "); name one by its name" +
                         (spec.layout_tag.empty() ? " or with oci:DIR:TAG" : ""));
  if (!out.empty()) return out;
  auto rec = db.GetImage(spec.ref.str());
  if (rec) return std::vector<store::ImageRecord>{std::move(*rec)};
  if (rec.error().code != Errc::kNotFound) return std::unexpected(rec.error());
  return MakeError(Errc::kNotFound, "image `" + text + "` not found: nothing was pulled from " +
                                        "that layout (gantry pull " + text + ")");
}

}  // namespace

common::Result<std::vector<store::ImageRecord>> FindImages(store::MetadataDb& db,
                                                           const std::string& text) {
  if (text.starts_with("oci:")) return FindLayoutImages(db, text);
  std::string id = text.starts_with("sha256:") ? text.substr(7) : text;
  if (IsHexPrefix(id)) {
    ASSIGN_OR_RETURN(std::vector<store::ImageRecord> all, db.ListImages());
    std::vector<store::ImageRecord> out;
    for (auto& r : all) {
      const image::Image img = MatchView(r);
      bool config_match = img.config && img.config->str().starts_with("sha256:" + id);
      if (config_match || r.target.digest.hex().starts_with(id)) out.push_back(std::move(r));
    }
    if (!out.empty()) return out;
    if (id.size() == 64 || text.starts_with("sha256:"))
      return MakeError(Errc::kNotFound, "image `" + text + "` not found");
  }
  ASSIGN_OR_RETURN(registry::ImageRef ref, registry::ImageRef::Parse(text));
  std::vector<std::string> tried = {ref.str()};
  if (!registry::NamesRegistry(text)) {
    // Parses whenever `text` did: "localhost/" only adds a domain.
    if (auto local = registry::ImageRef::Parse("localhost/" + text)) tried.push_back(local->str());
  }
  for (const std::string& name : tried) {
    auto rec = db.GetImage(name);
    if (rec) return std::vector<store::ImageRecord>{std::move(*rec)};
    if (rec.error().code != Errc::kNotFound) return std::unexpected(rec.error());
  }
  if (tried.size() == 1) return MakeError(Errc::kNotFound, "image `" + ref.str() + "` not found");
  return MakeError(Errc::kNotFound, "image `" + text + "` not found (neither " + tried[0] +
                                        " nor " + tried[1] + ")");
}

}  // namespace cli
