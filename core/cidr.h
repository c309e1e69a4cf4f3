// CIDR blocks ("10.0.0.0/8", "::1/128", "127.0.0.1") for trusted-upstream checks, e.g. which
// peers may send a PROXY protocol header. Pure: no sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/socket.h"

namespace ringlb::core {

// An IPv4 or IPv6 network. Trivially copyable.
//
// Matching is done in the IPv6 space with IPv4 as IPv4-mapped addresses (RFC 4291 s2.5.5.2,
// ::ffff:0:0/96): 10.0.0.0/8 is ::ffff:10.0.0.0/104. So 10.0.0.0/8 contains both the client
// 10.1.2.3 and the dual-stack-socket client ::ffff:10.1.2.3, and an IPv6 block that covers
// the mapped range (::/0, ::ffff:0:0/96) contains IPv4 clients too.
class Cidr {
 public:
  // Parses "ADDRESS/PREFIX" or a bare "ADDRESS" (a single host: /32 or /128). Strict: numeric
  // addresses only, the prefix a decimal without leading zeros in 0..32 (IPv4) or 0..128
  // (IPv6), and no address bits set past the prefix ("10.1.0.0/8" is an error that names
  // 10.0.0.0/8, since a typo there silently widens or narrows trust). Returns nullopt and
  // an explanation on error.
  static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr);

  // True for an IPv4 or IPv6 address inside the block; false for unix or empty addresses.
  bool contains(const SocketAddress& address) const;

  bool isIpv4() const { return ipv4_; }
  unsigned prefixLength() const { return ipv4_ ? prefix_ - 96u : prefix_; }
  std::string toString() const;  // canonical "10.0.0.0/8", "2001:db8::/32"

 private:
  uint8_t network_[16] = {};  // IPv6, or IPv4-mapped IPv6
  unsigned prefix_ = 0;       // in the IPv6 space (IPv4 /8 is 104)
  bool ipv4_ = false;
};

}  // namespace ringlb::core
