// e2e_tls_loadgen: single-threaded epoll TLS client for the end-to-end benchmark of TLS
// termination (the LB terminates the client's TLS and re-encrypts to a TLS e2e_sink).
//
//   e2e_tls_loadgen handshake|resume --target ADDR [--concurrency N] [--request B]
//                   [--response B] [--duration S] [--max-conns N] [--sni NAME] [--ca FILE]
//   e2e_tls_loadgen bulk --target ADDR [--concurrency N] --direction up|down
//                   [--bytes-per-conn B] [--duration S] [--max-bytes B] [--sni NAME] [--ca FILE]
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
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "bench/e2e/tls_util.h"
#include "bench/e2e/util.h"
#include "bench/e2e/wire.h"

namespace {

using namespace ringlb::bench::e2e;

enum class Mode { Handshake, Resume, Bulk };

struct Options {
  Mode mode = Mode::Handshake;
  sockaddr_in target{};
  unsigned concurrency = 1;
  uint64_t request = 64;
  uint64_t response = 64;
  bool upload = true;
  uint64_t bytes_per_conn = 1ull << 30;
  double duration = 5.0;
  double grace = 2.0;
  double stall = 5.0;
  uint64_t max_conns = 10'000'000;
  uint64_t max_bytes = 1ull << 40;
  std::string sni = "bench.example.test";
  std::string ca;
};

struct Conn {
  int fd = -1;
  SslPtr ssl;
  bool handshaken = false;
  uint64_t prefix_sent = 0;
  uint64_t up_sent = 0;
  uint64_t down_recv = 0;
  int64_t started = 0;
  int64_t last_progress = 0;
};

class TlsLoadGen {
 public:
  TlsLoadGen(const Options& opt, SslCtxPtr ctx) : opt_(opt), ctx_(std::move(ctx)), conns_(opt.concurrency) {
    bool small = opt.mode != Mode::Bulk;
    Command cmd;
    cmd.up = small ? opt.request : (opt.upload ? opt.bytes_per_conn : 0);
    cmd.down = small ? opt.response : (opt.upload ? 0 : opt.bytes_per_conn);
    up_total_ = small ? 0 : cmd.up;  // the small request rides in the prefix
    down_total_ = cmd.down;
    prefix_.resize(kCommandSize);
    encodeCommand(cmd, prefix_.data());
    if (small) prefix_.resize(prefix_.size() + opt.request, 'q');
    payload_.assign(kChunk, 'p');
    scratch_.resize(kChunk);
    if (small) latencies_us_.reserve(std::min<uint64_t>(opt.max_conns, 1u << 22));
    SSL_CTX_set_app_data(ctx_.get(), this);
    SSL_CTX_sess_set_new_cb(ctx_.get(), &TlsLoadGen::onNewSession);
  }

  int run();

 private:
  static constexpr size_t kChunk = 256 * 1024;

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

  bool mayLaunch(int64_t now) const {
    if (now >= stop_launch_) return false;
    if (opt_.mode == Mode::Bulk) return launched_bytes_ < opt_.max_bytes;
    return launched_ < opt_.max_conns;
  }
  void launch(uint32_t idx, int64_t now);
  void drive(uint32_t idx, int64_t now);
  // Each returns false after it has failed the connection.
  bool handshake(uint32_t idx, int64_t now);
  bool sendMore(uint32_t idx, int64_t now);
  // 1 = the peer closed, 0 = would block, -1 = failed (connection already closed).
  int recvMore(uint32_t idx, int64_t now);
  void complete(uint32_t idx, int64_t now);
  void fail(uint32_t idx, const std::string& kind, int64_t now);
  void closeConn(Conn& c);
  void checkStalls(int64_t now);
  void abortAll();
  void report(int64_t end) const;

