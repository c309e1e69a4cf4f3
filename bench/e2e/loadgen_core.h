// The connection bookkeeping, run loop, options and JSON report that e2e_loadgen (plain TCP)
// and e2e_tls_loadgen (TLS client) share. Header-only; benchmark tools, not part of ringlb.
//
// LoadLoop<Conn, Gen> keeps `concurrency` slots busy on one epoll set: a slot whose connection
// ended is reopened after the current event batch, until --duration or the count/byte budget
// ends; in-flight per-request connections get --grace more seconds, bulk transfers are cut at
// --duration, and a connection without progress for --stall seconds fails as "stall".
//
// The generator `Gen` derives from LoadLoop<Conn, Gen> (CRTP) and provides the protocol:
//   bool setUp(uint32_t idx, int64_t now)   after socket(), before connect(): false if it
//                                           has failed the connection
//   void onEvent(uint32_t idx, uint32_t events, int64_t now)   one epoll event of a slot
//   void beforeClose(Conn& c)               release what the generator attached to c
//   uint32_t firstSlots() const             how many slots to open at start; afterBatch()
//   void afterBatch()                       may queue the others in relaunch_ later
//   const char* modeName() const            "mode" in the report
//   void printExtraFields() const           fields printed after "hello_bytes", each
//                                           followed by a comma
// `Conn` derives from ConnState.
#pragma once

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/e2e/util.h"
#include "bench/e2e/wire.h"

namespace ringlb::bench::e2e {

// What both generators take on the command line (each adds its own mode words and keys).
struct LoadOptions {
  bool bulk = false;  // bulk: stream bytes_per_conn; else one request/response per connection
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
  std::string sni;
};

// Parses the "--key value" pairs after the mode word (argv[1]). Keys other than the shared
// ones go to `extra(key, value)`, which returns false for a key it does not know either.
template <typename Extra>
bool parseLoadOptions(int argc, char** argv, LoadOptions& opt, Extra extra) {
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
    else if (!extra(k, v)) return false;
  }
  return have_target && opt.duration > 0 && opt.duration <= 3600 && opt.grace >= 0 && opt.stall > 0;
}

// Per-slot state both generators keep; a generator's Conn derives from it.
struct ConnState {
  int fd = -1;
  uint64_t prefix_sent = 0;
  uint64_t up_sent = 0;
  uint64_t down_recv = 0;
  int64_t started = 0;
  int64_t last_progress = 0;
};

inline uint32_t percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// Prints `"name":{"p50":..,"p90":..,"p99":..,"max":..}` (microseconds; all 0 if `v` is empty).
inline void printPercentiles(const char* name, std::vector<uint32_t> v) {
  std::printf("\"%s\":{\"p50\":%u,\"p90\":%u,\"p99\":%u,\"max\":%u}", name, percentile(v, 0.50),
              percentile(v, 0.90), percentile(v, 0.99), percentile(v, 1.0));
}

template <typename Conn, typename Gen>
class LoadLoop {
 public:
  // Every connection first sends `hello` (may be empty), the wire.h command, and in
  // per-request mode the request bytes; in bulk mode the payload follows.
  LoadLoop(const LoadOptions& opt, std::vector<uint8_t> hello) : opt_(opt), conns_(opt.concurrency) {
    Command cmd;
    cmd.up = !opt.bulk ? opt.request : (opt.upload ? opt.bytes_per_conn : 0);
    cmd.down = !opt.bulk ? opt.response : (opt.upload ? 0 : opt.bytes_per_conn);
    // The small request rides in the same send as the prefix, so there is no payload to
    // stream after it.
    up_total_ = !opt.bulk ? 0 : cmd.up;
    down_total_ = cmd.down;
    hello_bytes_ = hello.size();
    prefix_ = std::move(hello);
    prefix_.resize(hello_bytes_ + kCommandSize);
    encodeCommand(cmd, prefix_.data() + hello_bytes_);
    if (!opt.bulk) prefix_.resize(prefix_.size() + opt.request, 'q');
    payload_.assign(kChunk, 'p');
    scratch_.resize(kChunk);
    if (!opt.bulk) latencies_us_.reserve(std::min<uint64_t>(opt.max_conns, 1u << 22));
  }

