// The operations of a metadata transaction (Txn). Each runs on the
// connection whose mutex the Txn holds.

#include <sys/random.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "store/metadata.h"
#include "store/metadata_internal.h"

namespace store {

using common::Digest;
using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

namespace {

constexpr std::string_view kImageColumns =
    "name, media_type, digest, size, annotations, created_ns, updated_ns";

common::Error Corrupt(const SqliteDb& db, std::string_view op, std::string why) {
  return common::Error{
      Errc::kDataLoss, 0,
      std::string(op) + ": sqlite `" + db.path().string() + "`: corrupt row: " + std::move(why)};
}

std::string AnnotationsJson(const std::map<std::string, std::string>& a) {
  return nlohmann::json(a).dump();
}

Result<std::map<std::string, std::string>> ParseAnnotations(const SqliteDb& db, std::string_view op,
                                                            const std::string& text) {
  if (text == "{}") return std::map<std::string, std::string>();  // most targets: no parse
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return std::unexpected(Corrupt(db, op, "annotations are not a JSON object"));
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      return std::unexpected(Corrupt(db, op, "annotation `" + it.key() + "` is not a string"));
    out.emplace(it.key(), it.value().get<std::string>());
  }
  return out;
}

Result<Digest> ParseDigestColumn(const SqliteDb& db, std::string_view op, const std::string& text) {
  auto d = Digest::Parse(text);
  if (!d) return std::unexpected(Corrupt(db, op, d.error().message));
  return d;
}

// Reads one images row selected with kImageColumns (labels not included).
Result<ImageRecord> ImageFromRow(const SqliteDb& db, std::string_view op, const SqliteStmt& st) {
  ASSIGN_OR_RETURN(Digest digest, ParseDigestColumn(db, op, st.ColumnText(2)));
  ASSIGN_OR_RETURN(auto annotations, ParseAnnotations(db, op, st.ColumnText(4)));
  int64_t size = st.ColumnInt(3);
  if (size < 0) return std::unexpected(Corrupt(db, op, "negative size"));
  return ImageRecord{
      .name = st.ColumnText(0),
      .target = oci::Descriptor{.media_type = st.ColumnText(1),
                                .digest = std::move(digest),
                                .size = size,
                                .annotations = std::move(annotations),
                                .urls = {},
                                .artifact_type = {}},
      .created_ns = st.ColumnInt(5),
      .updated_ns = st.ColumnInt(6),
      .labels = {},
  };
}

// Every image with its labels, in name order, each passed to `fn` once
// read: two scans, images by name and all labels by (image, key), merged
// as they go, so that one record at a time is in memory and no statement
// runs per image.
Status WalkImages(SqliteDb& db, std::string_view op,
                  const std::function<Status(ImageRecord&&)>& fn) {
  ASSIGN_OR_RETURN(
      SqliteStmt images,
      db.Prepare("SELECT " + std::string(kImageColumns) + " FROM images ORDER BY name", op));
  ASSIGN_OR_RETURN(
      SqliteStmt labels,
      db.Prepare("SELECT image, key, value FROM image_labels ORDER BY image, key", op));
  // The image the current label row is of; nullopt once they are all read.
  std::optional<std::string_view> of;
  auto next_label = [&]() -> Status {
    ASSIGN_OR_RETURN(bool row, labels.Step());
    of = row ? std::optional<std::string_view>(labels.ColumnTextView(0)) : std::nullopt;
    return {};
  };
  TRY(next_label());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, images.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(ImageRecord r, ImageFromRow(db, op, images));
    // Both scans are in BINARY (memcmp) order, which std::string_view's
    // comparison is too. A label whose image is not listed (none, with
    // foreign keys on) is skipped, as the single-image queries would.
    while (of && *of < std::string_view(r.name)) TRY(next_label());
    while (of && *of == r.name) {
      r.labels.emplace_hint(r.labels.end(), labels.ColumnText(1), labels.ColumnText(2));
      TRY(next_label());
    }
    TRY(fn(std::move(r)));
  }
  return {};
}

