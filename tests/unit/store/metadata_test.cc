#include "store/metadata.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/sqlite_syncs.h"

namespace store {
namespace {

namespace fs = std::filesystem;
using common::Digest;
using common::Errc;
using namespace std::chrono_literals;

constexpr int64_t kStartNs = 1'700'000'000'000'000'000;
constexpr int64_t kSecondNs = 1'000'000'000;

// Runs one SQL statement on the database file directly, returning the
// first column of the first row (or 0), for checks the API does not expose.
int64_t RawQuery(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    ADD_FAILURE() << "open " << db_path;
    return -1;
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* st = nullptr;
  int64_t out = 0;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      out = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

oci::Descriptor Manifest(std::string_view seed, int64_t size = 1234) {
  return oci::Descriptor{.media_type = "application/vnd.oci.image.manifest.v1+json",
                         .digest = Digest::Sha256Of(seed),
                         .size = size,
                         .annotations = {},
                         .urls = {},
                         .artifact_type = {}};
}

class StoreMetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("metadata-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    root_ = dir_.path() / "root";
    auto db = Open();
    ASSERT_TRUE(db) << db.error().message;
    db_.emplace(std::move(*db));
  }

  MetadataDb::Options Opts() {
    return MetadataDb::Options{
        .now =
            [this] {
              return std::chrono::system_clock::time_point(
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(
                      std::chrono::nanoseconds(now_ns_.load())));
            },
        .busy_timeout = 10s};
  }
  common::Result<MetadataDb> Open() { return MetadataDb::Open(root_, Opts()); }
  void Advance(std::chrono::seconds s) { now_ns_ += s.count() * kSecondNs; }

  MetadataDb& db() { return *db_; }

  std::atomic<int64_t> now_ns_{kStartNs};
  common::TempDir dir_;
  fs::path root_;
  std::optional<MetadataDb> db_;
};

TEST_F(StoreMetadataTest, OpenSetsWalAndSchemaVersion) {
  EXPECT_EQ(db().path(), root_ / "metadata.db");
  EXPECT_EQ(RawQuery(db().path(), "PRAGMA user_version"), kMetadataSchemaVersion);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().path().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_F(StoreMetadataTest, PutGetImage) {
  ImageRecord r{.name = "docker.io/library/busybox:latest",
                .target = Manifest("m1"),
                .created_ns = 0,
                .updated_ns = 0,
                .labels = {{"io.cri.pinned", "true"}, {"team", "a"}}};
  r.target.annotations = {{"org.opencontainers.image.ref.name", "latest"}};
  ASSERT_TRUE(db().PutImage(r));
  auto got = db().GetImage(r.name);
  ASSERT_TRUE(got) << got.error().message;
  r.created_ns = kStartNs;
  r.updated_ns = kStartNs;
  EXPECT_EQ(*got, r);
}

TEST_F(StoreMetadataTest, PutImageUpsertsKeepingCreatedAndReplacingLabels) {
  ImageRecord r{.name = "ghcr.io/org/app:v1",
                .target = Manifest("m1"),
                .created_ns = 0,
                .updated_ns = 0,
                .labels = {{"a", "1"}, {"b", "2"}}};
  ASSERT_TRUE(db().PutImage(r));
  Advance(60s);
  r.target = Manifest("m2", 99);
  r.labels = {{"c", "3"}};
  r.created_ns = 42;  // ignored for an existing row
  ASSERT_TRUE(db().PutImage(r));
  auto got = db().GetImage(r.name);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->target, Manifest("m2", 99));
  EXPECT_EQ(got->created_ns, kStartNs);
  EXPECT_EQ(got->updated_ns, kStartNs + 60 * kSecondNs);
  EXPECT_EQ(got->labels, (std::map<std::string, std::string>{{"c", "3"}}));
  auto all = db().ListImages();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(StoreMetadataTest, ExplicitCreatedIsKeptForNewRows) {
  ImageRecord r{
      .name = "x/y:z", .target = Manifest("m"), .created_ns = 5, .updated_ns = 0, .labels = {}};
  ASSERT_TRUE(db().PutImage(r));
  auto got = db().GetImage("x/y:z");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->created_ns, 5);
  EXPECT_EQ(got->updated_ns, kStartNs);
}

// "a/b:c" on manifest "m", with one label k=v.
ImageRecord LabelledRecord() {
  return ImageRecord{.name = "a/b:c",
                     .target = Manifest("m"),
                     .created_ns = 0,
                     .updated_ns = 0,
                     .labels = {{"k", "v"}}};
}

TEST_F(StoreMetadataTest, ImageNotFoundAndDeleteCascadesLabels) {
  auto missing = db().GetImage("nope:1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_NE(missing.error().message.find("nope:1"), std::string::npos);
  EXPECT_EQ(db().DeleteImage("nope:1").error().code, Errc::kNotFound);

  const ImageRecord r = LabelledRecord();
  ASSERT_TRUE(db().PutImage(r));
  EXPECT_EQ(RawQuery(db().path(), "SELECT count(*) FROM image_labels"), 1);
  ASSERT_TRUE(db().DeleteImage("a/b:c"));
  EXPECT_EQ(db().GetImage("a/b:c").error().code, Errc::kNotFound);
  EXPECT_EQ(RawQuery(db().path(), "SELECT count(*) FROM image_labels"), 0);
}

TEST_F(StoreMetadataTest, SetImageLabelKeepsTheRestOfTheRecord) {
  EXPECT_EQ(db().SetImageLabel("nope:1", "k", "v").error().code, Errc::kNotFound);
  const ImageRecord r = LabelledRecord();
  ASSERT_TRUE(db().PutImage(r));
  auto before = db().GetImage("a/b:c");
  ASSERT_TRUE(before);
  EXPECT_EQ(db().SetImageLabel("a/b:c", "", "x").error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(db().SetImageLabel("a/b:c", "state", "pending: down"));
  ASSERT_TRUE(db().SetImageLabel("a/b:c", "state", "yes"));
  auto after = db().GetImage("a/b:c");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->labels, (std::map<std::string, std::string>{{"k", "v"}, {"state", "yes"}}));
  EXPECT_EQ(after->updated_ns, before->updated_ns);
  EXPECT_EQ(after->target, before->target);
  ASSERT_TRUE(db().SetImageLabel("a/b:c", "state", ""));
  auto removed = db().GetImage("a/b:c");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->labels, (std::map<std::string, std::string>{{"k", "v"}}));
  // A new record of the name replaces the labels.
  ASSERT_TRUE(db().SetImageLabel("a/b:c", "state", "yes"));
  ASSERT_TRUE(db().PutImage(r));
  EXPECT_EQ(db().GetImage("a/b:c")->labels, r.labels);
}

TEST_F(StoreMetadataTest, PutImageRejectsEmptyName) {
  ImageRecord r{
      .name = "", .target = Manifest("m"), .created_ns = 0, .updated_ns = 0, .labels = {}};
  auto st = db().PutImage(r);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument);
}

TEST_F(StoreMetadataTest, ListAndImagesByTarget) {
  oci::Descriptor shared = Manifest("shared");
  for (const std::string& name :
       std::vector<std::string>{"z/img:1", "a/img:1", "m/img@" + shared.digest.str()}) {
    ASSERT_TRUE(db().PutImage({.name = name,
                               .target = shared,
                               .created_ns = 0,
                               .updated_ns = 0,
                               .labels = {{"n", name}}}));
  }
  ASSERT_TRUE(db().PutImage({.name = "other:1",
                             .target = Manifest("other"),
                             .created_ns = 0,
                             .updated_ns = 0,
                             .labels = {}}));
  auto all = db().ListImages();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].name, "a/img:1");
  EXPECT_EQ((*all)[0].labels.at("n"), "a/img:1");
  EXPECT_EQ((*all)[3].name, "z/img:1");
  auto users = db().ImagesByTarget(shared.digest);
  ASSERT_TRUE(users);
  ASSERT_EQ(users->size(), 3u);
  for (const auto& u : *users) {
    EXPECT_EQ(u.target.digest, shared.digest);
    EXPECT_EQ(u.labels.at("n"), u.name);
  }
  auto none = db().ImagesByTarget(Digest::Sha256Of(std::string_view("nobody")));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// ListImages reads every image and its labels in one statement: each
