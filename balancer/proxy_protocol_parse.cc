#include "balancer/proxy_protocol_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "balancer/proxy_protocol.h"

// Wire layouts, from haproxy.org/download/2.9/doc/proxy-protocol.txt.
//
// Version 1 (section 2.1): one US-ASCII line, CRLF included at most 107 bytes.
//
//   "PROXY" SP "TCP4" SP <src IPv4> SP <dst IPv4> SP <src port> SP <dst port> CRLF
//   "PROXY" SP "TCP6" SP <src IPv6> SP <dst IPv6> SP <src port> SP <dst port> CRLF
//   "PROXY" SP "UNKNOWN" [ SP <anything but CRLF> ] CRLF
//
//   IPv4: 4 decimal numbers 0..255 joined by single dots, no leading zeros.
//   IPv6: hex groups of up to 4 digits joined by colons, at most one "::", 128 bits.
//   port: decimal 0..65535, no leading zeros. SP is exactly one 0x20.
//   A lone CR or LF is not a line end; UNKNOWN means "use the real connection's addresses".
//
// Version 2 (section 2.2): binary, 16 fixed bytes then `len` more.
//
//   0                   12      13      14      16
//   +-------------------+-------+-------+-------+---------------------+---------------+
//   | sig 0D0A0D0A000D0A515549540A | ver_cmd | fam | len | address block | TLVs ...  |
//   +-------------------+-------+-------+-------+---------------------+---------------+
//   ver_cmd: high nibble version (must be 2), low nibble command (0 LOCAL, 1 PROXY).
//   fam:     high nibble family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX),
//            low nibble protocol (0 UNSPEC, 1 STREAM, 2 DGRAM); the valid bytes are
//            0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32; any other is invalid.
//   len:     big-endian length of everything after byte 16 (address block + TLVs).
//   address block (network order): INET 4+4 addresses + 2+2 ports = 12,
//            INET6 16+16 + 2+2 = 36, UNIX 108+108 = 216, UNSPEC none.
//   LOCAL:   the receiver uses the real endpoints and discards the block, family included.
//
//   TLV (section 2.2): | type (1) | length (2, big-endian) | value (length) |
//   PP2_TYPE_SSL value (section 2.2.6):
//            | client (1) | verify (4, big-endian) | sub-TLVs in the same TLV format |
//   PP2_TYPE_CRC32C (section 2.2.3): 4-byte CRC32C of the whole header computed with the
//            checksum field set to zero.

