#include "image/copy.h"

#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "common/task_group.h"
#include "image/trust_gate.h"
#include "registry/platform_manifest.h"

namespace image {
namespace {

using common::Errc;
using common::MakeError;

// Counts what the source writes, for progress; passes everything on.
class CountingSink final : public registry::BlobSink {
 public:
  CountingSink(registry::BlobWriter& writer, std::function<void(int64_t)> on_bytes)
      : writer_(writer), on_bytes_(std::move(on_bytes)) {}
  int64_t offset() const override { return writer_.offset(); }
  common::Status Write(std::span<const std::byte> data) override {
    TRY(writer_.Write(data));
    on_bytes_(writer_.offset());
    return {};
  }
  common::Status WriteFromFile(int fd, int64_t file_offset, int64_t size,
                               const std::atomic<bool>* cancel, const std::string& what) override {
    // The writer's own way with a file (a registry streams it), counted
    // as far as it got.
    common::Status st = writer_.WriteFromFile(fd, file_offset, size, cancel, what);
    on_bytes_(writer_.offset());
    return st;
  }
  common::Status Restart() override { return writer_.Restart(); }

 private:
  registry::BlobWriter& writer_;
  std::function<void(int64_t)> on_bytes_;
};

class Copier {
 public:
  Copier(registry::ImageSource& source, registry::ImageDestination& destination,
         const CopyOptions& options)
      : source_(source), destination_(destination), options_(options) {}

  common::Result<CopiedImage> Run() {
    ASSIGN_OR_RETURN(registry::FetchedManifest top, source_.ResolveTop(options_.cancel));
    if (!IsIndexMediaType(top.media_type)) {
      TRY(Admit(top));
      TRY(CopyManifest(top));
      result_.top = DescriptorOf(top);
      return result_;
    }
    if (!options_.all_platforms) {
      oci::Platform want = options_.platform ? *options_.platform : oci::HostPlatform();
      // An index (IsIndexMediaType is oci::ClassifyManifest's kIndex): an
      // entry or an error, never nullopt.
      ASSIGN_OR_RETURN(std::optional<oci::IndexEntry> entry,
                       registry::SelectPlatformEntry(source_, top, want));
      ASSIGN_OR_RETURN(registry::FetchedManifest m, GetManifest(entry->descriptor));
      TRY(Admit(m));
      TRY(CopyManifest(m));
      result_.top = entry->descriptor;
      result_.top.media_type = m.media_type;
      return result_;
    }
    ASSIGN_OR_RETURN(oci::Index index, oci::ParseIndex(top.body, top.media_type));
    TRY(Admit(top));
    for (const oci::IndexEntry& entry : index.manifests) {
      ASSIGN_OR_RETURN(registry::FetchedManifest m, GetManifest(entry.descriptor));
      if (IsIndexMediaType(m.media_type))
        return MakeError(Errc::kUnimplemented, "copy " + source_.Describe() + ": index " +
                                                   top.digest.str() + " lists another index (" +
                                                   m.digest.str() + "), which is not copied");
      TRY(CopyManifest(m));
    }
    TRY(PutManifest(top));
    result_.top = DescriptorOf(top);
    return result_;
  }

 private:
  static oci::Descriptor DescriptorOf(const registry::FetchedManifest& m) {
    oci::Descriptor d;
    d.media_type = m.media_type;
    d.digest = m.digest;
    d.size = static_cast<int64_t>(m.body.size());
    return d;
  }

  common::Status Admit(const registry::FetchedManifest& m) {
    if (!options_.trust) return {};
    return CheckTrust(*options_.trust, source_, m.digest, options_.cancel);
  }

  common::Result<registry::FetchedManifest> GetManifest(const oci::Descriptor& d) {
    return common::Wrap(registry::FetchPlatformManifest(source_, d, options_.cancel),
                        "copy " + source_.Describe());
  }

