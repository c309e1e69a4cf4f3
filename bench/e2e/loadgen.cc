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
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/e2e/util.h"
#include "bench/e2e/wire.h"

namespace {

using namespace ringlb::bench::e2e;

enum class Mode { Conn, Bulk };

struct Options {
  Mode mode = Mode::Conn;
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
  std::string sni = "alpha.test";
};

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};

// A ClientHello as OpenSSL's default client sends it (TLS 1.3 + 1.2, x25519 key share), with
// SNI and ALPN h2/http1.1. Empty on failure.
std::vector<uint8_t> makeClientHello(const std::string& sni) {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return {};
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
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

struct Conn {
  int fd = -1;
  uint64_t prefix_sent = 0;
  uint64_t up_sent = 0;
  uint64_t down_recv = 0;
  uint64_t up_total = 0;
  uint64_t down_total = 0;
  int64_t started = 0;
  int64_t last_progress = 0;
};

class LoadGen {
 public:
  LoadGen(const Options& opt, std::vector<uint8_t> hello) : opt_(opt), conns_(opt.concurrency) {
    Command cmd;
    cmd.up = opt.mode == Mode::Conn ? opt.request : (opt.upload ? opt.bytes_per_conn : 0);
    cmd.down = opt.mode == Mode::Conn ? opt.response : (opt.upload ? 0 : opt.bytes_per_conn);
    // conn mode: the small request rides in the same send as the hello and command, so
    // there is no payload to stream after the prefix.
    up_total_ = opt.mode == Mode::Conn ? 0 : cmd.up;
    down_total_ = cmd.down;
    prefix_ = std::move(hello);
    uint8_t encoded[kCommandSize];
    encodeCommand(cmd, encoded);
    prefix_.insert(prefix_.end(), encoded, encoded + kCommandSize);
    if (opt.mode == Mode::Conn) prefix_.resize(prefix_.size() + opt.request, 'q');
    payload_.assign(kChunk, 'p');
    scratch_.resize(kChunk);
    if (opt.mode == Mode::Conn) latencies_us_.reserve(std::min<uint64_t>(opt.max_conns, 1u << 22));
  }

  int run();

 private:
  static constexpr size_t kChunk = 256 * 1024;

  bool mayLaunch(int64_t now) const {
    if (now >= stop_launch_) return false;
    if (opt_.mode == Mode::Conn) return launched_ < opt_.max_conns;
    return launched_bytes_ < opt_.max_bytes;
  }
  void launch(uint32_t idx, int64_t now);
  void onEvent(uint32_t idx, uint32_t events, int64_t now);
  bool sendMore(Conn& c, int64_t now);
  // Reads until EAGAIN: 1 = EOF arrived, 0 = EAGAIN, -1 = recv error (errno set),
  // -2 = more bytes than the command asked for.
  int recvMore(Conn& c, int64_t now);
  void complete(uint32_t idx, int64_t now);
  void fail(uint32_t idx, const std::string& kind, int64_t now);
  void closeConn(Conn& c);
  void checkStalls(int64_t now);
  void abortAll();
  void report(int64_t end) const;

  const Options& opt_;
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
  uint64_t launched_ = 0;
  uint64_t launched_bytes_ = 0;
  uint64_t completed_ = 0;
  uint64_t errors_ = 0;
  uint64_t aborted_ = 0;
  uint64_t bytes_up_ = 0;
  uint64_t bytes_down_ = 0;
  std::map<std::string, uint64_t> error_kinds_;
  std::vector<uint32_t> latencies_us_;
  // Slots whose connection ended, reopened by the main loop after the current event batch
  // (never from inside a handler: no recursion when connects fail at once, and no event of
  // the batch can reach a slot's new connection).
  std::vector<uint32_t> relaunch_;
  std::vector<uint32_t> launching_;
};

void LoadGen::launch(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  c = Conn{};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(idx, "socket", now);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.fd = fd;
  c.up_total = up_total_;
  c.down_total = down_total_;
  c.started = now;
  c.last_progress = now;
  ++active_;
  ++launched_;
  launched_bytes_ += up_total_ + down_total_;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&opt_.target), sizeof(opt_.target)) != 0 &&
      errno != EINPROGRESS) {
    fail(idx, std::string("connect:") + strerrorname_np(errno), now);
    return;
  }
  // Edge-triggered: every handler reads/writes until EAGAIN, so no epoll_ctl per state change.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u32 = idx;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) fail(idx, "epoll_ctl", now);
}

