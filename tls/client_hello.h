// ClientHello inspection for routing without decryption (RFC 8446 s4.1.2, RFC 5246 s7.4.1.2).
//
// Contract:
//  - parseClientHello() looks at the bytes a client has sent so far (starting at the first
//    byte of the connection) and never reads outside `input`.
//  - It is allocation-free. A hello that spans several TLS records is reassembled into the
//    caller's `scratch` span (which must be at least `limits.max_hello_bytes` long); views in
//    ClientHelloInfo then point into `scratch`, otherwise into `input`. The views are valid as
//    long as both spans are.
//  - It is cheap when it returns NeedMore: it walks record headers only, and fills
//    `info.bytes_needed` with the minimum total input length worth parsing again (the least
//    size at which the hello could be complete; any shorter input gives NeedMore again, and an
//    Invalid stream is still reported once it reaches that size), so a caller fed one byte at a
//    time does O(records) work per parse and few parses, not O(bytes^2).
//  - It is strict: every length must agree with its container; more than one name in a
//    server_name list, a second server_name extension, a duplicate extension of any type, an
//    empty or over-long host name, or one with NUL/control/non-ASCII bytes is Invalid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace ringlb::tls {

enum class ParseStatus : uint8_t { Complete, NeedMore, Invalid };

// Why a hello is Invalid; stable names for log lines via parseErrorName().
enum class ParseError : uint8_t {
  None,
  NotTls,               // first byte is not a handshake record (0x16): not TLS at all
  BadRecordVersion,     // record layer major version is not 3
  BadRecordLength,      // zero-length or > 2^14 plaintext record (RFC 8446 s5.1, RFC 5246 s6.2.1)
  RecordTypeChanged,    // a non-handshake record interleaved before the hello completed
  NotClientHello,       // first handshake message is not client_hello (1)
  HelloTooLarge,        // handshake message longer than limits.max_hello_bytes
  TrailingHandshakeData,// bytes after the ClientHello inside the same handshake stream
  BadLength,            // some inner length disagrees with its container
  BadSessionId,         // legacy_session_id longer than 32
  BadCipherSuites,      // empty or odd-length cipher_suites
  BadCompression,       // empty compression_methods
  DuplicateExtension,
  BadServerName,        // malformed server_name extension
  MultipleServerNames,  // more than one entry in the server_name list
  BadHostName,          // empty, > 255 bytes, or with NUL/control/non-ASCII bytes
  BadAlpn,              // malformed ALPN extension (empty list or empty protocol name)
  BadSupportedVersions,
  BadPreSharedKey,
};

std::string_view parseErrorName(ParseError error);

struct ParseLimits {
  size_t max_hello_bytes = 16 * 1024;  // cap on the ClientHello handshake message
};

// Iterates length-prefixed items of a validated list without copying.
// `prefix_bytes` is the width of each item's length prefix (1 for ALPN names, 2 for PSK
// identities); `trailer_bytes` are skipped after each item (4 for a PSK identity's
// obfuscated_ticket_age, RFC 8446 s4.2.11). Only constructed by the parser over data it has
// already validated; on anything else iteration stops at the first item that does not fit.
class ListView {
 public:
  ListView() = default;
  ListView(std::span<const uint8_t> raw, uint8_t prefix_bytes, uint8_t trailer_bytes = 0)
      : raw_(raw), prefix_(prefix_bytes), trailer_(trailer_bytes) {}
  template <typename F>  // F(std::string_view item); return false to stop
  void forEach(F&& f) const;
  size_t count() const;  // number of items forEach() would visit
  size_t rawSize() const { return raw_.size(); }
  bool empty() const { return raw_.empty(); }

 private:
  std::span<const uint8_t> raw_;
  uint8_t prefix_ = 1;
  uint8_t trailer_ = 0;
};

struct ClientHelloInfo {
  uint16_t legacy_version = 0;                 // client_version / legacy_version
  std::span<const uint8_t> random;             // 32 bytes
  std::span<const uint8_t> session_id;         // 0..32 bytes
  std::span<const uint8_t> cipher_suites;      // raw big-endian uint16 list
  bool has_sni = false;
  std::string_view sni;                        // host name as sent (NOT lower-cased)
  bool has_alpn = false;
  ListView alpn;                               // protocol names
  bool has_supported_versions = false;
  std::span<const uint8_t> supported_versions; // raw big-endian uint16 list
  bool has_session_ticket = false;             // extension 35 present
  std::span<const uint8_t> session_ticket;     // its body (empty = asking for a new ticket)
  bool has_psk = false;                        // pre_shared_key (41) present
  ListView psk_identities;                     // identity bytes (without obfuscated_ticket_age)
  uint16_t extension_count = 0;

  size_t hello_record_bytes = 0;  // input bytes consumed by the records holding the hello
  size_t bytes_needed = 0;        // on NeedMore: parse again once input.size() >= this
                                  // (> input.size(); never more than the hello's records need)
  ParseError error = ParseError::None;

  // Highest version offered: the highest non-GREASE (0x?a?a, RFC 8701 s2) entry of
  // supported_versions if present, else legacy_version (also when the list is all GREASE).
  uint16_t maxOfferedVersion() const;
  bool offersTls13() const { return maxOfferedVersion() >= 0x0304; }
};

ParseStatus parseClientHello(std::span<const uint8_t> input, std::span<uint8_t> scratch,
                             const ParseLimits& limits, ClientHelloInfo& info);

// ---- inline implementation ----
template <typename F>
void ListView::forEach(F&& f) const {
  size_t pos = 0;
  while (pos + prefix_ <= raw_.size()) {
    size_t len = raw_[pos];
    if (prefix_ == 2) len = (len << 8) | raw_[pos + 1];
    pos += prefix_;
    if (len + trailer_ > raw_.size() - pos) return;
    std::string_view item(reinterpret_cast<const char*>(raw_.data() + pos), len);
    pos += len + trailer_;
    if constexpr (std::is_same_v<decltype(f(item)), bool>) {
      if (!f(item)) return;
    } else {
      f(item);
    }
  }
}

inline size_t ListView::count() const {
  size_t n = 0;
  forEach([&n](std::string_view) { ++n; });
  return n;
}

}  // namespace ringlb::tls
