#include "registry/source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "oci/descriptor.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;

constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

// The index.json entries of a layout, each with its ref name annotation.
struct LayoutEntry {
  oci::Descriptor desc;
  std::string ref_name;  // "" when not annotated
};

// What a layout's index.json says, for one tag.
struct LayoutIndex {
  std::vector<LayoutEntry> matches;  // the entries whose ref name is the tag
  size_t entries = 0;                // how many it lists
  std::string ref_names;             // every entry's, in order: "v1, v2, (untagged)"
};

// Reads `dir`'s index.json, keeping the entries whose ref name is `tag`
// (every entry when `tag` is empty). Every entry is checked as a
// descriptor, in order; each is dropped from the parsed tree once read, so
// that an index of thousands of images is never all in memory at once.
common::Result<LayoutIndex> ReadLayoutIndex(const std::filesystem::path& dir,
                                            std::string_view tag) {
  auto index_path = dir / "index.json";
  auto text = common::ReadFile(index_path, kMaxManifestSize);
  if (!text) return std::unexpected(text.error().Wrap("read OCI layout `" + dir.string() + "`"));
  LayoutIndex out;
  std::optional<common::Error> bad;  // the first entry that is not a descriptor
  std::string top_key;               // the last key of the top-level object
  bool in_manifests = false;         // inside its "manifests" array
  using Event = nlohmann::json::parse_event_t;
  auto entry = [&](int depth, Event event, nlohmann::json& parsed) {
    if (depth == 1 && event == Event::key) {
      top_key = parsed.get<std::string>();
    } else if (depth == 1 && event == Event::array_start) {
      in_manifests = top_key == "manifests";
      if (in_manifests) {  // a repeated key: the last one counts, as in a tree
        out = LayoutIndex{};
        bad.reset();
      }
    } else if (depth == 1 && event == Event::array_end) {
      in_manifests = false;
    } else if (in_manifests && depth == 2 &&
               (event == Event::object_end || event == Event::array_end || event == Event::value)) {
      // One entry of "manifests", read whole.
      auto d = oci::DescriptorFromJson(parsed);
      if (!d) {
        if (!bad) bad = d.error().Wrap("read `" + index_path.string() + "`");
        return false;
      }
      auto it = d->annotations.find(std::string(kRefNameAnnotation));
      std::string name = it == d->annotations.end() ? "" : it->second;
      if (!out.ref_names.empty()) out.ref_names += ", ";
      out.ref_names += name.empty() ? "(untagged)" : name;
      ++out.entries;
      if (tag.empty() || name == tag) out.matches.push_back({std::move(*d), std::move(name)});
      return false;  // not kept in the tree
    }
    return true;
  };
  auto j = nlohmann::json::parse(*text, entry, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("manifests") || !j["manifests"].is_array())
    return MakeError(Errc::kInvalidArgument,
                     "read OCI layout `" + dir.string() + "`: index.json is not an OCI index");
  if (bad) return std::unexpected(std::move(*bad));
  return out;
}

// A ref name that is a plain tag ("v1", "latest") rather than a reference
// ("app:v1", "quay.io/org/app:v1").
bool IsPlainTag(std::string_view ref_name) {
  return ref_name.find_first_of("/:@") == std::string_view::npos;
}

// Rule 3 of ParseSourceSpec: `localhost/BASE:TAG`.
common::Result<ImageRef> LayoutDefaultName(const std::filesystem::path& dir,
                                           const std::string& tag) {
  auto norm = std::filesystem::absolute(dir).lexically_normal();
  std::string base = norm.filename().string();
  if (base.empty()) base = norm.parent_path().filename().string();  // "DIR/"
  std::string clean;
  for (char c : base) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    clean.push_back((std::isalnum(static_cast<unsigned char>(l)) != 0) ? l : '-');
  }
  while (!clean.empty() && clean.front() == '-') clean.erase(clean.begin());
  while (!clean.empty() && clean.back() == '-') clean.pop_back();
  if (clean.empty()) clean = "image";
  return ImageRef::Parse("localhost/" + clean + ":" + (tag.empty() ? "latest" : tag));
}