// Runs a SELECT of kImageColumns with one text parameter, with each
// image's labels, in one statement: a row per label (or one with NULL
// label columns for an image without labels), in name order.
Result<std::vector<ImageRecord>> QueryImages(SqliteDb& db, std::string_view op,
                                             std::string_view where, const std::string& arg) {
  ASSIGN_OR_RETURN(SqliteStmt st,
                   db.Prepare("SELECT " + std::string(kImageColumns) +
                                  ", l.key, l.value FROM images LEFT JOIN image_labels l ON "
                                  "l.image = name " +
                                  std::string(where) + " ORDER BY name",
                              op));
  TRY(st.Bind(1, arg));
  constexpr int kKey = 7, kValue = 8;
  std::vector<ImageRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    // Rows of one image are adjacent (ORDER BY name; names are unique).
    if (out.empty() || st.ColumnTextView(0) != out.back().name) {
      ASSIGN_OR_RETURN(ImageRecord r, ImageFromRow(db, op, st));
      out.push_back(std::move(r));
    }
    if (!st.ColumnIsNull(kKey))
      out.back().labels.emplace(st.ColumnText(kKey), st.ColumnText(kValue));
  }
  return out;
}

Status CheckKind(std::string_view kind, std::string_view op) {
  if (kind == kLeaseContent || kind == kLeaseSnapshot) return {};
  return MakeError(Errc::kInvalidArgument, std::string(op) + ": unknown resource kind " +
                                               Quoted(kind) + " (want content or snapshot)");
}

Result<std::string> RandomLeaseId() {
  unsigned char buf[16];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError("create lease: getrandom");
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char c : buf) {
    id.push_back(kHex[c >> 4]);
    id.push_back(kHex[c & 0xf]);
  }
  return id;
}

// Longer would overflow int64 nanoseconds soon enough to matter.
constexpr std::chrono::seconds kMaxLeaseTtl = std::chrono::hours(24 * 365 * 100);

Status CheckTtl(std::chrono::seconds ttl, std::string_view op) {
  if (ttl.count() <= 0 || ttl > kMaxLeaseTtl)
    return MakeError(Errc::kInvalidArgument,
                     std::string(op) + ": ttl must be positive and at most 100 years");
  return {};
}

int64_t AddTtl(int64_t now_ns, std::chrono::seconds ttl) {
  return now_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
}

}  // namespace

#define REQUIRE_ACTIVE(op) \
  if (state_ == nullptr)   \
  return MakeError(Errc::kFailedPrecondition, std::string(op) + ": transaction is not active")

// ---- images ----------------------------------------------------------------

Status Txn::PutImage(const ImageRecord& r) {
  const std::string op = "put image " + Quoted(r.name);
  REQUIRE_ACTIVE(op);
  if (r.name.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty name");
  if (r.target.size < 0) return MakeError(Errc::kInvalidArgument, op + ": negative size");
  SqliteDb& db = state_->db;
  const int64_t now = state_->NowNs();
  ASSIGN_OR_RETURN(SqliteStmt up,
                   db.Prepare("INSERT INTO images (" + std::string(kImageColumns) +
                                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                                  "ON CONFLICT (name) DO UPDATE SET "
                                  "media_type = excluded.media_type, digest = excluded.digest, "
                                  "size = excluded.size, annotations = excluded.annotations, "
                                  "updated_ns = excluded.updated_ns",
                              op));
  TRY(up.Bind(1, r.name));
  TRY(up.Bind(2, r.target.media_type));
  TRY(up.Bind(3, r.target.digest.str()));
  TRY(up.Bind(4, r.target.size));
  TRY(up.Bind(5, AnnotationsJson(r.target.annotations)));
  TRY(up.Bind(6, r.created_ns != 0 ? r.created_ns : now));
  TRY(up.Bind(7, now));
  TRY(up.Run());

  ASSIGN_OR_RETURN(SqliteStmt del, db.Prepare("DELETE FROM image_labels WHERE image = ?1", op));
  TRY(del.Bind(1, r.name));
  TRY(del.Run());
  if (!r.labels.empty()) {
    ASSIGN_OR_RETURN(SqliteStmt ins, db.Prepare("INSERT INTO image_labels (image, key, value) "
                                                "VALUES (?1, ?2, ?3)",
                                                op));
    for (const auto& [k, v] : r.labels) {
      ins.Reset();
      TRY(ins.Bind(1, r.name));
      TRY(ins.Bind(2, k));
      TRY(ins.Bind(3, v));
      TRY(ins.Run());
    }
  }
  return {};
}

Result<ImageRecord> Txn::GetImage(std::string_view name) {
  const std::string op = "get image " + Quoted(name);
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(auto rows, QueryImages(state_->db, op, "WHERE name = ?1", std::string(name)));
  if (rows.empty()) return MakeError(Errc::kNotFound, op + ": no such image");
  return std::move(rows.front());
}

Result<std::vector<ImageRecord>> Txn::ListImages() {
  REQUIRE_ACTIVE("list images");
  std::vector<ImageRecord> out;
  TRY(WalkImages(state_->db, "list images", [&](ImageRecord&& r) -> Status {
    out.push_back(std::move(r));
    return {};
  }));
  return out;
}

Status Txn::ForEachImage(const std::function<Status(ImageRecord&&)>& fn) {
  REQUIRE_ACTIVE("list images");
  return WalkImages(state_->db, "list images", fn);
}

Status Txn::DeleteImage(std::string_view name) {
  const std::string op = "delete image " + Quoted(name);
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("DELETE FROM images WHERE name = ?1", op));
  TRY(st.Bind(1, name));
  TRY(st.Run());
  if (state_->db.Changes() == 0) return MakeError(Errc::kNotFound, op + ": no such image");
  return {};
}

