// e2e_tls_loadgen: single-threaded epoll TLS client for the end-to-end benchmark of TLS
// termination (the LB terminates the client's TLS and re-encrypts to a TLS e2e_sink).
//
//   e2e_tls_loadgen handshake|resume --target ADDR [--concurrency N] [--request B]
//                   [--response B] [--duration S] [--max-conns N] [--sni NAME] [--ca FILE]
//                   [--tls 1.2|1.3] [--cipher aes-128-gcm|aes-256-gcm|chacha20-poly1305]
//   e2e_tls_loadgen bulk --target ADDR [--concurrency N] --direction up|down
//                   [--bytes-per-conn B] [--duration S] [--max-bytes B] [--sni NAME] [--ca FILE]
//                   [--tls 1.2|1.3] [--cipher NAME]
//
// --tls pins the protocol version and --cipher offers only that AEAD (as the TLS 1.3 suite
// and as the TLS 1.2 ECDHE-ECDSA and ECDHE-RSA suites, so either certificate type works);
// without them OpenSSL's default client offers everything (TLS 1.3 with x25519 wins).
//
// handshake: N connections at a time; each does a full TLS handshake (OpenSSL's default
//   client: TLS 1.3, x25519), sends the wire.h command + B request bytes inside TLS, reads the
//   B-byte response until the peer closes, closes; then the slot opens the next connection.
// resume: the same, but every connection offers a session ticket the client got. Tickets are
//   used once where possible (RFC 8446 C.4; servers may refuse a reused one): a new connection
//   takes the newest unused ticket, and only when none is left reuses the newest one. One
//   priming connection does the first full handshake before the other slots start.
// bulk: each connection handshakes once, then streams B bytes up (or reads B bytes down).
//
// Inside TLS the plaintext is wire.h's protocol without the ClientHello record: command,
// `up` bytes; `down` bytes back, then close. With --ca the server chain and the name are
// verified (smoke tests); without it the client skips chain verification, which costs the
// LB nothing either way (the CertificateVerify signature is always checked).
//
// Every loop ends on its own, as in e2e_loadgen: no new connection after --duration or the
// count/byte budget, --grace more seconds for in-flight handshakes, bulk cut at --duration,
// --stall seconds without progress is an error. Prints one JSON object; exit 0 if no errors.
// Besides the connection latency it reports "handshake_us": percentiles of the time from
// connect() to the client's handshake completing (TCP connect included; measured on the
// client's event loop, so a busy client adds its own queueing).
#include <signal.h>
#include <sys/epoll.h>

#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "bench/e2e/loadgen_core.h"
#include "bench/e2e/tls_util.h"
#include "bench/e2e/util.h"
#include "bench/e2e/wire.h"