// record gets its own labels, all of them, and one without labels none.
TEST_F(StoreMetadataTest, ListImagesGivesEachRecordItsOwnLabels) {
  const std::map<std::string, std::map<std::string, std::string>> want = {
      {"a/none:1", {}},
      {"b/one:1", {{"k", "b"}}},
      {"c/many:1", {{"k1", "c1"}, {"k2", "c2"}, {"k3", ""}}},
      {"d/none:2", {}},
      {"e/one:2", {{"k", "e"}}}};
  // Inserted out of order: the listing is by name, not by insertion.
  for (auto it = want.rbegin(); it != want.rend(); ++it)
    ASSERT_TRUE(db().PutImage({.name = it->first,
                               .target = Manifest(it->first),
                               .created_ns = 0,
                               .updated_ns = 0,
                               .labels = it->second}));
  auto all = db().ListImages();
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), want.size());
  auto w = want.begin();
  for (const ImageRecord& r : *all) {
    EXPECT_EQ(r.name, w->first);
    EXPECT_EQ(r.target, Manifest(w->first));
    EXPECT_EQ(r.labels, w->second) << r.name;
    ++w;
  }
  auto one = db().GetImage("c/many:1");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->labels, want.at("c/many:1"));
  auto bare = db().GetImage("d/none:2");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_TRUE(bare->labels.empty());
}