Status Txn::SetImageLabel(std::string_view name, std::string_view key, std::string_view value) {
  const std::string op = "label image " + Quoted(name);
  REQUIRE_ACTIVE(op);
  if (key.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty label key");
  SqliteDb& db = state_->db;
  {
    ASSIGN_OR_RETURN(SqliteStmt st, db.Prepare("SELECT 1 FROM images WHERE name = ?1", op));
    TRY(st.Bind(1, name));
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return MakeError(Errc::kNotFound, op + ": no such image");
  }
  ASSIGN_OR_RETURN(
      SqliteStmt st,
      db.Prepare(value.empty() ? "DELETE FROM image_labels WHERE image = ?1 AND key = ?2"
                               : "INSERT INTO image_labels (image, key, value) VALUES (?1, ?2, ?3) "
                                 "ON CONFLICT (image, key) DO UPDATE SET value = excluded.value",
                 op));
  TRY(st.Bind(1, name));
  TRY(st.Bind(2, key));
  if (!value.empty()) {
    TRY(st.Bind(3, value));
  }
  return st.Run();
}

Result<std::vector<ImageRecord>> Txn::ImagesByTarget(const Digest& digest) {
  const std::string op = "list images of " + digest.str();
  REQUIRE_ACTIVE(op);
  return QueryImages(state_->db, op, "WHERE digest = ?1", digest.str());
}

// ---- blobs -----------------------------------------------------------------

Status Txn::PutBlob(const Digest& digest, int64_t size, std::string_view media_type) {
  const std::string op = "put blob " + digest.str();
  REQUIRE_ACTIVE(op);
  if (size < 0) return MakeError(Errc::kInvalidArgument, op + ": negative size");
  auto existing = GetBlob(digest);
  if (existing) {
    if (existing->size != size)
      return MakeError(Errc::kFailedPrecondition, op + ": already recorded with size " +
                                                      std::to_string(existing->size) + ", not " +
                                                      std::to_string(size));
    return {};
  }
  if (existing.error().code != Errc::kNotFound) return std::unexpected(existing.error());
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("INSERT INTO blobs (digest, size, media_type, created_ns) "
                                      "VALUES (?1, ?2, ?3, ?4)",
                                      op));
  TRY(st.Bind(1, digest.str()));
  TRY(st.Bind(2, size));
  TRY(st.Bind(3, media_type));
  TRY(st.Bind(4, state_->NowNs()));
  return st.Run();
}

Result<BlobRecord> Txn::GetBlob(const Digest& digest) {
  const std::string op = "get blob " + digest.str();
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("SELECT size, media_type, created_ns FROM blobs "
                                      "WHERE digest = ?1",
                                      op));
  TRY(st.Bind(1, digest.str()));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return MakeError(Errc::kNotFound, op + ": no such blob record");
  return BlobRecord{.digest = digest,
                    .size = st.ColumnInt(0),
                    .media_type = st.ColumnText(1),
                    .created_ns = st.ColumnInt(2)};
}

Status Txn::DeleteBlob(const Digest& digest) {
  const std::string op = "delete blob record " + digest.str();
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("DELETE FROM blobs WHERE digest = ?1", op));
  TRY(st.Bind(1, digest.str()));
  TRY(st.Run());
  if (state_->db.Changes() == 0) return MakeError(Errc::kNotFound, op + ": no such blob record");
  return {};
}

