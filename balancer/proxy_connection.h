// One client connection: an explicit state machine
//
//   passthrough: Hello -> (route) -> Connecting -> Preamble -> Relay -> Closing -> (free)
//   terminate:   Hello -> (route) -> Handshake -> Connecting -> Preamble [-> BackendHandshake]
//                -> Relay -> Closing
//   refused:     Hello -> Refusing (alert) -> Closing
//
// Hello: read the ClientHello under a deadline that runs from accept. Connecting: connect a
// backend under a kernel link-timeout, trying the next candidate on refusal/timeout.
// Preamble: send the optional PROXY v2 header and replay the bytes already read. Relay:
// copy both ways (provided-buffer recv/send, or splice through pipes) with bounded queues,
// propagating half-close. Closing: every operation in flight is cancelled and its
// completion seen before the fds are closed and the object is recycled.
//
// Terminate (tls_relay.cc): the bytes of the hello go into a server-mode TLS stream instead
// of to a backend; the backend is chosen and connected once the client's handshake is done,
// and, when its pool re-encrypts, a client-mode TLS stream runs its own handshake (and
// certificate verification) before any application byte is passed on. Relay then moves
// plaintext between the two streams through provided buffers: ciphertext in -> SSL_read into
// a buffer -> that buffer sent as is, or SSL_write into the other stream whose records are
// packed into the buffers queued for sending.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "balancer/config.h"
#include "core/event_loop.h"
#include "core/socket.h"
#include "tls/client_hello.h"
#include "tls/ktls_plan.h"
#include "tls/server_flight.h"
#include "tls/tls_stream.h"

namespace ringlb::balancer {

class Worker;
class Generation;
class AccessRecord;
struct ListenerRuntime;
struct Pool;
struct Backend;
struct HelloBuffer;

// Why a connection ended, for the access log and counters.
enum class EndReason : uint8_t {
  Done, ClientClosed, ClientReset, BackendReset, IdleTimeout, HelloTimeout, HelloInvalid, NotTls,
  NoRoute, NoBackend, ConnectFailed, Draining, InternalError, HandshakeFailed, BackendTlsFailed,
  ProxyHeaderInvalid, ProxyUntrusted,
};
const char* endReasonName(EndReason reason);

class ProxyConnection final : public core::CompletionHandler, public core::TimerHandler {
 public:
  explicit ProxyConnection(Worker& worker) : worker_(worker) {
    for (int side = 0; side < 2; ++side) {
      tls_[side].sink.conn = this;
      tls_[side].sink.side = side;
    }
  }

  // Takes ownership of `client_fd` (accepted on `listener` of `generation`, which the worker
  // counted a reference to) and starts reading the hello.
  void start(int client_fd, ListenerRuntime& listener, Generation& generation);
  // Ends the connection now (drain deadline, shutdown).
  void abort(EndReason reason);

  void onCompletion(uint8_t op, const core::Completion& completion) override;
  void onTimer(uint8_t kind) override;

  // Intrusive links for the worker's live list / free list.
  ProxyConnection* next = nullptr;
  ProxyConnection* prev = nullptr;

 private:
  enum class State : uint8_t {
    Idle, Hello, Handshake, Connecting, Preamble, BackendHandshake, Relay, Refusing, Closing
  };
  enum Op : uint8_t {
    kHelloRecv = 1, kConnect, kConnectTimeout, kPreamble, kAlert, kCancel, kCancelRecv0, kCancelRecv1,
    kRecv0 = 16, kRecv1, kSend0, kSend1, kPollIn0, kPollIn1, kPollOut0, kPollOut1,
    kAsync0, kAsync1,  // a TLS side's paused async job: its wait fd became readable
  };
  enum TimerKind : uint8_t { kHelloTimer = 1, kIdleTimer, kRetryRecv0, kRetryRecv1 };

  // Buffers received on one side and not yet sent on: a FIFO of (buffer id, length).
  // Backpressure cancels the multishot recv at max_queued_per_direction, but completions the
  // kernel posted before the cancel still arrive (a multishot recv may post up to 32 in one
  // batch), and a filled buffer must never be dropped: the ring grows in that case. Its
  // storage belongs to the pooled connection object, so growth is rare and not per operation.
  class BufferQueue {
   public:
    bool empty() const { return count_ == 0; }
    uint32_t size() const { return count_; }
    void push(uint16_t id, uint32_t len);
    uint16_t frontId() const { return entries_[head_].id; }
    uint32_t frontLen() const { return entries_[head_].len; }
    // The newest entry, which a TLS record sink may still fill (sends only ever cover the
    // bytes present when they were issued, so appending behind one in flight is safe).
    uint16_t backId() const { return back().id; }
    uint32_t backLen() const { return back().len; }
    void growBack(uint32_t n) { back().len += n; }
    void pop() {
      head_ = (head_ + 1) & (static_cast<uint32_t>(entries_.size()) - 1);
      --count_;
    }
    void clear() { head_ = count_ = 0; }