// The name recorded for the image of `dir` whose ref name is `ref_name`
// (rules 2 and 3 of ParseSourceSpec).
common::Result<ImageRef> LayoutImageName(const std::filesystem::path& dir,
                                         const std::string& ref_name) {
  if (IsPlainTag(ref_name)) {
    auto r = LayoutDefaultName(dir, ref_name);
    if (r) return r;
    return MakeError(Errc::kInvalidArgument, "ref name `" + ref_name + "`: " + r.error().message +
                                                 "; give the name to record with --name");
  }
  return LocalImageName(ref_name);
}

class RegistrySource final : public ImageSource {
 public:
  RegistrySource(ImageRef ref, std::unique_ptr<RegistryClient> client)
      : ref_(std::move(ref)), client_(std::move(client)) {}

  common::Result<FetchedManifest> ResolveTop(const std::atomic<bool>* cancel) override {
    return client_->GetManifest(ref_, ref_.manifest_reference(), cancel);
  }
  common::Result<FetchedManifest> GetManifest(const common::Digest& digest,
                                              std::string_view /*media_type*/,
                                              const std::atomic<bool>* cancel) override {
    return client_->GetManifest(ref_, digest.str(), cancel);
  }
  common::Status FetchBlob(const common::Digest& digest, int64_t size, BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    return client_->FetchBlob(ref_, digest, size, sink, cancel);
  }
  std::string Describe() const override { return ref_.str(); }
  PolicyIdentity Identity() const override { return {.transport = "docker", .reference = ref_}; }
  std::optional<RegistryAccess> Registry() override {
    return RegistryAccess{.client = client_.get(), .ref = &ref_};
  }

 private:
  ImageRef ref_;
  std::unique_ptr<RegistryClient> client_;
};

class LayoutSource final : public ImageSource {
 public:
  LayoutSource(std::filesystem::path dir, std::string tag)
      : dir_(std::move(dir)), tag_(std::move(tag)) {}

  // Local files: read at once, nothing to cancel.
  common::Result<FetchedManifest> ResolveTop(const std::atomic<bool>* /*cancel*/) override {
    ASSIGN_OR_RETURN(LayoutIndex index, ReadLayoutIndex(dir_, tag_));
    const std::vector<LayoutEntry>& matches = index.matches;
    const std::string& tags = index.ref_names;
    if (matches.empty())
      return MakeError(Errc::kNotFound, "tag `" + tag_ + "` not in OCI layout `" + dir_.string() +
                                            "` (it has: " + (tags.empty() ? "nothing" : tags) +
                                            ")");
    if (matches.size() > 1)
      return MakeError(Errc::kInvalidArgument, "OCI layout `" + dir_.string() +
                                                   "` holds several images (" + tags +
                                                   "); name one with oci:DIR:TAG");
    ref_name_ = matches[0].ref_name;
    const oci::Descriptor& d = matches[0].desc;
    return ReadManifest(d.digest, d.media_type, d.size);
  }

  std::optional<LayoutOrigin> Origin() const override {
    return LayoutOrigin{.dir = CanonicalLayoutDir(dir_).string(), .ref_name = ref_name_};
  }

  common::Result<FetchedManifest> GetManifest(const common::Digest& digest,
                                              std::string_view media_type,
                                              const std::atomic<bool>* /*cancel*/) override {
    return ReadManifest(digest, std::string(media_type), -1);
  }

  common::Status FetchBlob(const common::Digest& digest, int64_t size, BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    auto path = BlobPath(digest);
    ASSIGN_OR_RETURN(common::UniqueFd fd, common::Open(path.string(), O_RDONLY));
    return StreamFileBlob(fd.get(), size, sink, cancel,
                          "blob " + digest.str() + " in `" + dir_.string() + "`");
  }
  std::optional<LocalBlob> OpenLocalBlob(const common::Digest& digest) override {
    auto fd = common::Open(BlobPath(digest).string(), O_RDONLY);
    struct stat st {};
    if (!fd || ::fstat(fd->get(), &st) != 0) return std::nullopt;
    return LocalBlob{.fd = std::move(*fd), .offset = 0, .size = st.st_size};
  }