  const Options& opt_;
  SslCtxPtr ctx_;
  SslSessionPtr session_;               // the newest ticket
  std::deque<SslSessionPtr> unused_;     // tickets not offered yet, newest last
  std::vector<Conn> conns_;
  std::vector<uint8_t> prefix_;
  std::vector<uint8_t> payload_;
  std::vector<uint8_t> scratch_;
  uint64_t up_total_ = 0;
  uint64_t down_total_ = 0;
  int epfd_ = -1;
  int64_t start_ = 0;
  int64_t stop_launch_ = 0;
  int64_t hard_stop_ = 0;
  int64_t last_done_ = 0;
  uint32_t active_ = 0;
  bool priming_ = false;  // resume mode: the other slots wait for the first ticket
  uint64_t launched_ = 0;
  uint64_t launched_bytes_ = 0;
  uint64_t completed_ = 0;
  uint64_t handshakes_ = 0;
  uint64_t resumed_ = 0;
  uint64_t tickets_ = 0;
  uint64_t reused_tickets_ = 0;  // offered a ticket already offered before (none unused left)
  uint64_t errors_ = 0;
  uint64_t aborted_ = 0;
  uint64_t bytes_up_ = 0;
  uint64_t bytes_down_ = 0;
  std::string version_, cipher_, group_;
  std::map<std::string, uint64_t> error_kinds_;
  std::vector<uint32_t> latencies_us_;
  std::vector<uint32_t> relaunch_;  // reopened after the event batch, as in e2e_loadgen
  std::vector<uint32_t> launching_;
};

void TlsLoadGen::launch(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  c = Conn{};
  c.started = now;
  c.last_progress = now;
  ++launched_;
  launched_bytes_ += up_total_ + down_total_;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(idx, "socket", now);
    return;
  }
  c.fd = fd;
  ++active_;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.ssl.reset(SSL_new(ctx_.get()));
  if (!c.ssl || SSL_set_fd(c.ssl.get(), fd) != 1) {
    fail(idx, "ssl_new", now);
    return;
  }
  SSL_set_tlsext_host_name(c.ssl.get(), opt_.sni.c_str());
  if (!opt_.ca.empty()) SSL_set1_host(c.ssl.get(), opt_.sni.c_str());
  if (opt_.mode == Mode::Resume && !unused_.empty()) {
    SSL_set_session(c.ssl.get(), unused_.back().get());  // takes its own reference
    unused_.pop_back();
  } else if (opt_.mode == Mode::Resume && session_) {
    SSL_set_session(c.ssl.get(), session_.get());
    ++reused_tickets_;
  }
  SSL_set_connect_state(c.ssl.get());
  if (connect(fd, reinterpret_cast<const sockaddr*>(&opt_.target), sizeof(opt_.target)) != 0 &&
      errno != EINPROGRESS) {
    fail(idx, std::string("connect:") + strerrorname_np(errno), now);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;  // every step runs until it would block
  ev.data.u32 = idx;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) fail(idx, "epoll_ctl", now);
}

