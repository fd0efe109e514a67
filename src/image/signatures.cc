#include "image/signatures.h"

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

#include "common/fs.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "trust/sigstore_verify.h"

namespace image {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;

// containers/image's limits, kept so that what skopeo reads gantry reads:
// iolimits.MaxSignatureBodySize (4 MiB) per signature or payload, and at
// most 128 lookaside signatures (maxLookasideSignatures). containers/image
// bounds no sigstore layer count; gantry applies the same 128. Real images
// carry one or two signatures; the count bounds what a broken or hostile
// server can make a pull hold in memory (128 × 4 MiB) and how many
// requests an endless run of signature-N answers costs. More is refused,
// not cut short: a cut could drop the one signature the policy accepts.
static_assert(kMaxSignatureSize == 4u << 20 && kMaxSignatures == 128);

bool IsUrlPathByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~/!$&'()*+,;=:@").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

std::string PercentEncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (IsUrlPathByte(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The local path of a file:// URL: the URL path, percent-decoded, as
// containers/image takes url.Path. An empty host or "localhost" only.
Result<std::string> FileUrlPath(const std::string& url) {
  std::string_view rest = std::string_view(url).substr(std::string_view("file://").size());
  rest = rest.substr(0, rest.find_first_of("?#"));
  if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
  if (!rest.starts_with('/'))
    return MakeError(Errc::kInvalidArgument,
                     "lookaside " + url + ": a file:// URL must name a local absolute path");
  std::string out;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%') {
      int hi = i + 2 < rest.size() ? common::HexDigitValue(rest[i + 1]) : -1;
      int lo = i + 2 < rest.size() ? common::HexDigitValue(rest[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return MakeError(Errc::kInvalidArgument, "lookaside " + url + ": malformed %-escape");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(rest[i]);
    }
  }
  if (out.find('\0') != std::string::npos)
    return MakeError(Errc::kInvalidArgument, "lookaside " + url + ": NUL in path");
  return out;
}

enum class Scheme { kFile, kHttp };

Result<Scheme> LookasideScheme(const std::string& base) {
  if (base.starts_with("file://")) return Scheme::kFile;
  if (base.starts_with("http://") || base.starts_with("https://")) return Scheme::kHttp;
  return MakeError(Errc::kInvalidArgument,
                   "lookaside `" + base + "`: not a file://, http:// or https:// URL");
}

Result<std::vector<std::string>> ReadLookaside(registry::RegistryAccess reg,
                                               const common::Digest& digest,
                                               const std::string& base,
                                               const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(Scheme scheme, LookasideScheme(base));
  std::vector<std::string> found;
  for (size_t i = 0;; ++i) {
    if (cancel && cancel->load(std::memory_order_relaxed))
      return MakeError(Errc::kCancelled, "read signatures of " + digest.str() + ": cancelled");
    std::string url = trust::LookasideSignatureUrl(base, reg.ref->path(), digest, i);
    if (i >= kMaxSignatures)
      return MakeError(Errc::kResourceExhausted,
                       "read signature " + url + ": more than " + std::to_string(kMaxSignatures) +
                           " signatures for " + reg.ref->name() + "@" + digest.str());
    std::optional<std::string> body;
    if (scheme == Scheme::kFile) {
      ASSIGN_OR_RETURN(std::string path, FileUrlPath(url));
      auto bytes = common::ReadFile(path, kMaxSignatureSize);
      if (!bytes && bytes.error().code == Errc::kNotFound && bytes.error().sys_errno == ENOENT)
        break;
      if (!bytes) {
        if (bytes.error().code == Errc::kResourceExhausted)
          return MakeError(Errc::kResourceExhausted, "read signature " + url + ": larger than " +
                                                         std::to_string(kMaxSignatureSize) +
                                                         " bytes");
        return std::unexpected(std::move(bytes.error()).Wrap("read signature " + url));
      }
      body = std::move(*bytes);
    } else {
      auto got = reg.client->GetUrl(url, kMaxSignatureSize, cancel);
      if (!got) {
        common::Error e = std::move(got.error());
        // GetUrl's messages start with the URL.
        if (!e.message.starts_with(url))
          return std::unexpected(std::move(e).Wrap("read signature " + url));
        e.message = "read signature " + e.message;
        return std::unexpected(std::move(e));
      }
      if (!*got) break;
      body = std::move(**got);
    }
    found.push_back(std::move(*body));
  }
  return found;
}

// FetchBlob's sink for one payload: bytes in memory, at most `limit`.
class PayloadSink final : public registry::BlobSink {
 public:
  explicit PayloadSink(int64_t limit) : limit_(limit) {}
  int64_t offset() const override { return static_cast<int64_t>(data_.size()); }
  common::Status Write(std::span<const std::byte> data) override {
    if (static_cast<int64_t>(data_.size() + data.size()) > limit_)
      return MakeError(Errc::kDataLoss,
                       "more than the " + std::to_string(limit_) + " bytes its descriptor says");
    data_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return {};
  }
  common::Status Restart() override {
    data_.clear();
    return {};
  }
  std::string Take() { return std::move(data_); }
  const std::string& data() const { return data_; }

 private:
  int64_t limit_;
  std::string data_;
};

Result<std::vector<trust::SigstoreSignature>> ReadAttachments(registry::RegistryAccess reg,
                                                              const common::Digest& digest,
                                                              const std::atomic<bool>* cancel) {
  // cosign's and containers/image's tag: "<algorithm>-<hex>.sig".
  const std::string tag = SigstoreAttachmentTag(digest);
  const std::string shown = reg.ref->name() + ":" + tag;
  auto fetched = reg.client->GetManifest(*reg.ref, tag, cancel);
  if (!fetched && fetched.error().code == Errc::kNotFound)
    return std::vector<trust::SigstoreSignature>{};
  if (!fetched)
    return std::unexpected(std::move(fetched.error()).Wrap("read sigstore attachment " + shown));
  auto not_manifest = [&](const std::string& why) {
    return MakeError(Errc::kInvalidArgument, "read sigstore attachment " + shown +
                                                 ": not an OCI image manifest (" + why + ")");
  };
  if (fetched->media_type != oci::media::kOciManifest)
    return not_manifest("media type " + fetched->media_type);
  // Not oci::ParseManifest: it admits only image layer media types, and
  // the payloads are not layers of an image.
  nlohmann::json j = nlohmann::json::parse(fetched->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return not_manifest("not a JSON object");
  if (auto v = j.find("schemaVersion"); v == j.end() || !v->is_number_integer() || *v != 2)
    return not_manifest("schemaVersion is not 2");
  if (auto mt = j.find("mediaType");
      mt != j.end() && (!mt->is_string() || mt->get<std::string>() != oci::media::kOciManifest))
    return not_manifest("mediaType " + mt->dump());
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return not_manifest("no `layers` array");

  std::vector<trust::SigstoreSignature> out;
  for (size_t i = 0; i < layers->size(); ++i) {
    const std::string where =
        "read sigstore attachment " + shown + ": layers[" + std::to_string(i) + "]";
    auto desc = oci::DescriptorFromJson((*layers)[i]);
    if (!desc) return std::unexpected(std::move(desc.error()).Wrap(where));
    if (desc->media_type != trust::kSigstorePayloadMediaType) continue;
    // containers/image keeps such a layer (it passes every layer on) and
    // its verification then fails for the missing annotation. A signature
    // that can never verify changes nothing in what the policy decides
    // (one acceptable signature suffices, none rejects), so it is skipped
    // without fetching its payload.
    auto annotation = desc->annotations.find(std::string(trust::kSigstoreSignatureAnnotation));
    if (annotation == desc->annotations.end()) continue;
    if (out.size() >= kMaxSignatures)
      return MakeError(Errc::kResourceExhausted,
                       "read sigstore attachment " + shown + ": more than " +
                           std::to_string(kMaxSignatures) + " signatures");
    if (desc->size > static_cast<int64_t>(kMaxSignatureSize))
      return MakeError(Errc::kResourceExhausted, where + ": payload " + desc->digest.str() +
                                                     " of " + std::to_string(desc->size) +
                                                     " bytes exceeds " +
                                                     std::to_string(kMaxSignatureSize));
    if (desc->digest.algorithm() != common::DigestAlgorithm::kSha256)
      return MakeError(Errc::kInvalidArgument,
                       where + ": payload digest " + desc->digest.str() + " is not sha256");
    PayloadSink sink(desc->size);
    TRY(common::Wrap(reg.client->FetchBlob(*reg.ref, desc->digest, desc->size, sink, cancel),
                     where + ": payload " + desc->digest.str()));
    if (sink.offset() != desc->size)
      return MakeError(Errc::kDataLoss, where + ": payload " + desc->digest.str() + " has " +
                                            std::to_string(sink.offset()) + " bytes, not " +
                                            std::to_string(desc->size));
    if (common::Digest got = common::Digest::Sha256Of(sink.data()); got != desc->digest)
      return MakeError(Errc::kDataLoss,
                       where + ": payload bytes are " + got.str() + ", not " + desc->digest.str());
    out.push_back({.payload = sink.Take(), .base64_signature = annotation->second});
  }
  return out;
}

}  // namespace

std::string SigstoreAttachmentTag(const common::Digest& manifest_digest) {
  return std::string(manifest_digest.algorithm_name()) + "-" + manifest_digest.hex() + ".sig";
}

std::optional<std::string> DefaultLookaside(unsigned euid, const std::string& home) {
  if (euid == 0) return "file:///var/lib/containers/sigstore";
  if (home.empty() || home.front() != '/') return std::nullopt;
  std::string dir = home;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir == "/") dir.clear();
  return "file://" + PercentEncodePath(dir + "/.local/share/containers/sigstore");
}

SignatureLocations LocateSignatures(const trust::RegistriesD& config,
                                    const registry::ImageRef& image) {
  SignatureLocations where;
  where.lookaside = config.LookasideFor(image);
  if (!where.lookaside) {
    const char* home = std::getenv("HOME");
    where.lookaside = DefaultLookaside(::geteuid(), home ? home : "");
  }
  where.sigstore_attachments = config.UseSigstoreAttachments(image);
  return where;
}

Result<trust::Signatures> FetchSignatures(registry::ImageSource& src,
                                          const common::Digest& manifest_digest,
                                          const SignatureLocations& where,
                                          const std::atomic<bool>* cancel) {
  trust::Signatures out;
  std::optional<registry::RegistryAccess> reg = src.Registry();
  if (!reg) return out;
  if (where.lookaside) {
    ASSIGN_OR_RETURN(out.gpg, ReadLookaside(*reg, manifest_digest, *where.lookaside, cancel));
  }
  if (where.sigstore_attachments) {
    ASSIGN_OR_RETURN(out.sigstore, ReadAttachments(*reg, manifest_digest, cancel));
  }
  return out;
}

}  // namespace image
