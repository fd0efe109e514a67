#include "store/content_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "store/store_lock.h"

namespace store {
namespace {

namespace fs = std::filesystem;
using common::Digest;
using common::Errc;
using namespace std::chrono_literals;

constexpr auto kDeadline = 20s;

// Deterministic, non-repeating test content.
std::string Content(size_t n, unsigned seed = 1) { return fixtures::NoiseBytes(n, seed); }

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

// True once /proc/locks shows `pid` blocked waiting for a flock ("->"
// lines are waiters). Polls until the deadline.
bool WaitForBlockedFlock(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  const std::string pid_field = " " + std::to_string(pid) + " ";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in("/proc/locks");
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("->") != std::string::npos && line.find("FLOCK") != std::string::npos &&
          line.find(pid_field) != std::string::npos)
        return true;
    }
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// Reads one byte from `fd` within the deadline.
bool ReadByte(int fd, char* out) {
  struct pollfd p {
    .fd = fd, .events = POLLIN, .revents = 0
  };
  int ms =
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline).count());
  if (::poll(&p, 1, ms) != 1) return false;
  return ::read(fd, out, 1) == 1;
}

// waitpid with a deadline; kills the child if it overruns. Returns the exit
// code, or -1.
int WaitChild(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(1ms);
  }
}

struct Pipe {
  common::UniqueFd r, w;
  static Pipe Make() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    return Pipe{common::UniqueFd(fds[0]), common::UniqueFd(fds[1])};
  }
};

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("store-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    auto cs = ContentStore::Open(dir_.path() / "root");
    ASSERT_TRUE(cs) << cs.error().message;
    cs_.emplace(std::move(*cs));
  }

  ContentStore& cs() { return *cs_; }
  fs::path ingest_dir() const { return dir_.path() / "root/content/ingest"; }
  fs::path blobs_dir() const { return dir_.path() / "root/content/blobs/sha256"; }

  // The partial a killed pull leaves: the first `n` bytes of `data`,
  // written through an ingest that then goes away.
  void LeavePartial(const std::string& data, size_t n) {
    auto ing = cs().BeginIngest(Digest::Sha256Of(data), static_cast<int64_t>(data.size()));
    ASSERT_TRUE(ing) << ing.error().message;
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, n)));
  }

  common::TempDir dir_;
  std::optional<ContentStore> cs_;
};

TEST_F(ContentStoreTest, OpenCreatesLayout) {
  EXPECT_TRUE(fs::is_directory(blobs_dir()));
  EXPECT_TRUE(fs::is_directory(ingest_dir()));
}

TEST_F(ContentStoreTest, IngestWriteCommitMakesReadOnlyVerifiedBlob) {
  std::string data = Content(300000);
  Digest d = Digest::Sha256Of(data);
  auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(ing) << ing.error().message;
  EXPECT_EQ(ing->offset(), 0);
  EXPECT_FALSE(cs().Has(d)) << "nothing under the digest name before commit";
  for (size_t off = 0; off < data.size(); off += 65536)
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(off, 65536)));
  EXPECT_EQ(ing->offset(), static_cast<int64_t>(data.size()));
  ASSERT_TRUE(ing->Commit());
  EXPECT_TRUE(ing->finished());

  EXPECT_TRUE(cs().Has(d));
  auto size = cs().Size(d);
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, static_cast<int64_t>(data.size()));
  auto got = cs().ReadBlob(d);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, data);
  struct stat st {};
  ASSERT_EQ(::stat(cs().BlobPath(d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(cs().BlobPath(d), blobs_dir() / d.hex());
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  auto list = cs().List();
  ASSERT_TRUE(list);
  EXPECT_EQ(*list, std::vector<Digest>{d});
  auto fd = cs().OpenBlob(d);
  ASSERT_TRUE(fd);

  auto again = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_NE(again.error().message.find(d.str()), std::string::npos);
}

TEST_F(ContentStoreTest, WrongDigestIsDataLossAndLeavesNoBlobNoPartial) {
  Digest d = Digest::Sha256Of(std::string_view("expected bytes"));
  auto ing = cs().BeginIngest(d, 14);
  ASSERT_TRUE(ing);
  ASSERT_TRUE(ing->Write(std::string_view("tampered bytes")));
  auto st = ing->Commit();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  EXPECT_NE(st.error().message.find(d.str()), std::string::npos) << st.error().message;
  EXPECT_FALSE(cs().Has(d));
  EXPECT_FALSE(fs::exists(cs().IngestPath(d)));
  EXPECT_EQ(CountEntries(blobs_dir()), 0u);
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  EXPECT_FALSE(ing->Write(std::string_view("x"))) << "a finished ingest refuses writes";
}

TEST_F(ContentStoreTest, ShortContentIsDataLossAndPartialDeleted) {
  std::string data = Content(1000);
  Digest d = Digest::Sha256Of(data);
  auto ing = cs().BeginIngest(d, 1000);
  ASSERT_TRUE(ing);
  ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 999)));
  auto st = ing->Commit();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  EXPECT_FALSE(cs().Has(d));
  EXPECT_FALSE(fs::exists(cs().IngestPath(d)));
}