namespace {

using namespace ringlb::bench::e2e;

enum class Mode { Handshake, Resume, Bulk };

struct Options : LoadOptions {
  Mode mode = Mode::Handshake;
  std::string ca;
  int version = 0;  // TLS1_2_VERSION or TLS1_3_VERSION; 0 = both
  std::string cipher;
};

// The AEADs of the crypto benchmark as a TLS 1.3 suite and TLS 1.2 cipher list (ECDHE only).
struct CipherChoice {
  const char* name;
  const char* tls13;
  const char* tls12;
};
constexpr CipherChoice kCiphers[] = {
    {"aes-128-gcm", "TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"},
    {"aes-256-gcm", "TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"},
    {"chacha20-poly1305", "TLS_CHACHA20_POLY1305_SHA256",
     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"},
};

const CipherChoice* findCipher(const std::string& name) {
  for (const CipherChoice& c : kCiphers) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

struct Conn : ConnState {
  SslPtr ssl;
  bool handshaken = false;
};

// The TLS protocol over LoadLoop: OpenSSL reads and writes the socket; the wire.h command,
// request and payload go inside TLS after the handshake.
class TlsLoadGen : public LoadLoop<Conn, TlsLoadGen> {
 public:
  TlsLoadGen(const Options& opt, SslCtxPtr ctx)
      : LoadLoop(opt, {}), topt_(opt), ctx_(std::move(ctx)), priming_(opt.mode == Mode::Resume && opt.concurrency > 1) {
    SSL_CTX_set_app_data(ctx_.get(), this);
    SSL_CTX_sess_set_new_cb(ctx_.get(), &TlsLoadGen::onNewSession);
    handshake_us_.reserve(std::min<uint64_t>(opt.max_conns, 1u << 22));
  }

 private:
  friend class LoadLoop<Conn, TlsLoadGen>;

  // Keeps every session (ticket) the server sends, newest last, for resume mode.
  // Returning 1 takes ownership of `sess` (SSL_CTX_sess_set_new_cb(3)).
  static int onNewSession(SSL* ssl, SSL_SESSION* sess) {
    auto* self = static_cast<TlsLoadGen*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    SSL_SESSION_up_ref(sess);
    self->session_.reset(sess);
    self->unused_.emplace_back(sess);
    if (self->unused_.size() > 4 * self->conns_.size()) self->unused_.pop_front();
    ++self->tickets_;
    return 1;
  }

  bool setUp(uint32_t idx, int64_t now);
  void onEvent(uint32_t idx, uint32_t events, int64_t now);
  void beforeClose(Conn& c);
  // Resume mode: one priming connection gets the first ticket before the other slots start.
  uint32_t firstSlots() const { return priming_ ? 1u : static_cast<uint32_t>(conns_.size()); }
  void afterBatch() {
    if (priming_ && session_) {  // the first ticket is here: start the other slots
      priming_ = false;
      for (uint32_t i = 1; i < conns_.size(); ++i) relaunch_.push_back(i);
    }
  }
  const char* modeName() const {
    static const char* kModes[] = {"handshake", "resume", "bulk"};
    return kModes[static_cast<int>(topt_.mode)];
  }
  void printExtraFields() const;

  // Each returns false after it has failed the connection.
  bool handshake(uint32_t idx, int64_t now);
  bool sendMore(uint32_t idx, int64_t now);
  // 1 = the peer closed, 0 = would block, -1 = failed (connection already closed).
  int recvMore(uint32_t idx, int64_t now);

  const Options& topt_;
  SslCtxPtr ctx_;
  SslSessionPtr session_;               // the newest ticket
  std::deque<SslSessionPtr> unused_;     // tickets not offered yet, newest last
  bool priming_;  // resume mode: the other slots wait for the first ticket
  uint64_t handshakes_ = 0;
  uint64_t resumed_ = 0;
  uint64_t tickets_ = 0;
  uint64_t reused_tickets_ = 0;  // offered a ticket already offered before (none unused left)
  std::vector<uint32_t> handshake_us_;  // connect() to handshake done, per connection
  std::string version_, cipher_, group_;
};

bool TlsLoadGen::setUp(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  c.ssl.reset(SSL_new(ctx_.get()));
  if (!c.ssl || SSL_set_fd(c.ssl.get(), c.fd) != 1) {
    fail(idx, "ssl_new", now);
    return false;
  }
  SSL_set_tlsext_host_name(c.ssl.get(), topt_.sni.c_str());
  if (!topt_.ca.empty()) SSL_set1_host(c.ssl.get(), topt_.sni.c_str());
  if (topt_.mode == Mode::Resume && !unused_.empty()) {
    SSL_set_session(c.ssl.get(), unused_.back().get());  // takes its own reference
    unused_.pop_back();
  } else if (topt_.mode == Mode::Resume && session_) {
    SSL_set_session(c.ssl.get(), session_.get());
    ++reused_tickets_;
  }
  SSL_set_connect_state(c.ssl.get());
  return true;
}

bool TlsLoadGen::handshake(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl.get());
  if (r == 1) {
    c.handshaken = true;
    c.last_progress = now;
    ++handshakes_;
    if (handshake_us_.size() < handshake_us_.capacity())
      handshake_us_.push_back(static_cast<uint32_t>(std::min<int64_t>((now - c.started) / 1000, UINT32_MAX)));
    if (SSL_session_reused(c.ssl.get())) ++resumed_;
    if (version_.empty()) {
      version_ = SSL_get_version(c.ssl.get());
      cipher_ = SSL_get_cipher_name(c.ssl.get());
      const char* g = SSL_group_to_name(c.ssl.get(), static_cast<int>(SSL_get_negotiated_group(c.ssl.get())));
      group_ = g ? g : "?";
    }
    return true;
  }
  int err = SSL_get_error(c.ssl.get(), r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
  if (err == SSL_ERROR_SYSCALL && errno != 0) fail(idx, std::string("handshake:") + strerrorname_np(errno), now);
  else fail(idx, "handshake:" + sslErrorText("eof"), now);
  return false;
}

bool TlsLoadGen::sendMore(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  const uint8_t* p;
  size_t len;
  while (nextSend(c, p, len)) {
    ERR_clear_error();
    int n = SSL_write(c.ssl.get(), p, static_cast<int>(len));
    if (n <= 0) {
      int err = SSL_get_error(c.ssl.get(), n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return true;
      fail(idx, "write:" + sslErrorText("syscall"), now);
      return false;
    }
    sent(c, static_cast<uint64_t>(n), now);
  }
  return true;
}

int TlsLoadGen::recvMore(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c.ssl.get(), scratch_.data(), static_cast<int>(scratch_.size()));
    if (n > 0) {
      if (!received(c, static_cast<uint64_t>(n), now)) {
        fail(idx, "response_too_long", now);
        return -1;
      }
      continue;
    }
    int err = SSL_get_error(c.ssl.get(), n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
    // close_notify, or a bare TCP FIN (SSL_OP_IGNORE_UNEXPECTED_EOF turns that into this too).
    if (err == SSL_ERROR_ZERO_RETURN) return 1;
    fail(idx, "read:" + sslErrorText(err == SSL_ERROR_SYSCALL ? "syscall" : "ssl"), now);
    return -1;
  }
}

// Every event drives the whole state machine: OpenSSL may need to write to read and the
// other way round, so which of EPOLLIN/EPOLLOUT fired says little.
void TlsLoadGen::onEvent(uint32_t idx, uint32_t, int64_t now) {
  Conn& c = conns_[idx];
  if (c.fd < 0) return;
  if (!c.handshaken && (!handshake(idx, now) || !c.handshaken)) return;
  if (!sendMore(idx, now)) return;
  if (recvMore(idx, now) == 1) peerClosed(idx, now);  // always drain reads: edge-triggered
}

void TlsLoadGen::beforeClose(Conn& c) {
  if (c.ssl) {
    // Mark the shutdown done without sending close_notify (the peer has closed already):
    // SSL_free of a connection not shut down would mark its session not resumable.
    SSL_set_shutdown(c.ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    c.ssl.reset();
  }
}

void TlsLoadGen::printExtraFields() const {
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("\"handshakes\":%llu,\"resumed\":%llu,\"tickets\":%llu,\"reused_tickets\":%llu,\"tls\":\"%s %s %s\",",
              u(handshakes_), u(resumed_), u(tickets_), u(reused_tickets_), version_.c_str(), cipher_.c_str(),
              group_.c_str());
  printPercentiles("handshake_us", handshake_us_);
  std::printf(",");
}

SslCtxPtr makeClientCtx(const Options& opt) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return nullptr;
  setWriteModes(ctx.get());
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Sessions go to our callback only; nothing is looked up from an internal cache.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  if (opt.version != 0 && (SSL_CTX_set_min_proto_version(ctx.get(), opt.version) != 1 ||
                           SSL_CTX_set_max_proto_version(ctx.get(), opt.version) != 1))
    return nullptr;
  if (const CipherChoice* c = findCipher(opt.cipher);
      c && (SSL_CTX_set_ciphersuites(ctx.get(), c->tls13) != 1 || SSL_CTX_set_cipher_list(ctx.get(), c->tls12) != 1))
    return nullptr;
  if (!opt.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), opt.ca.c_str(), nullptr) != 1) return nullptr;
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

void usage() {
  std::fprintf(stderr,
               "usage: e2e_tls_loadgen handshake|resume --target ADDR [--concurrency N] [--request B]\n"
               "                       [--response B] [--duration S] [--grace S] [--max-conns N]\n"
               "                       [--sni NAME] [--ca FILE] [--stall S]\n"
               "       e2e_tls_loadgen bulk --target ADDR [--concurrency N] --direction up|down\n"
               "                       [--bytes-per-conn B] [--duration S] [--max-bytes B] [--sni NAME] [--ca FILE]\n"
               "  both take [--tls 1.2|1.3] [--cipher aes-128-gcm|aes-256-gcm|chacha20-poly1305]\n"
               "  sizes take K/M/G suffixes (binary)\n");
}

bool parseArgs(int argc, char** argv, Options& opt) {
  if (argc < 2) return false;
  std::string mode = argv[1];
  if (mode == "handshake") opt.mode = Mode::Handshake;
  else if (mode == "resume") opt.mode = Mode::Resume;
  else if (mode == "bulk") opt.mode = Mode::Bulk;
  else return false;
  opt.bulk = opt.mode == Mode::Bulk;
  return parseLoadOptions(argc, argv, opt, [&opt](const std::string& k, const std::string& v) {
    if (k == "--ca") opt.ca = v;
    else if (k == "--tls" && (v == "1.2" || v == "1.3")) opt.version = v == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
    else if (k == "--cipher" && findCipher(v)) opt.cipher = v;
    else return false;
    return true;
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  opt.sni = "bench.example.test";
  if (!parseArgs(argc, argv, opt)) {
    usage();
    return 2;
  }
  // OpenSSL's socket BIO writes with write(2), not send(MSG_NOSIGNAL): a peer that reset the
  // connection (a bulk transfer cut at the end of a phase) would kill us with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  raiseFdLimit();
  SslCtxPtr ctx = makeClientCtx(opt);
  if (!ctx) {
    std::fprintf(stderr, "e2e_tls_loadgen: client context: %s\n", sslErrorText().c_str());
    return 2;
  }
  TlsLoadGen gen(opt, std::move(ctx));
  return gen.run();
}