  common::Status CopyManifest(const registry::FetchedManifest& m) {
    ASSIGN_OR_RETURN(oci::Manifest manifest, oci::ParseManifest(m.body, m.media_type));
    std::vector<oci::Descriptor> blobs;
    blobs.reserve(manifest.layers.size() + 1);
    blobs.push_back(manifest.config);
    for (const oci::Descriptor& layer : manifest.layers) {
      if (!layer.urls.empty())
        continue;  // a foreign layer stays where its URLs say, as registries expect
      blobs.push_back(layer);
    }
    // A blob listed twice in one manifest moves once.
    std::vector<oci::Descriptor> unique;
    std::set<common::Digest> seen;
    for (const oci::Descriptor& b : blobs)
      if (seen.insert(b.digest).second) unique.push_back(b);
    std::atomic<bool> stop{false};
    const int threads = destination_.ParallelBlobs() ? options_.max_parallel : 1;
    TRY(common::RunJobs(unique.size(), {.threads = threads, .stop = &stop},
                        [&](size_t i) { return CopyBlob(unique[i]); }));
    return PutManifest(m);
  }

  common::Status PutManifest(const registry::FetchedManifest& m) {
    if (auto st = destination_.PutManifest(m, options_.cancel); !st)
      return std::unexpected(
          st.error().Wrap("write manifest " + m.digest.str() + " to " + destination_.Describe()));
    Emit({.kind = CopyEvent::Kind::kManifestDone, .blob = DescriptorOf(m)});
    return {};
  }

  common::Status CopyBlob(const oci::Descriptor& blob) {
    auto wrap = [&](const common::Error& e) {
      return std::unexpected(e.Wrap("copy blob " + blob.digest.str() + " from " +
                                    source_.Describe() + " to " + destination_.Describe()));
    };
    auto has = destination_.HasBlob(blob, options_.mount_from, options_.cancel);
    if (!has) return wrap(has.error());
    if (*has) {
      Emit({.kind = CopyEvent::Kind::kBlobSkipped, .blob = blob});
      std::lock_guard lock(mu_);
      ++result_.blobs_skipped;
      return {};
    }
    auto writer = destination_.PutBlob(blob, options_.cancel);
    if (!writer) return wrap(writer.error());
    Emit({.kind = CopyEvent::Kind::kBlobStarted, .blob = blob});
    CountingSink sink(**writer, [&](int64_t bytes) {
      Emit({.kind = CopyEvent::Kind::kBlobProgress, .blob = blob, .bytes = bytes});
    });
    int stalled = 0;
    for (;;) {
      const int64_t before = sink.offset();
      auto st = source_.FetchBlob(blob.digest, blob.size, sink, options_.cancel);
      if (st) break;
      // The writer re-synchronised its offset: resume from there.
      if (st.error().code != Errc::kUnavailable) return wrap(st.error());
      stalled = sink.offset() > before ? 0 : stalled + 1;
      if (stalled > options_.max_stalled_resumes) return wrap(st.error());
    }
    if (auto st = (*writer)->Finish(options_.cancel); !st) return wrap(st.error());
    Emit({.kind = CopyEvent::Kind::kBlobDone, .blob = blob, .bytes = blob.size});
    std::lock_guard lock(mu_);
    ++result_.blobs_sent;
    result_.bytes_sent += blob.size;
    return {};
  }

  void Emit(const CopyEvent& e) {
    if (!options_.on_event) return;
    std::lock_guard lock(event_mu_);
    options_.on_event(e);
  }

  registry::ImageSource& source_;
  registry::ImageDestination& destination_;
  const CopyOptions& options_;
  std::mutex mu_;
  std::mutex event_mu_;
  CopiedImage result_;
};

}  // namespace

bool IsIndexMediaType(std::string_view media_type) {
  auto kind = oci::ClassifyManifest(media_type);
  return kind && *kind == oci::ManifestKind::kIndex;
}

common::Result<CopiedImage> CopyImage(registry::ImageSource& source,
                                      registry::ImageDestination& destination,
                                      const CopyOptions& options) {
  return Copier(source, destination, options).Run();
}

}  // namespace image