   private:
    struct Entry {
      uint16_t id;
      uint32_t len;
    };
    Entry& back() { return entries_[(head_ + count_ - 1) & (static_cast<uint32_t>(entries_.size()) - 1)]; }
    const Entry& back() const {
      return entries_[(head_ + count_ - 1) & (static_cast<uint32_t>(entries_.size()) - 1)];
    }
    std::vector<Entry> entries_;  // power-of-two size; allocated on first push
    uint32_t head_ = 0;
    uint32_t count_ = 0;
  };

  // Direction 0: client -> backend; direction 1: backend -> client.
  struct Direction {
    int from = -1;
    int to = -1;
    BufferQueue queue;
    uint32_t head_sent = 0;
    bool recv_armed = false;
    bool multishot = false;
    bool cancel_pending = false;
    bool send_inflight = false;
    bool eof = false;          // the reading side reached EOF
    bool finished = false;     // EOF propagated: shutdown(to, SHUT_WR) done
    bool observe = false;      // feed the server flight observer (direction 1 only)
    bool splice = false;
    bool plain_done = false;   // terminate: no more plaintext will come from `from`
    // terminate: plaintext read from `from`, waiting for the other stream to encrypt it
    int32_t plain_id = -1;
    uint32_t plain_off = 0;
    uint32_t plain_len = 0;
    bool want_splice = false;  // relay = auto: this direction carried enough to splice
    // splice relay: socket -> pipe -> socket with direct non-blocking splice(2)
    int pipe_r = -1;
    int pipe_w = -1;
    uint32_t in_pipe = 0;
    uint32_t pipe_capacity = 0;
    bool poll_in_armed = false;   // waiting for `from` to be readable
    bool poll_out_armed = false;  // waiting for `to` to be writable
    uint64_t bytes = 0;
  };

  // Where one TLS stream's records go: packed into the provided buffers queued on the
  // direction that sends to that stream's socket.
  class RecordSink final : public tls::CiphertextSink {
   public:
    bool writeCiphertext(const uint8_t* data, size_t len) override;
    ProxyConnection* conn = nullptr;
    int side = 0;
  };
  // Side 0: the client (server-mode stream); side 1: the backend (client-mode stream, when
  // the pool re-encrypts). Ciphertext read from side s waits in `in` until OpenSSL has
  // consumed it; on a plain backend side, `in` holds plaintext for the client's stream.
  struct TlsSide {
    tls::TlsStream stream;
    RecordSink sink;
    BufferQueue in;
    bool feeding_hello = false;  // the stream's input is the hello buffer, not `in`
    bool in_set = false;         // the stream's input is in.front() from in_off
    bool close_sent = false;
    bool blocked = false;        // stopped for buffers or backpressure, not for input
    bool eof_fed = false;        // the stream was told the transport reached EOF
    // [crypto] async: the stream's job is paused and a poll on its wait fd is armed; the
    // stream is not called again until the poll completes (drive() returns at once).
    bool async_wait = false;
    int32_t async_read_buffer = -1;  // a paused SSL_read writes into this buffer when resumed
  };
  enum class Step : uint8_t { Progress, NeedInput, Blocked, Async, Stop };

  // hello / routing (proxy_connection.cc)
  void armHelloRecv();
  bool consumeProxyHeader();
  // Where the client connected to: from its PROXY header if one was accepted, else our socket.
  core::SocketAddress destination();
  size_t encodeOurProxyHeader(std::span<uint8_t> out);
  void onHelloRecv(int32_t res);
  void onHelloComplete(const tls::ClientHelloInfo& hello);
  void refuse(EndReason reason, uint8_t alert);
  void enterPool(uint32_t pool);
  void chooseAndConnect();
  void startConnect();
  void onConnect(int32_t res);
  void connectFailed(int32_t res);
  void passiveFailure(std::string_view what);
  void noBackend();
  void finishWithoutBackend(EndReason reason);
  void sendPreamble();
  void onPreamble(int32_t res);
  void learnAffinity();

  // relay (relay.cc)
  void startRelay();
  void armRecv(int d);
  uint32_t queueLimit() const;
  void onRecv(int d, const core::Completion& c);
  void stopMultishotRecv(int d);
  void onRecvCancelled(int d);
  void trySend(int d);
  void onSend(int d, int32_t res);
  void propagateEof(int d);
  bool openPipe(Direction& dir);
  void pump(int d);
  void onPoll(int d, bool out, int32_t res);
  void releaseQueued(Direction& dir);
  void touch();

