// fsck: locking, rounds of check and repair, and the repairs of content.

#include "upkeep/fsck.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/fd.h"
#include "store/store_lock.h"
#include "upkeep/fsck_internal.h"

namespace upkeep {
namespace {

namespace fs = std::filesystem;
using common::Digest;
using common::Errc;
using internal::FsckScan;

// One check; the caller holds the store lock.
common::Result<FsckScan> CheckLocked(const store::ContentStore& content,
                                     store::MetadataDb& metadata, const FsckOptions& options) {
  FsckScan scan(content, metadata, options);
  TRY(internal::CheckContent(scan));
  TRY(internal::CheckSnapshots(scan));
  std::sort(scan.report.problems.begin(), scan.report.problems.end());
  scan.report.remaining = scan.report.problems;
  return scan;
}

void Failed(FsckReport& out, const common::Error& e) { out.errors.push_back(e.message); }

// Removes a partial download nobody is writing.
void RemovePartial(const fs::path& path, const std::string& subject, FsckReport& out) {
  auto fd = common::Open(path.string(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!fd) {
    if (fd.error().code == Errc::kNotFound)
      out.repairs.push_back({"removed partial download", subject});
    else
      Failed(out, fd.error());
    return;
  }
  // As ContentStore::CleanIngest: only with the writer's lock, and only the
  // inode still at the path.
  struct stat mine {
  }, named{};
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    out.errors.push_back("remove `" + subject + "`: a pull is writing it");
    return;
  }
  if (::fstat(fd->get(), &mine) != 0 || ::lstat(path.c_str(), &named) != 0 ||
      mine.st_ino != named.st_ino || mine.st_dev != named.st_dev || ::unlink(path.c_str()) != 0) {
    out.errors.push_back("remove `" + subject + "`: it changed meanwhile");
    return;
  }
  out.repairs.push_back({"removed partial download", subject});
}

void RepairContent(const FsckScan& s, store::ContentStore& content, store::MetadataDb& db,
                   const std::vector<FsckProblem>& problems, FsckReport& out) {
  std::set<std::string> corrupt;
  for (const auto& p : problems)
    if (p.kind == internal::kBlobCorrupt) corrupt.insert(p.subject);
  for (const auto& p : problems) {
    auto d = Digest::Parse(p.subject);
    if (p.kind == internal::kBlobCorrupt && d) {
      // The row first (files after the commit, as prune does).
      if (auto st = db.DeleteBlob(*d); !st && st.error().code != Errc::kNotFound) {
        Failed(out, st.error());
        continue;
      }
      if (auto st = content.Delete(*d); !st && st.error().code != Errc::kNotFound) {
        Failed(out, st.error());
        continue;
      }
      out.repairs.push_back({"deleted corrupt blob", p.subject});
    } else if (p.kind == internal::kBlobMissing && d) {
      if (auto st = db.DeleteBlob(*d); !st && st.error().code != Errc::kNotFound)
        Failed(out, st.error());
      else
        out.repairs.push_back({"deleted the record of missing blob", p.subject});
    } else if ((p.kind == internal::kBlobSize || p.kind == internal::kBlobUnrecorded) && d &&
               !corrupt.count(p.subject)) {
      // The file hashed to its digest in this round: its size is the truth.
      auto size = content.Size(*d);
      if (!size) {
        Failed(out, size.error());
        continue;
      }
      std::string media_type;
      if (auto row = s.rows.find(*d); row != s.rows.end())
        media_type = row->second.media_type;
      else if (auto n = s.needed.find(*d); n != s.needed.end())
        media_type = n->second.media_type;
      auto txn = db.Begin();
      if (!txn) {
        Failed(out, txn.error());
        continue;
      }
      if (auto st = txn->DeleteBlob(*d); !st && st.error().code != Errc::kNotFound) {
        Failed(out, st.error());
        continue;
      }
      if (auto st = txn->PutBlob(*d, *size, media_type); !st) {
        Failed(out, st.error());
        continue;
      }
      if (auto st = txn->Commit(); !st) {
        Failed(out, st.error());
        continue;
      }
      out.repairs.push_back(
          {p.kind == internal::kBlobSize ? "corrected the recorded size of blob" : "recorded blob",
           p.subject});
    } else if (p.kind == internal::kIngestOversize || p.kind == internal::kIngestCorrupt) {
      RemovePartial(s.root / p.subject, p.subject, out);
    } else if (p.kind == internal::kLease) {
      // Under the exclusive store lock no pull or unpack runs: nobody can
      // be using it.
      if (auto st = db.DeleteLease(p.subject); !st && st.error().code != Errc::kNotFound)
        Failed(out, st.error());
      else
        out.repairs.push_back({"deleted lease nobody holds", p.subject});
    } else if (p.kind == internal::kStray) {
      std::error_code ec;
      fs::remove_all(s.root / p.subject, ec);
      if (ec)
        out.errors.push_back("remove `" + p.subject + "`: " + ec.message());
      else
        out.repairs.push_back({"removed stray", p.subject});
    }
  }
  // Images last: their content may have just been deleted above.
  std::set<std::string> untag;
  for (const auto& p : problems)
    if (p.kind == internal::kImage) untag.insert(p.subject);
  for (const auto& name : untag) {
    if (auto st = db.DeleteImage(name); !st && st.error().code != Errc::kNotFound)
      Failed(out, st.error());
    else
      out.repairs.push_back({"untagged image", name});
  }
}

}  // namespace

common::Result<FsckReport> Check(const store::ContentStore& content, store::MetadataDb& metadata,
                                 const FsckOptions& options) {
  ASSIGN_OR_RETURN(store::StoreLock lock,
                   common::Wrap(store::StoreLock::Shared(content.root(), options.cancel),
                                "fsck: lock the store"));
  ASSIGN_OR_RETURN(FsckScan scan, common::Wrap(CheckLocked(content, metadata, options), "fsck"));
  return std::move(scan.report);
}

common::Result<FsckReport> Repair(store::ContentStore& content, store::MetadataDb& metadata,
                                  const FsckOptions& options) {
  ASSIGN_OR_RETURN(store::StoreLock lock,
                   common::Wrap(store::StoreLock::Exclusive(content.root(), options.cancel),
                                "fsck: lock the store"));
  FsckReport out;
  std::set<FsckProblem> seen;
  constexpr int kRounds = 4;
  for (int round = 0; round <= kRounds; ++round) {
    ASSIGN_OR_RETURN(FsckScan scan, common::Wrap(CheckLocked(content, metadata, options), "fsck"));
    if (round == 0) out.checked = scan.report.checked;
    out.notes = scan.report.notes;
    out.remaining = scan.report.problems;
    std::vector<FsckProblem> fresh;
    for (const auto& p : scan.report.problems)
      if (seen.insert(p).second) fresh.push_back(p);
    out.problems.insert(out.problems.end(), fresh.begin(), fresh.end());
    // Nothing new: either clean, or what is left could not be repaired.
    if (fresh.empty() || round == kRounds) break;
    internal::RepairSnapshots(scan, fresh, out);  // unmounts before any directory goes
    RepairContent(scan, content, metadata, fresh, out);
  }
  return out;
}

}  // namespace upkeep