TEST_F(StoreMetadataTest, Blobs) {
  Digest a = Digest::Sha256Of(std::string_view("a"));
  Digest b = Digest::Sha256Of(std::string_view("b"));
  ASSERT_TRUE(db().PutBlob(a, 10, "application/vnd.oci.image.layer.v1.tar+gzip"));
  ASSERT_TRUE(db().PutBlob(a, 10, "application/vnd.oci.image.layer.v1.tar+gzip"));
  ASSERT_TRUE(db().PutBlob(b, 20, "application/vnd.oci.image.config.v1+json"));
  auto conflict = db().PutBlob(a, 11, "x");
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code, Errc::kFailedPrecondition);
  EXPECT_EQ(db().PutBlob(b, -1, "x").error().code, Errc::kInvalidArgument);

  auto got = db().GetBlob(a);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size, 10);
  EXPECT_EQ(got->created_ns, kStartNs);
  auto list = db().ListBlobs();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_LT((*list)[0].digest.str(), (*list)[1].digest.str());

  ASSERT_TRUE(db().DeleteBlob(a));
  EXPECT_EQ(db().DeleteBlob(a).error().code, Errc::kNotFound);
  EXPECT_EQ(db().GetBlob(a).error().code, Errc::kNotFound);
}

TEST_F(StoreMetadataTest, TotalsCountImagesAndBlobsAndSumBlobSizes) {
  auto empty = db().Totals();
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(empty->images, 0);
  EXPECT_EQ(empty->blobs, 0);
  EXPECT_EQ(empty->blob_bytes, 0);
  ASSERT_TRUE(db().PutBlob(Digest::Sha256Of(std::string_view("a")), 10, "x"));
  ASSERT_TRUE(db().PutBlob(Digest::Sha256Of(std::string_view("b")), 32, "x"));
  for (const char* name : {"a:1", "b:1", "c:1"}) {
    ASSERT_TRUE(db().PutImage(
        {.name = name, .target = Manifest("m"), .created_ns = 0, .updated_ns = 0, .labels = {}}));
  }
  auto t = db().Totals();
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->images, 3);
  EXPECT_EQ(t->blobs, 2);
  EXPECT_EQ(t->blob_bytes, 42);
}

TEST_F(StoreMetadataTest, CountersAddUpAcrossConnectionsAndKeepTheirLabels) {
  auto none = db().ListCounters();
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());
  auto second = Open();
  ASSERT_TRUE(second) << second.error().message;
  const std::vector<CounterDelta> pull = {
      {.name = "t_pulls_total", .labels = {"success"}, .value = 1},
      {.name = "t_bytes_total", .labels = {"upstream"}, .value = 100},
      {.name = "t_two_total", .labels = {"a", ""}, .value = 2},
      {.name = "t_plain_total", .labels = {}, .value = 3}};
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  auto adder = [&](MetadataDb* conn) {
    for (int i = 0; i < kPerThread; ++i)
      if (!conn->AddCounters(pull)) ++failures;
  };
  std::thread t1(adder, &db());
  std::thread t2(adder, &*second);
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
  auto rows = second->ListCounters();
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), 4u);
  // Sorted by name, then labels.
  EXPECT_EQ((*rows)[0].name, "t_bytes_total");
  EXPECT_EQ((*rows)[0].labels, std::vector<std::string>{"upstream"});
  EXPECT_EQ((*rows)[0].value, 100 * 2 * kPerThread);
  EXPECT_EQ((*rows)[1].name, "t_plain_total");
  EXPECT_TRUE((*rows)[1].labels.empty());
  EXPECT_EQ((*rows)[1].value, 3 * 2 * kPerThread);
  EXPECT_EQ((*rows)[2].name, "t_pulls_total");
  EXPECT_EQ((*rows)[2].value, 2 * kPerThread);
  EXPECT_EQ((*rows)[3].name, "t_two_total");
  EXPECT_EQ((*rows)[3].labels, (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(RawQuery(db().path(), "SELECT count(*) FROM counters"), 4);
}

TEST_F(StoreMetadataTest, ABadCounterAddsNothing) {
  const std::vector<CounterDelta> bad_value = {{.name = "t_ok_total", .labels = {}, .value = 1},
                                               {.name = "t_neg_total", .labels = {}, .value = -1}};
  auto st = db().AddCounters(bad_value);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument) << st.error().message;
  const std::vector<CounterDelta> bad_label = {{.name = "t_ok_total",
                                                .labels = {std::string("a\x1f"
                                                                       "b")},
                                                .value = 1}};
  st = db().AddCounters(bad_label);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kInvalidArgument) << st.error().message;
  const std::vector<CounterDelta> no_name = {{.name = "", .labels = {}, .value = 1}};
  EXPECT_FALSE(db().AddCounters(no_name));
  auto rows = db().ListCounters();
  ASSERT_TRUE(rows);
  EXPECT_TRUE(rows->empty()) << "the good delta before a bad one is rolled back too";
  EXPECT_TRUE(db().AddCounters({})) << "nothing to add is no error";
}