TEST_F(ContentStoreTest, ResumeAfterIngestDestroyedMidway) {
  std::string data = Content(200001, 7);
  Digest d = Digest::Sha256Of(data);
  const size_t half = 123457;
  ASSERT_NO_FATAL_FAILURE(LeavePartial(data, half));  // killed pull: the partial stays
  EXPECT_EQ(fs::file_size(cs().IngestPath(d)), half);
  EXPECT_FALSE(cs().Has(d));

  auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(ing) << ing.error().message;
  EXPECT_EQ(ing->offset(), static_cast<int64_t>(half));
  ASSERT_TRUE(ing->Write(std::string_view(data).substr(half)));
  auto st = ing->Commit();
  ASSERT_TRUE(st) << st.error().message;
  auto got = cs().ReadBlob(d, 1 << 20);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, data);
}

// A fetch that failed before its first byte (a 404) has nothing to resume:
// its ingest leaves no empty file for df to count, while one with bytes
// stays for the resume.
TEST_F(ContentStoreTest, IngestDroppedBeforeItsFirstByteLeavesNoEmptyPartial) {
  std::string data = Content(1000, 9);
  Digest d = Digest::Sha256Of(data);
  {
    auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(ing) << ing.error().message;
    EXPECT_TRUE(fs::exists(cs().IngestPath(d)));
  }
  EXPECT_FALSE(fs::exists(cs().IngestPath(d))) << "an empty partial was left";
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  {
    auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(ing);
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 10)));
    ASSERT_TRUE(ing->Restart());  // a server that ignored Range, then the transfer failed
  }
  EXPECT_FALSE(fs::exists(cs().IngestPath(d)));
  {
    auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(ing);
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 1)));
  }
  EXPECT_EQ(fs::file_size(cs().IngestPath(d)), 1u) << "a partial with bytes must stay";
}

TEST_F(ContentStoreTest, LargeIngestAcrossWriteBehindWindowsAndAResume) {
  // Several kWriteBehind windows, written in uneven chunks, the ingest
  // dropped halfway through a window and resumed: the bytes and the digest
  // come out whole.
  const size_t window = static_cast<size_t>(Ingest::kWriteBehind);
  std::string data = Content(3 * window + 12345, 11);
  Digest d = Digest::Sha256Of(data);
  const size_t cut = window + window / 2 + 7;
  {
    auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(ing);
    for (size_t off = 0; off < cut;) {
      const size_t n = std::min<size_t>(300007, cut - off);
      ASSERT_TRUE(ing->Write(std::string_view(data).substr(off, n)));
      off += n;
    }
  }
  auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(ing) << ing.error().message;
  ASSERT_EQ(ing->offset(), static_cast<int64_t>(cut));
  for (size_t off = cut; off < data.size(); off += 1000003)
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(off, 1000003)));
  auto st = ing->Commit();
  ASSERT_TRUE(st) << st.error().message;
  auto got = cs().ReadBlob(d, data.size());
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_TRUE(*got == data);
}