  // Runs until done, prints the JSON report; 0 = no errors, 1 = errors, 2 = epoll failed.
  int run();

 protected:
  static constexpr size_t kChunk = 256 * 1024;

  Gen& gen() { return static_cast<Gen&>(*this); }
  const Gen& gen() const { return static_cast<const Gen&>(*this); }

  bool mayLaunch(int64_t now) const {
    if (now >= stop_launch_) return false;
    if (opt_.bulk) return launched_bytes_ < opt_.max_bytes;
    return launched_ < opt_.max_conns;
  }
  void launch(uint32_t idx, int64_t now);

  // The next bytes to send on `c`: the rest of the prefix, then payload up to the command's
  // `up`. False once everything is sent.
  bool nextSend(const Conn& c, const uint8_t*& p, size_t& len) const {
    if (c.prefix_sent < prefix_.size()) {
      p = prefix_.data() + c.prefix_sent;
      len = prefix_.size() - c.prefix_sent;
      return true;
    }
    if (c.up_sent >= up_total_) return false;
    p = payload_.data();
    len = static_cast<size_t>(std::min<uint64_t>(up_total_ - c.up_sent, kChunk));
    return true;
  }
  void sent(Conn& c, uint64_t n, int64_t now) {
    c.last_progress = now;
    bytes_up_ += n;
    if (c.prefix_sent < prefix_.size()) c.prefix_sent += n;
    else c.up_sent += n;
  }
  // False if the peer sent more than the command asked for.
  bool received(Conn& c, uint64_t n, int64_t now) {
    c.down_recv += n;
    bytes_down_ += n;
    c.last_progress = now;
    return c.down_recv <= down_total_;
  }
  // The peer closed: complete if both byte counts crossed whole, else fail as "short".
  void peerClosed(uint32_t idx, int64_t now) {
    const Conn& c = conns_[idx];
    bool whole = c.down_recv == down_total_ && c.up_sent == up_total_ && c.prefix_sent == prefix_.size();
    if (whole) complete(idx, now);
    else fail(idx, "short", now);
  }
  void complete(uint32_t idx, int64_t now);
  void fail(uint32_t idx, const std::string& kind, int64_t now);
  void closeConn(Conn& c);
  void checkStalls(int64_t now);
  void abortAll();
  void report(int64_t end) const;

  const LoadOptions& opt_;
  std::vector<Conn> conns_;
  std::vector<uint8_t> prefix_;
  std::vector<uint8_t> payload_;
  std::vector<uint8_t> scratch_;
  uint64_t up_total_ = 0;
  uint64_t down_total_ = 0;
  size_t hello_bytes_ = 0;
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

template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::launch(uint32_t idx, int64_t now) {
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
  if (!gen().setUp(idx, now)) return;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&opt_.target), sizeof(opt_.target)) != 0 &&
      errno != EINPROGRESS) {
    fail(idx, std::string("connect:") + strerrorname_np(errno), now);
    return;
  }
  // Edge-triggered: every handler reads/writes until it would block, so no epoll_ctl per
  // state change.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u32 = idx;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) fail(idx, "epoll_ctl", now);
}

template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::closeConn(Conn& c) {
  gen().beforeClose(c);
  if (c.fd >= 0) {
    close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    --active_;
  }
}

template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::complete(uint32_t idx, int64_t now) {
  Conn& c = conns_[idx];
  ++completed_;
  last_done_ = now;
  if (latencies_us_.size() < latencies_us_.capacity())
    latencies_us_.push_back(static_cast<uint32_t>(std::min<int64_t>((now - c.started) / 1000, UINT32_MAX)));
  closeConn(c);
  relaunch_.push_back(idx);
}