  std::string Describe() const override {
    return "oci:" + dir_.string() + (tag_.empty() ? "" : ":" + tag_);
  }
  PolicyIdentity Identity() const override {
    return {
        .transport = "oci", .reference = std::nullopt, .path = CanonicalLayoutDir(dir_).string()};
  }

 private:
  std::filesystem::path BlobPath(const common::Digest& d) const {
    return dir_ / "blobs" / std::string(d.algorithm_name()) / d.hex();
  }

  common::Result<FetchedManifest> ReadManifest(const common::Digest& digest, std::string media_type,
                                               int64_t size) {
    auto body = common::ReadFile(BlobPath(digest), kMaxManifestSize);
    if (!body) return std::unexpected(body.error().Wrap("read manifest " + digest.str()));
    if (size >= 0 && static_cast<int64_t>(body->size()) != size)
      return MakeError(Errc::kDataLoss, "manifest " + digest.str() + " in `" + dir_.string() +
                                            "` has " + std::to_string(body->size()) +
                                            " bytes, its descriptor says " + std::to_string(size));
    auto got = common::Digest::Sha256Of(*body);
    if (got != digest)
      return MakeError(Errc::kDataLoss, "manifest " + digest.str() + " in `" + dir_.string() +
                                            "` has digest " + got.str());
    return FetchedManifest{std::move(media_type), std::move(*body), digest};
  }

  std::filesystem::path dir_;
  std::string tag_;
  std::string ref_name_;  // of the image ResolveTop chose
};

}  // namespace

common::Result<SourceSpec> ParseSourceSpec(std::string_view text, std::string_view name) {
  SourceSpec spec;
  auto what = [&] { return "name image from `" + std::string(text) + "`"; };
  if (text.starts_with("docker-archive:")) {
    std::string_view rest = text.substr(15);
    size_t colon = rest.find(':');
    spec.kind = SourceSpec::Kind::kDockerArchive;
    spec.layout_dir = std::string(rest.substr(0, colon));
    spec.layout_tag = colon == std::string_view::npos ? "" : std::string(rest.substr(colon + 1));
    if (spec.layout_dir.empty())
      return MakeError(Errc::kInvalidArgument, "parse source `" + std::string(text) +
                                                   "`: empty file after `docker-archive:`");
    common::Result<ImageRef> ref = !name.empty() ? LocalImageName(name)
                                   : spec.layout_tag.empty() || spec.layout_tag.starts_with('@')
                                       ? LayoutDefaultName(spec.layout_dir, "")
                                       : ImageRef::Parse(spec.layout_tag);
    if (!ref) return std::unexpected(ref.error().Wrap(name.empty() ? what() : "--name"));
    spec.ref = std::move(*ref);
    return spec;
  }
  const bool oci_archive = text.starts_with("oci-archive:");
  if (text.starts_with("oci:") || oci_archive) {
    std::string_view rest = text.substr(oci_archive ? 12 : 4);
    size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    std::string tag(colon == std::string_view::npos ? "" : rest.substr(colon + 1));
    if (dir.empty())
      return MakeError(Errc::kInvalidArgument,
                       "parse source `" + std::string(text) +
                           (oci_archive ? "`: empty file after `oci-archive:`"
                                        : "`: empty directory after `oci:`"));
    spec.kind = oci_archive ? SourceSpec::Kind::kOciArchive : SourceSpec::Kind::kLayout;
    spec.layout_dir = dir;
    spec.layout_tag = tag;
    if (!name.empty()) {
      auto ref = LocalImageName(name);
      if (!ref) return std::unexpected(ref.error().Wrap("--name"));
      spec.ref = std::move(*ref);
      return spec;
    }
    std::string ref_name = tag.starts_with('@') ? "" : tag;
    if (ref_name.empty() && !oci_archive) {
      // The only image's annotation; a layout that cannot be read or holds
      // several images fails the pull itself, with the reason.
      if (auto index = ReadLayoutIndex(dir, ""); index && index->matches.size() == 1)
        ref_name = index->matches[0].ref_name;
    }
    auto ref = LayoutImageName(dir, ref_name);
    if (!ref) return std::unexpected(ref.error().Wrap(what()));
    spec.ref = std::move(*ref);
    return spec;
  }
  if (!name.empty())
    return MakeError(
        Errc::kInvalidArgument,
        "--name `" + std::string(name) +
            "`: only for oci:DIR sources and archives (oci-archive:, docker-archive:; an image "
            "pulled from a registry is recorded under its reference)");
  ASSIGN_OR_RETURN(spec.ref, ImageRef::Parse(text));
  return spec;
}

