// e2e_loadgen: single-threaded epoll load generator for the end-to-end LB benchmark.
//
//   e2e_loadgen conn --target ADDR [--concurrency N] [--request B] [--response B]
//                    [--duration S] [--max-conns N] [--sni NAME]
//   e2e_loadgen bulk --target ADDR [--concurrency N] --direction up|down
//                    [--bytes-per-conn B] [--duration S] [--max-bytes B] [--sni NAME]
//
// conn: N connections at a time; each sends a real TLS ClientHello (SNI NAME) + a command +
//   B request bytes, reads the B-byte response to EOF, closes; then the slot opens the next.
// bulk: N connections at a time; each sends the hello + command, then streams B bytes up
//   (or reads B bytes down) and waits for EOF; repeated until the time or byte budget ends.
//
// The ClientHello is built once at start-up by OpenSSL over memory BIOs, so the benchmark
// costs the client no crypto and the LB sees what a real client sends. The wire protocol to
// e2e_sink is in wire.h. Every loop ends on its own: no new connection after --duration or
// --max-conns/--max-bytes, in-flight conn-mode connections get --grace more seconds, bulk
// transfers are cut at --duration, and a connection that makes no progress for --stall
// seconds is an error. Prints one JSON object on stdout; exit 0 if there were no errors.
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/e2e/loadgen_core.h"
#include "bench/e2e/tls_util.h"
#include "bench/e2e/util.h"
#include "bench/e2e/wire.h"

namespace {

using namespace ringlb::bench::e2e;

// A ClientHello as OpenSSL's default client sends it (TLS 1.3 + 1.2, x25519 key share), with
// SNI and ALPN h2/http1.1. Empty on failure.
std::vector<uint8_t> makeClientHello(const std::string& sni) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return {};
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl) return {};
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rbio, wbio);  // ssl owns both BIOs from here
  SSL_set_tlsext_host_name(ssl.get(), sni.c_str());
  static const unsigned char kAlpn[] = "\x02h2\x08http/1.1";
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof(kAlpn) - 1);
  SSL_set_connect_state(ssl.get());
  SSL_do_handshake(ssl.get());  // writes the hello into wbio, then wants the server's reply
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  if (n <= static_cast<long>(kTlsRecordHeader) || static_cast<uint8_t>(data[0]) != kTlsHandshake) return {};
  return std::vector<uint8_t>(data, data + n);
}

using Conn = ConnState;  // nothing to add: the socket is all there is

// The plain-TCP protocol over LoadLoop: the hello record, command and request go out with
// send(2), the response comes back with recv(2) until EOF.
class LoadGen : public LoadLoop<Conn, LoadGen> {
 public:
  LoadGen(const LoadOptions& opt, std::vector<uint8_t> hello) : LoadLoop(opt, std::move(hello)) {}

 private:
  friend class LoadLoop<Conn, LoadGen>;

  bool setUp(uint32_t, int64_t) { return true; }
  void onEvent(uint32_t idx, uint32_t events, int64_t now);
  void beforeClose(Conn&) {}
  uint32_t firstSlots() const { return static_cast<uint32_t>(conns_.size()); }
  void afterBatch() {}
  const char* modeName() const { return opt_.bulk ? "bulk" : "conn"; }
  void printExtraFields() const {}

  bool sendMore(Conn& c, int64_t now);
  // Reads until EAGAIN: 1 = EOF arrived, 0 = EAGAIN, -1 = recv error (errno set),
  // -2 = more bytes than the command asked for.
  int recvMore(Conn& c, int64_t now);
};

bool LoadGen::sendMore(Conn& c, int64_t now) {
  const uint8_t* p;
  size_t len;
  while (nextSend(c, p, len)) {
    ssize_t n = send(c.fd, p, len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == ENOTCONN;  // ENOTCONN: still connecting
    sent(c, static_cast<uint64_t>(n), now);
  }
  return true;
}

int LoadGen::recvMore(Conn& c, int64_t now) {
  for (;;) {
    ssize_t n = recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n > 0) {
      if (!received(c, static_cast<uint64_t>(n), now)) return -2;
      continue;
    }
    if (n == 0) return 1;
    if (errno == EAGAIN) return 0;
    return -1;
  }
}

void LoadGen::onEvent(uint32_t idx, uint32_t events, int64_t now) {
  Conn& c = conns_[idx];
  if (c.fd < 0) return;
  if (events & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    fail(idx, std::string("socket:") + (err ? strerrorname_np(err) : "EPOLLERR"), now);
    return;
  }
  if ((events & EPOLLOUT) && !sendMore(c, now)) {
    fail(idx, std::string("send:") + strerrorname_np(errno), now);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
    int r = recvMore(c, now);
    if (r == -2) fail(idx, "response_too_long", now);
    else if (r < 0) fail(idx, std::string("recv:") + strerrorname_np(errno), now);
    else if (r == 1) peerClosed(idx, now);
  }
}

void usage() {
  std::fprintf(stderr,
               "usage: e2e_loadgen conn --target ADDR [--concurrency N] [--request B] [--response B]\n"
               "                        [--duration S] [--grace S] [--max-conns N] [--sni NAME] [--stall S]\n"
               "       e2e_loadgen bulk --target ADDR [--concurrency N] --direction up|down\n"
               "                        [--bytes-per-conn B] [--duration S] [--max-bytes B] [--sni NAME]\n"
               "  sizes take K/M/G suffixes (binary)\n");
}

bool parseArgs(int argc, char** argv, LoadOptions& opt) {
  if (argc < 2) return false;
  std::string mode = argv[1];
  if (mode == "conn") opt.bulk = false;
  else if (mode == "bulk") opt.bulk = true;
  else return false;
  return parseLoadOptions(argc, argv, opt, [](const std::string&, const std::string&) { return false; });
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions opt;
  opt.sni = "alpha.test";
  if (!parseArgs(argc, argv, opt)) {
    usage();
    return 2;
  }
  raiseFdLimit();
  std::vector<uint8_t> hello = makeClientHello(opt.sni);
  if (hello.empty()) {
    std::fprintf(stderr, "e2e_loadgen: could not build a ClientHello with OpenSSL\n");
    return 2;
  }
  LoadGen gen(opt, std::move(hello));
  return gen.run();
}
