#include "tls/client_hello.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace ringlb::tls {

// Wire layout. [n] is a fixed-width field, <lo..hi> a vector whose length prefix is as wide
// as needed to hold hi (RFC 8446 s3.4): u8 up to 2^8-1, u16 up to 2^16-1, u24 beyond. Every
// vector must end inside its container; where a container is a single vector or list, the
// vector must fill it exactly.
//
// TLSPlaintext record (RFC 8446 s5.1, RFC 5246 s6.2.1), repeated until the hello is complete:
//   +0  ContentType type        [1]  22 = handshake; anything else before the hello ends is
//                                    Invalid (NotTls on the very first byte)
//   +1  ProtocolVersion legacy  [2]  major byte 3; minor not checked (0x0301 is common)
//   +3  uint16 length           [2]  1..2^14: zero-length handshake fragments are forbidden
//                                    (RFC 8446 s5.1), plaintext may not exceed 2^14
//   +5  opaque fragment         [length]  next bytes of the handshake stream
//
// Handshake (RFC 8446 s4), the concatenation of the fragments; may be split anywhere:
//   +0  HandshakeType msg_type  [1]  1 = client_hello
//   +1  uint24 length           [3]  4 + length <= limits.max_hello_bytes, and the record
//                                    carrying the last hello byte ends with it (no trailing
//                                    handshake data: RFC 8446 s5.1 key-change alignment)
//
// ClientHello body (RFC 8446 s4.1.2; RFC 5246 s7.4.1.2):
//   ProtocolVersion legacy_version              [2]
//   Random random                               [32]
//   opaque legacy_session_id                    <0..32>       u8 length
//   CipherSuite cipher_suites                   <2..2^16-2>   u16 length, even
//   opaque legacy_compression_methods           <1..2^8-1>    u8 length
//   Extension extensions                        <0..2^16-1>   u16 length, ends exactly at
//       the end of the body; TLS 1.2 allows the whole field to be absent (RFC 5246 s7.4.1.2)
//
// Extension (RFC 8446 s4.2): ExtensionType [2], opaque extension_data <0..2^16-1> (u16);
// "There MUST NOT be more than one extension of the same type in a given extension block."
//
//   server_name (0), RFC 6066 s3:
//     ServerName server_name_list <1..2^16-1>   u16 length == extension length - 2
//       NameType name_type [1]                  0 = host_name, the only type defined
//       opaque HostName <1..2^16-1>             u16 length
//     We accept exactly one entry, a host_name of 1..255 bytes of printable ASCII (RFC 6066
//     s3: "ASCII encoding, without a trailing dot"; a DNS name never exceeds 255 bytes).
//
//   application_layer_protocol_negotiation (16), RFC 7301 s3.1:
//     ProtocolName protocol_name_list <2..2^16-1>  u16 length == extension length - 2
//       opaque ProtocolName <1..2^8-1>             u8 length
//
//   session_ticket (35), RFC 5077 s3.2: extension_data is the ticket itself, no inner
//     length; empty means "no ticket yet, please send one".
//
//   pre_shared_key (41), RFC 8446 s4.2.11 (OfferedPsks; MUST be the last extension):
//     PskIdentity identities <7..2^16-1>        u16 length
//       opaque identity <1..2^16-1>             u16 length
//       uint32 obfuscated_ticket_age            [4]
//     PskBinderEntry binders <33..2^16-1>       u16 length, ends with the extension
//       opaque PskBinderEntry <32..255>         u8 length
//     "one for each value in the identities list": as many binders as identities.
//
//   supported_versions (43), RFC 8446 s4.2.1 (ClientHello form):
//     ProtocolVersion versions <2..254>         u8 length == extension length - 1, even

namespace {

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kRecordHeaderBytes = 5;
constexpr size_t kHandshakeHeaderBytes = 4;
constexpr size_t kMaxPlaintextRecord = size_t{1} << 14;
constexpr size_t kRandomBytes = 32;
constexpr size_t kMaxSessionIdBytes = 32;
constexpr size_t kMaxHostNameBytes = 255;
constexpr size_t kMinPskIdentitiesBytes = 7;
constexpr size_t kMinPskBindersBytes = 33;
constexpr size_t kMinPskBinderBytes = 32;

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSessionTicket = 35;
constexpr uint16_t kExtPreSharedKey = 41;
constexpr uint16_t kExtSupportedVersions = 43;
constexpr uint8_t kNameTypeHostName = 0;

uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Bounds-checked cursor over a validated-length span. Every read either succeeds completely
// or leaves the cursor unchanged and returns false.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}

