// Observes the server->client byte stream of a passthrough connection, without buffering it
// and without changing it, to learn what session affinity needs (RFC 5246 s7.4.1.3, RFC 5077
// s3.3):
//   - the negotiated version (TLS 1.3 servers say so in supported_versions, RFC 8446 s4.2.1),
//   - the session ID a TLS 1.2 server chose in ServerHello,
//   - a TLS 1.2 NewSessionTicket's ticket, as an xxh3-64 digest (the ticket itself can be
//     large; it is hashed while streaming, never copied).
// Inspection ends (done() == true) at the server's ChangeCipherSpec, when TLS 1.3 is
// negotiated, on anything malformed, or after `max_observed_bytes`: after that every byte is
// encrypted or uninteresting and the caller may switch to a zero-copy relay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t by value: hash the ticket without allocating
#include <xxhash.h>

namespace ringlb::tls {

class ServerFlightObserver {
 public:
  explicit ServerFlightObserver(size_t max_observed_bytes = 64 * 1024);

  // Feeds the next chunk of server->client bytes (any split is allowed).
  void feed(std::span<const uint8_t> bytes);

  bool done() const { return done_; }
  bool malformed() const { return malformed_; }
  bool sawServerHello() const { return saw_server_hello_; }
  uint16_t version() const { return version_; }  // 0 until ServerHello was parsed
  // TLS 1.2 only: empty under TLS 1.3, whose legacy_session_id_echo is the client's value.
  std::span<const uint8_t> sessionId() const { return {session_id_, session_id_len_}; }
  // A non-empty NewSessionTicket was seen (an empty one means "no ticket", RFC 5077 s3.3).
  bool hasTicket() const { return has_ticket_; }
  uint64_t ticketDigest() const { return ticket_digest_; }
  size_t observedBytes() const { return observed_; }

 private:
  // The helper implementing this owns the private state; it may add members freely.
  friend struct ServerFlightObserverState;

  // Where the current handshake message's parser is (see server_flight.cc for the layouts).
  enum class Step : uint8_t {
    Skip,  // body of a message we do not inspect
    End,   // structure complete: any further byte of the message is malformed
    HelloVersion, HelloRandom, HelloSessionIdLen, HelloSessionId, HelloCipherSuite,
    HelloCompression, HelloExtensionsLen, HelloExtensionHeader, HelloExtensionBody,
    TicketHeader, TicketBody,
  };

  size_t consumeRecordHeader(std::span<const uint8_t> bytes);
  size_t consumeHandshake(std::span<const uint8_t> bytes);
  size_t consumeBody(std::span<const uint8_t> bytes);
  void beginMessage();
  void endMessage();
  void fieldDone();
  void expect(Step step, size_t bytes);
  void extensionDone();
  void fail();

  bool done_ = false;
  bool malformed_ = false;
  bool saw_server_hello_ = false;
  bool has_ticket_ = false;
  uint16_t version_ = 0;
  uint8_t session_id_len_ = 0;
  uint8_t session_id_[32] = {};
  uint64_t ticket_digest_ = 0;
  size_t observed_ = 0;
  size_t max_observed_;

  // Record layer (RFC 5246 s6.2.1): header bytes so far, then the fragment still to come.
  uint8_t record_header_[5] = {};
  uint8_t record_header_have_ = 0;
  uint8_t record_type_ = 0;
  size_t record_remaining_ = 0;  // 0 = reading a record header

  // Handshake layer (RFC 5246 s7.4): message header so far, then body progress.
  uint8_t hs_header_[4] = {};
  uint8_t hs_header_have_ = 0;  // 4 = inside a body
  uint8_t hs_type_ = 0;
  size_t hs_length_ = 0;
  size_t hs_offset_ = 0;

  // Field-level parser for ServerHello / NewSessionTicket: the current field is collected
  // (into field_ or session_id_), hashed (the ticket) or skipped.
  Step step_ = Step::Skip;
  uint8_t field_[6] = {};
  size_t field_need_ = 0;
  size_t field_have_ = 0;
  uint16_t legacy_version_ = 0;
  uint16_t selected_version_ = 0;  // from supported_versions, 0 if absent
  uint8_t pending_session_id_len_ = 0;
  uint16_t extension_type_ = 0;
  size_t extensions_remaining_ = 0;
  size_t ticket_len_ = 0;
  XXH3_state_t ticket_hash_;
};

// Digest used as the affinity key for a TLS 1.2 session ticket: the same function must be
// applied to a ClientHello's session_ticket extension body and to a NewSessionTicket's ticket.
uint64_t ticketDigest(std::span<const uint8_t> ticket);

}  // namespace ringlb::tls