bool TlsLoadGen::handshake(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl.get());
  if (r == 1) {
    c.handshaken = true;
    c.last_progress = now;
    ++handshakes_;
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
  while (c.prefix_sent < prefix_.size() || c.up_sent < up_total_) {
    const uint8_t* p;
    size_t len;
    if (c.prefix_sent < prefix_.size()) {
      p = prefix_.data() + c.prefix_sent;
      len = prefix_.size() - c.prefix_sent;
    } else {
      p = payload_.data();
      len = static_cast<size_t>(std::min<uint64_t>(up_total_ - c.up_sent, kChunk));
    }
    ERR_clear_error();
    int n = SSL_write(c.ssl.get(), p, static_cast<int>(len));
    if (n <= 0) {
      int err = SSL_get_error(c.ssl.get(), n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return true;
      fail(idx, "write:" + sslErrorText("syscall"), now);
      return false;
    }
    c.last_progress = now;
    bytes_up_ += static_cast<uint64_t>(n);
    if (c.prefix_sent < prefix_.size()) c.prefix_sent += static_cast<uint64_t>(n);
    else c.up_sent += static_cast<uint64_t>(n);
  }
  return true;
}

int TlsLoadGen::recvMore(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c.ssl.get(), scratch_.data(), static_cast<int>(scratch_.size()));
    if (n > 0) {
      c.down_recv += static_cast<uint64_t>(n);
      bytes_down_ += static_cast<uint64_t>(n);
      c.last_progress = now;
      if (c.down_recv > down_total_) {
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

void TlsLoadGen::drive(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  if (c.fd < 0) return;
  if (!c.handshaken && (!handshake(idx, now) || !c.handshaken)) return;
  if (!sendMore(idx, now)) return;
  int r = recvMore(idx, now);  // always drain reads: edge-triggered
  if (r == 1) {
    bool whole = c.down_recv == down_total_ && c.up_sent == up_total_ && c.prefix_sent == prefix_.size();
    if (whole) complete(idx, now);
    else fail(idx, "short", now);
  }
}

void TlsLoadGen::closeConn(Conn& c) {
  if (c.ssl) {
    // Mark the shutdown done without sending close_notify (the peer has closed already):
    // SSL_free of a connection not shut down would mark its session not resumable.
    SSL_set_shutdown(c.ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    c.ssl.reset();
  }
  if (c.fd >= 0) {
    close(c.fd);
    c.fd = -1;
    --active_;
  }
}

void TlsLoadGen::complete(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  ++completed_;
  last_done_ = now;
  if (latencies_us_.size() < latencies_us_.capacity())
    latencies_us_.push_back(static_cast<uint32_t>(std::min<int64_t>((now - c.started) / 1000, UINT32_MAX)));
  closeConn(c);
  relaunch_.push_back(idx);
}

void TlsLoadGen::fail(uint32_t idx, const std::string& kind, int64_t now) {
  ++errors_;
  ++error_kinds_[kind];
  closeConn(conns_[idx]);
  last_done_ = now;
  relaunch_.push_back(idx);
}

void TlsLoadGen::checkStalls(int64_t now) {
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].fd >= 0 && now - conns_[i].last_progress > secondsToNs(opt_.stall)) fail(i, "stall", now);
  }
}

void TlsLoadGen::abortAll() {
  for (Conn& c : conns_) {
    if (c.fd < 0) continue;
    linger lg{1, 0};  // RST: do not leave a half-sent stream draining through the LB
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ++aborted_;
    closeConn(c);
  }
}

int TlsLoadGen::run() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return 2;
  Fd epoll_guard(epfd_);
  start_ = nowNs();
  stop_launch_ = start_ + secondsToNs(opt_.duration);
  hard_stop_ = opt_.mode == Mode::Bulk ? stop_launch_ : stop_launch_ + secondsToNs(opt_.grace);
  priming_ = opt_.mode == Mode::Resume && conns_.size() > 1;
  for (uint32_t i = 0; i < (priming_ ? 1u : conns_.size()) && mayLaunch(start_); ++i) launch(i, start_);
  std::vector<epoll_event> events(1024);
  int64_t next_stall_check = start_ + 100'000'000;
  int64_t now = start_;
  while (active_ > 0 || (!relaunch_.empty() && mayLaunch(now))) {
    now = nowNs();
    if (now >= hard_stop_) {
      abortAll();
      break;
    }
    int timeout_ms = static_cast<int>(std::clamp<int64_t>((hard_stop_ - now) / 1'000'000 + 1, 1, 100));
    int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) return 2;
    now = nowNs();
    for (int i = 0; i < n; ++i) drive(events[i].data.u32, now);
    if (now >= next_stall_check) {
      checkStalls(now);
      next_stall_check = now + 100'000'000;
    }
    if (priming_ && session_) {  // the first ticket is here: start the other slots
      priming_ = false;
      for (uint32_t i = 1; i < conns_.size(); ++i) relaunch_.push_back(i);
    }
    launching_.swap(relaunch_);
    for (uint32_t idx : launching_) {
      if (mayLaunch(now)) launch(idx, now);
    }
    launching_.clear();
  }
  int64_t end = opt_.mode == Mode::Bulk && now >= hard_stop_ ? now : std::max(last_done_, start_ + 1);
  report(end);
  return errors_ == 0 ? 0 : 1;
}