template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::fail(uint32_t idx, const std::string& kind, int64_t now) {
  ++errors_;
  ++error_kinds_[kind];
  closeConn(conns_[idx]);
  last_done_ = now;
  relaunch_.push_back(idx);
}

template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::checkStalls(int64_t now) {
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i].fd >= 0 && now - conns_[i].last_progress > secondsToNs(opt_.stall)) fail(i, "stall", now);
  }
}

// Time is up: close what is still open. A bulk transfer cut here is expected (the run is
// time-bounded) and its bytes so far count; a per-request connection still open after the
// grace period is counted as aborted.
template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::abortAll() {
  for (Conn& c : conns_) {
    if (c.fd < 0) continue;
    linger lg{1, 0};  // RST: do not leave a half-sent stream draining through the LB
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ++aborted_;
    closeConn(c);
  }
}

template <typename Conn, typename Gen>
int LoadLoop<Conn, Gen>::run() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return 2;
  Fd epoll_guard(epfd_);
  start_ = nowNs();
  stop_launch_ = start_ + secondsToNs(opt_.duration);
  hard_stop_ = opt_.bulk ? stop_launch_ : stop_launch_ + secondsToNs(opt_.grace);
  const uint32_t first = gen().firstSlots();
  for (uint32_t i = 0; i < first && mayLaunch(start_); ++i) launch(i, start_);
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
    for (int i = 0; i < n; ++i) gen().onEvent(events[i].data.u32, events[i].events, now);
    if (now >= next_stall_check) {
      checkStalls(now);
      next_stall_check = now + 100'000'000;
    }
    gen().afterBatch();
    launching_.swap(relaunch_);  // launch() may queue a slot again if its connect fails at once
    for (uint32_t idx : launching_) {
      if (mayLaunch(now)) launch(idx, now);
    }
    launching_.clear();
  }
  // Bulk runs are cut by time, so they end at the cut; the others at the last completion.
  int64_t end = opt_.bulk && now >= hard_stop_ ? now : std::max(last_done_, start_ + 1);
  report(end);
  return errors_ == 0 ? 0 : 1;
}

template <typename Conn, typename Gen>
void LoadLoop<Conn, Gen>::report(int64_t end) const {
  double secs = static_cast<double>(end - start_) / 1e9;
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("{\"mode\":\"%s\",\"concurrency\":%u,\"duration_s\":%.6f,\"completed\":%llu,\"errors\":%llu,"
              "\"aborted\":%llu,\"bytes_up\":%llu,\"bytes_down\":%llu,\"conns_per_s\":%.1f,\"mb_per_s\":%.2f,"
              "\"up_mb_per_s\":%.2f,\"down_mb_per_s\":%.2f,\"hello_bytes\":%zu,",
              gen().modeName(), opt_.concurrency, secs, u(completed_), u(errors_), u(aborted_), u(bytes_up_),
              u(bytes_down_), static_cast<double>(completed_) / secs,
              static_cast<double>(bytes_up_ + bytes_down_) / secs / 1e6, static_cast<double>(bytes_up_) / secs / 1e6,
              static_cast<double>(bytes_down_) / secs / 1e6, hello_bytes_);
  gen().printExtraFields();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secondsOf = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  std::printf("\"cpu_s\":%.3f,", secondsOf(ru.ru_utime) + secondsOf(ru.ru_stime));
  printPercentiles("latency_us", latencies_us_);  // whole connection: connect to close
  std::printf(",\"error_kinds\":{");
  bool first = true;
  for (const auto& [kind, count] : error_kinds_) {
    std::string k = kind;  // OpenSSL's error text is free-form: keep the JSON valid
    std::replace(k.begin(), k.end(), '"', '\'');
    std::printf("%s\"%s\":%llu", first ? "" : ",", k.c_str(), u(count));
    first = false;
  }
  std::printf("}}\n");
}

}  // namespace ringlb::bench::e2e
