// fsck: images, blobs, partial downloads, leases and the database.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "common/fd.h"
#include "image/conventions.h"
#include "image/image_record.h"
#include "oci/manifest.h"
#include "store/db_check.h"
#include "store/lease_hold.h"
#include "upkeep/fsck_internal.h"
#include "upkeep/gc_internal.h"

namespace upkeep::internal {
namespace {

namespace fs = std::filesystem;
using common::Digest;
using common::Errc;

// "<algorithm>-<hex>" as ContentStore::IngestPath names a partial.
std::optional<Digest> IngestDigest(const std::string& name) {
  auto dash = name.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto d = Digest::Parse(name.substr(0, dash) + ":" + name.substr(dash + 1));
  if (!d) return std::nullopt;
  return *d;
}

bool IsLeaseName(const std::string& n) {
  if (n.starts_with(".tmp-")) return true;  // a LeaseHold::Take that was killed
  return !n.empty() && n.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Entries of `dir` (relative names); a missing directory has none.
common::Result<std::vector<std::string>> Entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) out.push_back(it->path().filename());
  if (ec) return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  return out;
}

class ImageChecker {
 public:
  ImageChecker(FsckScan& scan, const store::ImageRecord& rec) : s_(scan), rec_(rec) {}

  common::Status Run() {
    // A record whose labels do not parse is a damaged image (a repair
    // untags it; a pull records it again); what its target reaches is
    // still checked, so that it is not also reported as unused.
    auto parsed = image::FromRecord(rec_);
    if (!parsed) TRY(Fail(parsed.error().message));
    const image::Image img = parsed ? std::move(*parsed) : image::FromRecordColumns(rec_);
    Need(img.target);
    ASSIGN_OR_RETURN(std::optional<std::string> top, Read(img.target.digest, "target"));
    if (!top) return {};
    // A manifest target is the platform manifest, whatever a label says;
    // an index target needs the label: the index may list several.
    Digest manifest = img.target.digest;
    auto kind = oci::ClassifyManifest(img.target.media_type);
    if (kind && *kind == oci::ManifestKind::kIndex) {
      if (!img.manifest) {
        if (!parsed) return {};  // already reported
        return Fail("the platform manifest is not recorded (label " +
                    std::string(image::kLabelManifest) + ")");
      }
      manifest = *img.manifest;
      oci::Descriptor m;
      m.digest = manifest;
      m.size = -1;  // the index's entry is not read here
      Need(m);
    }
    std::optional<std::string> body = std::move(top);
    if (manifest != img.target.digest) {
      ASSIGN_OR_RETURN(body, Read(manifest, "manifest"));
      if (!body) return {};
    }
    auto m = oci::ParseManifest(*body, "");
    if (!m) return Fail("manifest " + manifest.str() + ": " + m.error().message);
    Need(m->config);
    for (const auto& l : m->layers) Need(l);
    ASSIGN_OR_RETURN(std::optional<std::string> cbody, Read(m->config.digest, "config"));
    if (cbody) {
      auto cfg = oci::ParseImageConfig(*cbody);
      if (!cfg) return Fail("config " + m->config.digest.str() + ": " + cfg.error().message);
      if (cfg->diff_ids.size() != m->layers.size())
        return Fail("config " + m->config.digest.str() + " lists " +
                    std::to_string(cfg->diff_ids.size()) + " diff_ids for " +
                    std::to_string(m->layers.size()) + " layers");
    }
    for (const auto& l : m->layers) {
      if (!s_.files.count(l.digest))
        TRY(Fail("layer " + l.digest.str() + " is missing"));
      else if (s_.corrupt.count(l.digest))
        TRY(Fail("layer " + l.digest.str() + " is corrupt"));
    }
    return {};
  }

 private:
  void Need(const oci::Descriptor& d) {
    auto [it, added] = s_.needed.emplace(d.digest, d);
    if (!added && it->second.size < 0) it->second = d;
  }

  common::Status Fail(std::string detail) {
    s_.Problem(kImage, rec_.name, std::move(detail));
    return {};
  }

  // A blob the image needs, verified; nullopt (and a problem) when it is
  // missing, corrupt or too large.
  common::Result<std::optional<std::string>> Read(const Digest& d, std::string_view what) {
    auto body = s_.content.ReadBlob(d);
    if (body) return std::optional<std::string>(std::move(*body));
    if (!Unreadable(body.error()))
      return std::unexpected(body.error().Wrap("image `" + rec_.name + "`"));
    std::string why = body.error().code == Errc::kNotFound   ? " is missing"
                      : body.error().code == Errc::kDataLoss ? " is corrupt"
                                                             : ": " + body.error().message;
    TRY(Fail(std::string(what) + " " + d.str() + why));
    return std::optional<std::string>();
  }

