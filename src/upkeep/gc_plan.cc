// The mark phase: from image records, leases and snapshots to what is kept.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "image/conventions.h"
#include "image/image_record.h"
#include "oci/manifest.h"
#include "upkeep/gc_internal.h"

namespace upkeep::internal {
namespace {

using common::Digest;
using common::Errc;

std::optional<Digest> DigestField(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("digest");
  if (it == j.end() || !it->is_string()) return std::nullopt;
  auto d = Digest::Parse(it->get<std::string>());
  if (!d) return std::nullopt;
  return *d;
}

class RefWalker {
 public:
  RefWalker(const store::ContentStore& content, const store::ImageRecord& record, ImageRefs& out)
      : content_(content), record_(record), out_(out) {}

  common::Status Run() {
    // Corrupt labels are one more unreadable part: what the target still
    // reaches is kept, and the collection goes on.
    auto parsed = image::FromRecord(record_);
    if (!parsed) out_.warnings.push_back(parsed.error().message);  // names the image
    const image::Image img = parsed ? std::move(*parsed) : image::FromRecordColumns(record_);
    preferred_ = image::PlatformManifest(img);
    TRY(Walk(img.target.digest, 0));
    // Normally reached through the target; a record whose target is an
    // index that no longer lists it still names it.
    if (img.manifest) TRY(Walk(*img.manifest, 0));
    if (img.config) {
      out_.blobs.insert(*img.config);
      out_.config = img.config->str();
    }
    if (img.top_chain) {
      const std::string chain = img.top_chain->str();
      out_.chains.insert(chain);
      out_.tops.insert(chain);
      out_.top = chain;
    }
    return {};
  }

 private:
  // Reads a blob the image needs as JSON. nullopt (with a warning) when it
  // cannot be read.
  common::Result<std::optional<nlohmann::json>> ReadJson(const Digest& d, std::string_view what) {
    auto body = content_.ReadBlob(d);
    if (!body) {
      if (!Unreadable(body.error()))
        return std::unexpected(body.error().Wrap("image `" + record_.name + "`"));
      Warn(std::string(what) + " " + d.str() + ": " + body.error().message);
      return std::optional<nlohmann::json>{};
    }
    auto j = nlohmann::json::parse(*body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      Warn(std::string(what) + " " + d.str() + " is not a JSON object");
      return std::optional<nlohmann::json>{};
    }
    return std::optional<nlohmann::json>{std::move(j)};
  }

  void Warn(std::string message) {
    out_.warnings.push_back("image `" + record_.name + "`: " + std::move(message));
  }

  // A manifest or an index and everything under it. Lenient on purpose:
  // whatever digests can be found are kept, even in a manifest the puller
  // would now refuse.
  common::Status Walk(const Digest& d, int depth) {
    out_.blobs.insert(d);
    if (!walked_.insert(d).second || depth > 3) return {};
    ASSIGN_OR_RETURN(std::optional<nlohmann::json> j, ReadJson(d, "manifest"));
    if (!j) return {};
    if (auto m = j->find("manifests"); m != j->end() && m->is_array()) {
      for (const auto& e : *m) {
        auto child = DigestField(e);
        // Other platforms' manifests are never fetched; only what is here.
        if (child && content_.Has(*child)) TRY(Walk(*child, depth + 1));
      }
    }
    if (auto l = j->find("layers"); l != j->end() && l->is_array())
      for (const auto& e : *l)
        if (auto ld = DigestField(e)) out_.blobs.insert(*ld);
    if (auto c = j->find("config"); c != j->end()) {
      if (auto cd = DigestField(*c)) {
        out_.blobs.insert(*cd);
        TRY(Config(*cd, d == preferred_));
      }
    }
    return {};
  }

  common::Status Config(const Digest& d, bool preferred) {
    auto body = content_.ReadBlob(d);
    if (!body) {
      if (!Unreadable(body.error()))
        return std::unexpected(body.error().Wrap("image `" + record_.name + "`"));
      Warn("config " + d.str() + ": " + body.error().message);
      return {};
    }
    auto cfg = oci::ParseImageConfig(*body);
    if (!cfg) {
      Warn("config " + d.str() + ": " + cfg.error().message);
      return {};
    }
    auto chains = oci::ChainIds(cfg->diff_ids);
    for (const auto& c : chains) out_.chains.insert(c.str());
    if (!chains.empty()) out_.tops.insert(chains.back().str());
    if (preferred) {
      out_.config = d.str();
      if (!chains.empty() && out_.top.empty()) out_.top = chains.back().str();
    }
    return {};
  }