Result<std::vector<BlobRecord>> Txn::ListBlobs() {
  const std::string op = "list blobs";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("SELECT digest, size, media_type, created_ns FROM blobs "
                                      "ORDER BY digest",
                                      op));
  std::vector<BlobRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(Digest d, ParseDigestColumn(state_->db, op, st.ColumnText(0)));
    out.push_back(BlobRecord{.digest = std::move(d),
                             .size = st.ColumnInt(1),
                             .media_type = st.ColumnText(2),
                             .created_ns = st.ColumnInt(3)});
  }
  return out;
}

Result<StoreTotals> Txn::Totals() {
  const std::string op = "count images and blobs";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("SELECT (SELECT count(*) FROM images), "
                                                     "count(*), coalesce(sum(size), 0) FROM blobs",
                                                     op));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return StoreTotals{};
  return StoreTotals{
      .images = st.ColumnInt(0), .blobs = st.ColumnInt(1), .blob_bytes = st.ColumnInt(2)};
}

// ---- counters --------------------------------------------------------------

namespace {
constexpr char kCounterLabelSeparator = '\x1f';
}  // namespace

Status Txn::AddCounters(std::span<const CounterDelta> deltas) {
  const std::string op = "add counters";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("INSERT INTO counters (name, labels, value) VALUES (?1, ?2, "
                                      "?3) ON CONFLICT (name, labels) DO UPDATE SET value = "
                                      "value + excluded.value",
                                      op));
  for (const CounterDelta& d : deltas) {
    if (d.name.empty() || d.value < 0)
      return MakeError(Errc::kInvalidArgument,
                       op + ": counter `" + d.name + "` with value " + std::to_string(d.value));
    std::string labels;
    for (size_t i = 0; i < d.labels.size(); ++i) {
      if (d.labels[i].find(kCounterLabelSeparator) != std::string::npos)
        return MakeError(Errc::kInvalidArgument,
                         op + ": counter `" + d.name + "`: a label value holds \\x1f");
      if (i > 0) labels += kCounterLabelSeparator;
      labels += d.labels[i];
    }
    TRY(st.Bind(1, d.name));
    TRY(st.Bind(2, labels));
    TRY(st.Bind(3, d.value));
    TRY(st.Run());
    st.Reset();
  }
  return {};
}

Result<std::vector<CounterDelta>> Txn::ListCounters() {
  const std::string op = "list counters";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("SELECT name, labels, value FROM counters ORDER BY name, "
                                      "labels",
                                      op));
  std::vector<CounterDelta> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    CounterDelta d{.name = st.ColumnText(0), .labels = {}, .value = st.ColumnInt(2)};
    const std::string labels = st.ColumnText(1);
    if (!labels.empty()) {
      size_t from = 0;
      while (true) {
        const size_t cut = labels.find(kCounterLabelSeparator, from);
        d.labels.push_back(labels.substr(from, cut == std::string::npos ? cut : cut - from));
        if (cut == std::string::npos) break;
        from = cut + 1;
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

// ---- leases ----------------------------------------------------------------

Result<LeaseHold> Txn::CreateLease(std::chrono::seconds ttl) {
  const std::string op = "create lease";
  REQUIRE_ACTIVE(op);
  TRY(CheckTtl(ttl, op));
  ASSIGN_OR_RETURN(std::string id, RandomLeaseId());
  // The hold first: a process killed between the two leaves a hold file
  // without a row (prune removes it), never a row nobody holds.
  ASSIGN_OR_RETURN(LeaseHold hold, common::Wrap(LeaseHold::Take(state_->root, id), op));
  const int64_t now = state_->NowNs();
  auto insert = [&]() -> Status {
    ASSIGN_OR_RETURN(SqliteStmt st,
                     state_->db.Prepare("INSERT INTO leases (id, created_ns, expires_ns) "
                                        "VALUES (?1, ?2, ?3)",
                                        op));
    TRY(st.Bind(1, id));
    TRY(st.Bind(2, now));
    TRY(st.Bind(3, AddTtl(now, ttl)));
    return st.Run();
  };
  if (auto st = insert(); !st) {
    hold.Release();  // no row was inserted
    return std::unexpected(std::move(st.error()));
  }
  return hold;
}

Status Txn::RenewLease(std::string_view lease, std::chrono::seconds ttl) {
  const std::string op = "renew lease " + Quoted(lease);
  REQUIRE_ACTIVE(op);
  TRY(CheckTtl(ttl, op));
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("UPDATE leases SET expires_ns = ?2 WHERE id = ?1", op));
  TRY(st.Bind(1, lease));
  TRY(st.Bind(2, AddTtl(state_->NowNs(), ttl)));
  TRY(st.Run());
  if (state_->db.Changes() == 0) return MakeError(Errc::kNotFound, op + ": no such lease");
  return {};
}

Status Txn::AddLeaseResource(std::string_view lease, std::string_view kind, std::string_view id) {
  const std::string op =
      "add " + std::string(kind) + " " + Quoted(id) + " to lease " + Quoted(lease);
  REQUIRE_ACTIVE(op);
  TRY(CheckKind(kind, op));
  if (id.empty()) return MakeError(Errc::kInvalidArgument, op + ": empty resource id");
  ASSIGN_OR_RETURN(SqliteStmt q,
                   state_->db.Prepare("SELECT expires_ns FROM leases WHERE id = ?1", op));
  TRY(q.Bind(1, lease));
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return MakeError(Errc::kNotFound, op + ": no such lease");
  if (q.ColumnInt(0) <= state_->NowNs())
    return MakeError(Errc::kNotFound, op + ": lease has expired");
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("INSERT OR IGNORE INTO lease_resources (lease, kind, id) "
                                      "VALUES (?1, ?2, ?3)",
                                      op));
  TRY(st.Bind(1, lease));
  TRY(st.Bind(2, kind));
  TRY(st.Bind(3, id));
  return st.Run();
}

