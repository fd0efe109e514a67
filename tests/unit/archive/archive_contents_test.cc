// archives::ArchiveContents: the same tar read in place from a file and
// streamed from a pipe into unnamed store files.

#include "archive/archive_contents.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"

namespace archives {
namespace {

namespace fs = std::filesystem;

size_t CountFiles(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it)
    n += it->is_regular_file() ? 1 : 0;
  return n;
}

class ArchiveContentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-contents-");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    auto cs = store::ContentStore::Open(dir_.path() / "root");
    ASSERT_TRUE(cs) << cs.error().message;
    cs_.emplace(std::move(*cs));
    auto t =
        fixtures::BuildTar({fixtures::File("small.json", small_),
                            fixtures::File("./big/layer.tar", big_), fixtures::File("other", "x")});
    ASSERT_TRUE(t) << t.error().message;
    tar_ = *t;
  }

  // `bytes` written into a pipe by a thread, read by ReadStream.
  common::Result<std::shared_ptr<ArchiveContents>> Stream(const std::string& bytes) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return common::ErrnoError("pipe");
    common::UniqueFd r(fds[0]), w(fds[1]);
    std::thread writer([&] {
      // EPIPE, not SIGPIPE, once a failed read closed the pipe.
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
      size_t off = 0;
      while (off < bytes.size()) {
        ssize_t n = ::write(w.get(), bytes.data() + off, bytes.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      w.reset();
    });
    auto c = ArchiveContents::ReadStream(r.get(), "standard input", *cs_, nullptr);
    r.reset();  // a writer blocked on a failed read's pipe gets EPIPE
    writer.join();
    return c;
  }

  fs::path content_dir() const { return dir_.path() / "root/content"; }

  common::TempDir dir_;
  std::optional<store::ContentStore> cs_;
  std::string small_ = "{\"a\": 1}";
  std::string big_ = fixtures::NoiseBytes(3 << 20, 11);
  std::string tar_;
};

TEST_F(ArchiveContentsTest, StreamedEntriesEqualTheFileAndKnowTheirDigest) {
  auto path = dir_.path() / "a.tar";
  ASSERT_TRUE(common::AtomicWriteFile(path, tar_));
  auto file = ArchiveContents::OpenFile(path);
  ASSERT_TRUE(file) << file.error().message;
  auto streamed = Stream(tar_);
  ASSERT_TRUE(streamed) << streamed.error().message;
  EXPECT_FALSE((*file)->streamed());
  EXPECT_TRUE((*streamed)->streamed());
  EXPECT_EQ(CountFiles(content_dir()), 0u) << "nothing named before a commit";

  ASSERT_EQ((*file)->entries().size(), 3u);
  ASSERT_EQ((*streamed)->entries().size(), 3u);
  for (const auto& [name, e] : (*file)->entries()) {
    const ContentEntry* s = (*streamed)->Find(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->size, e.size);
    EXPECT_FALSE(e.sha256);
    ASSERT_TRUE(s->sha256);
    auto d = (*file)->DigestOf(e);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(*s->sha256, *d) << name;
    auto a = (*file)->Read(e, 8 << 20);
    auto b = (*streamed)->Read(*s, 8 << 20);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b) << name;
  }
  EXPECT_EQ((*streamed)->Head(*(*streamed)->Find("big/layer.tar")), big_.substr(0, 4));
  auto need = (*streamed)->Need("./missing", "layer");
  ASSERT_FALSE(need);
  EXPECT_NE(need.error().message.find("archive `standard input`: layer `./missing`"),
            std::string::npos)
      << need.error().message;
}