TEST_F(ContentStoreTest, DeferredDirSyncCommitsTheBlobAndSyncBlobsSucceeds) {
  std::string a = Content(5000, 21), b = Content(7000, 22);
  for (const std::string* data : {&a, &b}) {
    Digest d = Digest::Sha256Of(*data);
    auto ing = cs().BeginIngest(d, static_cast<int64_t>(data->size()));
    ASSERT_TRUE(ing);
    ASSERT_TRUE(ing->Write(*data));
    auto st = ing->Commit(Ingest::DirSync::kDeferred);
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_TRUE(ing->finished());
    EXPECT_TRUE(cs().Has(d)) << "visible at once, before SyncBlobs";
    auto again = cs().BeginIngest(d, static_cast<int64_t>(data->size()));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  }
  auto st = cs().SyncBlobs();
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  auto list = cs().List();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(ContentStoreTest, ResumedCorruptPartialFailsCommit) {
  std::string data = Content(5000, 3);
  Digest d = Digest::Sha256Of(data);
  {
    auto ing = cs().BeginIngest(d, 5000);
    ASSERT_TRUE(ing);
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 2000)));
  }
  // Bit rot in the partial between runs must not reach the blob tree.
  {
    std::fstream f(cs().IngestPath(d), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put(static_cast<char>(data[10] ^ 1));
  }
  auto ing = cs().BeginIngest(d, 5000);
  ASSERT_TRUE(ing);
  EXPECT_EQ(ing->offset(), 2000);
  ASSERT_TRUE(ing->Write(std::string_view(data).substr(2000)));
  auto st = ing->Commit();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  EXPECT_FALSE(cs().Has(d));
}

TEST_F(ContentStoreTest, RestartTruncatesAndResetsHash) {
  std::string data = Content(4096, 9);
  Digest d = Digest::Sha256Of(data);
  auto ing = cs().BeginIngest(d, 4096);
  ASSERT_TRUE(ing);
  ASSERT_TRUE(ing->Write(std::string_view("garbage from a server that ignored Range")));
  ASSERT_TRUE(ing->Restart());
  EXPECT_EQ(ing->offset(), 0);
  EXPECT_EQ(fs::file_size(cs().IngestPath(d)), 0u);
  ASSERT_TRUE(ing->Write(data));
  auto st = ing->Commit();
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_TRUE(cs().Has(d));
}

// written_digest is the running hash of what the ingest holds: after
// writes, after a resume (seeded from the partial), after a Restart; and
// it is what Commit checks, so a wrong one is refused.
TEST_F(ContentStoreTest, WrittenDigestFollowsTheBytesHeldAcrossResumeAndRestart) {
  std::string data = Content(300007, 5);
  Digest d = Digest::Sha256Of(data);
  const size_t half = 150001;
  ASSERT_NO_FATAL_FAILURE(LeavePartial(data, half));
  auto ing = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(ing) << ing.error().message;
  ASSERT_EQ(ing->offset(), static_cast<int64_t>(half));
  EXPECT_EQ(ing->written_digest(), Digest::Sha256Of(std::string_view(data).substr(0, half)))
      << "a resumed ingest is seeded from its partial";
  ASSERT_TRUE(ing->Restart());
  EXPECT_EQ(ing->written_digest(), Digest::Sha256Of(std::string_view()));
  ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 7)));
  EXPECT_EQ(ing->written_digest(), Digest::Sha256Of(std::string_view(data).substr(0, 7)));
  ASSERT_TRUE(ing->Write(std::string_view(data).substr(7)));
  EXPECT_EQ(ing->written_digest(), d);
  EXPECT_EQ(ing->written_digest(), d) << "asking does not consume the hash";
  ASSERT_TRUE(ing->Commit());
  EXPECT_TRUE(cs().Has(d));
  EXPECT_EQ(ing->written_digest(), Digest()) << "finished";
}

