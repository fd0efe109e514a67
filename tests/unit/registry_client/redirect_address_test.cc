// Which addresses a redirect (or a token realm) may not lead to: the
// link-local and cloud metadata ones, also written as IPv4-mapped IPv6.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

#include "registry/transport.h"

namespace registry::internal {
namespace {

bool Forbidden(const std::string& text) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1)
    return IsForbiddenRedirectAddress(reinterpret_cast<const sockaddr*>(&v4));
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr), 1) << text;
  return IsForbiddenRedirectAddress(reinterpret_cast<const sockaddr*>(&v6));
}

TEST(ForbiddenRedirectAddressTest, LinkLocalAndMetadataAddresses) {
  for (const char* a :
       {"169.254.169.254", "169.254.0.1", "169.254.255.255", "100.100.100.200", "fe80::1",
        "febf::ffff", "fd00:ec2::254", "::ffff:169.254.169.254", "::ffff:100.100.100.200"})
    EXPECT_TRUE(Forbidden(a)) << a;
}

TEST(ForbiddenRedirectAddressTest, OrdinaryAddressesIncludingLoopbackAndPrivate) {
  for (const char* a :
       {"127.0.0.1", "10.0.0.1", "192.168.1.1", "169.253.255.255", "169.255.0.1", "100.100.100.201",
        "8.8.8.8", "::1", "fec0::1", "2001:db8::1", "fd00:ec2::253", "::ffff:127.0.0.1"})
    EXPECT_FALSE(Forbidden(a)) << a;
}

}  // namespace
}  // namespace registry::internal
