// PROXY protocol v2 header encoding (haproxy.org/download/2.9/doc/proxy-protocol.txt,
// section 2.2). Pure: no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/socket.h"

namespace ringlb::balancer {

inline constexpr size_t kProxyV2MaxHeader = 16 + 216 + 3 + 255 + 3 + 255;  // addresses + AUTHORITY + ALPN

struct ProxyV2Tlvs {
  std::string_view authority;  // PP2_TYPE_AUTHORITY (0x02): the SNI
  std::string_view alpn;       // PP2_TYPE_ALPN (0x01): the first protocol the client offered
};

// Writes a PROXY v2 "PROXY" command header for a stream connection from `source` to
// `destination` into `out`; returns its length, or 0 if `out` is too small. Families that
// differ or are unix sockets are encoded as AF_UNSPEC with the LOCAL-compatible layout the
// spec requires (no address block).
size_t encodeProxyV2(std::span<uint8_t> out, const core::SocketAddress& source,
                     const core::SocketAddress& destination, const ProxyV2Tlvs& tlvs);

}  // namespace ringlb::balancer