ImageRecord Named(const std::string& name) {
  return ImageRecord{
      .name = name, .target = Manifest(name), .created_ns = 0, .updated_ns = 0, .labels = {}};
}

// BeginUnsynced (a pull's lease) commits without a sync of the log, is
// seen at once by another connection, and leaves the connection syncing
// every later commit (the image record) as before.
TEST_F(StoreMetadataTest, AnUnsyncedCommitWaitsForNoSyncAndTheNextCommitDoes) {
  fixtures::CountSqliteSyncs();
  db_.reset();
  auto opened = Open();  // a connection that counts
  ASSERT_TRUE(opened) << opened.error().message;
  db_.emplace(std::move(*opened));
  // The first write to a fresh log also syncs its header, whatever the
  // transaction; from here on the log only grows.
  ASSERT_TRUE(db().PutImage(Named("warm")));

  const std::string layer = Digest::Sha256Of(std::string_view("layer")).str();
  int64_t before = fixtures::SqliteWalSyncs();
  auto txn = db().BeginUnsynced();
  ASSERT_TRUE(txn) << txn.error().message;
  auto lease = txn->CreateLease(60s);
  ASSERT_TRUE(lease) << lease.error().message;
  ASSERT_TRUE(txn->AddLeaseResource(lease->lease(), kLeaseContent, layer));
  ASSERT_TRUE(txn->Commit());
  EXPECT_EQ(fixtures::SqliteWalSyncs() - before, 0) << "unsynced commit";

  auto other = Open();
  ASSERT_TRUE(other) << other.error().message;
  auto leased = other->LeasedResources(kLeaseContent);
  ASSERT_TRUE(leased) << leased.error().message;
  EXPECT_EQ(*leased, std::vector<std::string>{layer});

  before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(db().PutImage(Named("after")));
  EXPECT_GE(fixtures::SqliteWalSyncs() - before, 1) << "the commit after an unsynced one";
  before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(db().DeleteLease(*lease));
  EXPECT_GE(fixtures::SqliteWalSyncs() - before, 1) << "a lease's end stays synced";
}