TEST_F(ArchiveContentsTest, CommitLinksLargeEntriesAndWritesSmallOnes) {
  auto c = Stream(tar_);
  ASSERT_TRUE(c) << c.error().message;
  for (const char* name : {"big/layer.tar", "small.json"}) {
    const ContentEntry* e = (*c)->Find(name);
    ASSERT_NE(e, nullptr);
    ASSERT_TRUE((*c)->CommitEntry(*e, store::Ingest::DirSync::kDeferred));
    ASSERT_TRUE((*c)->CommitEntry(*e, store::Ingest::DirSync::kNow)) << "twice is fine";
  }
  ASSERT_TRUE(cs_->SyncBlobs());
  EXPECT_EQ(*cs_->ReadBlob(common::Digest::Sha256Of(small_)), small_);
  EXPECT_EQ(*cs_->ReadBlob(common::Digest::Sha256Of(big_), 8 << 20), big_);
  EXPECT_EQ(CountFiles(content_dir()), 2u) << "`other` was not committed";

  auto path = dir_.path() / "a.tar";
  ASSERT_TRUE(common::AtomicWriteFile(path, tar_));
  auto file = ArchiveContents::OpenFile(path);
  ASSERT_TRUE(file);
  auto st = (*file)->CommitEntry(*(*file)->Find("small.json"), store::Ingest::DirSync::kNow);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, common::Errc::kFailedPrecondition);
}

TEST_F(ArchiveContentsTest, GzipStreamIsInflatedOnTheWay) {
  auto gz = fixtures::Compress(tar_, fixtures::Compression::kGzip);
  ASSERT_TRUE(gz) << gz.error().message;
  auto c = Stream(*gz);
  ASSERT_TRUE(c) << c.error().message;
  const ContentEntry* big = (*c)->Find("big/layer.tar");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(*big->sha256, common::Digest::Sha256Of(big_));
  EXPECT_EQ(*(*c)->Read(*(*c)->Find("small.json"), 1024), small_);

  auto path = dir_.path() / "a.tar.gz";
  ASSERT_TRUE(common::AtomicWriteFile(path, *gz));
  auto fd = common::Open(path.string(), O_RDONLY);
  ASSERT_TRUE(fd);
  EXPECT_TRUE(*ArchiveContents::IsGzip(fd->get()));
  EXPECT_EQ(::lseek(fd->get(), 0, SEEK_CUR), 0) << "the peek reads nothing";
  ASSERT_TRUE(common::AtomicWriteFile(path, tar_));
  auto plain = common::Open(path.string(), O_RDONLY);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(*ArchiveContents::IsGzip(plain->get()));

  std::string cut = gz->substr(0, gz->size() / 2);
  auto bad = Stream(cut);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, common::Errc::kDataLoss);
  EXPECT_NE(bad.error().message.find("decompress archive `standard input`"), std::string::npos)
      << bad.error().message;
  EXPECT_EQ(CountFiles(content_dir()), 0u);
}

// As tar extraction does: the last entry of a name is the one, whichever
// file (its own or the shared one of small entries) it went into.
TEST_F(ArchiveContentsTest, ALaterEntryReplacesAnEarlierOne) {
  auto t = fixtures::BuildTar({fixtures::File("x", big_), fixtures::File("x", small_),
                               fixtures::File("y", small_), fixtures::File("y", big_)});
  ASSERT_TRUE(t);
  auto c = Stream(*t);
  ASSERT_TRUE(c) << c.error().message;
  for (const auto& [name, want] : {std::pair{"x", small_}, std::pair{"y", big_}}) {
    const ContentEntry* e = (*c)->Find(name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(*e->sha256, common::Digest::Sha256Of(want)) << name;
    ASSERT_TRUE((*c)->CommitEntry(*e, store::Ingest::DirSync::kNow));
    EXPECT_EQ(*cs_->ReadBlob(*e->sha256, 8 << 20), want) << name;
  }
  EXPECT_EQ(CountFiles(content_dir()), 2u);
}

TEST_F(ArchiveContentsTest, TruncatedStreamLeavesNothing) {
  auto c = Stream(tar_.substr(0, tar_.size() / 2));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, common::Errc::kDataLoss);
  EXPECT_NE(c.error().message.find("archive `standard input` is truncated"), std::string::npos)
      << c.error().message;
  EXPECT_EQ(CountFiles(content_dir()), 0u);
}

TEST_F(ArchiveContentsTest, EscapingNameInAStreamIsRefused) {
  auto t = fixtures::BuildTar({fixtures::File("a", "1"), fixtures::File("../evil", "2")});
  ASSERT_TRUE(t);
  auto c = Stream(*t);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(c.error().message.find("../evil"), std::string::npos) << c.error().message;
  EXPECT_EQ(CountFiles(content_dir()), 0u);
}

}  // namespace
}  // namespace archives