TEST_F(ContentStoreTest, WritePastExpectedSizeIsDataLoss) {
  Digest d = Digest::Sha256Of(std::string_view("12345"));
  auto ing = cs().BeginIngest(d, 5);
  ASSERT_TRUE(ing);
  auto st = ing->Write(std::string_view("123456"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  EXPECT_EQ(ing->offset(), 0) << "nothing of an oversized write is kept";
  ASSERT_TRUE(ing->Write(std::string_view("123")));
  st = ing->Write(std::string_view("456"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  ASSERT_TRUE(ing->Write(std::string_view("45")));
  ASSERT_TRUE(ing->Commit());
}

TEST_F(ContentStoreTest, PartialLongerThanExpectedIsDiscardedOnBegin) {
  std::string data = Content(100);
  Digest d = Digest::Sha256Of(data);
  ASSERT_TRUE(common::AtomicWriteFile(cs().IngestPath(d), Content(500)));
  auto ing = cs().BeginIngest(d, 100);
  ASSERT_TRUE(ing);
  EXPECT_EQ(ing->offset(), 0);
  ASSERT_TRUE(ing->Write(data));
  ASSERT_TRUE(ing->Commit());
}

TEST_F(ContentStoreTest, AbandonDeletesPartial) {
  Digest d = Digest::Sha256Of(std::string_view("abc"));
  auto ing = cs().BeginIngest(d, 3);
  ASSERT_TRUE(ing);
  ASSERT_TRUE(ing->Write(std::string_view("ab")));
  ing->Abandon();
  EXPECT_FALSE(fs::exists(cs().IngestPath(d)));
  auto again = cs().BeginIngest(d, 3);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->offset(), 0);
}

TEST_F(ContentStoreTest, RejectsBadArguments) {
  Digest d = Digest::Sha256Of(std::string_view("x"));
  auto neg = cs().BeginIngest(d, -1);
  ASSERT_FALSE(neg);
  EXPECT_EQ(neg.error().code, Errc::kInvalidArgument);
  auto d512 = Digest::Parse("sha512:" + std::string(128, 'a'));
  ASSERT_TRUE(d512);
  auto un = cs().BeginIngest(*d512, 1);
  ASSERT_FALSE(un);
  EXPECT_EQ(un.error().code, Errc::kUnimplemented);
}

TEST_F(ContentStoreTest, MissingBlobIsNotFound) {
  Digest d = Digest::Sha256Of(std::string_view("absent"));
  EXPECT_FALSE(cs().Has(d));
  ASSERT_FALSE(cs().Size(d));
  EXPECT_EQ(cs().Size(d).error().code, Errc::kNotFound);
  EXPECT_EQ(cs().OpenBlob(d).error().code, Errc::kNotFound);
  EXPECT_EQ(cs().ReadBlob(d).error().code, Errc::kNotFound);
  EXPECT_EQ(cs().Delete(d).error().code, Errc::kNotFound);
}

TEST_F(ContentStoreTest, DeleteAndList) {
  Digest a = Digest::Sha256Of(std::string_view("a"));
  Digest b = Digest::Sha256Of(std::string_view("b"));
  ASSERT_TRUE(cs().WriteBlob(a, "a"));
  ASSERT_TRUE(cs().WriteBlob(b, "b"));
  ASSERT_TRUE(common::AtomicWriteFile(blobs_dir() / "not-a-digest", "x"));
  auto list = cs().List();
  ASSERT_TRUE(list);
  std::vector<Digest> want{a, b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*list, want);
  ASSERT_TRUE(cs().Delete(a));
  EXPECT_FALSE(cs().Has(a));
  list = cs().List();
  ASSERT_TRUE(list);
  EXPECT_EQ(*list, std::vector<Digest>{b});
}

TEST_F(ContentStoreTest, WriteBlobIsIdempotentAndVerifies) {
  Digest d = Digest::Sha256Of(std::string_view("{\"schemaVersion\":2}"));
  ASSERT_TRUE(cs().WriteBlob(d, "{\"schemaVersion\":2}"));
  ASSERT_TRUE(cs().WriteBlob(d, "{\"schemaVersion\":2}"));
  Digest other = Digest::Sha256Of(std::string_view("other"));
  auto st = cs().WriteBlob(other, "wrong");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
  EXPECT_FALSE(cs().Has(other));
}

TEST_F(ContentStoreTest, ReadBlobDetectsCorruption) {
  std::string data = Content(64);
  Digest d = Digest::Sha256Of(data);
  ASSERT_TRUE(cs().WriteBlob(d, data));
  fs::path p = cs().BlobPath(d);
  ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
  ASSERT_TRUE(common::AtomicWriteFile(p, Content(64, 2)));
  auto got = cs().ReadBlob(d);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kDataLoss);
  auto small = cs().ReadBlob(d, 10);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().code, Errc::kResourceExhausted);
}

TEST_F(ContentStoreTest, SecondThreadWaitsForWriterThenSeesAlreadyExists) {
  std::string data = Content(100000, 11);
  Digest d = Digest::Sha256Of(data);
  auto first = cs().BeginIngest(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Write(std::string_view(data).substr(0, 50000)));

  std::optional<common::Result<Ingest>> second;
  std::atomic<bool> second_done{false};
  std::thread t([&] {
    second.emplace(cs().BeginIngest(d, static_cast<int64_t>(data.size())));
    second_done = true;
  });
  // No ASSERT before join: a still-running thread would abort the binary.
  bool blocked = WaitForBlockedFlock(::getpid());
  EXPECT_FALSE(second_done.load()) << "second writer must wait while the first holds the lock";
  EXPECT_TRUE(first->Write(std::string_view(data).substr(50000)));
  EXPECT_TRUE(first->Commit());
  t.join();
  ASSERT_TRUE(blocked) << "second writer never blocked on the lock";
  ASSERT_TRUE(second.has_value());
  ASSERT_FALSE(*second);
  EXPECT_EQ(second->error().code, Errc::kAlreadyExists) << second->error().message;
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
  auto got = cs().ReadBlob(d);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, data);
}

