#include "tls/server_flight.h"

#include <algorithm>
#include <cstring>

namespace ringlb::tls {

// What the observer walks, byte by byte, with no buffering beyond the fields it keeps.
//
// TLSPlaintext record (RFC 5246 s6.2.1, RFC 8446 s5.1):
//   type [1]  20 change_cipher_spec -> done; 21 alert -> skipped; 22 handshake -> parsed;
//             anything else before ChangeCipherSpec is malformed (application data cannot
//             precede the server's Finished in TLS 1.2, and TLS 1.3 ends inspection first)
//   legacy_record_version [2]  major byte 3
//   length [2]  1..2^14 (plaintext; zero-length handshake/alert fragments are forbidden)
//
// Handshake (RFC 5246 s7.4), messages may be split across records at any byte, and a record
// of another type may not interleave with a partial message (RFC 8446 s5.1):
//   msg_type [1], length [3], body [length]. The first message must be server_hello (2).
//
// ServerHello body (RFC 5246 s7.4.1.3, RFC 8446 s4.1.3):
//   ProtocolVersion server_version [2]
//   Random random [32]
//   SessionID session_id <0..32>          u8 length
//   CipherSuite cipher_suite [2]
//   CompressionMethod compression_method [1]
//   Extension extensions <0..2^16-1>      u16 length, ends exactly with the message; the
//                                         field may be absent in TLS 1.2
//     type [2], extension_data <0..2^16-1> (u16); supported_versions (43) in a ServerHello
//     is a single ProtocolVersion selected_version [2] (RFC 8446 s4.2.1).
//
// NewSessionTicket body (RFC 5077 s3.3):
//   uint32 ticket_lifetime_hint [4]
//   opaque ticket <0..2^16-1>             u16 length, ends exactly with the message; an empty
//                                         ticket means "no ticket after all"

namespace {

constexpr uint8_t kContentChangeCipherSpec = 20;
constexpr uint8_t kContentAlert = 21;
constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kHandshakeServerHello = 2;
constexpr uint8_t kHandshakeNewSessionTicket = 4;
constexpr size_t kRecordHeaderBytes = 5;
constexpr size_t kHandshakeHeaderBytes = 4;
constexpr size_t kMaxPlaintextRecord = size_t{1} << 14;
constexpr size_t kRandomBytes = 32;
constexpr size_t kMaxSessionIdBytes = 32;
constexpr size_t kTicketHeaderBytes = 6;  // lifetime_hint + ticket length
constexpr uint16_t kExtSupportedVersions = 43;
constexpr uint16_t kTls13 = 0x0304;

uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

ServerFlightObserver::ServerFlightObserver(size_t max_observed_bytes)
    : max_observed_(max_observed_bytes) {
  XXH3_64bits_reset(&ticket_hash_);
  if (max_observed_ == 0) done_ = true;
}

void ServerFlightObserver::feed(std::span<const uint8_t> bytes) {
  while (!done_ && !bytes.empty()) {
    const auto budget = bytes.first(std::min(bytes.size(), max_observed_ - observed_));
    const size_t used = record_remaining_ == 0 ? consumeRecordHeader(budget)
                                               : consumeHandshake(budget);
    observed_ += used;
    bytes = bytes.subspan(used);
    if (observed_ >= max_observed_) done_ = true;  // not malformed: just no longer looking
  }
}

void ServerFlightObserver::fail() {
  malformed_ = true;
  done_ = true;
}

size_t ServerFlightObserver::consumeRecordHeader(std::span<const uint8_t> bytes) {
  const size_t n = std::min(bytes.size(), kRecordHeaderBytes - record_header_have_);
  std::memcpy(record_header_ + record_header_have_, bytes.data(), n);
  record_header_have_ = static_cast<uint8_t>(record_header_have_ + n);
  if (record_header_have_ < kRecordHeaderBytes) return n;
  record_header_have_ = 0;

  const uint8_t type = record_header_[0];
  const size_t length = load16(record_header_ + 3);
  const bool mid_message = hs_header_have_ != 0;
  if (record_header_[1] != 3) {
    fail();
  } else if (type == kContentChangeCipherSpec) {
    // Everything after the server's ChangeCipherSpec is encrypted (RFC 5246 s7.1).
    if (!saw_server_hello_ || mid_message) fail();
    done_ = true;
  } else if ((type != kContentHandshake && type != kContentAlert) ||
             (type == kContentAlert && mid_message)) {
    fail();
  } else if (length == 0 || length > kMaxPlaintextRecord) {
    fail();
  } else {
    record_type_ = type;
    record_remaining_ = length;
  }
  return n;
}

// Consumes record payload bytes (never more than the current record holds).
size_t ServerFlightObserver::consumeHandshake(std::span<const uint8_t> bytes) {
  bytes = bytes.first(std::min(bytes.size(), record_remaining_));
  size_t used = 0;
  if (record_type_ == kContentAlert) {
    used = bytes.size();  // alerts are passed through unexamined
  }
  while (used < bytes.size() && !done_) {
    if (hs_header_have_ < kHandshakeHeaderBytes) {
      const size_t n = std::min(bytes.size() - used, kHandshakeHeaderBytes - hs_header_have_);
      std::memcpy(hs_header_ + hs_header_have_, bytes.data() + used, n);
      hs_header_have_ = static_cast<uint8_t>(hs_header_have_ + n);
      used += n;
      if (hs_header_have_ == kHandshakeHeaderBytes) beginMessage();
      continue;
    }
    used += consumeBody(bytes.subspan(used));
  }
  record_remaining_ -= used;
  return used;
}

void ServerFlightObserver::beginMessage() {
  hs_type_ = hs_header_[0];
  hs_length_ = (size_t{hs_header_[1]} << 16) | (size_t{hs_header_[2]} << 8) | hs_header_[3];
  hs_offset_ = 0;
  // ServerHello is the server's first message and comes once (RFC 5246 s7.3).
  if ((hs_type_ == kHandshakeServerHello) == saw_server_hello_) {
    fail();
    return;
  }
  if (hs_type_ == kHandshakeServerHello) {
    selected_version_ = 0;
    expect(Step::HelloVersion, 2);
  } else if (hs_type_ == kHandshakeNewSessionTicket) {
    expect(Step::TicketHeader, kTicketHeaderBytes);
  } else {
    expect(hs_length_ == 0 ? Step::End : Step::Skip, hs_length_);
  }
  if (hs_length_ == 0) endMessage();
}

void ServerFlightObserver::expect(Step step, size_t bytes) {
  step_ = step;
  field_need_ = bytes;
  field_have_ = 0;
}

// Consumes bytes of the current message body (never past its end), field by field.
size_t ServerFlightObserver::consumeBody(std::span<const uint8_t> bytes) {
  bytes = bytes.first(std::min(bytes.size(), hs_length_ - hs_offset_));
  size_t used = 0;
  while (used < bytes.size() && !done_) {
    if (step_ == Step::End) {  // the structure ended before the message did
      fail();
      break;
    }
    const size_t n = std::min(bytes.size() - used, field_need_ - field_have_);
    const uint8_t* src = bytes.data() + used;
    switch (step_) {
      case Step::HelloSessionId: std::memcpy(session_id_ + field_have_, src, n); break;
      case Step::TicketBody: XXH3_64bits_update(&ticket_hash_, src, n); break;
      case Step::Skip:
      case Step::HelloRandom:
      case Step::HelloCipherSuite:
      case Step::HelloCompression:
        break;
      case Step::HelloExtensionBody:
        if (extension_type_ == kExtSupportedVersions) std::memcpy(field_ + field_have_, src, n);
        break;
      default: std::memcpy(field_ + field_have_, src, n); break;  // fixed fields <= 6 bytes
    }
    field_have_ += n;
    hs_offset_ += n;
    used += n;
    if (field_have_ == field_need_) fieldDone();
  }
  if (!done_ && hs_offset_ == hs_length_) endMessage();
  return used;
}

void ServerFlightObserver::fieldDone() {
  switch (step_) {
    case Step::HelloVersion:
      legacy_version_ = load16(field_);
      expect(Step::HelloRandom, kRandomBytes);
      break;
    case Step::HelloRandom: expect(Step::HelloSessionIdLen, 1); break;
    case Step::HelloSessionIdLen:
      if (field_[0] > kMaxSessionIdBytes) return fail();
      pending_session_id_len_ = field_[0];
      if (field_[0] == 0) {
        expect(Step::HelloCipherSuite, 2);
      } else {
        expect(Step::HelloSessionId, field_[0]);
      }
      break;
    case Step::HelloSessionId: expect(Step::HelloCipherSuite, 2); break;
    case Step::HelloCipherSuite: expect(Step::HelloCompression, 1); break;
    case Step::HelloCompression:
      // RFC 5246 s7.4.1.3: the extensions field may be absent altogether.
      if (hs_offset_ == hs_length_) {
        expect(Step::End, 0);
      } else {
        expect(Step::HelloExtensionsLen, 2);
      }
      break;
    case Step::HelloExtensionsLen:
      extensions_remaining_ = load16(field_);
      if (extensions_remaining_ != hs_length_ - hs_offset_) return fail();
      extensionDone();
      break;
    case Step::HelloExtensionHeader: {
      extension_type_ = load16(field_);
      const size_t length = load16(field_ + 2);
      if (length > extensions_remaining_ - 4) return fail();
      extensions_remaining_ -= 4 + length;
      if (extension_type_ == kExtSupportedVersions && length != 2) return fail();
      expect(Step::HelloExtensionBody, length);
      if (length == 0) extensionDone();
      break;
    }
    case Step::HelloExtensionBody:
      if (extension_type_ == kExtSupportedVersions) selected_version_ = load16(field_);
      extensionDone();
      break;
    case Step::TicketHeader:
      ticket_len_ = load16(field_ + 4);
      if (kTicketHeaderBytes + ticket_len_ != hs_length_) return fail();
      XXH3_64bits_reset(&ticket_hash_);
      expect(ticket_len_ == 0 ? Step::End : Step::TicketBody, ticket_len_);
      break;
    case Step::TicketBody:
    case Step::Skip: expect(Step::End, 0); break;
    case Step::End: break;
  }
}

void ServerFlightObserver::extensionDone() {
  if (extensions_remaining_ == 0) {
    expect(Step::End, 0);
  } else if (extensions_remaining_ < 4) {
    fail();  // not even room for an extension header
  } else {
    expect(Step::HelloExtensionHeader, 4);
  }
}

void ServerFlightObserver::endMessage() {
  hs_header_have_ = 0;
  if (step_ != Step::End) return fail();  // message ended inside a field
  if (hs_type_ == kHandshakeServerHello) {
    // RFC 8446 s4.2.1: a server negotiating TLS 1.2 or below MUST NOT send supported_versions.
    if (selected_version_ != 0 && selected_version_ < kTls13) return fail();
    saw_server_hello_ = true;
    version_ = selected_version_ != 0 ? selected_version_ : legacy_version_;
    if (version_ >= kTls13) {
      // The TLS 1.3 session ID is only the client's echo (RFC 8446 s4.1.3), not a session to
      // stick to, and every later record is encrypted: inspection is over.
      session_id_len_ = 0;
      done_ = true;
    } else {
      session_id_len_ = pending_session_id_len_;
    }
  } else if (hs_type_ == kHandshakeNewSessionTicket && ticket_len_ != 0) {
    has_ticket_ = true;
    ticket_digest_ = XXH3_64bits_digest(&ticket_hash_);
  }
}

uint64_t ticketDigest(std::span<const uint8_t> ticket) {
  return XXH3_64bits(ticket.data(), ticket.size());
}

}  // namespace ringlb::tls
