// The error-kind table between gantry and gRPC (criimage/grpc_errc.h),
// used by the CRI server one way and by the containerd client the other.

#include "criimage/grpc_errc.h"

#include <gtest/gtest.h>

#include <set>

namespace criimage {
namespace {

using common::Errc;

TEST(GrpcErrcTest, EveryKindHasItsOwnCodeAndComesBack) {
  std::set<int> codes;
  for (int i = 0; i <= static_cast<int>(Errc::kInternal); ++i) {
    const auto kind = static_cast<Errc>(i);
    const grpc::StatusCode code = GrpcCode(kind);
    // kInternal is the only kind that may be INTERNAL.
    if (kind != Errc::kInternal) {
      EXPECT_NE(code, grpc::StatusCode::INTERNAL) << common::ErrcName(kind);
    }
    EXPECT_TRUE(codes.insert(code).second) << common::ErrcName(kind) << " shares its code";
    EXPECT_EQ(ErrcOf(code), kind) << common::ErrcName(kind);
  }
}

TEST(GrpcErrcTest, CodesOutsideTheTable) {
  EXPECT_EQ(ErrcOf(grpc::StatusCode::DEADLINE_EXCEEDED), Errc::kUnavailable);
  EXPECT_EQ(ErrcOf(grpc::StatusCode::UNKNOWN), Errc::kInternal);
  EXPECT_EQ(ErrcOf(grpc::StatusCode::OUT_OF_RANGE), Errc::kInternal);
  EXPECT_EQ(GrpcCode(Errc::kNotFound), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace criimage
