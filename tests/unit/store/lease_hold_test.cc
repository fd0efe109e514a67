// LeaseHold: a lease's hold file is locked while its holder lives, so only
// the leases of holders that are gone are abandoned.

#include "store/lease_hold.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"

namespace store {
namespace {

namespace fs = std::filesystem;

constexpr char kLease[] = "0123456789abcdef0123456789abcdef";

class LeaseHoldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("lease-hold");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }
  const fs::path& root() const { return dir_.path(); }
  std::vector<std::string> Abandoned() const {
    auto a = AbandonedLeases(root());
    EXPECT_TRUE(a) << a.error().message;
    return a ? *a : std::vector<std::string>{};
  }
  common::TempDir dir_;
};

TEST_F(LeaseHoldTest, HeldLeaseIsNotAbandonedEvenFromTheSameProcess) {
  EXPECT_TRUE(Abandoned().empty()) << "no leases dir yet";
  auto hold = LeaseHold::Take(root(), kLease);
  ASSERT_TRUE(hold) << hold.error().message;
  EXPECT_TRUE(hold->held());
  EXPECT_TRUE(fs::exists(LeaseHold::Dir(root()) / kLease));
  EXPECT_TRUE(Abandoned().empty());
  ASSERT_TRUE(RemoveAbandonedHolds(root(), {kLease}));
  EXPECT_TRUE(fs::exists(LeaseHold::Dir(root()) / kLease)) << "removed a held lease's file";

  hold->Release();
  EXPECT_FALSE(hold->held());
  EXPECT_FALSE(fs::exists(LeaseHold::Dir(root()) / kLease));
  EXPECT_TRUE(Abandoned().empty());
  hold->Release();  // idempotent
}

TEST_F(LeaseHoldTest, HolderKilledLeavesTheLeaseAbandoned) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto hold = LeaseHold::Take(root(), kLease);
    char c = hold ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(c, 'y');
  EXPECT_TRUE(Abandoned().empty()) << "the holder still runs";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);

  EXPECT_EQ(Abandoned(), std::vector<std::string>{kLease});
  ASSERT_TRUE(RemoveAbandonedHolds(root(), Abandoned()));
  EXPECT_FALSE(fs::exists(LeaseHold::Dir(root()) / kLease));
  EXPECT_TRUE(Abandoned().empty());
}

// A hold dropped without Release (its lease may still exist) leaves the
// file unlocked: the lease is abandoned, as if its holder had been killed,
// never left without a hold file.
TEST_F(LeaseHoldTest, DroppedHoldLeavesTheLeaseAbandoned) {
  {
    auto hold = LeaseHold::Take(root(), kLease);
    ASSERT_TRUE(hold) << hold.error().message;
    EXPECT_EQ(hold->lease(), kLease);
  }
  EXPECT_TRUE(fs::exists(LeaseHold::Dir(root()) / kLease));
  EXPECT_EQ(Abandoned(), std::vector<std::string>{kLease});
}

TEST_F(LeaseHoldTest, RejectsWhatIsNotALeaseIdAndIgnoresStrayFiles) {
  for (const char* bad : {"", "../x", "ABC", "a/b", "xyz"}) {
    auto h = LeaseHold::Take(root(), bad);
    ASSERT_FALSE(h) << bad;
    EXPECT_EQ(h.error().code, common::Errc::kInvalidArgument) << bad;
  }
  ASSERT_TRUE(common::MkdirAll(LeaseHold::Dir(root())));
  ASSERT_TRUE(common::AtomicWriteFile(LeaseHold::Dir(root()) / "README", "not a lease"));
  ASSERT_TRUE(common::AtomicWriteFile(LeaseHold::Dir(root()) / ".tmp-abc-123", ""));
  EXPECT_TRUE(Abandoned().empty());
  ASSERT_TRUE(RemoveAbandonedHolds(root(), {}));
  EXPECT_TRUE(fs::exists(LeaseHold::Dir(root()) / ".tmp-abc-123")) << "a young temporary file";
  EXPECT_TRUE(fs::exists(LeaseHold::Dir(root()) / "README"));
}

}  // namespace
}  // namespace store