common::Result<ImageRef> LocalImageName(std::string_view text) {
  if (text.find('@') != std::string_view::npos)
    return MakeError(Errc::kInvalidArgument,
                     "name `" + std::string(text) + "`: a name to record cannot hold a digest");
  if (NamesRegistry(text)) return ImageRef::Parse(text);
  auto ref = ImageRef::Parse("localhost/" + std::string(text));
  if (!ref) return std::unexpected(ref.error().Wrap("name `" + std::string(text) + "`"));
  return ref;
}

std::filesystem::path CanonicalLayoutDir(const std::filesystem::path& dir) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(dir, ec);
  if (ec) return dir.lexically_normal();
  auto canon = std::filesystem::weakly_canonical(abs, ec);
  if (ec) return abs.lexically_normal();
  // "DIR/" and "DIR" are one layout.
  std::string s = canon.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

common::Status BlobSink::WriteFromFile(int fd, int64_t file_offset, int64_t size,
                                       const std::atomic<bool>* cancel, const std::string& what) {
  std::vector<std::byte> buf(static_cast<size_t>(std::clamp<int64_t>(size, 0, 1 << 20)));
  for (int64_t done = 0; done < size;) {
    if (cancel != nullptr && cancel->load()) return MakeError(Errc::kCancelled, "cancelled");
    size_t want =
        static_cast<size_t>(std::min<int64_t>(size - done, static_cast<int64_t>(buf.size())));
    ssize_t n = ::pread(fd, buf.data(), want, file_offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError("read " + what);
    }
    if (n == 0)
      return MakeError(Errc::kDataLoss, what + " is shorter than its descriptor's " +
                                            std::to_string(offset() + size - done) + " bytes");
    TRY(Write(std::span<const std::byte>(buf.data(), static_cast<size_t>(n))));
    done += n;
  }
  return {};
}

common::Status StreamFileBlob(int fd, int64_t size, BlobSink& sink, const std::atomic<bool>* cancel,
                              const std::string& what, int64_t file_offset) {
  int64_t off = sink.offset();
  if (off > size) {
    TRY(sink.Restart());
    off = 0;
  }
  if (off == size) return {};
  return sink.WriteFromFile(fd, file_offset + off, size - off, cancel, what);
}

common::Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const ImageRef& ref,
                                                                ClientOptions options) {
  ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> client,
                   RegistryClient::Create(std::move(options)));
  return std::unique_ptr<ImageSource>(std::make_unique<RegistrySource>(ref, std::move(client)));
}

common::Result<std::unique_ptr<ImageSource>> OpenLayoutSource(const std::filesystem::path& dir,
                                                              const std::string& tag) {
  if (!std::filesystem::is_regular_file(dir / "oci-layout"))
    return MakeError(Errc::kNotFound,
                     "open OCI layout `" + dir.string() + "`: no `oci-layout` file there");
  return std::unique_ptr<ImageSource>(std::make_unique<LayoutSource>(dir, tag));
}

}  // namespace registry