  // terminate (tls_relay.cc)
  bool startTermination();
  void drive(int side);
  Step driveHandshake(int side);
  Step drivePlaintext(int side);
  Step readPlain(int side);
  Step flushPlain(int d);
  bool nextInput(int side);
  void onTlsRecv(int d, const core::Completion& c);
  void afterTlsSend(int d);
  void onHandshakeDone(int side);
  bool startBackendTls();
  bool queueBytes(int d, const uint8_t* data, size_t len);
  void queueProxyHeader();
  void openGate();
  void endOfPlaintext(int d);
  void tlsFailed(int side, const char* what);
  Step waitForAsync(int side);
  void onAsyncReady(int side, int32_t res);
  void finishPausedJob(int side);
  // After a kTLS switch the streams stay attached (for the access log) but the sockets carry
  // plaintext: the relay is the passthrough one.
  bool tlsMode() const { return tls_[0].stream.active() && !ktls_active_; }
  bool sideIsTls(int side) const { return tls_[side].stream.active(); }
  void releaseTls();
  void addTlsLogFields(AccessRecord& record) const;

  // kTLS (ktls_switch.cc)
  bool ktlsWanted() const;
  void trackKtls(int side);
  bool planKtls();
  void tryFinishKtlsSwitch();
  enum class Drain : uint8_t { Done, NeedMore, Failed };
  Drain drainForKtls(int side);
  bool installKtls();
  void cancelRecvForKtls(int d);

  // teardown
  void finish(EndReason reason);
  void maybeFree();
  void logAccess();
  // The client's address, fetched once (getpeername fails after the peer has gone).
  const core::SocketAddress& peer();
  EndReason resetReason(int d) const { return d == 0 ? EndReason::ClientReset : EndReason::BackendReset; }

  RelayKind relayKind() const;

  Worker& worker_;
  Generation* gen_ = nullptr;   // the configuration generation this connection started in
  core::SlotRef slot_{};
  State state_ = State::Idle;
  EndReason end_ = EndReason::Done;
  int end_errno_ = 0;
  int client_fd_ = -1;
  int backend_fd_ = -1;
  ListenerRuntime* listener_ = nullptr;
  Pool* pool_ = nullptr;
  Backend* backend_ = nullptr;

  HelloBuffer* hello_ = nullptr;
  uint32_t hello_len_ = 0;       // bytes of client data read so far (after the headroom)
  uint32_t hello_needed_ = 0;    // the parser's bytes_needed: no re-parse below this
  uint32_t preamble_off_ = 0;    // where the preamble starts in the hello buffer
  uint32_t preamble_len_ = 0;
  uint32_t preamble_sent_ = 0;
  // From the hello, kept for logs and the PROXY header (lower-cased SNI, first ALPN).
  char sni_[256] = {};
  uint8_t sni_len_ = 0;
  char alpn_[64] = {};
  uint8_t alpn_len_ = 0;
  uint64_t hash_ = 0;
  core::SocketAddress peer_{};
  bool peer_known_ = false;
  bool backend_connected_ = false;  // the connect to backend_ succeeded (for passive health)
  bool proxy_pending_ = false;        // the listener expects a PROXY header first
  bool proxied_dst_known_ = false;
  core::SocketAddress proxied_dst_{};  // the destination the upstream's PROXY header named
  uint16_t hello_version_ = 0;        // highest version the client offered (passthrough TLV)

  static constexpr uint32_t kMaxTries = 8;
  uint32_t tried_[kMaxTries] = {};
  uint8_t tried_count_ = 0;
  uint8_t attempts_left_ = 0;

  Direction dirs_[2];
  TlsSide tls_[2];
  bool io_ = false;             // relay operations may run (Relay, or the TLS handshakes)
  bool flush_then_close_ = false;  // a failed handshake: send OpenSSL's alert, then close
  std::string tls_error_;       // why a handshake failed (for the access log)
  tls::KtlsPlan ktls_[2];       // per side, decided when the gate opens
  bool ktls_planned_ = false;   // ktls_ holds this connection's decision
  bool ktls_switching_ = false; // waiting for both sockets to go quiet before the switch
  bool ktls_draining_ = false;  // quiet: decrypting what OpenSSL still holds, sends held
  bool ktls_active_ = false;    // the sockets' records are the kernel's
  tls::ServerFlightObserver observer_{};

  core::Timer hello_timer_{};
  core::Timer idle_timer_{};
  core::Timer retry_timers_[2] = {};  // re-arm reading after ENOBUFS
  core::Clock::time_point started_{};
  core::Clock::time_point last_activity_{};
};

}  // namespace ringlb::balancer