  bool empty() const { return pos_ == data_.size(); }

  bool u8(uint8_t& out) {
    if (data_.size() - pos_ < 1) return false;
    out = data_[pos_++];
    return true;
  }
  bool u16(uint16_t& out) {
    if (data_.size() - pos_ < 2) return false;
    out = load16(data_.data() + pos_);
    pos_ += 2;
    return true;
  }
  bool bytes(size_t n, std::span<const uint8_t>& out) {
    if (data_.size() - pos_ < n) return false;
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  // opaque v<..2^8-1> and v<..2^16-1>: length prefix, then that many bytes.
  bool vec8(std::span<const uint8_t>& out) {
    const size_t start = pos_;
    uint8_t len = 0;
    if (u8(len) && bytes(len, out)) return true;
    pos_ = start;
    return false;
  }
  bool vec16(std::span<const uint8_t>& out) {
    const size_t start = pos_;
    uint16_t len = 0;
    if (u16(len) && bytes(len, out)) return true;
    pos_ = start;
    return false;
  }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

// Extension types seen in one extension block. Real hellos carry 10-20 extensions, so a
// short array scanned linearly wins; past kSmall entries it switches to a 2^16-bit bitmap so
// a hostile hello with thousands of extensions costs O(n), not O(n^2). The bitmap is only
// written (and so only paid for) in that case.
class ExtensionSet {
 public:
  // Returns false if `type` was already present.
  bool insert(uint16_t type) {
    if (!use_bitmap_) {
      for (size_t i = 0; i < count_; ++i) {
        if (small_[i] == type) return false;
      }
      if (count_ < kSmall) {
        small_[count_++] = type;
        return true;
      }
      bitmap_.fill(0);
      for (size_t i = 0; i < count_; ++i) set(small_[i]);
      use_bitmap_ = true;
    }
    const uint64_t bit = uint64_t{1} << (type % 64);
    if (bitmap_[type / 64] & bit) return false;
    bitmap_[type / 64] |= bit;
    return true;
  }

 private:
  static constexpr size_t kSmall = 32;
  void set(uint16_t type) { bitmap_[type / 64] |= uint64_t{1} << (type % 64); }

  std::array<uint16_t, kSmall> small_{};
  size_t count_ = 0;
  bool use_bitmap_ = false;
  std::array<uint64_t, 65536 / 64> bitmap_;  // indeterminate until use_bitmap_
};

ParseStatus fail(ClientHelloInfo& info, ParseError error) {
  info = ClientHelloInfo{};
  info.error = error;
  return ParseStatus::Invalid;
}

// Where the hello's records are, found from record headers (and the 4-byte handshake header)
// alone, without touching the rest of the hello.
struct RecordWalk {
  size_t records = 0;      // records carrying hello bytes
  size_t end = 0;          // input offset just past the last of them
  size_t hello_bytes = 0;  // 4 + ClientHello body length; 0 until known
};

// Hello bytes still missing once `hs_seen` bytes in complete records plus `in_record` in the
// current one are in; 0 while the hello's length is unknown.
size_t remainingAfter(const RecordWalk& walk, size_t hs_seen, size_t in_record) {
  return walk.hello_bytes == 0 ? 0 : walk.hello_bytes - hs_seen - in_record;
}

// bytes_needed is the least input size at which the hello could be complete: the rest of the
// current record and, if the hello needs more, one more header plus every missing hello byte.
// (Until the handshake length is known, just the current record or the next header.) Re-parsing
// earlier could only find more NeedMore, or an Invalid that a later parse still finds, since
// every parse walks from the start. A tighter "next record" answer would let a client that
// splits its hello into 1-byte records make a well-behaved caller walk O(records^2) headers;
// with this bound each re-parse covers a constant fraction of what is missing.
ParseStatus walkRecords(std::span<const uint8_t> input, const ParseLimits& limits,
                        RecordWalk& walk, ClientHelloInfo& info) {
  std::array<uint8_t, kHandshakeHeaderBytes> hs_header{};
  size_t hs_header_have = 0;
  size_t hs_seen = 0;  // handshake bytes in complete records
  size_t pos = 0;
  for (;;) {
    const size_t avail = input.size() - pos;
    if (avail < kRecordHeaderBytes) {
      // Judge what we have of the header now so "not TLS" is known from the first byte.
      if (avail >= 1 && input[pos] != kContentHandshake) {
        return fail(info, pos == 0 ? ParseError::NotTls : ParseError::RecordTypeChanged);
      }
      if (avail >= 2 && input[pos + 1] != 3) return fail(info, ParseError::BadRecordVersion);
      info.bytes_needed =
          input.empty() ? 1 : pos + kRecordHeaderBytes + remainingAfter(walk, hs_seen, 0);
      return ParseStatus::NeedMore;
    }
    if (input[pos] != kContentHandshake) {
      return fail(info, pos == 0 ? ParseError::NotTls : ParseError::RecordTypeChanged);
    }
    if (input[pos + 1] != 3) return fail(info, ParseError::BadRecordVersion);
    const size_t length = load16(input.data() + pos + 3);
    if (length == 0 || length > kMaxPlaintextRecord) {
      return fail(info, ParseError::BadRecordLength);
    }
    const size_t fragment = pos + kRecordHeaderBytes;
    const size_t fragment_avail = std::min(length, input.size() - fragment);

    // The handshake header itself may be split over records (down to 1-byte records).
    const bool knew_length = walk.hello_bytes != 0;
    for (size_t i = 0; i < fragment_avail && hs_header_have < kHandshakeHeaderBytes; ++i) {
      hs_header[hs_header_have++] = input[fragment + i];
    }
    if (hs_header_have >= 1 && hs_header[0] != kHandshakeClientHello) {
      return fail(info, ParseError::NotClientHello);
    }
    if (!knew_length && hs_header_have == kHandshakeHeaderBytes) {
      const size_t body = (size_t{hs_header[1]} << 16) | (size_t{hs_header[2]} << 8) | hs_header[3];
      walk.hello_bytes = kHandshakeHeaderBytes + body;
      if (walk.hello_bytes > limits.max_hello_bytes) return fail(info, ParseError::HelloTooLarge);
    }
    // A record reaching past the hello carries trailing handshake data: known from the header.
    if (walk.hello_bytes != 0 && length > walk.hello_bytes - hs_seen) {
      return fail(info, ParseError::TrailingHandshakeData);
    }
    if (fragment_avail < length) {
      const size_t rest = remainingAfter(walk, hs_seen, length);
      info.bytes_needed = fragment + length + (rest == 0 ? 0 : kRecordHeaderBytes + rest);
      return ParseStatus::NeedMore;
    }
    hs_seen += length;
    pos = fragment + length;
    ++walk.records;
    if (walk.hello_bytes != 0 && hs_seen == walk.hello_bytes) {
      walk.end = pos;
      return ParseStatus::Complete;
    }
  }
}

// Copies the fragments of a multi-record hello into scratch (already checked to fit).
std::span<const uint8_t> reassemble(std::span<const uint8_t> input, std::span<uint8_t> scratch,
                                    const RecordWalk& walk) {
  size_t out = 0;
  size_t pos = 0;
  for (size_t r = 0; r < walk.records; ++r) {
    const size_t length = load16(input.data() + pos + 3);
    std::memcpy(scratch.data() + out, input.data() + pos + kRecordHeaderBytes, length);
    out += length;
    pos += kRecordHeaderBytes + length;
  }
  return scratch.first(out);
}

bool validHostName(std::span<const uint8_t> name) {
  if (name.empty() || name.size() > kMaxHostNameBytes) return false;
  // Printable ASCII only: rejects NUL (a classic truncation trick), controls, space, DEL and
  // anything non-ASCII (IDNs travel as A-labels, RFC 6066 s3).
  return std::all_of(name.begin(), name.end(), [](uint8_t c) { return c >= 0x21 && c < 0x7f; });
}

ParseError parseServerName(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader ext(data);
  std::span<const uint8_t> list;
  if (!ext.vec16(list) || !ext.empty() || list.empty()) return ParseError::BadServerName;
  Reader entries(list);
  uint8_t name_type = 0;
  std::span<const uint8_t> name;
  if (!entries.u8(name_type) || !entries.vec16(name)) return ParseError::BadServerName;
  size_t count = 1;
  while (!entries.empty()) {
    uint8_t other_type = 0;
    std::span<const uint8_t> other;
    if (!entries.u8(other_type) || !entries.vec16(other)) return ParseError::BadServerName;
    ++count;
  }
  if (count > 1) return ParseError::MultipleServerNames;
  if (name_type != kNameTypeHostName) return ParseError::BadServerName;
  if (!validHostName(name)) return ParseError::BadHostName;
  info.has_sni = true;
  info.sni = std::string_view(reinterpret_cast<const char*>(name.data()), name.size());
  return ParseError::None;
}

ParseError parseAlpn(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader ext(data);
  std::span<const uint8_t> list;
  if (!ext.vec16(list) || !ext.empty() || list.size() < 2) return ParseError::BadAlpn;
  Reader names(list);
  while (!names.empty()) {
    std::span<const uint8_t> name;
    if (!names.vec8(name) || name.empty()) return ParseError::BadAlpn;
  }
  info.has_alpn = true;
  info.alpn = ListView(list, 1);
  return ParseError::None;
}

ParseError parseSupportedVersions(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader ext(data);
  std::span<const uint8_t> versions;
  if (!ext.vec8(versions) || !ext.empty() || versions.size() < 2 || versions.size() % 2 != 0) {
    return ParseError::BadSupportedVersions;
  }
  info.has_supported_versions = true;
  info.supported_versions = versions;
  return ParseError::None;
}

ParseError parsePreSharedKey(std::span<const uint8_t> data, ClientHelloInfo& info) {
  Reader ext(data);
  std::span<const uint8_t> identities;
  std::span<const uint8_t> binders;
  if (!ext.vec16(identities) || !ext.vec16(binders) || !ext.empty() ||
      identities.size() < kMinPskIdentitiesBytes || binders.size() < kMinPskBindersBytes) {
    return ParseError::BadPreSharedKey;
  }
  size_t identity_count = 0;
  for (Reader r(identities); !r.empty(); ++identity_count) {
    std::span<const uint8_t> identity;
    std::span<const uint8_t> age;
    if (!r.vec16(identity) || identity.empty() || !r.bytes(4, age)) {
      return ParseError::BadPreSharedKey;
    }
  }
  size_t binder_count = 0;
  for (Reader r(binders); !r.empty(); ++binder_count) {
    std::span<const uint8_t> binder;
    if (!r.vec8(binder) || binder.size() < kMinPskBinderBytes) return ParseError::BadPreSharedKey;
  }
  if (identity_count != binder_count) return ParseError::BadPreSharedKey;
  info.has_psk = true;
  info.psk_identities = ListView(identities, 2, 4);
  return ParseError::None;
}

ParseError parseExtensions(std::span<const uint8_t> block, ClientHelloInfo& info) {
  ExtensionSet seen;
  Reader r(block);
  while (!r.empty()) {
    uint16_t type = 0;
    std::span<const uint8_t> data;
    if (!r.u16(type) || !r.vec16(data)) return ParseError::BadLength;
    if (!seen.insert(type)) return ParseError::DuplicateExtension;
    // RFC 8446 s4.2.11: pre_shared_key MUST be the last extension in the ClientHello.
    if (info.has_psk) return ParseError::BadPreSharedKey;
    ++info.extension_count;
    ParseError error = ParseError::None;
    switch (type) {
      case kExtServerName: error = parseServerName(data, info); break;
      case kExtAlpn: error = parseAlpn(data, info); break;
      case kExtSupportedVersions: error = parseSupportedVersions(data, info); break;
      case kExtPreSharedKey: error = parsePreSharedKey(data, info); break;
      case kExtSessionTicket:
        info.has_session_ticket = true;
        info.session_ticket = data;
        break;
      default: break;
    }
    if (error != ParseError::None) return error;
  }
  return ParseError::None;
}

ParseError parseBody(std::span<const uint8_t> body, ClientHelloInfo& info) {
  Reader r(body);
  uint8_t session_id_len = 0;
  if (!r.u16(info.legacy_version) || !r.bytes(kRandomBytes, info.random) ||
      !r.u8(session_id_len)) {
    return ParseError::BadLength;
  }
  if (session_id_len > kMaxSessionIdBytes) return ParseError::BadSessionId;
  if (!r.bytes(session_id_len, info.session_id) || !r.vec16(info.cipher_suites)) {
    return ParseError::BadLength;
  }
  if (info.cipher_suites.empty() || info.cipher_suites.size() % 2 != 0) {
    return ParseError::BadCipherSuites;
  }
  std::span<const uint8_t> compression;
  if (!r.vec8(compression)) return ParseError::BadLength;
  if (compression.empty()) return ParseError::BadCompression;
  if (r.empty()) return ParseError::None;  // no extensions block at all (RFC 5246 s7.4.1.2)
  std::span<const uint8_t> extensions;
  if (!r.vec16(extensions) || !r.empty()) return ParseError::BadLength;
  return parseExtensions(extensions, info);
}

}  // namespace

ParseStatus parseClientHello(std::span<const uint8_t> input, std::span<uint8_t> scratch,
                             const ParseLimits& limits, ClientHelloInfo& info) {
  info = ClientHelloInfo{};
  RecordWalk walk;
  const ParseStatus status = walkRecords(input, limits, walk, info);
  if (status != ParseStatus::Complete) return status;

  std::span<const uint8_t> hello;
  if (walk.records == 1) {
    hello = input.subspan(kRecordHeaderBytes, walk.hello_bytes);  // zero-copy common case
  } else {
    // The contract asks for scratch >= max_hello_bytes; a smaller one must still never be
    // overrun, so a hello that does not fit it is treated as too large.
    if (walk.hello_bytes > scratch.size()) return fail(info, ParseError::HelloTooLarge);
    hello = reassemble(input, scratch, walk);
  }
  const ParseError error = parseBody(hello.subspan(kHandshakeHeaderBytes), info);
  if (error != ParseError::None) return fail(info, error);
  info.hello_record_bytes = walk.end;
  return ParseStatus::Complete;
}

uint16_t ClientHelloInfo::maxOfferedVersion() const {
  if (!has_supported_versions) return legacy_version;
  uint16_t best = 0;
  for (size_t i = 0; i + 1 < supported_versions.size(); i += 2) {
    const uint16_t version = load16(supported_versions.data() + i);
    if ((version & 0x0f0f) == 0x0a0a) continue;  // GREASE, RFC 8701 s2
    best = std::max(best, version);
  }
  return best != 0 ? best : legacy_version;
}

std::string_view parseErrorName(ParseError error) {
  switch (error) {
    case ParseError::None: return "none";
    case ParseError::NotTls: return "not_tls";
    case ParseError::BadRecordVersion: return "bad_record_version";
    case ParseError::BadRecordLength: return "bad_record_length";
    case ParseError::RecordTypeChanged: return "record_type_changed";
    case ParseError::NotClientHello: return "not_client_hello";
    case ParseError::HelloTooLarge: return "hello_too_large";
    case ParseError::TrailingHandshakeData: return "trailing_handshake_data";
    case ParseError::BadLength: return "bad_length";
    case ParseError::BadSessionId: return "bad_session_id";
    case ParseError::BadCipherSuites: return "bad_cipher_suites";
    case ParseError::BadCompression: return "bad_compression";
    case ParseError::DuplicateExtension: return "duplicate_extension";
    case ParseError::BadServerName: return "bad_server_name";
    case ParseError::MultipleServerNames: return "multiple_server_names";
    case ParseError::BadHostName: return "bad_host_name";
    case ParseError::BadAlpn: return "bad_alpn";
    case ParseError::BadSupportedVersions: return "bad_supported_versions";
    case ParseError::BadPreSharedKey: return "bad_pre_shared_key";
  }
  return "unknown";
}

}  // namespace ringlb::tls
