#include "image/load_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <vector>

#include "archive/archive_contents.h"
#include "image/trust_gate.h"
#include "store/store_lock.h"

namespace image {
namespace {

// A regular file is read in place, as `-i FILE` reads it; anything else
// (a pipe, a socket), and a gzip file, is streamed into the store.
common::Result<std::shared_ptr<archives::ArchiveContents>> Open(const PullStore& store,
                                                                const LoadStreamOptions& o) {
  struct stat st {};
  if (::fstat(o.fd, &st) != 0) return common::ErrnoError("stat `" + o.what + "`");
  bool stream = !S_ISREG(st.st_mode);
  if (!stream) {
    // A compressed file cannot be read in place: it is inflated as a
    // stream is.
    ASSIGN_OR_RETURN(stream, archives::ArchiveContents::IsGzip(o.fd));
  }
  if (stream)
    return archives::ArchiveContents::ReadStream(o.fd, o.what, *store.content, o.pull.cancel);
  int copy = ::fcntl(o.fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return common::ErrnoError("duplicate `" + o.what + "`");
  return archives::ArchiveContents::OpenFd(common::UniqueFd(copy), o.what);
}

}  // namespace

common::Status LoadStream(const PullStore& store, const LoadStreamOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<archives::ArchiveContents> contents, Open(store, options));
  ASSIGN_OR_RETURN(std::vector<archives::LoadItem> items,
                   archives::ListLoadItems(*contents, options.base, options.name));

  // Every source opened and every blob found before the store changes.
  const oci::Platform platform = options.pull.platform.value_or(oci::HostPlatform());
  std::vector<std::shared_ptr<registry::ImageSource>> sources;
  std::vector<const archives::ContentEntry*> blobs;
  std::set<const archives::ContentEntry*> seen;
  for (const archives::LoadItem& item : items) {
    ASSIGN_OR_RETURN(std::unique_ptr<archives::ArchiveImage> image,
                     archives::OpenArchiveImage(contents, item.spec));
    // The policy decides before the store changes (an archive carries no
    // signatures, so the decision needs no manifest).
    if (options.pull.trust) {
      TRY(common::Wrap(CheckUnsignedSource(*options.pull.trust, *image),
                       "load `" + options.what + "`"));
    }
    ASSIGN_OR_RETURN(std::vector<const archives::ContentEntry*> entries,
                     image->BlobEntries(platform));
    for (const archives::ContentEntry* e : entries)
      if (seen.insert(e).second) blobs.push_back(e);
    sources.push_back(std::move(image));
  }

  if (contents->streamed()) {
    // Under the shared lock, as a pull writes blobs, so that no garbage
    // collection sees them half-named. It is released before the pulls
    // (which take it themselves): a collection in between may delete the
    // new, still unreferenced blobs, and the pulls then store them again
    // from the same files.
    auto lock = store::StoreLock::Shared(store.root, options.pull.cancel);
    if (!lock) return std::unexpected(lock.error().Wrap("load `" + options.what + "`"));
    for (const archives::ContentEntry* e : blobs)
      TRY(contents->CommitEntry(*e, store::Ingest::DirSync::kDeferred));
    if (!blobs.empty()) TRY(store.content->SyncBlobs());
  }

  for (size_t i = 0; i < items.size(); ++i) {
    PullImageOptions pull = options.pull;
    pull.source = items[i].spec;
    pull.opened_source = sources[i];
    auto pulled = PullImage(store, pull);
    if (!pulled) return std::unexpected(pulled.error().Wrap("load `" + options.what + "`"));
    if (options.on_loaded) options.on_loaded(items[i], *pulled);
  }
  return {};
}

}  // namespace image