TEST_F(StoreMetadataTest, LeasesExpireByInjectedClock) {
  auto lease = db().CreateLease(60s);
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->lease().size(), 32u);
  auto other = db().CreateLease(3600s);
  ASSERT_TRUE(other);
  EXPECT_NE(lease->lease(), other->lease());

  const std::string layer = Digest::Sha256Of(std::string_view("layer")).str();
  const std::string config = Digest::Sha256Of(std::string_view("config")).str();
  ASSERT_TRUE(db().AddLeaseResource(lease->lease(), kLeaseContent, layer));
  ASSERT_TRUE(db().AddLeaseResource(lease->lease(), kLeaseContent, layer));  // idempotent
  ASSERT_TRUE(db().AddLeaseResource(lease->lease(), kLeaseContent, config));
  ASSERT_TRUE(db().AddLeaseResource(lease->lease(), kLeaseSnapshot, "sn-1"));
  ASSERT_TRUE(db().AddLeaseResource(other->lease(), kLeaseContent, layer));

  auto content = db().LeasedResources(kLeaseContent);
  ASSERT_TRUE(content);
  std::vector<std::string> want{layer, config};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*content, want);
  EXPECT_EQ(*db().LeasedResources(kLeaseSnapshot), std::vector<std::string>{"sn-1"});

  Advance(61s);  // `lease` has expired, `other` has not
  EXPECT_EQ(*db().LeasedResources(kLeaseContent), std::vector<std::string>{layer});
  EXPECT_TRUE(db().LeasedResources(kLeaseSnapshot)->empty());
  auto late = db().AddLeaseResource(lease->lease(), kLeaseContent, "sha256:x");
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::kNotFound);

  ASSERT_EQ(db().ListLeases()->size(), 2u);
  ASSERT_TRUE(db().DeleteExpiredLeases());
  auto leases = db().ListLeases();
  ASSERT_TRUE(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].id, other->lease());
  EXPECT_EQ(RawQuery(db().path(),
                     "SELECT count(*) FROM lease_resources WHERE lease = '" + lease->lease() + "'"),
            0);

  ASSERT_TRUE(db().RenewLease(other->lease(), 7200s));
  Advance(3600s);
  EXPECT_EQ(*db().LeasedResources(kLeaseContent), std::vector<std::string>{layer});
  ASSERT_TRUE(db().RemoveLeaseResource(other->lease(), kLeaseContent, layer));
  EXPECT_EQ(db().RemoveLeaseResource(other->lease(), kLeaseContent, layer).error().code,
            Errc::kNotFound);
  ASSERT_TRUE(db().DeleteLease(other->lease()));
  EXPECT_EQ(db().DeleteLease(other->lease()).error().code, Errc::kNotFound);
  EXPECT_EQ(db().RenewLease(other->lease(), 1s).error().code, Errc::kNotFound);
}

TEST_F(StoreMetadataTest, LeaseArgumentsAreValidated) {
  EXPECT_EQ(db().CreateLease(0s).error().code, Errc::kInvalidArgument);
  auto lease = db().CreateLease(10s);
  ASSERT_TRUE(lease);
  EXPECT_EQ(db().AddLeaseResource(lease->lease(), "bogus", "x").error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(db().AddLeaseResource(lease->lease(), kLeaseContent, "").error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(db().AddLeaseResource("no-such-lease", kLeaseContent, "x").error().code,
            Errc::kNotFound);
  EXPECT_EQ(db().LeasedResources("bogus").error().code, Errc::kInvalidArgument);
}

// No lease row without a hold (store/lease_hold.h): CreateLease returns
// the lease's hold; deleting the lease through it removes the hold file;
// a hold dropped without deleting the lease (a rollback, an error path)
// leaves the lease abandoned, which prune frees, never unheld.
TEST_F(StoreMetadataTest, EveryLeaseIsCreatedWithItsHold) {
  const fs::path holds = LeaseHold::Dir(root_);
  auto lease = db().CreateLease(60s);
  ASSERT_TRUE(lease) << lease.error().message;
  ASSERT_TRUE(lease->held());
  EXPECT_TRUE(fs::exists(holds / lease->lease()));
  auto abandoned = AbandonedLeases(root_);
  ASSERT_TRUE(abandoned) << abandoned.error().message;
  EXPECT_TRUE(abandoned->empty()) << "a held lease counted as abandoned";
  ASSERT_TRUE(db().DeleteLease(*lease));
  EXPECT_FALSE(lease->held());
  EXPECT_TRUE(db().ListLeases()->empty());
  EXPECT_TRUE(fs::is_empty(holds)) << "the hold file outlived its lease";

  std::string rolled_back, dropped;
  {
    auto txn = db().Begin();
    ASSERT_TRUE(txn);
    auto l = txn->CreateLease(60s);
    ASSERT_TRUE(l) << l.error().message;
    rolled_back = l->lease();
  }  // rolled back, the hold dropped
  {
    auto l = db().CreateLease(60s);
    ASSERT_TRUE(l) << l.error().message;
    dropped = l->lease();
  }  // committed, the hold dropped without DeleteLease
  auto leases = db().ListLeases();
  ASSERT_TRUE(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].id, dropped);
  std::vector<std::string> want{rolled_back, dropped};
  std::sort(want.begin(), want.end());
  abandoned = AbandonedLeases(root_);
  ASSERT_TRUE(abandoned) << abandoned.error().message;
  EXPECT_EQ(*abandoned, want);
}

TEST_F(StoreMetadataTest, TxnRollsBackUnlessCommitted) {
  ImageRecord r{.name = "t/x:1",
                .target = Manifest("m"),
                .created_ns = 0,
                .updated_ns = 0,
                .labels = {{"k", "v"}}};
  {
    auto txn = db().Begin();
    ASSERT_TRUE(txn) << txn.error().message;
    ASSERT_TRUE(txn->PutImage(r));
    ASSERT_TRUE(txn->PutBlob(r.target.digest, r.target.size, r.target.media_type));
    auto inside = txn->GetImage(r.name);
    ASSERT_TRUE(inside);
  }
  EXPECT_EQ(db().GetImage(r.name).error().code, Errc::kNotFound);
  EXPECT_EQ(db().GetBlob(r.target.digest).error().code, Errc::kNotFound);

  auto txn = db().Begin();
  ASSERT_TRUE(txn);
  ASSERT_TRUE(txn->PutImage(r));
  ASSERT_TRUE(txn->PutBlob(r.target.digest, r.target.size, r.target.media_type));
  ASSERT_TRUE(txn->Commit());
  EXPECT_FALSE(txn->active());
  EXPECT_EQ(txn->Commit().error().code, Errc::kFailedPrecondition);
  EXPECT_TRUE(db().GetImage(r.name));
  EXPECT_TRUE(db().GetBlob(r.target.digest));
}

TEST_F(StoreMetadataTest, NestedUseOnTheTxnThreadFailsInsteadOfDeadlocking) {
  auto txn = db().Begin();
  ASSERT_TRUE(txn);
  auto nested = db().Begin();
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().code, Errc::kFailedPrecondition);
  EXPECT_EQ(db().ListImages().error().code, Errc::kFailedPrecondition);
  txn->Rollback();
  EXPECT_TRUE(db().ListImages());
}

