// Value snapshots of parseClientHello results for the unit tests: views copied out so input
// and scratch may die, exactly-sized input copies so AddressSanitizer catches over-reads.
#pragma once

#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tests/unit/tls/tls_test_support.h"
#include "tls/client_hello.h"

namespace ringlb::tls::test_support {

// ---- value snapshot of a parse (views copied out, so scratch/input may die) ----

struct Snapshot {
  ParseStatus status = ParseStatus::Invalid;
  ParseError error = ParseError::None;
  uint16_t legacy_version = 0;
  Bytes random, session_id, ciphers;
  bool has_sni = false;
  std::string sni;
  bool has_alpn = false;
  std::vector<std::string> alpn;
  bool has_supported_versions = false;
  Bytes supported_versions;
  bool has_session_ticket = false;
  Bytes session_ticket;
  bool has_psk = false;
  std::vector<std::string> psk_identities;
  uint16_t extension_count = 0;
  uint16_t max_offered_version = 0;
  size_t hello_record_bytes = 0;
  size_t bytes_needed = 0;
  bool operator==(const Snapshot&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Snapshot& s) {
  return os << "{status=" << static_cast<int>(s.status) << " error=" << parseErrorName(s.error)
            << " sni=" << s.sni << " alpn#=" << s.alpn.size() << " ext#=" << s.extension_count
            << " record_bytes=" << s.hello_record_bytes << " needed=" << s.bytes_needed << "}";
}

inline Bytes toBytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

inline std::vector<std::string> items(const ListView& list) {
  std::vector<std::string> out;
  list.forEach([&out](std::string_view item) { out.emplace_back(item); });
  return out;
}

inline Snapshot snapshot(ParseStatus status, const ClientHelloInfo& info) {
  Snapshot s;
  s.status = status;
  s.error = info.error;
  s.legacy_version = info.legacy_version;
  s.random = toBytes(info.random);
  s.session_id = toBytes(info.session_id);
  s.ciphers = toBytes(info.cipher_suites);
  s.has_sni = info.has_sni;
  s.sni = std::string(info.sni);
  s.has_alpn = info.has_alpn;
  s.alpn = items(info.alpn);
  s.has_supported_versions = info.has_supported_versions;
  s.supported_versions = toBytes(info.supported_versions);
  s.has_session_ticket = info.has_session_ticket;
  s.session_ticket = toBytes(info.session_ticket);
  s.has_psk = info.has_psk;
  s.psk_identities = items(info.psk_identities);
  s.extension_count = info.extension_count;
  s.max_offered_version = status == ParseStatus::Complete ? info.maxOfferedVersion() : 0;
  s.hello_record_bytes = info.hello_record_bytes;
  s.bytes_needed = info.bytes_needed;
  return s;
}

// Parses the first `size` bytes from an exactly-sized heap copy, so AddressSanitizer sees any
// read past the end of the input.
inline Snapshot parsePrefix(const Bytes& stream, size_t size, ParseLimits limits = {}) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(exact.get(), stream.data(), size);
  std::vector<uint8_t> scratch(limits.max_hello_bytes);
  ClientHelloInfo info;
  const ParseStatus status =
      parseClientHello({exact.get(), size}, scratch, limits, info);
  return snapshot(status, info);
}

inline Snapshot parse(const Bytes& stream, ParseLimits limits = {}) {
  return parsePrefix(stream, stream.size(), limits);
}

// The same hello regardless of framing: compare all but the framing-dependent count.
inline Snapshot unframed(Snapshot s) {
  s.hello_record_bytes = 0;
  return s;
}

inline uint16_t u16At(const Bytes& b, size_t pos) {
  return static_cast<uint16_t>((b.at(pos) << 8) | b.at(pos + 1));
}

inline size_t countRecords(const Bytes& stream) {
  size_t n = 0;
  for (size_t pos = 0; pos + 5 <= stream.size(); ++n) pos += 5 + u16At(stream, pos + 3);
  return n;
}

}  // namespace ringlb::tls::test_support