TEST_F(ContentStoreTest, WaiterGetsFreshIngestWhenFirstWriterAbandons) {
  std::string data = Content(1000, 12);
  Digest d = Digest::Sha256Of(data);
  auto first = cs().BeginIngest(d, 1000);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Write(std::string_view("junk")));

  std::optional<common::Result<Ingest>> second;
  std::thread t([&] { second.emplace(cs().BeginIngest(d, 1000)); });
  bool blocked = WaitForBlockedFlock(::getpid());
  first->Abandon();  // unlinks the inode the waiter is queued on
  t.join();
  ASSERT_TRUE(blocked);
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(*second) << (*second).error().message;
  Ingest& ing = **second;
  EXPECT_EQ(ing.offset(), 0);
  ASSERT_TRUE(ing.Write(data));
  ASSERT_TRUE(ing.Commit());
  EXPECT_TRUE(cs().Has(d));
}

TEST_F(ContentStoreTest, CancelEndsTheWait) {
  Digest d = Digest::Sha256Of(std::string_view("cancel me"));
  auto first = cs().BeginIngest(d, 9);
  ASSERT_TRUE(first);
  std::atomic<bool> cancel{false};
  std::optional<common::Result<Ingest>> second;
  std::thread t([&] { second.emplace(cs().BeginIngest(d, 9, &cancel)); });
  cancel = true;
  t.join();
  ASSERT_TRUE(second.has_value());
  ASSERT_FALSE(*second);
  EXPECT_EQ(second->error().code, Errc::kCancelled) << second->error().message;
  EXPECT_TRUE(first->Write(std::string_view("cancel me")));
  EXPECT_TRUE(first->Commit());
}

enum ChildExit { kWrote = 10, kSawExisting = 20, kFailed = 1 };

// In a forked child: ingest `data` under `d`, exiting with kWrote or
// kSawExisting. `locked_fd` (if >= 0) gets one byte once the lock is held,
// and `go_fd` (if >= 0) is read before writing the second half.
[[noreturn]] void ChildIngest(const ContentStore& store, const Digest& d, const std::string& data,
                              int locked_fd, int go_fd) {
  ContentStore cs = store;
  auto ing = cs.BeginIngest(d, static_cast<int64_t>(data.size()));
  if (!ing) ::_exit(ing.error().code == Errc::kAlreadyExists ? kSawExisting : kFailed);
  size_t half = data.size() / 2;
  if (!ing->Write(std::string_view(data).substr(0, half))) ::_exit(kFailed);
  if (locked_fd >= 0 && ::write(locked_fd, "L", 1) != 1) ::_exit(kFailed);
  if (go_fd >= 0) {
    char c;
    if (!ReadByte(go_fd, &c)) ::_exit(kFailed);
  }
  if (!ing->Write(std::string_view(data).substr(half))) ::_exit(kFailed);
  if (!ing->Commit()) ::_exit(kFailed);
  ::_exit(kWrote);
}

