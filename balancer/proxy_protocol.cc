#include "balancer/proxy_protocol.h"

#include <netinet/in.h>

#include <cstring>

namespace ringlb::balancer {
namespace {

constexpr uint8_t kVersionProxy = 0x21;    // version 2, command PROXY
constexpr uint8_t kTcp4 = 0x11, kTcp6 = 0x21, kUnspec = 0x00;

size_t tlvSize(std::string_view value) { return value.empty() ? 0 : 3 + value.size(); }

// Section 2.2: type, then the value length as two bytes in network order, then the value.
size_t putTlvHeader(uint8_t* p, uint8_t type, size_t length) {
  p[0] = type;
  p[1] = static_cast<uint8_t>(length >> 8);
  p[2] = static_cast<uint8_t>(length);
  return 3;
}

size_t putTlv(uint8_t* p, uint8_t type, std::string_view value) {
  if (value.empty()) return 0;
  putTlvHeader(p, type, value.size());
  std::memcpy(p + 3, value.data(), value.size());
  return 3 + value.size();
}

bool fitsCap(std::string_view value) { return value.size() <= kProxyV2MaxTlvValue; }

bool sslFitsCaps(const ProxyV2Ssl& ssl) {
  return fitsCap(ssl.version) && fitsCap(ssl.cn) && fitsCap(ssl.cipher) && fitsCap(ssl.sig_alg) &&
         fitsCap(ssl.key_alg);
}

// Value length of the PP2_TYPE_SSL TLV: client (1) + verify (4) + the sub-TLVs.
size_t sslValueSize(const ProxyV2Ssl& ssl) {
  return 5 + tlvSize(ssl.version) + tlvSize(ssl.cn) + tlvSize(ssl.cipher) + tlvSize(ssl.sig_alg) +
         tlvSize(ssl.key_alg);
}

// Section 2.2.6: struct pp2_tlv_ssl { uint8_t client; uint32_t verify; pp2_tlv sub_tlv[]; },
// verify in network order like every other multi-byte field of the header.
size_t putSslTlv(uint8_t* p, const ProxyV2Ssl& ssl) {
  size_t pos = putTlvHeader(p, kPp2TypeSsl, sslValueSize(ssl));
  p[pos++] = ssl.client;
  p[pos++] = static_cast<uint8_t>(ssl.verify >> 24);
  p[pos++] = static_cast<uint8_t>(ssl.verify >> 16);
  p[pos++] = static_cast<uint8_t>(ssl.verify >> 8);
  p[pos++] = static_cast<uint8_t>(ssl.verify);
  pos += putTlv(p + pos, kPp2SubtypeSslVersion, ssl.version);
  pos += putTlv(p + pos, kPp2SubtypeSslCn, ssl.cn);
  pos += putTlv(p + pos, kPp2SubtypeSslCipher, ssl.cipher);
  pos += putTlv(p + pos, kPp2SubtypeSslSigAlg, ssl.sig_alg);
  pos += putTlv(p + pos, kPp2SubtypeSslKeyAlg, ssl.key_alg);
  return pos;
}

bool bothFamily(const core::SocketAddress& a, const core::SocketAddress& b, int family) {
  return a.family() == family && b.family() == family;
}

}  // namespace

size_t encodeProxyV2(std::span<uint8_t> out, const core::SocketAddress& source,
                     const core::SocketAddress& destination, const ProxyV2Tlvs& tlvs) {
  if (!fitsCap(tlvs.authority) || !fitsCap(tlvs.alpn)) return 0;
  if (tlvs.ssl != nullptr && !sslFitsCaps(*tlvs.ssl)) return 0;
  size_t address_size = bothFamily(source, destination, AF_INET)    ? 12
                        : bothFamily(source, destination, AF_INET6) ? 36
                                                                    : 0;
  size_t total = kProxyV2FixedHeader + address_size + tlvSize(tlvs.alpn) + tlvSize(tlvs.authority) +
                 (tlvs.ssl != nullptr ? 3 + sslValueSize(*tlvs.ssl) : 0);
  if (out.size() < total) return 0;
  uint8_t* p = out.data();
  std::memcpy(p, kProxyV2Signature, sizeof(kProxyV2Signature));
  p[12] = kVersionProxy;
  size_t pos = kProxyV2FixedHeader;
  // Section 2.2: the address block is 12 bytes for TCP over IPv4, 36 for IPv6, each
  // "source address, destination address, source port, destination port" in network order.
  if (address_size == 12) {
    p[13] = kTcp4;
    const auto* s = reinterpret_cast<const sockaddr_in*>(source.sockaddrPtr());
    const auto* d = reinterpret_cast<const sockaddr_in*>(destination.sockaddrPtr());
    std::memcpy(p + pos, &s->sin_addr, 4);
    std::memcpy(p + pos + 4, &d->sin_addr, 4);
    std::memcpy(p + pos + 8, &s->sin_port, 2);
    std::memcpy(p + pos + 10, &d->sin_port, 2);
  } else if (address_size == 36) {
    p[13] = kTcp6;
    const auto* s = reinterpret_cast<const sockaddr_in6*>(source.sockaddrPtr());
    const auto* d = reinterpret_cast<const sockaddr_in6*>(destination.sockaddrPtr());
    std::memcpy(p + pos, &s->sin6_addr, 16);
    std::memcpy(p + pos + 16, &d->sin6_addr, 16);
    std::memcpy(p + pos + 32, &s->sin6_port, 2);
    std::memcpy(p + pos + 34, &d->sin6_port, 2);
  } else {
    p[13] = kUnspec;  // receiver must ignore addresses, keep the connection's own
  }
  pos += address_size;
  pos += putTlv(p + pos, kPp2TypeAlpn, tlvs.alpn);
  pos += putTlv(p + pos, kPp2TypeAuthority, tlvs.authority);
  if (tlvs.ssl != nullptr) pos += putSslTlv(p + pos, *tlvs.ssl);
  size_t body = pos - kProxyV2FixedHeader;
  p[14] = static_cast<uint8_t>(body >> 8);
  p[15] = static_cast<uint8_t>(body);
  return pos;
}

}  // namespace ringlb::balancer
