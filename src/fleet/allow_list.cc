// `--peers-allow`: CIDR blocks and the addresses they hold.

#include "fleet/allow_list.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <string>

#include "fleet/text_internal.h"

namespace fleet {

common::Result<AllowList> AllowList::Parse(std::string_view text) {
  AllowList out;
  for (std::string_view entry : internal::CommaList(text)) {
    auto bad = [&](std::string_view why) {
      return common::MakeError(common::Errc::kInvalidArgument,
                               "allow `" + std::string(entry) + "`: " + std::string(why));
    };
    std::string_view addr = entry;
    std::string_view prefix_text;
    if (size_t slash = entry.find('/'); slash != std::string_view::npos) {
      addr = entry.substr(0, slash);
      prefix_text = entry.substr(slash + 1);
    }
    Block b;
    const std::string addr_s(addr);
    if (::inet_pton(AF_INET, addr_s.c_str(), b.bytes.data()) == 1) {
      b.prefix = 32;
    } else if (::inet_pton(AF_INET6, addr_s.c_str(), b.bytes.data()) == 1) {
      b.v6 = true;
      b.prefix = 128;
    } else {
      return bad("not an IPv4 or IPv6 address");
    }
    if (!prefix_text.empty() || addr.size() != entry.size()) {
      int p = -1;
      auto [end, ec] =
          std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), p);
      if (prefix_text.empty() || ec != std::errc() ||
          end != prefix_text.data() + prefix_text.size() || p < 0 || p > b.prefix)
        return bad("prefix length out of range");
      b.prefix = p;
    }
    out.blocks_.push_back(b);
  }
  if (out.blocks_.empty())
    return common::MakeError(common::Errc::kInvalidArgument, "allow list is empty");
  return out;
}

bool AllowList::Allows(const sockaddr* address) const {
  if (address == nullptr) return false;
  std::array<uint8_t, 16> bytes{};
  bool v6 = false;
  if (address->sa_family == AF_INET) {
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
  } else if (address->sa_family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      std::memcpy(bytes.data(), reinterpret_cast<const uint8_t*>(a6) + 12, 4);
    } else {
      std::memcpy(bytes.data(), a6, 16);
      v6 = true;
    }
  } else {
    return false;
  }
  for (const Block& b : blocks_) {
    if (b.v6 != v6) continue;
    int full = b.prefix / 8, rest = b.prefix % 8;
    if (std::memcmp(bytes.data(), b.bytes.data(), static_cast<size_t>(full)) != 0) continue;
    if (rest != 0) {
      uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
      if ((bytes[full] & mask) != (b.bytes[full] & mask)) continue;
    }
    return true;
  }
  return false;
}

}  // namespace fleet
