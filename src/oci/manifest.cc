#include "oci/manifest.h"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "common/bounded_json.h"

namespace oci {
namespace {

using common::Errc;
using common::MakeError;
using nlohmann::json;

common::Result<json> TopLevelObject(json j, std::string_view what) {
  if (!j.is_object())
    return MakeError(Errc::kInvalidArgument,
                     "parse " + std::string(what) + ": top level is not an object");
  return j;
}

common::Result<json> ParseJson(std::string_view body, std::string_view what) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return MakeError(Errc::kInvalidArgument, "parse " + std::string(what) + ": invalid JSON");
  return TopLevelObject(std::move(j), what);
}

common::Result<std::string> OptString(const json& j, const char* key, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return MakeError(Errc::kInvalidArgument,
                     "parse " + std::string(what) + ": `" + key + "` is not a string");
  return it->get<std::string>();
}

common::Result<std::vector<std::string>> OptStrings(const json& j, const char* key,
                                                    std::string_view what) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array())
    return MakeError(Errc::kInvalidArgument,
                     "parse " + std::string(what) + ": `" + key + "` is not an array");
  for (const auto& v : *it) {
    if (!v.is_string())
      return MakeError(Errc::kInvalidArgument,
                       "parse " + std::string(what) + ": `" + key + "` has a non-string item");
    out.push_back(v.get<std::string>());
  }
  return out;
}

common::Result<std::map<std::string, std::string>> OptStringMap(const json& j, const char* key,
                                                                std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object())
    return MakeError(Errc::kInvalidArgument,
                     "parse " + std::string(what) + ": `" + key + "` is not an object");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string())
      return MakeError(Errc::kInvalidArgument,
                       "parse " + std::string(what) + ": `" + key + "." + k + "` is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

common::Status CheckSchemaVersion(const json& j, std::string_view what) {
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer())
    return MakeError(Errc::kInvalidArgument,
                     "parse " + std::string(what) + ": missing schemaVersion");
  if (it->get<int64_t>() == 1)
    return MakeError(Errc::kInvalidArgument,
                     "parse " + std::string(what) +
                         ": Docker schema1 manifests are not supported (deprecated since 2017; "
                         "re-push the image with a current client)");
  if (it->get<int64_t>() != 2)
    return MakeError(Errc::kInvalidArgument, "parse " + std::string(what) +
                                                 ": unsupported schemaVersion " +
                                                 std::to_string(it->get<int64_t>()));
  return {};
}

// The media type in the body must agree with the one the registry sent; a
// manifest served as an index (or the reverse) could otherwise confuse
// resolution.
common::Result<std::string> ResolveMediaType(const json& j, std::string_view sent,
                                             std::string_view what) {
  ASSIGN_OR_RETURN(std::string in_body, OptString(j, "mediaType", what));
  if (!in_body.empty() && !sent.empty() && in_body != sent)
    return MakeError(Errc::kInvalidArgument, "parse " + std::string(what) + ": mediaType `" +
                                                 in_body + "` differs from content type `" +
                                                 std::string(sent) + "`");
  return in_body.empty() ? std::string(sent) : in_body;
}

common::Result<Platform> PlatformFromJson(const json& p) {
  if (!p.is_object()) return MakeError(Errc::kInvalidArgument, "platform is not an object");
  Platform out;
  ASSIGN_OR_RETURN(out.os, OptString(p, "os", "platform"));
  ASSIGN_OR_RETURN(out.architecture, OptString(p, "architecture", "platform"));
  ASSIGN_OR_RETURN(out.variant, OptString(p, "variant", "platform"));
  ASSIGN_OR_RETURN(out.os_version, OptString(p, "os.version", "platform"));
  return out;
}

std::string NormalizeArch(std::string a) {
  if (a == "x86_64" || a == "x86-64") return "amd64";
  if (a == "aarch64") return "arm64";
  if (a == "i386" || a == "i686") return "386";
  if (a == "armhf" || a == "armel") return "arm";
  return a;
}

int ArmVersion(const std::string& v) {
  if (v.size() == 2 && v[0] == 'v' && v[1] >= '5' && v[1] <= '8') return v[1] - '0';
  return 0;
}

}  // namespace

common::Result<ManifestKind> ClassifyManifest(std::string_view mt) {
  if (mt == media::kOciManifest || mt == media::kDockerManifest) return ManifestKind::kManifest;
  if (mt == media::kOciIndex || mt == media::kDockerManifestList) return ManifestKind::kIndex;
  if (mt == media::kDockerSchema1 || mt == media::kDockerSchema1Signed)
    return MakeError(Errc::kInvalidArgument,
                     "Docker schema1 manifests are not supported (deprecated since 2017; re-push "
                     "the image with a current client)");
  return MakeError(Errc::kInvalidArgument,
                   "unsupported manifest media type `" + std::string(mt) + "`");
}