uint32_t percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

void TlsLoadGen::report(int64_t end) const {
  static const char* kModes[] = {"handshake", "resume", "bulk"};
  double secs = static_cast<double>(end - start_) / 1e9;
  std::vector<uint32_t> lat = latencies_us_;
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("{\"mode\":\"%s\",\"concurrency\":%u,\"duration_s\":%.6f,\"completed\":%llu,\"errors\":%llu,"
              "\"aborted\":%llu,\"bytes_up\":%llu,\"bytes_down\":%llu,\"conns_per_s\":%.1f,\"mb_per_s\":%.2f,"
              "\"hello_bytes\":0,\"handshakes\":%llu,\"resumed\":%llu,\"tickets\":%llu,\"reused_tickets\":%llu,"
              "\"tls\":\"%s %s %s\",",
              kModes[static_cast<int>(opt_.mode)], opt_.concurrency, secs, u(completed_), u(errors_), u(aborted_),
              u(bytes_up_), u(bytes_down_), static_cast<double>(completed_) / secs,
              static_cast<double>(bytes_up_ + bytes_down_) / secs / 1e6, u(handshakes_), u(resumed_), u(tickets_), u(reused_tickets_),
              version_.c_str(), cipher_.c_str(), group_.c_str());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secondsOf = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  std::printf("\"cpu_s\":%.3f,\"latency_us\":{\"p50\":%u,\"p99\":%u,\"max\":%u},\"error_kinds\":{",
              secondsOf(ru.ru_utime) + secondsOf(ru.ru_stime), percentile(lat, 0.50), percentile(lat, 0.99),
              percentile(lat, 1.0));
  bool first = true;
  for (const auto& [kind, count] : error_kinds_) {
    std::string k = kind;
    std::replace(k.begin(), k.end(), '"', '\'');
    std::printf("%s\"%s\":%llu", first ? "" : ",", k.c_str(), u(count));
    first = false;
  }
  std::printf("}}\n");
}

SslCtxPtr makeClientCtx(const Options& opt) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return nullptr;
  setWriteModes(ctx.get());
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Sessions go to our callback only; nothing is looked up from an internal cache.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
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
               "  sizes take K/M/G suffixes (binary)\n");
}

bool parseArgs(int argc, char** argv, Options& opt) {
  if (argc < 2) return false;
  std::string mode = argv[1];
  if (mode == "handshake") opt.mode = Mode::Handshake;
  else if (mode == "resume") opt.mode = Mode::Resume;
  else if (mode == "bulk") opt.mode = Mode::Bulk;
  else return false;
  bool have_target = false;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    std::string k = argv[i], v = argv[i + 1];
    uint64_t n = 0;
    if (k == "--target") have_target = parseAddress(v, opt.target);
    else if (k == "--concurrency" && parseSize(v, n) && n >= 1 && n <= 60000) opt.concurrency = static_cast<unsigned>(n);
    else if (k == "--request" && parseSize(v, n)) opt.request = n;
    else if (k == "--response" && parseSize(v, n)) opt.response = n;
    else if (k == "--bytes-per-conn" && parseSize(v, n)) opt.bytes_per_conn = n;
    else if (k == "--max-conns" && parseSize(v, n)) opt.max_conns = n;
    else if (k == "--max-bytes" && parseSize(v, n)) opt.max_bytes = n;
    else if (k == "--direction" && (v == "up" || v == "down")) opt.upload = v == "up";
    else if (k == "--duration") opt.duration = std::atof(v.c_str());
    else if (k == "--grace") opt.grace = std::atof(v.c_str());
    else if (k == "--stall") opt.stall = std::atof(v.c_str());
    else if (k == "--sni") opt.sni = v;
    else if (k == "--ca") opt.ca = v;
    else return false;
  }
  return have_target && opt.duration > 0 && opt.duration <= 3600 && opt.grace >= 0 && opt.stall > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
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
