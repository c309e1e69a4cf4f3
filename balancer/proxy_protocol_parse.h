// PROXY protocol v1/v2 header parsing, for listeners behind a trusted upstream proxy
// (haproxy.org/download/2.9/doc/proxy-protocol.txt). Pure: no sockets, no allocation.
//
// Contract:
//  - parseProxyHeader() looks at the bytes a connection has delivered so far (starting at its
//    first byte) and never reads outside `data`.
//  - NeedMore until the whole header is present; `bytes_needed` is then the least total input
//    length worth parsing again: any shorter input gives NeedMore again. Inside the signature
//    and the first v2 fixed bytes that is one more byte, since each can rule the stream out;
//    then v1 waits for its CRLF and v2 for 16 + len. Feeding a header one byte at a time gives
//    NeedMore up to its last byte and then the same result as parsing it whole.
//  - A stream that cannot be a header is Invalid as soon as the signature or a v2 fixed byte
//    shows it (section 2.1: "abort the connection as soon as possible"); v1 fields are checked
//    once the CRLF is in (section 2.1: the receiver "must wait for the CRLF sequence before
//    starting to decode the addresses"), v2 TLVs once the whole header is. A partial signature
//    of the version not accepted waits for the whole signature, so the error can say
//    VersionNotAccepted rather than BadSignature.
//  - On Complete, `consumed` is the header length; bytes after it belong to the client stream.
//  - Views in ProxyHeader point into `data` and are valid as long as it is.
//  - It is strict: v1 must match section 2.1 exactly (single spaces, canonical numbers, CRLF
//    within 107 bytes); v2 must have the exact signature, version 2, command LOCAL or PROXY,
//    a family/protocol byte the spec lists, an address block long enough for that family,
//    well-formed TLVs, no duplicate TLV of a type we interpret, and a matching CRC32C if one is
//    sent (section 2.2.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/socket.h"

namespace ringlb::balancer {

enum class ProxyVersionAccepted : uint8_t { V1, V2, Any };
enum class ProxyParseStatus : uint8_t { Complete, NeedMore, Invalid };

// Why a header is Invalid; stable names for log lines via proxyParseErrorName().
enum class ProxyParseError : uint8_t {
  None,
  BadSignature,            // neither "PROXY " nor the v2 signature
  VersionNotAccepted,      // a valid signature of a version this listener does not accept
  V1LineTooLong,           // no CRLF within the first 107 bytes
  V1BadLineEnding,         // a CR not followed by LF, or a LF not preceded by CR
  V1BadSyntax,             // fields not separated by exactly one space, missing or extra fields
  V1BadFamily,             // not TCP4, TCP6 or UNKNOWN
  V1BadAddress,            // not a canonical address of the announced family
  V1BadPort,               // not a decimal 0..65535 without leading zeros
  V2BadVersion,            // high nibble of byte 13 is not 2
  V2BadCommand,            // low nibble of byte 13 is neither LOCAL (0) nor PROXY (1)
  V2BadFamily,             // byte 14 is not one of the family/protocol pairs of section 2.2
  V2TooLong,               // 16 + length exceeds limits.max_v2_header
  V2AddressBlockTooShort,  // length smaller than the address block of the announced family
  V2TlvTruncated,          // a TLV runs past the end of the header
  V2DuplicateTlv,          // ALPN, AUTHORITY, CRC32C, UNIQUE_ID or SSL sent twice
  V2BadSslTlv,             // SSL value shorter than 5 bytes, a bad or duplicate sub-TLV
  V2BadCrc32c,             // CRC32C TLV not 4 bytes, or the checksum does not match
};

std::string_view proxyParseErrorName(ProxyParseError error);

struct ProxyParseLimits {
  // Cap on a whole v2 header (16 + length). The wire allows 16 + 65535; a trusted upstream
  // sending addresses and a few TLVs needs far less, and the cap bounds what we buffer.
  size_t max_v2_header = 4096;
};

enum class ProxyCommand : uint8_t { Local, Proxy };

// The PP2_TYPE_SSL TLV (section 2.2.6), when `present`.
struct ProxySslInfo {
  bool present = false;
  uint8_t client = 0;        // kPp2Client* bits (proxy_protocol.h)
  uint32_t verify = 0;       // 0: client certificate presented and verified
  std::string_view version;  // the sub-TLVs; empty when absent
  std::string_view cn;
  std::string_view cipher;
  std::string_view sig_alg;
  std::string_view key_alg;
};

struct ProxyHeader {
  uint8_t version = 0;  // 1 or 2
  ProxyCommand command = ProxyCommand::Local;  // v1 is always Proxy
  // True only for TCP over IPv4/IPv6 with the PROXY command. False for LOCAL, v1 UNKNOWN,
  // v2 AF_UNSPEC, UNIX and UDP: the caller then uses the real connection's addresses.
  bool has_addresses = false;
  core::SocketAddress source;       // the client, when has_addresses
  core::SocketAddress destination;  // the address the client connected to, when has_addresses
  // v2 TLVs of interest (views into `data`; empty when absent). Not parsed for LOCAL, whose
  // protocol block the spec says to discard.
  std::string_view authority;  // PP2_TYPE_AUTHORITY: the SNI the upstream saw
  std::string_view alpn;       // PP2_TYPE_ALPN
  std::string_view unique_id;  // PP2_TYPE_UNIQUE_ID
  ProxySslInfo ssl;
  std::span<const uint8_t> tlvs;  // the raw TLV area after the address block (v2 PROXY)
};

struct ProxyParseResult {
  ProxyParseStatus status = ProxyParseStatus::NeedMore;
  ProxyParseError error = ProxyParseError::None;
  size_t consumed = 0;      // on Complete: header length
  size_t bytes_needed = 0;  // on NeedMore: parse again once data.size() >= this
};

// Parses the PROXY header at the start of `data`. `out` is reset and filled on Complete only.
ProxyParseResult parseProxyHeader(std::span<const uint8_t> data, ProxyVersionAccepted accepted,
                                  ProxyHeader& out, const ProxyParseLimits& limits = {});

// CRC32C (Castagnoli, RFC 4960 appendix B) as PP2_TYPE_CRC32C uses it.
uint32_t proxyCrc32c(std::span<const uint8_t> data);

// Walks the TLVs of a v2 TLV area (ProxyHeader::tlvs, or an SSL TLV's sub-TLV area) in order.
// `next` returns false at the end or on a TLV that runs past the area (then `truncated()`).
class ProxyTlvReader {
 public:
  explicit ProxyTlvReader(std::span<const uint8_t> area) : area_(area) {}
  bool next(uint8_t& type, std::span<const uint8_t>& value);
  bool truncated() const { return truncated_; }

 private:
  std::span<const uint8_t> area_;
  size_t pos_ = 0;
  bool truncated_ = false;
};

}  // namespace ringlb::balancer
