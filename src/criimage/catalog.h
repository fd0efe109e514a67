#pragma once
// The images of a store as the CRI sees them: one Image per image id (the
// config digest), with every name that points at it. Internal to criimage.
//
// The catalog keeps the grouped list in memory and rebuilds it when the
// metadata database changed (MetadataDb::DataVersion, which sees commits of
// every other connection and process) or after its own RemoveImage, so a
// `gantry pull` or `gantry rmi` in another process is visible to the next
// call. What it reads from content (manifest and config) is cached by
// digest: content-addressed, it never changes.
//
// Thread-safety: every method is safe to call from many threads.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "image/image_record.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace criimage {

struct CatalogImage {
  std::string id;                         // config digest ("sha256:…"), never empty
  std::vector<std::string> repo_tags;     // "host/path:tag", sorted
  std::vector<std::string> repo_digests;  // "host/path@sha256:…", sorted
  uint64_t size = 0;                      // upkeep::ImageContentSize, > 0
  std::optional<int64_t> uid;             // from the config's User when numeric
  std::string username;                   // from the config's User otherwise
  bool pinned = false;
  std::vector<std::string> names;  // the image records (store keys)
  std::string manifest;            // recorded platform manifest digest ("" when none)
  std::string platform;            // "" when not recorded
  std::string chain;               // recorded top chainID ("" until unpacked, or no layers)
};

class Catalog {
 public:
  // `pinned`: references (normalised here) or image ids whose images are
  // reported pinned; an image one of whose names the store pins
  // (MetadataDb::ListPins) is pinned too. REQUIRES: `content` and `db` outlive the catalog.
  Catalog(const store::ContentStore& content, store::MetadataDb& db,
          std::vector<std::string> pinned);

  // Every image, sorted by id.
  [[nodiscard]] common::Result<std::vector<CatalogImage>> List();
  // The image `text` names: an image id ("sha256:<hex>" or the bare hex),
  // a reference with a tag, or a name@digest (a repo digest or a name
  // pulled by digest). nullopt when none. Errors: InvalidArgument for an
  // empty text or one that is neither an id nor a reference.
  [[nodiscard]] common::Result<std::optional<CatalogImage>> Find(const std::string& text);
  // Removes every name of the image `text` names (all its tags, as the CRI
  // wants); Ok when there is none. Content is left for `gantry prune`.
  [[nodiscard]] common::Status Remove(const std::string& text);
  // The image config as stored (JSON text). Errors: NotFound.
  [[nodiscard]] common::Result<std::string> ConfigJson(const CatalogImage& image);

 private:
  struct Facts {  // what the content says about one platform manifest
    int64_t size = 0;
    std::optional<int64_t> uid;
    std::string username;
  };
  struct Snapshot {
    std::vector<CatalogImage> images;       // sorted by id
    std::map<std::string, size_t> by_id;    // id → images index
    std::map<std::string, size_t> by_name;  // record name and repo digest → index
  };
  [[nodiscard]] common::Result<std::shared_ptr<const Snapshot>> Current();
  [[nodiscard]] common::Result<std::shared_ptr<const Snapshot>> Build();
  Facts FactsFor(const image::Image& image);
  std::optional<size_t> Lookup(const Snapshot& s, const std::string& text,
                               common::Status* error) const;

  const store::ContentStore& content_;
  store::MetadataDb& db_;
  std::set<std::string> pinned_;
  std::mutex mu_;  // guards the three below
  std::shared_ptr<const Snapshot> snapshot_;
  int64_t data_version_ = -1;
  std::map<std::string, Facts> facts_;  // by config digest + target size key
};

}  // namespace criimage
