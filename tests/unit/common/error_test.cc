#include "common/error.h"

#include <gtest/gtest.h>

#include <set>

namespace common {
namespace {

Result<int> Inner(bool ok) {
  if (!ok) return ErrnoError("open `/nope`", ENOENT);
  return 7;
}

Result<int> Outer(bool ok) {
  ASSIGN_OR_RETURN(int v, Inner(ok));
  return v + 1;
}

Status OuterStatus(bool ok) {
  TRY(Inner(ok));
  return {};
}

TEST(ErrorTest, ErrnoMapsToCodes) {
  EXPECT_EQ(ErrcFromErrno(ENOENT), Errc::kNotFound);
  EXPECT_EQ(ErrcFromErrno(EEXIST), Errc::kAlreadyExists);
  EXPECT_EQ(ErrcFromErrno(EACCES), Errc::kPermissionDenied);
  EXPECT_EQ(ErrcFromErrno(EPERM), Errc::kPermissionDenied);
  EXPECT_EQ(ErrcFromErrno(ENOSPC), Errc::kResourceExhausted);
  EXPECT_EQ(ErrcFromErrno(EMFILE), Errc::kResourceExhausted);
  EXPECT_EQ(ErrcFromErrno(EINVAL), Errc::kInvalidArgument);
  EXPECT_EQ(ErrcFromErrno(EIO), Errc::kInternal);
}

TEST(ErrorTest, ErrnoErrorKeepsErrnoAndNamesObject) {
  auto r = Inner(false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNotFound);
  EXPECT_EQ(r.error().sys_errno, ENOENT);
  EXPECT_EQ(r.error().message, "open `/nope`: No such file or directory");
}

TEST(ErrorTest, WrapReadsOutwardToInward) {
  auto r = Wrap(Outer(false), "pull busybox");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "pull busybox: open `/nope`: No such file or directory");
  EXPECT_EQ(r.error().code, Errc::kNotFound);
}

TEST(ErrorTest, MacrosPropagateSuccessAndFailure) {
  ASSERT_TRUE(Outer(true));
  EXPECT_EQ(*Outer(true), 8);
  EXPECT_TRUE(OuterStatus(true));
  EXPECT_FALSE(OuterStatus(false));
}

TEST(ErrorTest, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(Errc::kInternal); ++i)
    names.insert(ErrcName(static_cast<Errc>(i)));
  EXPECT_EQ(names.size(), static_cast<size_t>(Errc::kInternal) + 1);
}

}  // namespace
}  // namespace common