TEST_F(StoreMetadataTest, OtherThreadWaitsForTxnOnSameConnection) {
  auto txn = db().Begin();
  ASSERT_TRUE(txn);
  ASSERT_TRUE(txn->PutImage({.name = "first:1",
                             .target = Manifest("1"),
                             .created_ns = 0,
                             .updated_ns = 0,
                             .labels = {}}));
  std::atomic<bool> done{false};
  common::Status other_st;
  std::thread t([&] {
    other_st = db().PutImage({.name = "second:1",
                              .target = Manifest("2"),
                              .created_ns = 0,
                              .updated_ns = 0,
                              .labels = {}});
    done = true;
  });
  // The other thread cannot get past the connection mutex until we finish.
  EXPECT_FALSE(done.load());
  EXPECT_TRUE(txn->Commit());
  t.join();
  ASSERT_TRUE(other_st) << other_st.error().message;
  EXPECT_EQ(db().ListImages()->size(), 2u);
}

// One unit of a pull's bookkeeping: an explicit transaction, then
// single-operation writes and a read.
common::Status WriteOne(MetadataDb& conn, const std::string& name) {
  Digest d = Digest::Sha256Of(name);
  {
    ASSIGN_OR_RETURN(Txn txn, conn.Begin());
    TRY(txn.PutImage({.name = name,
                      .target = Manifest(name),
                      .created_ns = 0,
                      .updated_ns = 0,
                      .labels = {{"n", name}}}));
    TRY(txn.PutBlob(d, 1, "x"));
    TRY(txn.Commit());
  }
  TRY(conn.PutBlob(d, 1, "x"));
  ASSIGN_OR_RETURN(LeaseHold lease, conn.CreateLease(60s));
  TRY(conn.AddLeaseResource(lease.lease(), kLeaseContent, d.str()));
  TRY(conn.DeleteLease(lease));
  ASSIGN_OR_RETURN(ImageRecord got, conn.GetImage(name));
  if (got.labels.at("n") != name) return common::MakeError(Errc::kInternal, "label mismatch");
  return {};
}

TEST_F(StoreMetadataTest, TwoConnectionsWritingInParallelNeverSeeBusy) {
  auto second = Open();
  ASSERT_TRUE(second) << second.error().message;
  constexpr int kPerThread = 60;
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex err_mu;
  auto writer = [&](MetadataDb* conn, std::string prefix) {
    for (int i = 0; i < kPerThread; ++i) {
      common::Status st = WriteOne(*conn, prefix + std::to_string(i));
      if (!st) {
        ++failures;
        std::lock_guard lk(err_mu);
        if (first_error.empty()) first_error = st.error().message;
      }
    }
  };
  std::thread t1(writer, &db(), "one/img:");
  std::thread t2(writer, &*second, "two/img:");
  std::thread t3(writer, &*second, "three/img:");  // shares a connection with t2
  t1.join();
  t2.join();
  t3.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  auto all = db().ListImages();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u * kPerThread);
  EXPECT_EQ(db().ListBlobs()->size(), 3u * kPerThread);
}

