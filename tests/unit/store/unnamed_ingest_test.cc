// ContentStore::BeginUnnamedIngest: blobs written before their digest is
// known (an archive read from a pipe).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "store/content_store.h"

namespace store {
namespace {

namespace fs = std::filesystem;
using common::Digest;

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

class UnnamedIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("unnamed-ingest-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    auto cs = ContentStore::Open(dir_.path() / "root");
    ASSERT_TRUE(cs) << cs.error().message;
    cs_.emplace(std::move(*cs));
  }
  fs::path ingest_dir() const { return dir_.path() / "root/content/ingest"; }
  fs::path blobs_dir() const { return dir_.path() / "root/content/blobs/sha256"; }

  common::TempDir dir_;
  std::optional<ContentStore> cs_;
};

TEST_F(UnnamedIngestTest, WrittenHashedAndLinkedUnderItsDigest) {
  std::string data = fixtures::NoiseBytes(5 << 20, 7);
  auto ing = cs_->BeginUnnamedIngest();
  ASSERT_TRUE(ing) << ing.error().message;
  for (size_t off = 0; off < data.size(); off += 100000)
    ASSERT_TRUE(ing->Write(Bytes(std::string_view(data).substr(off, 100000))));
  EXPECT_EQ(ing->size(), static_cast<int64_t>(data.size()));
  EXPECT_FALSE(ing->digest());
  EXPECT_EQ(CountEntries(ingest_dir()), 0u) << "an unnamed ingest has no name";
  EXPECT_EQ(CountEntries(blobs_dir()), 0u);

  Digest d = ing->Finish();
  EXPECT_EQ(d, Digest::Sha256Of(data));
  ASSERT_TRUE(ing->digest());
  EXPECT_FALSE(ing->Write(Bytes("more"))) << "no write after Finish";
  char head[4];
  ASSERT_EQ(::pread(ing->fd(), head, 4, 0), 4);
  EXPECT_EQ(std::string_view(head, 4), std::string_view(data).substr(0, 4));

  ASSERT_TRUE(ing->Commit(Ingest::DirSync::kDeferred));
  ASSERT_TRUE(cs_->SyncBlobs());
  ASSERT_TRUE(cs_->Has(d));
  auto got = cs_->ReadBlob(d, 16 << 20);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, data);
  struct stat st {};
  ASSERT_EQ(::stat(cs_->BlobPath(d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  ASSERT_TRUE(ing->Commit()) << "a second commit does nothing";
  EXPECT_EQ(::pread(ing->fd(), head, 4, 0), 4) << "still readable after the commit";
}

TEST_F(UnnamedIngestTest, AnExistingBlobIsSuccess) {
  std::string data = "the same bytes";
  Digest d = Digest::Sha256Of(data);
  ASSERT_TRUE(cs_->WriteBlob(d, data));
  auto ing = cs_->BeginUnnamedIngest();
  ASSERT_TRUE(ing) << ing.error().message;
  ASSERT_TRUE(ing->Write(Bytes(data)));
  auto st = ing->Commit();
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(*cs_->ReadBlob(d), data);
  EXPECT_EQ(CountEntries(blobs_dir()), 1u);
}

TEST_F(UnnamedIngestTest, DroppedBeforeCommitLeavesNothing) {
  {
    auto ing = cs_->BeginUnnamedIngest();
    ASSERT_TRUE(ing) << ing.error().message;
    ASSERT_TRUE(ing->Write(Bytes("never committed")));
    ing->Finish();
  }
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  EXPECT_EQ(CountEntries(blobs_dir()), 0u);
}

TEST_F(UnnamedIngestTest, AKilledWriterLeavesNothing) {
  std::string data = fixtures::NoiseBytes(1 << 20, 3);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto ing = cs_->BeginUnnamedIngest();
    if (!ing || !ing->Write(Bytes(data))) ::_exit(1);
    ::kill(::getpid(), SIGKILL);
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child failed before its kill: " << status;
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  EXPECT_EQ(CountEntries(blobs_dir()), 0u);
  auto cleaned = cs_->CleanIngest(std::chrono::seconds(0));
  ASSERT_TRUE(cleaned);
  EXPECT_EQ(*cleaned, 0);
}

}  // namespace
}  // namespace store
