// PROXY protocol v2 header encoding (haproxy.org/download/2.9/doc/proxy-protocol.txt,
// section 2.2). Pure: no sockets. The parser for received headers is proxy_protocol_parse.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/socket.h"

namespace ringlb::balancer {

// Wire constants shared by the encoder and the parser (section 2.2).
inline constexpr uint8_t kProxyV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
inline constexpr size_t kProxyV2FixedHeader = 16;  // signature, ver_cmd, fam, len
inline constexpr uint8_t kPp2TypeAlpn = 0x01;
inline constexpr uint8_t kPp2TypeAuthority = 0x02;
inline constexpr uint8_t kPp2TypeCrc32c = 0x03;
inline constexpr uint8_t kPp2TypeNoop = 0x04;
inline constexpr uint8_t kPp2TypeUniqueId = 0x05;
inline constexpr uint8_t kPp2TypeSsl = 0x20;
inline constexpr uint8_t kPp2SubtypeSslVersion = 0x21;
inline constexpr uint8_t kPp2SubtypeSslCn = 0x22;
inline constexpr uint8_t kPp2SubtypeSslCipher = 0x23;
inline constexpr uint8_t kPp2SubtypeSslSigAlg = 0x24;
inline constexpr uint8_t kPp2SubtypeSslKeyAlg = 0x25;
inline constexpr uint8_t kPp2TypeNetns = 0x30;
// Bits of pp2_tlv_ssl.client (section 2.2.6).
inline constexpr uint8_t kPp2ClientSsl = 0x01;
inline constexpr uint8_t kPp2ClientCertConn = 0x02;
inline constexpr uint8_t kPp2ClientCertSess = 0x04;

// Every string TLV the encoder writes is capped at this many bytes (encodeProxyV2 fails
// beyond it), which is what bounds kProxyV2MaxHeader.
inline constexpr size_t kProxyV2MaxTlvValue = 255;

// The optional PP2_TYPE_SSL block (section 2.2.6): the client-side TLS facts. Empty views
// are not sent. `version` should be present whenever `client` has kPp2ClientSsl.
struct ProxyV2Ssl {
  uint8_t client = 0;    // kPp2Client* bits
  uint32_t verify = 0;   // 0: the client presented a certificate and it verified
  std::string_view version;  // PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3"
  std::string_view cn;       // PP2_SUBTYPE_SSL_CN: client certificate subject CN
  std::string_view cipher;   // PP2_SUBTYPE_SSL_CIPHER, e.g. "TLS_AES_128_GCM_SHA256"
  std::string_view sig_alg;  // PP2_SUBTYPE_SSL_SIG_ALG of our (frontend) certificate
  std::string_view key_alg;  // PP2_SUBTYPE_SSL_KEY_ALG of our (frontend) certificate
};

struct ProxyV2Tlvs {
  std::string_view authority;  // PP2_TYPE_AUTHORITY (0x02): the SNI
  std::string_view alpn;       // PP2_TYPE_ALPN (0x01): the first protocol the client offered
  const ProxyV2Ssl* ssl = nullptr;  // PP2_TYPE_SSL (0x20) when non-null; not owned
};

// The largest header encodeProxyV2 can produce (1866 bytes): the fixed part, the largest
// address block it emits (TCP over IPv6, 36), AUTHORITY and ALPN TLVs, and the SSL TLV (its
// 3-byte TLV header, client + verify, five sub-TLVs) with every value at the cap.
inline constexpr size_t kProxyV2MaxHeader =
    kProxyV2FixedHeader + 36 + 2 * (3 + kProxyV2MaxTlvValue) + 3 + 5 + 5 * (3 + kProxyV2MaxTlvValue);

// Writes a PROXY v2 "PROXY" command header for a stream connection from `source` to
// `destination` into `out`; returns its length, or 0 if a TLV value is longer than
// kProxyV2MaxTlvValue or `out` is too small for this header (a buffer of
// kProxyV2MaxHeader bytes is always enough). Families that differ or are unix sockets are
// encoded as AF_UNSPEC with the LOCAL-compatible layout the spec requires (no address block).
size_t encodeProxyV2(std::span<uint8_t> out, const core::SocketAddress& source,
                     const core::SocketAddress& destination, const ProxyV2Tlvs& tlvs);

}  // namespace ringlb::balancer