common::Result<Compression> LayerCompressionOf(std::string_view mt) {
  if (mt == media::kOciLayer || mt == "application/vnd.oci.image.layer.nondistributable.v1.tar")
    return Compression::kNone;
  if (mt == media::kOciLayerGzip || mt == media::kDockerLayerGzip ||
      mt == media::kDockerForeignLayerGzip ||
      mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
    return Compression::kGzip;
  if (mt == media::kOciLayerZstd ||
      mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
    return Compression::kZstd;
  return MakeError(Errc::kInvalidArgument,
                   "unsupported layer media type `" + std::string(mt) + "`");
}

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform NormalizePlatform(Platform p) {
  p.architecture = NormalizeArch(std::move(p.architecture));
  if (p.architecture == "arm64" && p.variant.empty()) p.variant = "v8";
  if (p.architecture == "arm" && p.variant.empty()) p.variant = "v7";
  if (p.architecture == "amd64" && p.variant == "v1") p.variant.clear();
  return p;
}

common::Result<Platform> ParsePlatform(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  auto fail = [&](const std::string& why) {
    return MakeError(Errc::kInvalidArgument, "parse platform `" + std::string(text) + "`: " + why);
  };
  if (parts.size() < 2 || parts.size() > 3) return fail("want os/arch[/variant]");
  for (const auto& p : parts) {
    if (p.empty()) return fail("empty component");
    for (char c : p)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
        return fail("invalid character `" + std::string(1, c) + "`");
  }
  Platform p{parts[0], parts[1], parts.size() == 3 ? parts[2] : "", ""};
  for (auto& c : p.os) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return NormalizePlatform(std::move(p));
}

Platform HostPlatform() {
  utsname u{};
  ::uname(&u);
  std::string machine = u.machine;
  Platform p{"linux", machine, "", ""};
  if (machine == "armv7l")
    p = {"linux", "arm", "v7", ""};
  else if (machine == "armv6l")
    p = {"linux", "arm", "v6", ""};
  else if (machine == "armv5tel")
    p = {"linux", "arm", "v5", ""};
  return NormalizePlatform(std::move(p));
}

std::optional<int> PlatformMatch(const Platform& want_in, const Platform& cand_in) {
  Platform want = NormalizePlatform(want_in);
  Platform cand = NormalizePlatform(cand_in);
  if (want.os != cand.os || want.architecture != cand.architecture) return std::nullopt;
  if (want.variant == cand.variant) return 0;
  if (want.architecture == "arm") {
    int w = ArmVersion(want.variant), c = ArmVersion(cand.variant);
    if (w != 0 && c != 0 && c < w) return w - c;
    return std::nullopt;
  }
  // Unknown variants only match exactly; an image without a variant runs on
  // any variant of its architecture.
  if (cand.variant.empty()) return 1;
  return std::nullopt;
}

common::Result<Manifest> ParseManifest(std::string_view body, std::string_view media_type) {
  constexpr std::string_view what = "manifest";
  ASSIGN_OR_RETURN(json j, ParseJson(body, what));
  TRY(CheckSchemaVersion(j, what));
  Manifest m;
  ASSIGN_OR_RETURN(m.media_type, ResolveMediaType(j, media_type, what));
  if (m.media_type.empty()) m.media_type = std::string(media::kOciManifest);
  ASSIGN_OR_RETURN(ManifestKind kind, ClassifyManifest(m.media_type));
  if (kind != ManifestKind::kManifest)
    return MakeError(Errc::kInvalidArgument, "parse manifest: media type `" + m.media_type +
                                                 "` is an index, not a manifest");
  auto cfg = j.find("config");
  if (cfg == j.end()) return MakeError(Errc::kInvalidArgument, "parse manifest: missing `config`");
  auto cd = DescriptorFromJson(*cfg);
  if (!cd) return std::unexpected(cd.error().Wrap("parse manifest: config"));
  m.config = std::move(*cd);
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array())
    return MakeError(Errc::kInvalidArgument, "parse manifest: missing `layers` array");
  size_t i = 0;
  for (const auto& l : *layers) {
    auto d = DescriptorFromJson(l);
    if (!d)
      return std::unexpected(d.error().Wrap("parse manifest: layers[" + std::to_string(i) + "]"));
    if (auto c = LayerCompressionOf(d->media_type); !c)
      return std::unexpected(c.error().Wrap("parse manifest: layers[" + std::to_string(i) + "]"));
    m.layers.push_back(std::move(*d));
    ++i;
  }
  ASSIGN_OR_RETURN(m.annotations, OptStringMap(j, "annotations", what));
  return m;
}

common::Result<Index> ParseIndex(std::string_view body, std::string_view media_type) {
  constexpr std::string_view what = "index";
  ASSIGN_OR_RETURN(json j, ParseJson(body, what));
  TRY(CheckSchemaVersion(j, what));
  Index idx;
  ASSIGN_OR_RETURN(idx.media_type, ResolveMediaType(j, media_type, what));
  if (idx.media_type.empty()) idx.media_type = std::string(media::kOciIndex);
  ASSIGN_OR_RETURN(ManifestKind kind, ClassifyManifest(idx.media_type));
  if (kind != ManifestKind::kIndex)
    return MakeError(Errc::kInvalidArgument, "parse index: media type `" + idx.media_type +
                                                 "` is a manifest, not an index");
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array())
    return MakeError(Errc::kInvalidArgument, "parse index: missing `manifests` array");
  size_t i = 0;
  for (const auto& e : *ms) {
    auto d = DescriptorFromJson(e);
    if (!d)
      return std::unexpected(d.error().Wrap("parse index: manifests[" + std::to_string(i) + "]"));
    IndexEntry entry{std::move(*d), std::nullopt};
    if (auto p = e.find("platform"); p != e.end()) {
      auto plat = PlatformFromJson(*p);
      if (!plat)
        return std::unexpected(
            plat.error().Wrap("parse index: manifests[" + std::to_string(i) + "]"));
      entry.platform = std::move(*plat);
    }
    idx.manifests.push_back(std::move(entry));
    ++i;
  }
  return idx;
}