TEST_F(ContentStoreTest, SecondProcessWaitsForWriterThenSeesAlreadyExists) {
  std::string data = Content(200000, 21);
  Digest d = Digest::Sha256Of(data);
  Pipe locked = Pipe::Make(), go = Pipe::Make();

  pid_t writer = ::fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) ChildIngest(cs(), d, data, locked.w.get(), go.r.get());
  char c;
  ASSERT_TRUE(ReadByte(locked.r.get(), &c)) << "writer never took the lock";

  pid_t waiter = ::fork();
  ASSERT_GE(waiter, 0);
  if (waiter == 0) ChildIngest(cs(), d, data, -1, -1);
  bool blocked = WaitForBlockedFlock(waiter);
  ASSERT_EQ(::write(go.w.get(), "G", 1), 1);
  int writer_exit = WaitChild(writer);
  int waiter_exit = WaitChild(waiter);
  ASSERT_TRUE(blocked) << "second process never blocked on the ingest lock";
  EXPECT_EQ(writer_exit, kWrote);
  EXPECT_EQ(waiter_exit, kSawExisting);
  auto got = cs().ReadBlob(d);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, data);
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
}

TEST_F(ContentStoreTest, RacingProcessesWriteExactlyOnce) {
  std::string data = Content(500000, 22);
  Digest d = Digest::Sha256Of(data);
  constexpr int kProcs = 4;
  Pipe start = Pipe::Make();
  std::vector<pid_t> kids;
  for (int i = 0; i < kProcs; ++i) {
    pid_t p = ::fork();
    ASSERT_GE(p, 0);
    if (p == 0) {
      start.w.reset();
      char c;
      // EOF on the start pipe releases every child at once.
      struct pollfd pf {
        .fd = start.r.get(), .events = POLLIN, .revents = 0
      };
      if (::poll(&pf, 1, 20000) != 1 || ::read(start.r.get(), &c, 1) != 0) ::_exit(kFailed);
      ChildIngest(cs(), d, data, -1, -1);
    }
    kids.push_back(p);
  }
  start.w.reset();
  int wrote = 0, existing = 0;
  for (pid_t p : kids) {
    int code = WaitChild(p);
    if (code == kWrote)
      ++wrote;
    else if (code == kSawExisting)
      ++existing;
    else
      ADD_FAILURE() << "child exited with " << code;
  }
  EXPECT_EQ(wrote, 1);
  EXPECT_EQ(existing, kProcs - 1);
  auto got = cs().ReadBlob(d, 1 << 20);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, data);
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
}

void SetMtimeAgo(const fs::path& p, std::chrono::seconds ago) {
  struct timespec ts[2];
  ::clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= ago.count();
  ts[1] = ts[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, 0), 0);
}

TEST_F(ContentStoreTest, CleanIngestRemovesOnlyOldUnlockedPartials) {
  Digest old_d = Digest::Sha256Of(std::string_view("old"));
  Digest young_d = Digest::Sha256Of(std::string_view("young"));
  Digest held_d = Digest::Sha256Of(std::string_view("held"));
  for (const Digest* d : {&old_d, &young_d}) {
    auto ing = cs().BeginIngest(*d, 1000);
    ASSERT_TRUE(ing);
    ASSERT_TRUE(ing->Write(Content(300)));
  }
  auto began = cs().BeginIngest(held_d, 1000);
  ASSERT_TRUE(began);
  std::optional<Ingest> held(std::move(*began));
  ASSERT_TRUE(held->Write(Content(200)));
  SetMtimeAgo(cs().IngestPath(old_d), 2h);
  SetMtimeAgo(cs().IngestPath(held_d), 2h);

  auto freed = cs().CleanIngest(1h);
  ASSERT_TRUE(freed) << freed.error().message;
  EXPECT_EQ(*freed, 300);
  EXPECT_FALSE(fs::exists(cs().IngestPath(old_d)));
  EXPECT_TRUE(fs::exists(cs().IngestPath(young_d))) << "young partials stay for resume";
  EXPECT_TRUE(fs::exists(cs().IngestPath(held_d))) << "a locked partial is in use";

  held.reset();  // releases the lock, keeps the file
  freed = cs().CleanIngest(1h);
  ASSERT_TRUE(freed);
  EXPECT_EQ(*freed, 200);
  freed = cs().CleanIngest(0s);
  ASSERT_TRUE(freed);
  EXPECT_EQ(*freed, 300);
  EXPECT_EQ(CountEntries(ingest_dir()), 0u);
}