  const store::ContentStore& content_;
  const store::ImageRecord& record_;
  ImageRefs& out_;
  Digest preferred_;
  std::set<Digest> walked_;
};

// Number of ancestors of `name` among `by_name` (a loop counts as deep).
int Depth(const std::string& name, const std::map<std::string, const snapshot::Info*>& by_name) {
  int depth = 0;
  std::string cur = name;
  while (depth < 10000) {
    auto it = by_name.find(cur);
    if (it == by_name.end() || it->second->parent.empty()) break;
    cur = it->second->parent;
    ++depth;
  }
  return depth;
}

}  // namespace

bool Unreadable(const common::Error& e) {
  switch (e.code) {
    case Errc::kNotFound:
    case Errc::kDataLoss:
    case Errc::kInvalidArgument:
    case Errc::kUnimplemented:
      return true;
    case Errc::kResourceExhausted:
      return e.sys_errno == 0;  // over the size limit
    default:
      return false;
  }
}

common::Result<ImageRefs> RefsOf(const store::ContentStore& content,
                                 const store::ImageRecord& record) {
  ImageRefs out;
  RefWalker w(content, record, out);
  TRY(w.Run());
  return out;
}

common::Result<std::map<std::string, ImageRefs>> RefsOfAll(
    const store::ContentStore& content, const std::vector<store::ImageRecord>& images) {
  std::map<std::string, ImageRefs> out;
  for (const auto& r : images) {
    ASSIGN_OR_RETURN(ImageRefs refs, RefsOf(content, r));
    out.emplace(r.name, std::move(refs));
  }
  return out;
}

common::Result<std::vector<SnapshotterState>> ReadSnapshots(
    std::span<snapshot::Snapshotter* const> snapshotters) {
  std::vector<SnapshotterState> out;
  for (snapshot::Snapshotter* sn : snapshotters) {
    ASSIGN_OR_RETURN(std::vector<snapshot::Info> infos, sn->List());
    out.push_back({sn, std::move(infos)});
  }
  return out;
}

bool IsExtract(const snapshot::Info& info) {
  if (info.kind == snapshot::SnapshotKind::kCommitted) return false;
  auto it = info.labels.find(std::string(image::kSnapshotLabelExtract));
  return (it != info.labels.end() && it->second == "1") ||
         info.name.starts_with(image::kExtractKeyPrefix);
}

bool IsUser(const snapshot::Info& info) {
  return info.kind != snapshot::SnapshotKind::kCommitted && !IsExtract(info);
}

int UsersOf(const ImageRefs& refs, const std::vector<SnapshotterState>& snaps) {
  int n = 0;
  for (const auto& s : snaps)
    for (const auto& i : s.infos)
      if (IsUser(i) && !i.parent.empty() && refs.tops.count(i.parent)) ++n;
  return n;
}

Plan MakePlan(const StoreState& state, const std::map<std::string, ImageRefs>& refs,
              const std::vector<SnapshotterState>& snaps, bool all) {
  Plan p;
  std::vector<const ImageRefs*> kept_images;
  for (const auto& r : state.images) {
    auto it = refs.find(r.name);
    if (it == refs.end()) continue;  // REQUIRES says it is there; keep nothing unknown
    // An image whose top layer containerd holds is in use as well.
    const bool held =
        std::any_of(it->second.tops.begin(), it->second.tops.end(),
                    [&](const std::string& t) { return state.containerd_snapshots.count(t) != 0; });
    if (all && !held && !state.pinned.contains(r.name) && UsersOf(it->second, snaps) == 0) {
      p.untag.push_back(r.name);
      continue;
    }
    kept_images.push_back(&it->second);
  }

  for (const ImageRefs* r : kept_images) p.kept_blobs.insert(r->blobs.begin(), r->blobs.end());
  for (const auto& s : state.leased_content)
    if (auto d = Digest::Parse(s)) p.kept_blobs.insert(*d);
  std::set<Digest> present = state.blob_files;
  for (const auto& [d, row] : state.blob_rows) present.insert(d);
  for (const auto& d : present)
    if (!p.kept_blobs.count(d)) p.garbage_blobs.push_back(d);

  for (const auto& s : snaps) {
    Plan::Snapshots out;
    std::map<std::string, const snapshot::Info*> by_name;
    for (const auto& i : s.infos) by_name[i.name] = &i;
    std::vector<std::string> roots(state.leased_snapshots.begin(), state.leased_snapshots.end());
    roots.insert(roots.end(), state.containerd_snapshots.begin(), state.containerd_snapshots.end());
    for (const ImageRefs* r : kept_images)
      roots.insert(roots.end(), r->chains.begin(), r->chains.end());
    for (const auto& i : s.infos)
      if (IsUser(i)) roots.push_back(i.name);
    // Kept snapshots keep their whole parent chain.
    for (const auto& root : roots) {
      std::string cur = root;
      while (!cur.empty() && by_name.count(cur) && out.kept.insert(cur).second)
        cur = by_name[cur]->parent;
    }
    std::vector<std::pair<int, const snapshot::Info*>> garbage;
    for (const auto& i : s.infos)
      if (!out.kept.count(i.name)) garbage.emplace_back(Depth(i.name, by_name), &i);
    // Deepest first: a child is always deeper than its parent.
    std::sort(garbage.begin(), garbage.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second->id > b.second->id;
    });
    for (const auto& [depth, info] : garbage) out.remove.push_back(*info);
    p.snapshots.push_back(std::move(out));
  }
  return p;
}

common::Result<IngestEstimate> EstimateIngest(const store::ContentStore& content,
                                              std::chrono::seconds min_age) {
  IngestEstimate est;
  std::filesystem::path dir = content.IngestPath(Digest()).parent_path();
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return est;
    return common::ErrnoError("list ingest `" + dir.string() + "`", ec.value());
  }
  const auto now = std::chrono::system_clock::now();
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    auto dash = name.find('-');
    if (dash == std::string::npos ||
        !Digest::Parse(name.substr(0, dash) + ":" + name.substr(dash + 1)))
      continue;
    auto fd = common::Open(it->path().string(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!fd) continue;
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ++est.total_files;
    est.total_bytes += st.st_size;
    // A writer holds LOCK_EX for as long as it writes; a shared probe fails
    // then and is released with the fd.
    if (::flock(fd->get(), LOCK_SH | LOCK_NB) != 0) continue;
    auto mtime = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    if (st.st_size > 0 && now - mtime < min_age) continue;  // as CleanIngest
    ++est.files;
    est.bytes += st.st_size;
  }
  if (ec) return common::ErrnoError("list ingest `" + dir.string() + "`", ec.value());
  return est;
}

}  // namespace upkeep::internal