common::Result<IndexEntry> SelectPlatform(const Index& index, const Platform& want) {
  const IndexEntry* best = nullptr;
  int best_rank = 0;
  std::string offered;
  for (const auto& e : index.manifests) {
    if (!e.platform) continue;
    // Attestation manifests (buildkit) carry platform unknown/unknown.
    if (!offered.empty()) offered += ", ";
    offered += e.platform->str();
    auto kind = ClassifyManifest(e.descriptor.media_type);
    if (!kind || *kind != ManifestKind::kManifest) continue;
    auto rank = PlatformMatch(want, *e.platform);
    if (rank && (best == nullptr || *rank < best_rank)) {
      best = &e;
      best_rank = *rank;
    }
  }
  if (best == nullptr)
    return MakeError(Errc::kNotFound, "no manifest for platform " + NormalizePlatform(want).str() +
                                          " (the index offers: " +
                                          (offered.empty() ? std::string("none") : offered) + ")");
  return *best;
}

common::Result<json> ParseImageConfigJson(std::string_view body) {
  constexpr std::string_view what = "image config";
  if (static_cast<int64_t>(body.size()) > kMaxConfigSize)
    return MakeError(Errc::kInvalidArgument, "parse image config: " + std::to_string(body.size()) +
                                                 " bytes, over the 16 MiB limit");
  auto j = common::ParseBoundedJson(body,
                                    {.max_values = kMaxConfigValues, .max_depth = kMaxConfigDepth});
  if (!j) return std::unexpected(std::move(j.error()).Wrap("parse image config"));
  return TopLevelObject(std::move(*j), what);
}

common::Result<ImageConfig> ParseImageConfig(std::string_view body) {
  constexpr std::string_view what = "image config";
  ASSIGN_OR_RETURN(json j, ParseImageConfigJson(body));
  ImageConfig c;
  ASSIGN_OR_RETURN(c.platform.os, OptString(j, "os", what));
  ASSIGN_OR_RETURN(c.platform.architecture, OptString(j, "architecture", what));
  ASSIGN_OR_RETURN(c.platform.variant, OptString(j, "variant", what));
  ASSIGN_OR_RETURN(c.created, OptString(j, "created", what));
  if (auto cfg = j.find("config"); cfg != j.end() && cfg->is_object()) {
    ASSIGN_OR_RETURN(c.user, OptString(*cfg, "User", what));
    ASSIGN_OR_RETURN(c.env, OptStrings(*cfg, "Env", what));
    ASSIGN_OR_RETURN(c.entrypoint, OptStrings(*cfg, "Entrypoint", what));
    ASSIGN_OR_RETURN(c.cmd, OptStrings(*cfg, "Cmd", what));
    ASSIGN_OR_RETURN(c.working_dir, OptString(*cfg, "WorkingDir", what));
    ASSIGN_OR_RETURN(c.stop_signal, OptString(*cfg, "StopSignal", what));
    ASSIGN_OR_RETURN(c.labels, OptStringMap(*cfg, "Labels", what));
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object())
    return MakeError(Errc::kInvalidArgument, "parse image config: missing `rootfs`");
  ASSIGN_OR_RETURN(std::vector<std::string> ids, OptStrings(*rootfs, "diff_ids", what));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto d = common::Digest::Parse(ids[i]);
    if (!d)
      return std::unexpected(
          d.error().Wrap("parse image config: rootfs.diff_ids[" + std::to_string(i) + "]"));
    if (d->algorithm() != common::DigestAlgorithm::kSha256)
      return MakeError(Errc::kInvalidArgument, "parse image config: rootfs.diff_ids[" +
                                                   std::to_string(i) + "] is not sha256");
    c.diff_ids.push_back(std::move(*d));
  }
  return c;
}

std::vector<common::Digest> ChainIds(const std::vector<common::Digest>& diff_ids) {
  std::vector<common::Digest> out;
  out.reserve(diff_ids.size());
  for (const auto& d : diff_ids) {
    if (out.empty())
      out.push_back(d);
    else
      out.push_back(common::Digest::Sha256Of(out.back().str() + " " + d.str()));
  }
  return out;
}

}  // namespace oci