TEST_F(StoreMetadataTest, LockHeldPastBusyTimeoutIsUnavailable) {
  auto opts = Opts();
  opts.busy_timeout = 50ms;
  auto impatient = MetadataDb::Open(root_, opts);
  ASSERT_TRUE(impatient);
  auto txn = db().Begin();  // holds the database write lock
  ASSERT_TRUE(txn);
  auto st = impatient->PutImage(
      {.name = "x:1", .target = Manifest("x"), .created_ns = 0, .updated_ns = 0, .labels = {}});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  EXPECT_NE(st.error().message.find(db().path().string()), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("put image"), std::string::npos) << st.error().message;
  // Readers are not blocked by a writer in WAL mode.
  EXPECT_TRUE(impatient->ListImages());
}

TEST_F(StoreMetadataTest, ConcurrentFirstOpensOfAFreshRootAllSucceed) {
  fs::path fresh = dir_.path() / "fresh";
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::string err;
  std::mutex mu;
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&] {
      auto db = MetadataDb::Open(fresh);
      if (db) {
        ++ok;
      } else {
        std::lock_guard lk(mu);
        err = db.error().message;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kThreads) << err;
  EXPECT_EQ(RawQuery(MetadataDb::DbPath(fresh), "PRAGMA user_version"), kMetadataSchemaVersion);
}

TEST_F(StoreMetadataTest, FreshRootGetsACompleteDatabaseAndNoTemporaryFiles) {
  fs::path fresh = dir_.path() / "fresh";
  ASSERT_TRUE(fs::create_directories(fresh));
  // What a creator killed before its link leaves, under another pid's name.
  for (const char* name : {"metadata.db.new-1-0", "metadata.db.new-1-0-journal"}) {
    std::ofstream(fresh / name) << "partial";
  }
  {
    auto db = MetadataDb::Open(fresh);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->PutBlob(Manifest("a").digest, 10, "x"));
  }
  EXPECT_EQ(RawQuery(MetadataDb::DbPath(fresh), "PRAGMA user_version"), kMetadataSchemaVersion);
  EXPECT_EQ(RawQuery(MetadataDb::DbPath(fresh), "SELECT count(*) FROM blobs"), 1);
  std::vector<std::string> temps;
  for (const auto& e : fs::directory_iterator(fresh)) {
    std::string name = e.path().filename().string();
    if (name.starts_with("metadata.db.new-") && !name.starts_with("metadata.db.new-1-0"))
      temps.push_back(name);
  }
  EXPECT_TRUE(temps.empty()) << temps.front();
  // Another pid's leftover does not stop the next open either.
  auto again = MetadataDb::Open(fresh);
  ASSERT_TRUE(again) << again.error().message;
}

TEST_F(StoreMetadataTest, ReopenPersists) {
  ImageRecord r{.name = "docker.io/library/alpine:3.20",
                .target = Manifest("alpine"),
                .created_ns = 0,
                .updated_ns = 0,
                .labels = {{"k", "v"}}};
  ASSERT_TRUE(db().PutImage(r));
  ASSERT_TRUE(db().PutBlob(r.target.digest, r.target.size, r.target.media_type));
  auto lease = db().CreateLease(60s);
  ASSERT_TRUE(lease);
  ASSERT_TRUE(db().AddLeaseResource(lease->lease(), kLeaseSnapshot, "s"));
  db_.reset();

  auto again = Open();
  ASSERT_TRUE(again) << again.error().message;
  auto got = again->GetImage(r.name);
  ASSERT_TRUE(got);
  r.created_ns = r.updated_ns = kStartNs;
  EXPECT_EQ(*got, r);
  EXPECT_TRUE(again->GetBlob(r.target.digest));
  EXPECT_EQ(*again->LeasedResources(kLeaseSnapshot), std::vector<std::string>{"s"});
}

TEST_F(StoreMetadataTest, NewerSchemaVersionIsRefused) {
  fs::path path = db().path();
  db_.reset();
  RawQuery(path, "PRAGMA user_version = 99");
  auto db = Open();
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::kFailedPrecondition);
  EXPECT_NE(db.error().message.find("99"), std::string::npos) << db.error().message;
}

