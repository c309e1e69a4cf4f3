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
  std::span<const uint8_t> sessionId() const { return {session_id_, session_id_len_}; }
  bool hasTicket() const { return has_ticket_; }
  uint64_t ticketDigest() const { return ticket_digest_; }
  size_t observedBytes() const { return observed_; }

 private:
  // The helper implementing this owns the private state; it may add members freely.
  friend struct ServerFlightObserverState;
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
};

// Digest used as the affinity key for a TLS 1.2 session ticket: the same function must be
// applied to a ClientHello's session_ticket extension body and to a NewSessionTicket's ticket.
uint64_t ticketDigest(std::span<const uint8_t> ticket);

}  // namespace ringlb::tls
