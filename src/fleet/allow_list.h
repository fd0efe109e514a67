#pragma once
// `--peers-allow CIDR,...`: the client addresses a registry door serves
// (docs/fleet.md). Others are answered 403.
//
//   ASSIGN_OR_RETURN(fleet::AllowList allow, fleet::AllowList::Parse("10.0.0.0/8,127.0.0.1"));
//   if (!allow.Allows(client_address)) ... 403
//
// Thread-safety: const methods from any thread.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace fleet {

class AllowList {
 public:
  // A comma list of CIDR blocks ("10.0.0.0/8", "fd00::/8") or single
  // addresses ("127.0.0.1", "::1"). Host bits set under the prefix are
  // ignored. Errors: InvalidArgument naming the entry.
  [[nodiscard]] static common::Result<AllowList> Parse(std::string_view text);

  // Whether `address` (AF_INET or AF_INET6; an IPv4-mapped IPv6 address
  // counts as its IPv4 address) is in one of the blocks. Null or another
  // family: false.
  [[nodiscard]] bool Allows(const sockaddr* address) const;

 private:
  struct Block {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    int prefix = 0;
  };
  std::vector<Block> blocks_;
};

}  // namespace fleet