TEST_F(StoreMetadataTest, GarbageFileIsDataLoss) {
  fs::path other = dir_.path() / "garbage";
  ASSERT_TRUE(common::MkdirAll(other));
  ASSERT_TRUE(common::AtomicWriteFile(MetadataDb::DbPath(other),
                                      std::string(8192, 'x') + "not a database"));
  auto db = MetadataDb::Open(other);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::kDataLoss);
  EXPECT_NE(db.error().message.find(MetadataDb::DbPath(other).string()), std::string::npos)
      << db.error().message;
}

TEST_F(StoreMetadataTest, CorruptRowIsDataLoss) {
  RawQuery(db().path(),
           "INSERT INTO images (name, media_type, digest, size, annotations, created_ns, "
           "updated_ns) VALUES ('bad:1', 't', 'sha256:nothex', 1, '{}', 0, 0)");
  auto got = db().GetImage("bad:1");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kDataLoss);
  RawQuery(db().path(),
           "INSERT INTO images (name, media_type, digest, size, annotations, created_ns, "
           "updated_ns) VALUES ('bad:2', 't', '" +
               Digest::Sha256Of(std::string_view("x")).str() + "', 1, '[1', 0, 0)");
  EXPECT_EQ(db().GetImage("bad:2").error().code, Errc::kDataLoss);
  EXPECT_EQ(db().ListImages().error().code, Errc::kDataLoss);
}

TEST_F(StoreMetadataTest, SetPinsReplacesOneOwnersSetAndKeepsOthers) {
  ASSERT_TRUE(db().SetPins("prepull:/a", {"r/x:1", "r/y:1"}));
  ASSERT_TRUE(db().SetPins("prepull:/b", {"r/y:1"}));
  Advance(5s);
  ASSERT_TRUE(db().SetPins("prepull:/a", {"r/y:1", "r/z:1", "r/z:1"}));
  auto pins = db().ListPins();
  ASSERT_TRUE(pins) << pins.error().message;
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& p : *pins) got.emplace_back(p.name, p.owner);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"r/y:1", "prepull:/a"}, {"r/y:1", "prepull:/b"}, {"r/z:1", "prepull:/a"}}));
  // A kept pin keeps its creation time; a new one is stamped now.
  EXPECT_EQ((*pins)[0].created_ns, kStartNs);
  EXPECT_EQ((*pins)[2].created_ns, kStartNs + 5 * kSecondNs);

  ASSERT_TRUE(db().SetPins("prepull:/a", {}));
  pins = db().ListPins();
  ASSERT_TRUE(pins);
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].owner, "prepull:/b");

  EXPECT_EQ(db().SetPins("", {"r/x:1"}).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(db().SetPins("o", {""}).error().code, Errc::kInvalidArgument);
}

TEST_F(StoreMetadataTest, VersionTwoDatabaseGainsThePinsTable) {
  db_.reset();
  RawQuery(MetadataDb::DbPath(root_), "DROP TABLE pins");
  RawQuery(MetadataDb::DbPath(root_), "DROP TABLE counters");  // version 4's
  RawQuery(MetadataDb::DbPath(root_), "PRAGMA user_version = 2");
  auto db = Open();
  ASSERT_TRUE(db) << db.error().message;
  EXPECT_EQ(RawQuery(MetadataDb::DbPath(root_), "PRAGMA user_version"), kMetadataSchemaVersion);
  ASSERT_TRUE(db->SetPins("o", {"r/x:1"}));
  auto pins = db->ListPins();
  ASSERT_TRUE(pins);
  EXPECT_EQ(pins->size(), 1u);
}

TEST_F(StoreMetadataTest, VersionThreeDatabaseGainsTheCountersTable) {
  db_.reset();
  RawQuery(MetadataDb::DbPath(root_), "DROP TABLE counters");
  RawQuery(MetadataDb::DbPath(root_), "PRAGMA user_version = 3");
  auto db = Open();
  ASSERT_TRUE(db) << db.error().message;
  EXPECT_EQ(RawQuery(MetadataDb::DbPath(root_), "PRAGMA user_version"), 4);
  const std::vector<CounterDelta> one = {{.name = "t_total", .labels = {}, .value = 1}};
  ASSERT_TRUE(db->AddCounters(one));
  auto rows = db->ListCounters();
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 1u);
}

}  // namespace
}  // namespace store