namespace ringlb::balancer {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr size_t kV1MaxLine = 107;  // section 2.1: the worst case, CRLF included

ProxyParseResult needMore(size_t total) {
  return {ProxyParseStatus::NeedMore, ProxyParseError::None, 0, total};
}
ProxyParseResult invalid(ProxyParseError error) { return {ProxyParseStatus::Invalid, error, 0, 0}; }
ProxyParseResult complete(size_t consumed) {
  return {ProxyParseStatus::Complete, ProxyParseError::None, consumed, 0};
}

// True if `data` and `sig` agree on their common length.
bool agreesWith(std::span<const uint8_t> data, const uint8_t* sig, size_t sig_size) {
  size_t n = std::min(data.size(), sig_size);
  return std::memcmp(data.data(), sig, n) == 0;
}

// ---- version 1 ----

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A decimal number with 1..max_digits digits, no leading zero unless it is "0", <= max.
bool parseCanonicalDecimal(std::string_view text, size_t max_digits, unsigned max, unsigned& value) {
  if (text.empty() || text.size() > max_digits) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  value = 0;
  for (char c : text) {
    if (!isDigit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= max;
}

bool parseIpv4(std::string_view text, in_addr& addr) {
  uint8_t bytes[4];
  for (size_t i = 0; i < 4; ++i) {
    size_t dot = text.find('.');
    std::string_view part = i < 3 ? text.substr(0, dot) : text;
    if (i < 3 && dot == std::string_view::npos) return false;
    unsigned value = 0;
    if (!parseCanonicalDecimal(part, 3, 255, value)) return false;
    bytes[i] = static_cast<uint8_t>(value);
    if (i < 3) text.remove_prefix(dot + 1);
  }
  std::memcpy(&addr, bytes, 4);
  return true;
}

// Section 2.1 allows only hex groups and colons (no embedded dotted IPv4); inet_pton then
// enforces group sizes, a single "::" and exactly 128 bits.
bool parseIpv6(std::string_view text, in6_addr& addr) {
  if (text.size() < 2 || text.size() > 39) return false;
  char buf[40];
  for (size_t i = 0; i < text.size(); ++i) {
    if (!isHex(text[i]) && text[i] != ':') return false;
    buf[i] = text[i];
  }
  buf[text.size()] = '\0';
  return inet_pton(AF_INET6, buf, &addr) == 1;
}

// Takes the next SP-separated field off `rest`. Fields are never empty (that would be two
// spaces in a row); the last field must end the line.
bool takeField(std::string_view& rest, std::string_view& field, bool last) {
  size_t sp = rest.find(' ');
  if (last) {
    if (sp != std::string_view::npos || rest.empty()) return false;
    field = rest;
    rest = {};
    return true;
  }
  if (sp == std::string_view::npos || sp == 0) return false;
  field = rest.substr(0, sp);
  rest.remove_prefix(sp + 1);
  return true;
}

// `line` excludes the CRLF and starts with "PROXY ".
ProxyParseError parseV1Line(std::string_view line, ProxyHeader& h) {
  std::string_view rest = line.substr(kV1Prefix.size());
  size_t sp = rest.find(' ');
  std::string_view family = rest.substr(0, sp);
  h.version = 1;
  h.command = ProxyCommand::Proxy;
  if (family == "UNKNOWN") return ProxyParseError::None;  // anything up to CRLF is ignored
  if (family.empty()) return ProxyParseError::V1BadSyntax;
  bool v4 = family == "TCP4";
  if (!v4 && family != "TCP6") return ProxyParseError::V1BadFamily;
  if (sp == std::string_view::npos) return ProxyParseError::V1BadSyntax;
  rest.remove_prefix(sp + 1);
  std::string_view fields[4];
  for (size_t i = 0; i < 4; ++i) {
    if (!takeField(rest, fields[i], i == 3)) return ProxyParseError::V1BadSyntax;
  }
  unsigned ports[2];
  for (size_t i = 0; i < 2; ++i) {
    if (!parseCanonicalDecimal(fields[2 + i], 5, 65535, ports[i])) return ProxyParseError::V1BadPort;
  }
  core::SocketAddress* targets[2] = {&h.source, &h.destination};
  for (size_t i = 0; i < 2; ++i) {
    if (v4) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_port = htons(static_cast<uint16_t>(ports[i]));
      if (!parseIpv4(fields[i], sin.sin_addr)) return ProxyParseError::V1BadAddress;
      *targets[i] = core::SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
    } else {
      sockaddr_in6 sin6{};
      sin6.sin6_family = AF_INET6;
      sin6.sin6_port = htons(static_cast<uint16_t>(ports[i]));
      if (!parseIpv6(fields[i], sin6.sin6_addr)) return ProxyParseError::V1BadAddress;
      *targets[i] = core::SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
    }
  }
  h.has_addresses = true;
  return ProxyParseError::None;
}

// Finds the CRLF (section 2.1: within 107 bytes; a lone CR or LF is an error), then parses.
ProxyParseResult parseV1(std::span<const uint8_t> data, ProxyHeader& h) {
  size_t limit = std::min(data.size(), kV1MaxLine);
  for (size_t i = 0; i < limit; ++i) {
    if (data[i] == '\n') return invalid(ProxyParseError::V1BadLineEnding);
    if (data[i] != '\r') continue;
    if (i + 2 > kV1MaxLine) return invalid(ProxyParseError::V1LineTooLong);
    if (i + 1 >= data.size()) return needMore(i + 2);
    if (data[i + 1] != '\n') return invalid(ProxyParseError::V1BadLineEnding);
    std::string_view line(reinterpret_cast<const char*>(data.data()), i);
    ProxyParseError error = parseV1Line(line, h);
    return error == ProxyParseError::None ? complete(i + 2) : invalid(error);
  }
  if (data.size() >= kV1MaxLine) return invalid(ProxyParseError::V1LineTooLong);
  return needMore(data.size() + 1);
}

// ---- version 2 ----

// Address block size for a valid PROXY-command family/protocol byte, or -1 if invalid.
int v2AddressBlockSize(uint8_t fam) {
  switch (fam) {
    case 0x00: return 0;
    case 0x11: case 0x12: return 12;
    case 0x21: case 0x22: return 36;
    case 0x31: case 0x32: return 216;
    default: return -1;
  }
}

uint32_t readBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string_view asText(std::span<const uint8_t> value) {
  return {reinterpret_cast<const char*>(value.data()), value.size()};
}

// Sets `slot` unless a value was already seen (duplicates are ambiguous: reject).
bool setOnce(std::string_view& slot, bool& seen, std::span<const uint8_t> value) {
  if (seen) return false;
  seen = true;
  slot = asText(value);
  return true;
}

ProxyParseError parseSslTlv(std::span<const uint8_t> value, ProxySslInfo& ssl) {
  if (ssl.present) return ProxyParseError::V2DuplicateTlv;
  if (value.size() < 5) return ProxyParseError::V2BadSslTlv;
  ssl.present = true;
  ssl.client = value[0];
  ssl.verify = readBe32(value.data() + 1);
  bool seen[5] = {};
  std::string_view* slots[5] = {&ssl.version, &ssl.cn, &ssl.cipher, &ssl.sig_alg, &ssl.key_alg};
  ProxyTlvReader reader(value.subspan(5));
  uint8_t type = 0;
  std::span<const uint8_t> sub;
  while (reader.next(type, sub)) {
    if (type < kPp2SubtypeSslVersion || type > kPp2SubtypeSslKeyAlg) continue;  // not ours
    size_t i = type - kPp2SubtypeSslVersion;
    if (!setOnce(*slots[i], seen[i], sub)) return ProxyParseError::V2BadSslTlv;
  }
  return reader.truncated() ? ProxyParseError::V2BadSslTlv : ProxyParseError::None;
}

// CRC32C (RFC 4960 appendix B): bitwise over the reflected polynomial 0x1EDC6F41; headers
// are small, a table is not worth its cache lines.
uint32_t crc32cUpdate(uint32_t crc, std::span<const uint8_t> bytes) {
  for (uint8_t b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc;
}

// Section 2.2.3: the CRC32C of the whole header with the 4 checksum bytes (at `crc_at`)
// taken as zero must equal the value sent.
bool crcMatches(std::span<const uint8_t> header, size_t crc_at) {
  static constexpr uint8_t kZero[4] = {};
  uint32_t crc = crc32cUpdate(0xFFFFFFFFu, header.first(crc_at));
  crc = crc32cUpdate(crc, kZero);
  crc = crc32cUpdate(crc, header.subspan(crc_at + 4));
  return ~crc == readBe32(header.data() + crc_at);
}

// TLVs after the address block; `header` is the whole v2 header.
ProxyParseError parseV2Tlvs(std::span<const uint8_t> header, size_t tlv_start, ProxyHeader& h) {
  h.tlvs = header.subspan(tlv_start);
  bool seen_alpn = false, seen_authority = false, seen_unique_id = false;
  std::string_view unused_crc;
  bool seen_crc = false;
  size_t crc_at = 0;
  ProxyTlvReader reader(h.tlvs);
  uint8_t type = 0;
  std::span<const uint8_t> value;
  while (reader.next(type, value)) {
    bool ok = true;
    switch (type) {
      case kPp2TypeAlpn: ok = setOnce(h.alpn, seen_alpn, value); break;
      case kPp2TypeAuthority: ok = setOnce(h.authority, seen_authority, value); break;
      case kPp2TypeUniqueId: ok = setOnce(h.unique_id, seen_unique_id, value); break;
      case kPp2TypeCrc32c:
        if (value.size() != 4) return ProxyParseError::V2BadCrc32c;
        ok = setOnce(unused_crc, seen_crc, value);
        crc_at = static_cast<size_t>(value.data() - header.data());
        break;
      case kPp2TypeSsl:
        if (ProxyParseError e = parseSslTlv(value, h.ssl); e != ProxyParseError::None) return e;
        break;
      default: break;  // NOOP, NETNS, custom and unknown types are skipped (section 2.2)
    }
    if (!ok) return ProxyParseError::V2DuplicateTlv;
  }
  if (reader.truncated()) return ProxyParseError::V2TlvTruncated;
  if (seen_crc && !crcMatches(header, crc_at)) return ProxyParseError::V2BadCrc32c;
  return ProxyParseError::None;
}

void readV2Addresses(const uint8_t* block, uint8_t fam, ProxyHeader& h) {
  core::SocketAddress* targets[2] = {&h.source, &h.destination};
  for (size_t i = 0; i < 2; ++i) {
    if (fam == 0x11) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      std::memcpy(&sin.sin_addr, block + 4 * i, 4);
      std::memcpy(&sin.sin_port, block + 8 + 2 * i, 2);
      *targets[i] = core::SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
    } else {
      sockaddr_in6 sin6{};
      sin6.sin6_family = AF_INET6;
      std::memcpy(&sin6.sin6_addr, block + 16 * i, 16);
      std::memcpy(&sin6.sin6_port, block + 32 + 2 * i, 2);
      *targets[i] = core::SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
    }
  }
  h.has_addresses = true;
}

// `data` starts with the full 12-byte signature. Checks each fixed byte as soon as it is
// there so a bad header is dropped early, then waits for 16 + len bytes.
ProxyParseResult parseV2(std::span<const uint8_t> data, const ProxyParseLimits& limits, ProxyHeader& h) {
  if (data.size() < 13) return needMore(13);
  uint8_t ver_cmd = data[12];
  if ((ver_cmd >> 4) != 2) return invalid(ProxyParseError::V2BadVersion);
  uint8_t command = ver_cmd & 0x0F;
  if (command > 1) return invalid(ProxyParseError::V2BadCommand);
  bool proxy = command == 1;
  if (data.size() < 14) return needMore(14);
  uint8_t fam = data[13];
  int address_size = v2AddressBlockSize(fam);
  if (proxy && address_size < 0) return invalid(ProxyParseError::V2BadFamily);
  if (data.size() < kProxyV2FixedHeader) return needMore(kProxyV2FixedHeader);
  size_t len = (size_t{data[14]} << 8) | data[15];
  size_t total = kProxyV2FixedHeader + len;
  if (total > limits.max_v2_header) return invalid(ProxyParseError::V2TooLong);
  if (proxy && len < static_cast<size_t>(address_size)) return invalid(ProxyParseError::V2AddressBlockTooShort);
  if (data.size() < total) return needMore(total);
  h.version = 2;
  h.command = proxy ? ProxyCommand::Proxy : ProxyCommand::Local;
  if (!proxy) return complete(total);  // section 2.2: LOCAL discards the whole block
  std::span<const uint8_t> header = data.first(total);
  if (fam == 0x11 || fam == 0x21) readV2Addresses(header.data() + kProxyV2FixedHeader, fam, h);
  // UNSPEC, UDP and UNIX fall back to the real endpoints (section 2.2, "Only the UNSPEC
  // protocol byte is mandatory"), but their TLVs still count.
  ProxyParseError error = parseV2Tlvs(header, kProxyV2FixedHeader + static_cast<size_t>(address_size), h);
  return error == ProxyParseError::None ? complete(total) : invalid(error);
}

}  // namespace

bool ProxyTlvReader::next(uint8_t& type, std::span<const uint8_t>& value) {
  if (truncated_ || pos_ == area_.size()) return false;
  if (area_.size() - pos_ < 3) {
    truncated_ = true;
    return false;
  }
  size_t length = (size_t{area_[pos_ + 1]} << 8) | area_[pos_ + 2];
  if (area_.size() - pos_ - 3 < length) {
    truncated_ = true;
    return false;
  }
  type = area_[pos_];
  value = area_.subspan(pos_ + 3, length);
  pos_ += 3 + length;
  return true;
}

uint32_t proxyCrc32c(std::span<const uint8_t> data) { return ~crc32cUpdate(0xFFFFFFFFu, data); }

ProxyParseResult parseProxyHeader(std::span<const uint8_t> data, ProxyVersionAccepted accepted,
                                  ProxyHeader& out, const ProxyParseLimits& limits) {
  out = {};
  if (data.empty()) return needMore(1);
  const auto* v1_sig = reinterpret_cast<const uint8_t*>(kV1Prefix.data());
  bool v1 = agreesWith(data, v1_sig, kV1Prefix.size());
  bool v2 = agreesWith(data, kProxyV2Signature, sizeof(kProxyV2Signature));
  if (!v1 && !v2) return invalid(ProxyParseError::BadSignature);
  size_t sig_size = v1 ? kV1Prefix.size() : sizeof(kProxyV2Signature);
  if (data.size() < sig_size) return needMore(data.size() + 1);  // the next byte may rule it out
  bool wanted = accepted == ProxyVersionAccepted::Any || (v1 == (accepted == ProxyVersionAccepted::V1));
  if (!wanted) return invalid(ProxyParseError::VersionNotAccepted);
  ProxyHeader h;
  ProxyParseResult result = v1 ? parseV1(data, h) : parseV2(data, limits, h);
  if (result.status == ProxyParseStatus::Complete) out = h;
  return result;
}

std::string_view proxyParseErrorName(ProxyParseError error) {
  switch (error) {
    case ProxyParseError::None: return "none";
    case ProxyParseError::BadSignature: return "bad signature (not a PROXY protocol header)";
    case ProxyParseError::VersionNotAccepted: return "PROXY protocol version not accepted here";
    case ProxyParseError::V1LineTooLong: return "v1 line longer than 107 bytes";
    case ProxyParseError::V1BadLineEnding: return "v1 lone CR or LF instead of CRLF";
    case ProxyParseError::V1BadSyntax: return "v1 bad field separation or field count";
    case ProxyParseError::V1BadFamily: return "v1 family not TCP4, TCP6 or UNKNOWN";
    case ProxyParseError::V1BadAddress: return "v1 bad address for the family";
    case ProxyParseError::V1BadPort: return "v1 bad port";
    case ProxyParseError::V2BadVersion: return "v2 version is not 2";
    case ProxyParseError::V2BadCommand: return "v2 command neither LOCAL nor PROXY";
    case ProxyParseError::V2BadFamily: return "v2 bad family/protocol byte";
    case ProxyParseError::V2TooLong: return "v2 header longer than the configured limit";
    case ProxyParseError::V2AddressBlockTooShort: return "v2 length shorter than the family's address block";
    case ProxyParseError::V2TlvTruncated: return "v2 TLV runs past the header";
    case ProxyParseError::V2DuplicateTlv: return "v2 duplicate TLV";
    case ProxyParseError::V2BadSslTlv: return "v2 malformed SSL TLV";
    case ProxyParseError::V2BadCrc32c: return "v2 CRC32C mismatch or malformed";
  }
  return "unknown";
}

}  // namespace ringlb::balancer
