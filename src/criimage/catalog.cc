#include "criimage/catalog.h"

#include <algorithm>
#include <charconv>

#include "image/image_record.h"
#include "oci/manifest.h"
#include "registry/reference.h"
#include "upkeep/image_size.h"

namespace criimage {
namespace {

bool IsHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "host/path:tag" → "host/path"; "host/path@sha256:…" → "host/path".
std::string RepoOf(const std::string& name) {
  auto at = name.find('@');
  std::string repo = at == std::string::npos ? name : name.substr(0, at);
  auto slash = repo.rfind('/');
  auto colon = repo.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    repo.resize(colon);
  return repo;
}

// The normalised form of a pinned entry or a looked-up text: an image id
// stays as "sha256:<hex>", a reference is normalised; "" when neither.
std::string Normalise(const std::string& text) {
  if (IsHex64(text)) return "sha256:" + text;
  if (text.starts_with("sha256:") && IsHex64(std::string_view(text).substr(7))) return text;
  auto ref = registry::ImageRef::Parse(text);
  return ref ? ref->str() : std::string();
}

}  // namespace

Catalog::Catalog(const store::ContentStore& content, store::MetadataDb& db,
                 std::vector<std::string> pinned)
    : content_(content), db_(db) {
  for (const auto& p : pinned)
    if (auto n = Normalise(p); !n.empty()) pinned_.insert(n);
}

Catalog::Facts Catalog::FactsFor(const image::Image& img) {
  const std::string key = img.target.digest.str() + "|" +
                          (img.manifest ? img.manifest->str() : std::string()) + "|" +
                          (img.config ? img.config->str() : std::string());
  if (auto it = facts_.find(key); it != facts_.end()) return it->second;
  Facts f;
  f.size = upkeep::ImageContentSize(content_, img);
  if (img.config) {
    if (auto body = content_.ReadBlob(*img.config)) {
      if (auto cfg = oci::ParseImageConfig(*body)) {
        // User is "user", "uid", "user:group" or "uid:gid"; the CRI wants
        // the user part as a uid when numeric, else as a name.
        std::string user = cfg->user.substr(0, cfg->user.find(':'));
        int64_t uid = 0;
        auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), uid);
        if (!user.empty() && ec == std::errc() && end == user.data() + user.size())
          f.uid = uid;
        else
          f.username = user;
      }
    }
  }
  facts_[key] = f;
  return f;
}

common::Result<std::shared_ptr<const Catalog::Snapshot>> Catalog::Build() {
  ASSIGN_OR_RETURN(std::vector<store::ImageRecord> records, db_.ListImages());
  // Pins of pre-pull lists (image/prepull.h) name image records; the
  // table changes move DataVersion like any other commit.
  ASSIGN_OR_RETURN(std::vector<store::PinRecord> pins, db_.ListPins());
  std::set<std::string> pinned_names;
  for (const auto& p : pins) pinned_names.insert(p.name);
  auto snap = std::make_shared<Snapshot>();
  std::map<std::string, CatalogImage> by_id;
  for (const auto& r : records) {
    // A record whose labels do not parse is still listed, by its target,
    // as `gantry images` lists it: hidden, its name could be neither seen
    // nor removed through the CRI. `gantry fsck` reports it.
    auto parsed = image::FromRecord(r);
    const image::Image rec = parsed ? std::move(*parsed) : image::FromRecordColumns(r);
    const std::string id = image::ImageId(rec).str();  // never empty
    CatalogImage& img = by_id[id];
    if (img.id.empty()) {
      Facts f = FactsFor(rec);
      img.id = id;
      img.size = static_cast<uint64_t>(std::max<int64_t>(f.size, 1));
      img.uid = f.uid;
      img.username = f.username;
      img.manifest = rec.manifest ? rec.manifest->str() : std::string();
      img.platform = rec.platform;
    }
    if (img.chain.empty() && rec.top_chain) img.chain = rec.top_chain->str();
    img.names.push_back(r.name);
    if (r.name.find('@') == std::string::npos) img.repo_tags.push_back(r.name);
    img.repo_digests.push_back(RepoOf(r.name) + "@" + r.target.digest.str());
  }
  for (auto& [id, img] : by_id) {
    std::sort(img.repo_tags.begin(), img.repo_tags.end());
    std::sort(img.repo_digests.begin(), img.repo_digests.end());
    img.repo_digests.erase(std::unique(img.repo_digests.begin(), img.repo_digests.end()),
                           img.repo_digests.end());
    img.pinned = pinned_.contains(img.id);
    for (const auto& n : img.names) img.pinned = img.pinned || pinned_names.contains(n);
    for (const auto& t : img.repo_tags) img.pinned = img.pinned || pinned_.contains(t);
    for (const auto& d : img.repo_digests) img.pinned = img.pinned || pinned_.contains(d);
    const size_t index = snap->images.size();
    snap->by_id[id] = index;
    for (const auto& n : img.names) snap->by_name[n] = index;
    for (const auto& d : img.repo_digests) snap->by_name.emplace(d, index);
    snap->images.push_back(std::move(img));
  }
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

common::Result<std::shared_ptr<const Catalog::Snapshot>> Catalog::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(int64_t version, db_.DataVersion());
  if (!snapshot_ || version != data_version_) {
    ASSIGN_OR_RETURN(snapshot_, Build());
    data_version_ = version;
  }
  return snapshot_;
}

std::optional<size_t> Catalog::Lookup(const Snapshot& s, const std::string& text,
                                      common::Status* error) const {
  const std::string n = Normalise(text);
  if (n.empty()) {
    auto ref = registry::ImageRef::Parse(text);
    *error =
        std::unexpected(ref ? common::Error{common::Errc::kInvalidArgument, 0,
                                            "image `" + text + "`: not an image id or reference"}
                            : ref.error());
    return std::nullopt;
  }
  if (auto it = s.by_id.find(n); it != s.by_id.end()) return it->second;
  if (auto it = s.by_name.find(n); it != s.by_name.end()) return it->second;
  return std::nullopt;
}

common::Result<std::vector<CatalogImage>> Catalog::List() {
  ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> s, Current());
  return s->images;
}

common::Result<std::optional<CatalogImage>> Catalog::Find(const std::string& text) {
  if (text.empty())
    return common::MakeError(common::Errc::kInvalidArgument, "image spec: empty image");
  ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> s, Current());
  common::Status error;
  auto index = Lookup(*s, text, &error);
  if (!error) return std::unexpected(error.error());
  if (!index) return std::optional<CatalogImage>{};
  return std::optional<CatalogImage>(s->images[*index]);
}

common::Status Catalog::Remove(const std::string& text) {
  ASSIGN_OR_RETURN(std::optional<CatalogImage> img, Find(text));
  if (!img) return {};
  {
    ASSIGN_OR_RETURN(store::Txn txn, db_.Begin());
    for (const auto& name : img->names) {
      auto st = txn.DeleteImage(name);
      // Gone already (another remover): removal is idempotent.
      if (!st && st.error().code != common::Errc::kNotFound)
        return std::unexpected(st.error().Wrap("remove image " + img->id));
    }
    TRY(common::Wrap(txn.Commit(), "remove image " + img->id));
  }
  // Our own commit does not move DataVersion: drop the snapshot.
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_.reset();
  return {};
}

common::Result<std::string> Catalog::ConfigJson(const CatalogImage& image) {
  auto d = common::Digest::Parse(image.id);
  if (!d) return std::unexpected(d.error());
  return content_.ReadBlob(*d);
}

}  // namespace criimage