bool LoadGen::sendMore(Conn& c, int64_t now) {
  while (c.prefix_sent < prefix_.size() || c.up_sent < c.up_total) {
    const uint8_t* p;
    size_t len;
    if (c.prefix_sent < prefix_.size()) {
      p = prefix_.data() + c.prefix_sent;
      len = prefix_.size() - c.prefix_sent;
    } else {
      p = payload_.data();
      len = static_cast<size_t>(std::min<uint64_t>(c.up_total - c.up_sent, kChunk));
    }
    ssize_t n = send(c.fd, p, len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == ENOTCONN;  // ENOTCONN: still connecting
    c.last_progress = now;
    bytes_up_ += static_cast<uint64_t>(n);
    if (c.prefix_sent < prefix_.size()) c.prefix_sent += static_cast<uint64_t>(n);
    else c.up_sent += static_cast<uint64_t>(n);
  }
  return true;
}

int LoadGen::recvMore(Conn& c, int64_t now) {
  for (;;) {
    ssize_t n = recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n > 0) {
      c.down_recv += static_cast<uint64_t>(n);
      bytes_down_ += static_cast<uint64_t>(n);
      c.last_progress = now;
      if (c.down_recv > c.down_total) return -2;
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
    if (r == -2) {
      fail(idx, "response_too_long", now);
    } else if (r < 0) {
      fail(idx, std::string("recv:") + strerrorname_np(errno), now);
    } else if (r == 1) {
      bool whole = c.down_recv == c.down_total && c.up_sent == c.up_total && c.prefix_sent == prefix_.size();
      if (whole) complete(idx, now);
      else fail(idx, "short", now);
    }
  }
}

void LoadGen::closeConn(Conn& c) {
  if (c.fd >= 0) {
    close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    --active_;
  }
}

void LoadGen::complete(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  ++completed_;
  last_done_ = now;
  if (latencies_us_.size() < latencies_us_.capacity())
    latencies_us_.push_back(static_cast<uint32_t>(std::min<int64_t>((now - c.started) / 1000, UINT32_MAX)));
  closeConn(c);
  relaunch_.push_back(idx);
}

void LoadGen::fail(uint32_t idx, const std::string& kind, int64_t now) {
  ++errors_;
  ++error_kinds_[kind];
  closeConn(conns_[idx]);
  last_done_ = now;
  relaunch_.push_back(idx);
}

void LoadGen::checkStalls(int64_t now) {
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].fd >= 0 && now - conns_[i].last_progress > secondsToNs(opt_.stall)) fail(i, "stall", now);
  }
}

// Time is up: close what is still open. A bulk transfer cut here is expected (the run is
// time-bounded) and its bytes so far count; a conn-mode connection still open after the
// grace period is counted as aborted.
void LoadGen::abortAll() {
  for (Conn& c : conns_) {
    if (c.fd < 0) continue;
    linger lg{1, 0};  // RST: do not leave a half-sent stream draining through the LB
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ++aborted_;
    closeConn(c);
  }
}

int LoadGen::run() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return 2;
  Fd epoll_guard(epfd_);
  start_ = nowNs();
  stop_launch_ = start_ + secondsToNs(opt_.duration);
  hard_stop_ = opt_.mode == Mode::Conn ? stop_launch_ + secondsToNs(opt_.grace) : stop_launch_;
  for (uint32_t i = 0; i < conns_.size() && mayLaunch(start_); ++i) launch(i, start_);
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
    for (int i = 0; i < n; ++i) onEvent(events[i].data.u32, events[i].events, now);
    if (now >= next_stall_check) {
      checkStalls(now);
      next_stall_check = now + 100'000'000;
    }
    launching_.swap(relaunch_);  // launch() may queue a slot again if its connect fails at once
    for (uint32_t idx : launching_) {
      if (mayLaunch(now)) launch(idx, now);
    }
    launching_.clear();
  }
  // Bulk runs are cut by time, so they end at the cut; conn runs at the last completion.
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

void LoadGen::report(int64_t end) const {
  double secs = static_cast<double>(end - start_) / 1e9;
  std::vector<uint32_t> lat = latencies_us_;
  std::printf("{\"mode\":\"%s\",\"concurrency\":%u,\"duration_s\":%.6f,\"completed\":%llu,\"errors\":%llu,"
              "\"aborted\":%llu,\"bytes_up\":%llu,\"bytes_down\":%llu,\"conns_per_s\":%.1f,\"mb_per_s\":%.2f,"
              "\"hello_bytes\":%zu,",
              opt_.mode == Mode::Conn ? "conn" : "bulk", opt_.concurrency, secs,
              static_cast<unsigned long long>(completed_), static_cast<unsigned long long>(errors_),
              static_cast<unsigned long long>(aborted_), static_cast<unsigned long long>(bytes_up_),
              static_cast<unsigned long long>(bytes_down_), static_cast<double>(completed_) / secs,
              static_cast<double>(bytes_up_ + bytes_down_) / secs / 1e6, prefix_.size() - kCommandSize -
                  (opt_.mode == Mode::Conn ? opt_.request : 0));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secondsOf = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  std::printf("\"cpu_s\":%.3f,\"latency_us\":{\"p50\":%u,\"p99\":%u,\"max\":%u},\"error_kinds\":{",
              secondsOf(ru.ru_utime) + secondsOf(ru.ru_stime), percentile(lat, 0.50), percentile(lat, 0.99),
              percentile(lat, 1.0));
  bool first = true;
  for (const auto& [kind, count] : error_kinds_) {
    std::printf("%s\"%s\":%llu", first ? "" : ",", kind.c_str(), static_cast<unsigned long long>(count));
    first = false;
  }
  std::printf("}}\n");
}

void usage() {
  std::fprintf(stderr,
               "usage: e2e_loadgen conn --target ADDR [--concurrency N] [--request B] [--response B]\n"
               "                        [--duration S] [--grace S] [--max-conns N] [--sni NAME] [--stall S]\n"
               "       e2e_loadgen bulk --target ADDR [--concurrency N] --direction up|down\n"
               "                        [--bytes-per-conn B] [--duration S] [--max-bytes B] [--sni NAME]\n"
               "  sizes take K/M/G suffixes (binary)\n");
}

bool parseArgs(int argc, char** argv, Options& opt) {
  if (argc < 2) return false;
  std::string mode = argv[1];
  if (mode == "conn") opt.mode = Mode::Conn;
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
  raiseFdLimit();
  std::vector<uint8_t> hello = makeClientHello(opt.sni);
  if (hello.empty()) {
    std::fprintf(stderr, "e2e_loadgen: could not build a ClientHello with OpenSSL\n");
    return 2;
  }
  LoadGen gen(opt, std::move(hello));
  return gen.run();
}
