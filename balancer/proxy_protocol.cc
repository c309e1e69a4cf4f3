#include "balancer/proxy_protocol.h"

#include <netinet/in.h>

#include <cstring>

namespace ringlb::balancer {
namespace {

constexpr uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr uint8_t kVersionProxy = 0x21;    // version 2, command PROXY
constexpr uint8_t kTcp4 = 0x11, kTcp6 = 0x21, kUnspec = 0x00;
constexpr uint8_t kTlvAlpn = 0x01, kTlvAuthority = 0x02;

size_t putTlv(uint8_t* p, uint8_t type, std::string_view value) {
  p[0] = type;
  p[1] = static_cast<uint8_t>(value.size() >> 8);
  p[2] = static_cast<uint8_t>(value.size());
  std::memcpy(p + 3, value.data(), value.size());
  return 3 + value.size();
}

}  // namespace

size_t encodeProxyV2(std::span<uint8_t> out, const core::SocketAddress& source,
                     const core::SocketAddress& destination, const ProxyV2Tlvs& tlvs) {
  if (tlvs.authority.size() > 255 || tlvs.alpn.size() > 255 || out.size() < kProxyV2MaxHeader) return 0;
  uint8_t* p = out.data();
  std::memcpy(p, kSignature, sizeof(kSignature));
  p[12] = kVersionProxy;
  size_t pos = 16;
  // Section 2.2: the address block is 12 bytes for TCP over IPv4, 36 for IPv6, each
  // "source address, destination address, source port, destination port" in network order.
  if (source.family() == AF_INET && destination.family() == AF_INET) {
    p[13] = kTcp4;
    const auto* s = reinterpret_cast<const sockaddr_in*>(source.sockaddrPtr());
    const auto* d = reinterpret_cast<const sockaddr_in*>(destination.sockaddrPtr());
    std::memcpy(p + pos, &s->sin_addr, 4);
    std::memcpy(p + pos + 4, &d->sin_addr, 4);
    std::memcpy(p + pos + 8, &s->sin_port, 2);
    std::memcpy(p + pos + 10, &d->sin_port, 2);
    pos += 12;
  } else if (source.family() == AF_INET6 && destination.family() == AF_INET6) {
    p[13] = kTcp6;
    const auto* s = reinterpret_cast<const sockaddr_in6*>(source.sockaddrPtr());
    const auto* d = reinterpret_cast<const sockaddr_in6*>(destination.sockaddrPtr());
    std::memcpy(p + pos, &s->sin6_addr, 16);
    std::memcpy(p + pos + 16, &d->sin6_addr, 16);
    std::memcpy(p + pos + 32, &s->sin6_port, 2);
    std::memcpy(p + pos + 34, &d->sin6_port, 2);
    pos += 36;
  } else {
    p[13] = kUnspec;  // receiver must ignore addresses, keep the connection's own
  }
  if (!tlvs.alpn.empty()) pos += putTlv(p + pos, kTlvAlpn, tlvs.alpn);
  if (!tlvs.authority.empty()) pos += putTlv(p + pos, kTlvAuthority, tlvs.authority);
  size_t body = pos - 16;
  p[14] = static_cast<uint8_t>(body >> 8);
  p[15] = static_cast<uint8_t>(body);
  return pos;
}

}  // namespace ringlb::balancer