// An empty partial nobody holds (an older gantry's failed fetch) holds
// nothing to resume: removed whatever its age. A held one stays.
TEST_F(ContentStoreTest, CleanIngestRemovesEmptyUnlockedPartialsAtOnce) {
  std::ofstream(cs().IngestPath(Digest::Sha256Of(std::string_view("empty")))) << "";
  auto held = cs().BeginIngest(Digest::Sha256Of(std::string_view("held")), 10);
  ASSERT_TRUE(held);
  auto freed = cs().CleanIngest(24h);
  ASSERT_TRUE(freed) << freed.error().message;
  EXPECT_EQ(*freed, 0);
  EXPECT_EQ(CountEntries(ingest_dir()), 1u) << "the empty partial stayed, or the held one went";
  EXPECT_TRUE(fs::exists(cs().IngestPath(Digest::Sha256Of(std::string_view("held")))));
}

// ---- StoreLock ---------------------------------------------------------------

TEST_F(ContentStoreTest, StoreLockSharedExcludesExclusive) {
  fs::path root = dir_.path() / "root";
  auto s1 = StoreLock::Shared(root);
  ASSERT_TRUE(s1) << s1.error().message;
  auto s2 = StoreLock::TryShared(root);
  ASSERT_TRUE(s2) << "pulls share the lock";
  auto x = StoreLock::TryExclusive(root);
  ASSERT_FALSE(x);
  EXPECT_EQ(x.error().code, Errc::kUnavailable);
  s1->Release();
  s2->Release();
  x = StoreLock::TryExclusive(root);
  ASSERT_TRUE(x);
  EXPECT_TRUE(x->exclusive());
  auto s3 = StoreLock::TryShared(root);
  ASSERT_FALSE(s3);
  EXPECT_EQ(s3.error().code, Errc::kUnavailable);
  std::atomic<bool> cancel{true};
  auto s4 = StoreLock::Shared(root, &cancel);
  ASSERT_FALSE(s4);
  EXPECT_EQ(s4.error().code, Errc::kCancelled);
}

// Found by bench/soak.sh: with pulls overlapping back to back, prune never
// found a moment without a shared holder and waited for ever.
TEST_F(ContentStoreTest, StoreLockQueuedExclusiveHoldsOffNewSharedTakers) {
  fs::path root = dir_.path() / "root";
  auto pull = StoreLock::Shared(root);
  ASSERT_TRUE(pull) << pull.error().message;
  std::atomic<bool> got{false};
  std::thread prune([&] {
    auto x = StoreLock::Exclusive(root);
    EXPECT_TRUE(x) << x.error().message;
    got = true;
  });
  // Once the exclusive taker is queued, a new shared taker must wait.
  bool held_off = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       !held_off && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(10))) {
    auto s = StoreLock::TryShared(root);
    held_off = !s && s.error().code == Errc::kUnavailable;
  }
  EXPECT_TRUE(held_off) << "new shared takers still get in while prune waits";
  EXPECT_FALSE(got.load()) << "exclusive while a shared holder remained";
  pull->Release();
  prune.join();
  EXPECT_TRUE(got.load());
  auto after = StoreLock::TryShared(root);
  EXPECT_TRUE(after) << "the gate stays closed after the exclusive holder left";
}

}  // namespace
}  // namespace store