Status Txn::RemoveLeaseResource(std::string_view lease, std::string_view kind,
                                std::string_view id) {
  const std::string op =
      "remove " + std::string(kind) + " " + Quoted(id) + " from lease " + Quoted(lease);
  REQUIRE_ACTIVE(op);
  TRY(CheckKind(kind, op));
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("DELETE FROM lease_resources "
                                                     "WHERE lease = ?1 AND kind = ?2 AND id = ?3",
                                                     op));
  TRY(st.Bind(1, lease));
  TRY(st.Bind(2, kind));
  TRY(st.Bind(3, id));
  TRY(st.Run());
  if (state_->db.Changes() == 0)
    return MakeError(Errc::kNotFound, op + ": the lease does not hold it");
  return {};
}

Status Txn::DeleteLease(std::string_view lease) {
  const std::string op = "delete lease " + Quoted(lease);
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st, state_->db.Prepare("DELETE FROM leases WHERE id = ?1", op));
  TRY(st.Bind(1, lease));
  TRY(st.Run());
  if (state_->db.Changes() == 0) return MakeError(Errc::kNotFound, op + ": no such lease");
  return {};
}

Result<std::vector<std::string>> Txn::LeasedResources(std::string_view kind) {
  const std::string op = "list leased " + std::string(kind) + " resources";
  REQUIRE_ACTIVE(op);
  TRY(CheckKind(kind, op));
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("SELECT DISTINCT r.id FROM lease_resources r "
                                      "JOIN leases l ON l.id = r.lease "
                                      "WHERE r.kind = ?1 AND l.expires_ns > ?2 ORDER BY r.id",
                                      op));
  TRY(st.Bind(1, kind));
  TRY(st.Bind(2, state_->NowNs()));
  std::vector<std::string> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(st.ColumnText(0));
  }
  return out;
}

Result<std::vector<LeaseRecord>> Txn::ListLeases() {
  const std::string op = "list leases";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("SELECT id, created_ns, expires_ns FROM leases "
                                      "ORDER BY id",
                                      op));
  std::vector<LeaseRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(LeaseRecord{
        .id = st.ColumnText(0), .created_ns = st.ColumnInt(1), .expires_ns = st.ColumnInt(2)});
  }
  return out;
}

Status Txn::DeleteExpiredLeases() {
  const std::string op = "delete expired leases";
  REQUIRE_ACTIVE(op);
  ASSIGN_OR_RETURN(SqliteStmt st,
                   state_->db.Prepare("DELETE FROM leases WHERE expires_ns <= ?1", op));
  TRY(st.Bind(1, state_->NowNs()));
  return st.Run();
}

#undef REQUIRE_ACTIVE

}  // namespace store
