#include "archive/archive_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "archive/archive_contents.h"
#include "archive/tar_index.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "registry/platform_manifest.h"

namespace archives {
namespace {

using common::Errc;
using common::MakeError;
using registry::SourceSpec;

constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
// manifest.json and index.json: a few hundred bytes per image.
constexpr size_t kMaxListSize = 16u << 20;

common::Result<nlohmann::json> ReadJson(const ArchiveContents& f, std::string_view name) {
  ASSIGN_OR_RETURN(const ContentEntry* e, f.Need(name, "file"));
  ASSIGN_OR_RETURN(std::string text, f.Read(*e, kMaxListSize));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return MakeError(Errc::kInvalidArgument,
                     "archive `" + f.what() + "`: `" + std::string(name) + "` is not JSON");
  return j;
}

// "@N" → N; nullopt for anything else.
std::optional<size_t> Position(std::string_view sel) {
  if (!sel.starts_with('@') || sel.size() < 2 || sel.size() > 10) return std::nullopt;
  size_t n = 0;
  for (char c : sel.substr(1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

// Picks one of `count` images by `sel` ("", "@N", or a name `matches`
// accepts). `names` lists them for the message.
common::Result<size_t> Select(const std::string& file, std::string_view sel, size_t count,
                              const std::function<bool(size_t)>& matches,
                              const std::string& names) {
  auto where = "archive `" + file + "`";
  if (count == 0) return MakeError(Errc::kNotFound, where + " holds no image");
  if (sel.empty()) {
    if (count == 1) return size_t{0};
    return MakeError(Errc::kInvalidArgument, where + " holds " + std::to_string(count) +
                                                 " images (" + names +
                                                 "); name one as FILE:NAME "
                                                 "or FILE:@N");
  }
  if (auto n = Position(sel)) {
    if (*n < count) return *n;
    return MakeError(Errc::kNotFound, where + " has no image @" + std::to_string(*n) + " (it has " +
                                          std::to_string(count) + ")");
  }
  for (size_t i = 0; i < count; ++i)
    if (matches(i)) return i;
  return MakeError(Errc::kNotFound,
                   where + " has no image `" + std::string(sel) + "` (it has: " + names + ")");
}

// --- docker-archive ---------------------------------------------------------

struct DockerEntry {
  std::string config;
  std::vector<std::string> repo_tags;
  std::vector<std::string> layers;
};

common::Result<std::vector<DockerEntry>> ReadDockerManifest(const ArchiveContents& f) {
  ASSIGN_OR_RETURN(nlohmann::json j, ReadJson(f, "manifest.json"));
  auto bad = [&](const std::string& why) {
    return MakeError(Errc::kInvalidArgument, "archive `" + f.what() + "`: manifest.json: " + why);
  };
  if (!j.is_array()) return bad("not an array");
  std::vector<DockerEntry> out;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string())
      return bad("an entry without Config");
    DockerEntry d{.config = e["Config"].get<std::string>(), .repo_tags = {}, .layers = {}};
    for (const char* key : {"RepoTags", "Layers"}) {
      if (!e.contains(key) || e[key].is_null()) continue;
      if (!e[key].is_array()) return bad(std::string(key) + " is not an array");
      for (const auto& v : e[key]) {
        if (!v.is_string()) return bad(std::string(key) + " holds a non-string");
        (std::string_view(key) == "Layers" ? d.layers : d.repo_tags)
            .push_back(v.get<std::string>());
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

// The sha256 an entry's name states: `<hex>.tar`, `<hex>.json`,
// `blobs/sha256/<hex>` (skopeo and docker 25+ name blobs by digest).
std::optional<common::Digest> NamedDigest(std::string_view name) {
  if (name.starts_with("blobs/sha256/")) name.remove_prefix(13);
  if (name.ends_with(".tar") || name.ends_with(".json")) name = name.substr(0, name.rfind('.'));
  if (name.size() != 64) return std::nullopt;
  auto d = common::Digest::Parse("sha256:" + std::string(name));
  return d ? std::optional(*d) : std::nullopt;
}

std::string LayerMediaType(std::string_view head) {
  if (head.starts_with("\x1f\x8b")) return "application/vnd.oci.image.layer.v1.tar+gzip";
  if (head.starts_with("\x28\xb5\x2f\xfd")) return "application/vnd.oci.image.layer.v1.tar+zstd";
  return "application/vnd.oci.image.layer.v1.tar";
}

std::string NormalName(const std::string& tag) {
  auto r = registry::ImageRef::Parse(tag);
  return r ? r->str() : tag;
}

// An entry whose bytes do not have the digest the archive states for them.
std::unexpected<common::Error> WrongDigest(const ArchiveContents& f, const ContentEntry& e,
                                           const common::Digest& got,
                                           const common::Digest& stated) {
  return MakeError(Errc::kDataLoss, "archive `" + f.what() + "` entry `" + e.name +
                                        "` has digest " + got.str() + ", not " + stated.str() +
                                        " (its diffID or name)");
}

std::unexpected<common::Error> WrongSize(const ArchiveContents& f, const ContentEntry& e,
                                         int64_t got, int64_t stated) {
  return MakeError(Errc::kDataLoss, "archive `" + f.what() + "` entry `" + e.name + "` has " +
                                        std::to_string(got) + " bytes, its descriptor says " +
                                        std::to_string(stated));
}

// A source that serves one built manifest and entries of the archive by
// digest.
class TarBlobSource : public ArchiveImage {
 public:
  TarBlobSource(std::shared_ptr<ArchiveContents> file, std::string describe)
      : file_(std::move(file)), describe_(std::move(describe)) {}

  // A digest the archive only states (a diffID, a file name) is not
  // hashed here: the store hashes every blob as it takes it and refuses a
  // wrong one (DataLoss, nothing kept), and DescribeBlob names the entry
  // in that error.
  common::Status FetchBlob(const common::Digest& digest, int64_t size, registry::BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    auto it = blobs_.find(digest);
    if (it == blobs_.end())
      return MakeError(Errc::kNotFound, "blob " + digest.str() + " is not in " + describe_);
    return file_->Stream(*it->second, size, sink, cancel);
  }
  std::optional<registry::LocalBlob> OpenLocalBlob(const common::Digest& digest) override {
    const ContentEntry* e = EntryOf(digest);
    if (e == nullptr) return std::nullopt;
    common::UniqueFd fd(::fcntl(e->fd, F_DUPFD_CLOEXEC, 0));
    if (!fd) return std::nullopt;
    return registry::LocalBlob{.fd = std::move(fd), .offset = e->offset, .size = e->size};
  }
  std::string DescribeBlob(const common::Digest& digest) const override {
    auto it = blobs_.find(digest);
    if (it == blobs_.end()) return describe_;
    return "archive `" + file_->what() + "` entry `" + it->second->name + "`" +
           (stated_.contains(digest) ? " (the digest is the archive's word: its diffID or name)"
                                     : "");
  }
  std::string Describe() const override { return describe_; }

  common::Result<std::vector<const ContentEntry*>> BlobEntries(const oci::Platform&) override {
    std::vector<const ContentEntry*> out;
    for (const auto& [digest, e] : blobs_) out.push_back(e);
    return out;
  }

 protected:
  // The entry holding a blob; null when there is none.
  virtual const ContentEntry* EntryOf(const common::Digest& digest) const {
    auto it = blobs_.find(digest);
    return it == blobs_.end() ? nullptr : it->second;
  }

  std::shared_ptr<ArchiveContents> file_;
  std::string describe_;
  std::map<common::Digest, const ContentEntry*> blobs_;
  std::set<common::Digest> stated_;  // digests taken from the archive's word
};

class DockerArchiveSource final : public TarBlobSource {
 public:
  using TarBlobSource::TarBlobSource;

  common::Status Build(const DockerEntry& d) {
    auto where = [&](const std::string& entry) {
      return "archive `" + file_->what() + "` entry `" + entry + "`";
    };
    ASSIGN_OR_RETURN(const ContentEntry* ce, file_->Need(d.config, "config"));
    ASSIGN_OR_RETURN(std::string config, file_->Read(*ce, oci::kMaxConfigSize));
    auto parsed = oci::ParseImageConfig(config);
    if (!parsed) return std::unexpected(parsed.error().Wrap(where(d.config)));
    if (parsed->diff_ids.size() != d.layers.size())
      return MakeError(Errc::kInvalidArgument, where(d.config) + ": the config lists " +
                                                   std::to_string(parsed->diff_ids.size()) +
                                                   " diffIDs, manifest.json " +
                                                   std::to_string(d.layers.size()) + " layers");
    common::Digest config_digest = common::Digest::Sha256Of(config);
    blobs_[config_digest] = ce;
    nlohmann::json layers = nlohmann::json::array();
    for (size_t i = 0; i < d.layers.size(); ++i) {
      ASSIGN_OR_RETURN(const ContentEntry* le, file_->Need(d.layers[i], "layer"));
      std::string media_type = LayerMediaType(file_->Head(*le));
      std::optional<common::Digest> stated =
          media_type.ends_with(".tar") ? std::optional(parsed->diff_ids[i]) : NamedDigest(le->name);
      std::optional<common::Digest> digest;
      if (le->sha256) {
        // Read from a stream, hashed on the way: a wrong diffID or name
        // fails now, before anything reaches the store.
        if (stated && *stated != *le->sha256) return WrongDigest(*file_, *le, *le->sha256, *stated);
        digest = le->sha256;
      } else if (stated) {
        digest = stated;
        stated_.insert(*digest);
      } else {
        auto h = file_->HashPrefix(*le, le->size);
        if (!h) return std::unexpected(h.error());
        digest = h->Finish();
      }
      blobs_[*digest] = le;
      layers.push_back({{"mediaType", media_type}, {"digest", digest->str()}, {"size", le->size}});
    }
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                        {"config",
                         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                          {"digest", config_digest.str()},
                          {"size", static_cast<int64_t>(config.size())}}},
                        {"layers", std::move(layers)}};
    std::string body = m.dump();
    common::Digest digest = common::Digest::Sha256Of(body);
    manifest_ = registry::FetchedManifest{"application/vnd.oci.image.manifest.v1+json",
                                          std::move(body), digest};
    return {};
  }

  common::Result<registry::FetchedManifest> ResolveTop(const std::atomic<bool>*) override {
    return manifest_;
  }
  common::Result<registry::FetchedManifest> GetManifest(const common::Digest& digest,
                                                        std::string_view,
                                                        const std::atomic<bool>*) override {
    if (digest != manifest_.digest)
      return MakeError(Errc::kNotFound, "manifest " + digest.str() + " is not in " + describe_);
    return manifest_;
  }

 private:
  registry::FetchedManifest manifest_;
};

// --- oci-archive -------------------------------------------------------------

struct OciEntry {
  oci::Descriptor desc;
  std::string ref_name;
};

common::Result<std::vector<OciEntry>> ReadOciIndex(const ArchiveContents& f) {
  if (!f.Has("oci-layout"))
    return MakeError(Errc::kInvalidArgument, "archive `" + f.what() +
                                                 "` is neither a docker-archive (no manifest.json) "
                                                 "nor an OCI layout (no oci-layout)");
  ASSIGN_OR_RETURN(nlohmann::json j, ReadJson(f, "index.json"));
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array())
    return MakeError(Errc::kInvalidArgument,
                     "archive `" + f.what() + "`: index.json is not an OCI index");
  std::vector<OciEntry> out;
  for (const auto& e : j["manifests"]) {
    auto d = oci::DescriptorFromJson(e);
    if (!d) return std::unexpected(d.error().Wrap("archive `" + f.what() + "`: index.json"));
    auto it = d->annotations.find(std::string(kRefNameAnnotation));
    std::string name = it == d->annotations.end() ? "" : it->second;
    out.push_back({std::move(*d), std::move(name)});
  }
  return out;
}

class OciArchiveSource final : public TarBlobSource {
 public:
  OciArchiveSource(std::shared_ptr<ArchiveContents> file, std::string describe, oci::Descriptor top)
      : TarBlobSource(std::move(file), std::move(describe)), top_(std::move(top)) {}

  common::Result<registry::FetchedManifest> ResolveTop(const std::atomic<bool>*) override {
    return Read(top_.digest, top_.media_type, top_.size);
  }
  common::Result<registry::FetchedManifest> GetManifest(const common::Digest& digest,
                                                        std::string_view media_type,
                                                        const std::atomic<bool>*) override {
    return Read(digest, std::string(media_type), -1);
  }
  common::Status FetchBlob(const common::Digest& digest, int64_t size, registry::BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    ASSIGN_OR_RETURN(const ContentEntry* e, file_->Need(LayoutBlobName(digest), "blob"));
    return file_->Stream(*e, size, sink, cancel);
  }

  // The top manifest, the platform's manifest when the top is an index, its
  // config and its layers; each present and, when its digest is known (a
  // streamed archive), equal to the one its descriptor states.
  common::Result<std::vector<const ContentEntry*>> BlobEntries(
      const oci::Platform& platform) override {
    std::vector<const ContentEntry*> out;
    ASSIGN_OR_RETURN(registry::FetchedManifest m, Read(top_.digest, top_.media_type, top_.size));
    ASSIGN_OR_RETURN(const ContentEntry* top, file_->Need(LayoutBlobName(top_.digest), "manifest"));
    out.push_back(top);
    ASSIGN_OR_RETURN(std::optional<oci::IndexEntry> entry,
                     registry::SelectPlatformEntry(*this, m, platform));
    if (entry) {
      const oci::Descriptor& d = entry->descriptor;
      ASSIGN_OR_RETURN(m, Read(d.digest, d.media_type, d.size));
      ASSIGN_OR_RETURN(const ContentEntry* e, file_->Need(LayoutBlobName(d.digest), "manifest"));
      out.push_back(e);
    }
    ASSIGN_OR_RETURN(oci::Manifest manifest, oci::ParseManifest(m.body, m.media_type));
    std::vector<oci::Descriptor> blobs = {manifest.config};
    blobs.insert(blobs.end(), manifest.layers.begin(), manifest.layers.end());
    for (const oci::Descriptor& d : blobs) {
      ASSIGN_OR_RETURN(const ContentEntry* e, file_->Need(LayoutBlobName(d.digest), "blob"));
      if (e->sha256 && *e->sha256 != d.digest) return WrongDigest(*file_, *e, *e->sha256, d.digest);
      if (e->size != d.size) return WrongSize(*file_, *e, e->size, d.size);
      out.push_back(e);
    }
    return out;
  }

 private:
  const ContentEntry* EntryOf(const common::Digest& digest) const override {
    return file_->Find(LayoutBlobName(digest));
  }
  common::Result<registry::FetchedManifest> Read(const common::Digest& digest,
                                                 std::string media_type, int64_t size) {
    ASSIGN_OR_RETURN(const ContentEntry* e, file_->Need(LayoutBlobName(digest), "manifest"));
    ASSIGN_OR_RETURN(std::string body, file_->Read(*e, registry::kMaxManifestSize));
    auto where = "archive `" + file_->what() + "` entry `" + e->name + "`";
    if (size >= 0 && static_cast<int64_t>(body.size()) != size)
      return WrongSize(*file_, *e, static_cast<int64_t>(body.size()), size);
    if (auto got = common::Digest::Sha256Of(body); got != digest)
      return MakeError(Errc::kDataLoss, where + " has digest " + got.str());
    return registry::FetchedManifest{std::move(media_type), std::move(body), digest};
  }

  oci::Descriptor top_;
};

std::string Describe(const SourceSpec& spec) {
  std::string kind =
      spec.kind == SourceSpec::Kind::kDockerArchive ? "docker-archive:" : "oci-archive:";
  return kind + spec.layout_dir.string() + (spec.layout_tag.empty() ? "" : ":" + spec.layout_tag);
}

template <class T>
std::string Join(const std::vector<T>& items, const std::function<std::string(const T&)>& name) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + name(i);
  return out;
}

std::string DockerNames(const DockerEntry& d) {
  return d.repo_tags.empty() ? "(untagged)"
                             : Join<std::string>(d.repo_tags, [](const auto& s) { return s; });
}

}  // namespace

common::Result<std::unique_ptr<ArchiveImage>> OpenArchiveImage(
    std::shared_ptr<ArchiveContents> file, const SourceSpec& spec) {
  const std::string& sel = spec.layout_tag;
  if (spec.kind == SourceSpec::Kind::kDockerArchive) {
    ASSIGN_OR_RETURN(std::vector<DockerEntry> entries, ReadDockerManifest(*file));
    std::string want = NormalName(sel);
    ASSIGN_OR_RETURN(size_t i, Select(
                                   file->what(), sel, entries.size(),
                                   [&](size_t k) {
                                     for (const auto& t : entries[k].repo_tags)
                                       if (NormalName(t) == want) return true;
                                     return false;
                                   },
                                   Join<DockerEntry>(entries, DockerNames)));
    auto src = std::make_unique<DockerArchiveSource>(file, Describe(spec));
    TRY(src->Build(entries[i]));
    src->identity().transport = "docker-archive";
    return std::unique_ptr<ArchiveImage>(std::move(src));
  }
  ASSIGN_OR_RETURN(std::vector<OciEntry> entries, ReadOciIndex(*file));
  ASSIGN_OR_RETURN(size_t i, Select(
                                 file->what(), sel, entries.size(),
                                 [&](size_t k) { return entries[k].ref_name == sel; },
                                 Join<OciEntry>(entries, [](const OciEntry& e) {
                                   return e.ref_name.empty() ? "(untagged)" : e.ref_name;
                                 })));
  auto src = std::make_unique<OciArchiveSource>(file, Describe(spec), entries[i].desc);
  src->identity().transport = "oci-archive";
  return std::unique_ptr<ArchiveImage>(std::move(src));
}

common::Result<std::unique_ptr<registry::ImageSource>> OpenArchiveSource(const SourceSpec& spec) {
  ASSIGN_OR_RETURN(std::shared_ptr<ArchiveContents> file,
                   ArchiveContents::OpenFile(spec.layout_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveImage> image, OpenArchiveImage(std::move(file), spec));
  image->identity().path = registry::CanonicalLayoutDir(spec.layout_dir).string();
  return std::unique_ptr<registry::ImageSource>(std::move(image));
}

std::optional<registry::ImageRef> ArchiveImageName(const SourceSpec& spec) {
  auto file = ArchiveContents::OpenFile(spec.layout_dir);
  if (!file) return std::nullopt;
  if (spec.kind == SourceSpec::Kind::kDockerArchive) {
    auto entries = ReadDockerManifest(**file);
    if (!entries || entries->size() != 1 || (*entries)[0].repo_tags.empty()) return std::nullopt;
    auto r = registry::ImageRef::Parse((*entries)[0].repo_tags[0]);
    return r ? std::optional(*r) : std::nullopt;
  }
  auto entries = ReadOciIndex(**file);
  if (!entries || entries->size() != 1 || (*entries)[0].ref_name.empty()) return std::nullopt;
  auto s = registry::ParseSourceSpec("oci-archive:" + spec.layout_dir.string() + ":" +
                                     (*entries)[0].ref_name);
  return s ? std::optional(s->ref) : std::nullopt;
}

namespace {

// One image of an archive: its names, or none.
struct FoundImage {
  std::vector<std::string> names;  // as ParseSourceSpec takes them after FILE:
  std::string selector;
};

struct FoundImages {
  SourceSpec::Kind kind;
  std::string prefix;  // "docker-archive:", …
  std::vector<FoundImage> images;
};

// A docker-archive when it has manifest.json, else an oci-archive.
common::Result<FoundImages> FindArchiveImages(const ArchiveContents& file) {
  FoundImages out;
  if (file.Has("manifest.json")) {
    out.kind = SourceSpec::Kind::kDockerArchive;
    out.prefix = "docker-archive:";
    ASSIGN_OR_RETURN(std::vector<DockerEntry> entries, ReadDockerManifest(file));
    for (size_t i = 0; i < entries.size(); ++i)
      out.images.push_back({entries[i].repo_tags, "@" + std::to_string(i)});
    return out;
  }
  out.kind = SourceSpec::Kind::kOciArchive;
  out.prefix = "oci-archive:";
  ASSIGN_OR_RETURN(std::vector<OciEntry> entries, ReadOciIndex(file));
  for (size_t i = 0; i < entries.size(); ++i)
    out.images.push_back({entries[i].ref_name.empty() ? std::vector<std::string>{}
                                                      : std::vector{entries[i].ref_name},
                          "@" + std::to_string(i)});
  return out;
}

// The load items of `found`: `input` is the FILE of their source specs
// (it names untagged images), `what` the input in errors.
common::Result<std::vector<LoadItem>> NameLoadItems(const FoundImages& found,
                                                    const std::string& input,
                                                    const std::string& what,
                                                    std::string_view name) {
  if (!name.empty() && found.images.size() != 1)
    return MakeError(Errc::kInvalidArgument,
                     "load `" + what + "`: --name needs an archive of one image (it holds " +
                         std::to_string(found.images.size()) + ")");
  size_t untagged = 0;
  for (const auto& f : found.images) untagged += f.names.empty() ? 1 : 0;
  std::vector<LoadItem> out;
  std::map<std::string, size_t> owner;  // name recorded → image
  for (size_t i = 0; i < found.images.size(); ++i) {
    std::vector<std::string> names = found.images[i].names;
    bool is_untagged = names.empty() || !name.empty();
    if (is_untagged) names = {""};
    for (const auto& n : names) {
      std::string text = found.prefix + input;
      if (!n.empty()) text += ":" + n;
      ASSIGN_OR_RETURN(SourceSpec spec, registry::ParseSourceSpec(text, name));
      if (name.empty() && n.empty() && untagged > 1) {
        auto r = registry::ImageRef::Parse(spec.ref.str().substr(0, spec.ref.str().rfind(':')) +
                                           ":" + std::to_string(i));
        if (r) spec.ref = *r;
      }
      spec.kind = found.kind;
      spec.layout_tag = found.images[i].selector;
      auto [it, fresh] = owner.emplace(spec.ref.str(), i);
      if (!fresh && it->second != i)
        return MakeError(Errc::kInvalidArgument, "load `" + what + "`: the name `" +
                                                     spec.ref.str() +
                                                     "` is given to two images of the archive");
      if (fresh) out.push_back({std::move(spec), is_untagged});
    }
  }
  return out;
}

}  // namespace

common::Result<std::vector<LoadItem>> ListLoadItems(const std::filesystem::path& input,
                                                    std::string_view name) {
  if (!std::filesystem::is_directory(input)) {
    ASSIGN_OR_RETURN(std::shared_ptr<ArchiveContents> file, ArchiveContents::OpenFile(input));
    ASSIGN_OR_RETURN(FoundImages found, FindArchiveImages(*file));
    return NameLoadItems(found, input.string(), input.string(), name);
  }
  // An OCI layout directory: the existing oci: source, each entry by its
  // ref name (the layout source selects by it).
  FoundImages found{.kind = SourceSpec::Kind::kLayout, .prefix = "oci:", .images = {}};
  auto text = common::ReadFile(input / "index.json", kMaxListSize);
  if (!text) return std::unexpected(text.error().Wrap("load `" + input.string() + "`"));
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("manifests") || !j["manifests"].is_array())
    return MakeError(Errc::kInvalidArgument,
                     "load `" + input.string() + "`: index.json is not an OCI index");
  for (const auto& e : j["manifests"]) {
    std::string ref_name;
    if (e.is_object() && e.contains("annotations") && e["annotations"].is_object() &&
        e["annotations"].contains(kRefNameAnnotation) &&
        e["annotations"][kRefNameAnnotation].is_string())
      ref_name = e["annotations"][kRefNameAnnotation].get<std::string>();
    if (ref_name.empty() && j["manifests"].size() > 1)
      return MakeError(Errc::kInvalidArgument,
                       "load `" + input.string() +
                           "`: an image of the layout has no ref name; load it with gantry pull "
                           "oci:DIR");
    found.images.push_back(
        {ref_name.empty() ? std::vector<std::string>{} : std::vector{ref_name}, ref_name});
  }
  return NameLoadItems(found, input.string(), input.string(), name);
}

common::Result<std::vector<LoadItem>> ListLoadItems(const ArchiveContents& contents,
                                                    std::string_view base, std::string_view name) {
  ASSIGN_OR_RETURN(FoundImages found, FindArchiveImages(contents));
  return NameLoadItems(found, std::string(base), contents.what(), name);
}

}  // namespace archives