  FsckScan& s_;
  const store::ImageRecord& rec_;
};

common::Status CheckBlobs(FsckScan& s) {
  for (const Digest& d : s.files) {
    if (d.algorithm() != common::DigestAlgorithm::kSha256) continue;
    std::string path = s.content.BlobPath(d).string();
    auto fd = common::Open(path, O_RDONLY | O_NOFOLLOW);
    if (!fd) {
      // Gone since the listing can only be a prune, which our lock excludes.
      s.Problem(kBlobCorrupt, d.str(), fd.error().message);
      s.corrupt.insert(d);
      continue;
    }
    auto got = HashFile(fd->get(), path, &s);
    if (!got || *got != d) {
      s.Problem(kBlobCorrupt, d.str(),
                got ? "content has digest " + got->str() : got.error().message);
      s.corrupt.insert(d);
    }
  }
  for (const auto& [d, row] : s.rows) {
    if (!s.files.count(d)) {
      s.Problem(kBlobMissing, d.str(),
                "recorded (" + std::to_string(row.size) + " bytes) but the file is gone");
      continue;
    }
    auto size = s.content.Size(d);
    if (size && *size != row.size && !s.corrupt.count(d))
      s.Problem(kBlobSize, d.str(),
                "recorded as " + std::to_string(row.size) + " bytes, the file has " +
                    std::to_string(*size));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names,
                   Entries(s.root / "content" / "blobs" / "sha256"));
  for (const auto& n : names)
    if (!Digest::Parse("sha256:" + n))
      s.Problem(kStray, "content/blobs/sha256/" + n, "not a blob name");
  std::set<Digest> all = s.files;
  for (const auto& [d, row] : s.rows) all.insert(d);
  s.report.checked.blobs = static_cast<int>(all.size());
  return {};
}

// After the images: rows an image needs, and what nothing uses.
common::Status CheckUse(FsckScan& s) {
  for (const auto& [d, desc] : s.needed)
    if (s.files.count(d) && !s.rows.count(d) && !s.corrupt.count(d))
      s.Problem(kBlobUnrecorded, d.str(), "an image uses it but metadata.db has no row for it");
  ASSIGN_OR_RETURN(std::vector<std::string> leased, s.db.LeasedResources(store::kLeaseContent));
  std::set<std::string> live(leased.begin(), leased.end());
  int unused = 0, pulling = 0;
  for (const Digest& d : s.files) {
    if (s.needed.count(d)) continue;
    if (live.count(d.str()))
      ++pulling;
    else
      ++unused;
  }
  s.Note("blobs only leases hold (a pull in progress, or one killed since the last prune)",
         pulling);
  // Which of these it was is not recorded anywhere; say what leaves them.
  s.Note(
      "blobs no image or pull uses (left by a pull that failed or was killed, or by rmi; "
      "prune removes them)",
      unused);
  return {};
}

common::Status CheckIngest(FsckScan& s) {
  fs::path dir = s.content.IngestPath(Digest()).parent_path();
  ASSIGN_OR_RETURN(std::vector<std::string> names, Entries(dir));
  int held = 0, stored = 0, resumable = 0;
  for (const auto& n : names) {
    std::string subject = "content/ingest/" + n;
    auto d = IngestDigest(n);
    if (!d) {
      s.Problem(kStray, subject, "not a partial download name");
      continue;
    }
    struct stat st {};
    if (::lstat((dir / n).c_str(), &st) != 0) continue;  // committed or cleaned meanwhile
    if (!S_ISREG(st.st_mode)) {
      s.Problem(kStray, subject, "not a regular file");
      continue;
    }
    ++s.report.checked.ingest;
    auto fd = common::Open((dir / n).string(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!fd) continue;
    // A writer holds LOCK_EX while it writes; our shared lock, kept while
    // we read, makes a writer that comes now wait for us.
    if (::flock(fd->get(), LOCK_SH | LOCK_NB) != 0) {
      ++held;
      continue;
    }
    if (::fstat(fd->get(), &st) != 0) return common::ErrnoError("stat `" + subject + "`");
    if (s.content.Has(*d)) {
      ++stored;
      continue;
    }
    int64_t want = -1;
    if (auto k = s.known_sizes.find(*d); k != s.known_sizes.end()) want = k->second;
    if (auto need = s.needed.find(*d); need != s.needed.end() && need->second.size >= 0)
      want = need->second.size;
    if (want < 0 || st.st_size < want) {
      ++resumable;
      continue;
    }
    if (st.st_size > want) {
      s.Problem(kIngestOversize, subject,
                std::to_string(st.st_size) + " bytes, the blob has " + std::to_string(want));
      continue;
    }
    ASSIGN_OR_RETURN(Digest got, HashFile(fd->get(), subject));
    if (got != *d)
      s.Problem(kIngestCorrupt, subject, "complete, but has digest " + got.str());
    else
      ++resumable;
  }
  s.Note("partial downloads being written", held);
  s.Note(
      "partial downloads not being written (resumed by the next pull; prune removes them "
      "after 24 h)",
      resumable);
  s.Note("partial downloads of blobs already stored (left by a killed pull; prune removes them)",
         stored);
  return {};
}

// Leases whose holder is alive; those it is gone from, which prune frees;
// and leases with no hold file at all, which no process holds and prune
// keeps until they expire: a problem (store/lease_hold.h).
common::Status CheckLeases(FsckScan& s) {
  ASSIGN_OR_RETURN(std::vector<store::LeaseRecord> leases, s.db.ListLeases());
  ASSIGN_OR_RETURN(std::vector<std::string> abandoned, store::AbandonedLeases(s.root));
  ASSIGN_OR_RETURN(std::vector<std::string> names, Entries(store::LeaseHold::Dir(s.root)));
  // A hold file is created before its lease row and removed after it: a
  // row listed both before and after the hold files were, without a hold
  // file, had none while we looked (a lease being created or deleted
  // meanwhile is not in both lists).
  ASSIGN_OR_RETURN(std::vector<store::LeaseRecord> again, s.db.ListLeases());
  std::set<std::string> dead(abandoned.begin(), abandoned.end());
  std::set<std::string> files(names.begin(), names.end());
  std::set<std::string> still;
  for (const auto& l : again) still.insert(l.id);
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::set<std::string> ids;
  int live = 0, gone = 0;
  for (const auto& l : leases) {
    ids.insert(l.id);
    if (l.expires_ns <= now || dead.count(l.id)) {
      ++gone;
    } else if (!files.count(l.id) && still.count(l.id)) {
      constexpr int64_t kHourNs = int64_t{3600} * 1000 * 1000 * 1000;
      s.Problem(kLease, l.id,
                "no process holds it (no hold file in leases/), yet prune keeps what it "
                "protects until it expires in " +
                    std::to_string((l.expires_ns - now + kHourNs - 1) / kHourNs) + " h");
    } else {
      ++live;
    }
  }
  s.report.checked.leases = static_cast<int>(leases.size());
  s.Note("leases in use (their holder is running)", live);
  s.Note("expired leases, or leases whose holder is gone (prune deletes them)", gone);
  int holds = 0;
  for (const auto& n : names) {
    if (!IsLeaseName(n))
      s.Problem(kStray, "leases/" + n, "not a lease hold file");
    else if (dead.count(n) && !ids.count(n))
      ++holds;
  }
  s.Note("lease hold files without a lease (their holder is gone; prune removes them)", holds);
  return {};
}

// Notes the sizes a manifest's descriptors give.
void LearnSizes(FsckScan& s, std::string_view body) {
  if (body.empty() || body.front() != '{') return;
  auto m = oci::ParseManifest(body, "");
  if (!m) return;
  s.known_sizes.emplace(m->config.digest, m->config.size);
  for (const auto& l : m->layers) s.known_sizes.emplace(l.digest, l.size);
}

}  // namespace

common::Result<Digest> HashFile(int fd, const std::string& path, FsckScan* learn) {
  common::Sha256 h;
  std::vector<char> buf(1 << 20);
  std::string small;  // the whole file while it fits one buffer (manifests)
  for (off_t off = 0;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError("read `" + path + "`");
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
    if (off == 0 && static_cast<size_t>(n) < buf.size())
      small.assign(buf.data(), n);
    else
      small.clear();
    off += n;
  }
  Digest d = h.Finish();
  if (learn != nullptr) LearnSizes(*learn, small);
  return d;
}

common::Status CheckContent(FsckScan& s) {
  ASSIGN_OR_RETURN(std::vector<std::string> db_errors, store::QuickCheck(s.root));
  for (const auto& e : db_errors) s.Problem(kDatabase, "metadata.db", e);
  // Records first, then files: a pull writes files before the records that
  // name them, and the lock keeps prune (which deletes in the other order)
  // away, so a record seen always has its file unless something is wrong.
  ASSIGN_OR_RETURN(std::vector<store::ImageRecord> images, s.db.ListImages());
  ASSIGN_OR_RETURN(std::vector<store::BlobRecord> rows, s.db.ListBlobs());
  for (auto& r : rows) s.rows.emplace(r.digest, std::move(r));
  ASSIGN_OR_RETURN(std::vector<Digest> files, s.content.List());
  s.files.insert(files.begin(), files.end());

  TRY(CheckBlobs(s));
  for (const auto& rec : images) {
    ImageChecker c(s, rec);
    TRY(c.Run());
  }
  s.report.checked.images = static_cast<int>(images.size());
  TRY(CheckUse(s));
  TRY(CheckIngest(s));
  return CheckLeases(s);
}

}  // namespace upkeep::internal
