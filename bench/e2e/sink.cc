// e2e_sink: single-threaded epoll backend for the end-to-end LB benchmark.
//
//   e2e_sink [--listen 127.0.0.1:0] [--ready-file PATH] [--lifetime S] [--idle S]
//            [--tls-cert PEM [--tls-key PEM] | --no-hello 1]
//
// Each connection carries the wire protocol of wire.h: the sink skips the TLS record that
// holds the ClientHello, reads the command, discards `up` bytes, then sends `down` bytes and
// closes. Anything else (not a handshake record, wrong magic, bytes after `up`) closes the
// connection and counts as an error. It never decrypts: the hello is only skipped.
//
// With --tls-cert the sink is a TLS server instead (the backend of a TLS-terminating,
// re-encrypting LB): it completes the handshake with that certificate (key from --tls-key,
// default the same file), and the plaintext inside carries the same protocol minus the
// ClientHello record: command, `up` bytes; `down` bytes back, then close_notify and close.
// OpenSSL's server defaults apply, so it issues TLS 1.3 tickets and resumes sessions.
//
// With --no-hello 1 the sink is plain TCP without the ClientHello record: the backend of an LB
// that terminates TLS and relays the plaintext unencrypted (the same protocol as TLS mode,
// in clear).
//
// Once listening it writes "listen ADDR" to --ready-file. It stops on SIGTERM/SIGINT or after
// --lifetime seconds, printing its counters as one JSON object on stdout; connections idle
// for --idle seconds are closed.
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/e2e/tls_util.h"
#include "bench/e2e/util.h"
#include "bench/e2e/wire.h"

namespace {

using namespace ringlb::bench::e2e;

struct Options {
  sockaddr_in listen{};
  std::string ready_file;
  double lifetime = 3600;
  double idle = 30;
  std::string tls_cert;
  std::string tls_key;
  bool no_hello = false;
};

enum class Phase { RecordHeader, HelloBody, Command, Up, Down };

struct Conn {
  bool open = false;
  SslPtr ssl;  // TLS mode only
  bool handshaken = false;
  Phase phase = Phase::RecordHeader;
  uint8_t header[kCommandSize] = {};
  uint32_t have = 0;  // bytes of `header` filled (record header, then command)
  uint64_t hello_left = 0;
  uint64_t up_left = 0;
  uint64_t down_left = 0;
  int64_t last_activity = 0;
};

struct Counters {
  uint64_t accepted = 0;
  uint64_t completed = 0;
  uint64_t protocol_errors = 0;
  uint64_t peer_gone = 0;  // reset or closed before the exchange finished (e.g. a cut bulk run)
  uint64_t idle_closed = 0;
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;
  uint64_t tls_errors = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

class Sink {
 public:
  // `tls` null: plain mode. Otherwise every accepted connection is a TLS server on it.
  // `hello`: plain mode starts with the ClientHello record (TLS mode never does).
  Sink(int listen_fd, int epfd, SSL_CTX* tls, bool hello)
      : listen_fd_(listen_fd), epfd_(epfd), tls_(tls), hello_(hello && !tls), scratch_(kChunk),
        payload_(kChunk, 's') {}

  void acceptAll(int64_t now);
  void onEvent(int fd, uint32_t events, int64_t now);
  void closeIdle(int64_t now, int64_t idle_ns);
  const Counters& counters() const { return counters_; }

 private:
  static constexpr size_t kChunk = 256 * 1024;

  // Feeds received bytes through the protocol state machine; false on a protocol error.
  bool consume(Conn& c, const uint8_t* p, size_t len);
  // Sends the response until EAGAIN or done; false if the connection was closed.
  bool sendMore(int fd, Conn& c);
  // TLS mode: drives the handshake; false if the connection was closed.
  bool handshake(int fd, Conn& c);
  // recv/send, or SSL_read/SSL_write in TLS mode. >0 bytes; 0 = would block; -1 = EOF or error.
  ssize_t readSome(int fd, Conn& c);
  ssize_t writeSome(int fd, Conn& c, size_t len);
  void closeConn(int fd) {
    Conn& c = conns_[static_cast<size_t>(fd)];
    if (c.ssl) {
      if (c.phase == Phase::Down && c.down_left == 0) SSL_shutdown(c.ssl.get());  // close_notify
      else SSL_set_shutdown(c.ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      c.ssl.reset();
    }
    c.open = false;
    close(fd);
  }

  int listen_fd_;
  int epfd_;
  SSL_CTX* tls_;
  bool hello_;
  std::vector<Conn> conns_;  // indexed by fd
  std::vector<uint8_t> scratch_;
  std::vector<uint8_t> payload_;
  Counters counters_;
};

void Sink::acceptAll(int64_t now) {
  for (int i = 0; i < 1024; ++i) {  // bounded, so a connect storm cannot starve the rest
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(static_cast<size_t>(fd) + 1024);
    Conn& c = conns_[static_cast<size_t>(fd)];
    c = Conn{};
    c.open = true;
    c.last_activity = now;
    ++counters_.accepted;
    if (!hello_) c.phase = Phase::Command;  // no ClientHello record in the plaintext
    if (tls_) {
      c.ssl.reset(SSL_new(tls_));
      if (!c.ssl || SSL_set_fd(c.ssl.get(), fd) != 1) {
        ++counters_.tls_errors;
        closeConn(fd);
        continue;
      }
      SSL_set_accept_state(c.ssl.get());
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) closeConn(fd);
  }
}

bool Sink::consume(Conn& c, const uint8_t* p, size_t len) {
  while (len > 0) {
    size_t take = 0;
    switch (c.phase) {
      case Phase::RecordHeader:
        take = std::min<size_t>(kTlsRecordHeader - c.have, len);
        std::copy(p, p + take, c.header + c.have);
        c.have += static_cast<uint32_t>(take);
        if (c.have == kTlsRecordHeader) {
          if (c.header[0] != kTlsHandshake) return false;
          c.hello_left = (static_cast<uint64_t>(c.header[3]) << 8) | c.header[4];
          c.have = 0;
          c.phase = c.hello_left ? Phase::HelloBody : Phase::Command;
        }
        break;
      case Phase::HelloBody:
        take = static_cast<size_t>(std::min<uint64_t>(c.hello_left, len));
        c.hello_left -= take;
        if (c.hello_left == 0) c.phase = Phase::Command;
        break;
      case Phase::Command:
        take = std::min<size_t>(kCommandSize - c.have, len);
        std::copy(p, p + take, c.header + c.have);
        c.have += static_cast<uint32_t>(take);
        if (c.have == kCommandSize) {
          Command cmd;
          if (!decodeCommand(c.header, cmd)) return false;
          c.up_left = cmd.up;
          c.down_left = cmd.down;
          c.phase = cmd.up ? Phase::Up : Phase::Down;
        }
        break;
      case Phase::Up:
        take = static_cast<size_t>(std::min<uint64_t>(c.up_left, len));
        c.up_left -= take;
        if (c.up_left == 0) c.phase = Phase::Down;
        break;
      case Phase::Down:
        return false;  // the client sent more than it announced
    }
    p += take;
    len -= take;
  }
  return true;
}

ssize_t Sink::readSome(int fd, Conn& c) {
  if (!c.ssl) {
    ssize_t n = recv(fd, scratch_.data(), scratch_.size(), 0);
    return n > 0 ? n : (n < 0 && errno == EAGAIN ? 0 : -1);
  }
  ERR_clear_error();
  int n = SSL_read(c.ssl.get(), scratch_.data(), static_cast<int>(scratch_.size()));
  if (n > 0) return n;
  int err = SSL_get_error(c.ssl.get(), n);
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

ssize_t Sink::writeSome(int fd, Conn& c, size_t len) {
  if (!c.ssl) {
    ssize_t n = send(fd, payload_.data(), len, MSG_NOSIGNAL);
    return n >= 0 ? n : (errno == EAGAIN ? 0 : -1);
  }
  ERR_clear_error();
  int n = SSL_write(c.ssl.get(), payload_.data(), static_cast<int>(len));
  if (n > 0) return n;
  int err = SSL_get_error(c.ssl.get(), n);
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

bool Sink::handshake(int fd, Conn& c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl.get());
  if (r == 1) {
    c.handshaken = true;
    ++counters_.tls_handshakes;
    if (SSL_session_reused(c.ssl.get())) ++counters_.tls_resumed;
    return true;
  }
  int err = SSL_get_error(c.ssl.get(), r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
  ++counters_.tls_errors;
  closeConn(fd);
  return false;
}

bool Sink::sendMore(int fd, Conn& c) {
  while (c.down_left > 0) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(c.down_left, kChunk));
    ssize_t n = writeSome(fd, c, len);
    if (n == 0) return true;
    if (n < 0) {
      ++counters_.peer_gone;
      closeConn(fd);
      return false;
    }
    c.down_left -= static_cast<uint64_t>(n);
    counters_.bytes_out += static_cast<uint64_t>(n);
  }
  ++counters_.completed;
  closeConn(fd);  // FIN after the response: the client reads to EOF
  return false;
}

void Sink::onEvent(int fd, uint32_t events, int64_t now) {
  if (fd == listen_fd_) {
    acceptAll(now);
    return;
  }
  if (static_cast<size_t>(fd) >= conns_.size() || !conns_[static_cast<size_t>(fd)].open) return;
  Conn& c = conns_[static_cast<size_t>(fd)];
  c.last_activity = now;
  if (c.ssl && !c.handshaken && (!handshake(fd, c) || !c.handshaken)) return;
  // In TLS mode read whatever the event: the handshake may have left records buffered.
  if (c.ssl || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    for (;;) {
      ssize_t n = readSome(fd, c);
      if (n > 0) {
        counters_.bytes_in += static_cast<uint64_t>(n);
        if (!consume(c, scratch_.data(), static_cast<size_t>(n))) {
          ++counters_.protocol_errors;
          closeConn(fd);
          return;
        }
        continue;
      }
      if (n == 0) break;
      ++counters_.peer_gone;  // EOF or reset before our response was complete
      closeConn(fd);
      return;
    }
  }
  // Edge-triggered: try the response whenever the request is complete, not only on EPOLLOUT.
  if (c.phase == Phase::Down) sendMore(fd, c);
}

void Sink::closeIdle(int64_t now, int64_t idle_ns) {
  for (size_t fd = 0; fd < conns_.size(); ++fd) {
    if (conns_[fd].open && now - conns_[fd].last_activity > idle_ns) {
      ++counters_.idle_closed;
      closeConn(static_cast<int>(fd));
    }
  }
}

bool parseArgs(int argc, char** argv, Options& opt) {
  parseAddress("127.0.0.1:0", opt.listen);
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--listen") {
      if (!parseAddress(v, opt.listen)) return false;
    } else if (k == "--ready-file") {
      opt.ready_file = v;
    } else if (k == "--lifetime") {
      opt.lifetime = std::atof(v.c_str());
    } else if (k == "--idle") {
      opt.idle = std::atof(v.c_str());
    } else if (k == "--tls-cert") {
      opt.tls_cert = v;
    } else if (k == "--tls-key") {
      opt.tls_key = v;
    } else if (k == "--no-hello" && (v == "1" || v == "0")) {
      opt.no_hello = v == "1";
    } else {
      return false;
    }
  }
  return opt.lifetime > 0 && opt.idle > 0;
}

int openListener(const sockaddr_in& addr, std::string& bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in actual{};
  socklen_t len = sizeof(actual);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4096) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&actual), &len) != 0) {
    close(fd);
    return -1;
  }
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &actual.sin_addr, ip, sizeof(ip));
  bound = std::string(ip) + ":" + std::to_string(ntohs(actual.sin_port));
  return fd;
}

bool writeReadyFile(const std::string& path, const std::string& bound) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return false;
  std::fprintf(f, "listen %s\n", bound.c_str());
  bool ok = std::fclose(f) == 0;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;  // readers never see half a file
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parseArgs(argc, argv, opt)) {
    std::fprintf(stderr, "usage: e2e_sink [--listen ADDR] [--ready-file PATH] [--lifetime S] [--idle S]\n"
                         "                [--tls-cert PEM [--tls-key PEM] | --no-hello 1]\n");
    return 2;
  }
  // OpenSSL's socket BIO writes with write(2), not send(MSG_NOSIGNAL): a peer that reset the
  // connection (a bulk transfer cut at the end of a phase) would kill us with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  raiseFdLimit();
  SslCtxPtr tls;
  if (!opt.tls_cert.empty()) {
    std::string error;
    tls = makeServerCtx(opt.tls_cert, opt.tls_key.empty() ? opt.tls_cert : opt.tls_key, error);
    if (!tls) {
      std::fprintf(stderr, "e2e_sink: TLS: %s\n", error.c_str());
      return 2;
    }
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  Fd sigfd(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  std::string bound;
  Fd listen_fd(openListener(opt.listen, bound));
  Fd epfd(epoll_create1(EPOLL_CLOEXEC));
  if (sigfd.get() < 0 || listen_fd.get() < 0 || epfd.get() < 0) {
    std::fprintf(stderr, "e2e_sink: set-up failed: %s\n", strerror(errno));
    return 2;
  }
  for (int fd : {listen_fd.get(), sigfd.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  if (!opt.ready_file.empty() && !writeReadyFile(opt.ready_file, bound)) {
    std::fprintf(stderr, "e2e_sink: cannot write %s\n", opt.ready_file.c_str());
    return 2;
  }
  Sink sink(listen_fd.get(), epfd.get(), tls.get(), !opt.no_hello);
  const int64_t start = nowNs();
  const int64_t end = start + secondsToNs(opt.lifetime);
  int64_t next_sweep = start + 1'000'000'000;
  std::vector<epoll_event> events(1024);
  bool stop = false;
  while (!stop) {
    int n = epoll_wait(epfd.get(), events.data(), static_cast<int>(events.size()), 200);
    if (n < 0 && errno != EINTR) break;
    int64_t now = nowNs();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == sigfd.get()) stop = true;
      else sink.onEvent(events[i].data.fd, events[i].events, now);
    }
    if (now >= next_sweep) {
      sink.closeIdle(now, secondsToNs(opt.idle));
      next_sweep = now + 1'000'000'000;
    }
    if (now >= end) stop = true;
  }
  const Counters& k = sink.counters();
  std::printf("{\"accepted\":%llu,\"completed\":%llu,\"protocol_errors\":%llu,\"peer_gone\":%llu,"
              "\"idle_closed\":%llu,\"tls_handshakes\":%llu,\"tls_resumed\":%llu,\"tls_errors\":%llu,"
              "\"bytes_in\":%llu,\"bytes_out\":%llu}\n",
              static_cast<unsigned long long>(k.accepted), static_cast<unsigned long long>(k.completed),
              static_cast<unsigned long long>(k.protocol_errors), static_cast<unsigned long long>(k.peer_gone),
              static_cast<unsigned long long>(k.idle_closed), static_cast<unsigned long long>(k.tls_handshakes),
              static_cast<unsigned long long>(k.tls_resumed), static_cast<unsigned long long>(k.tls_errors),
              static_cast<unsigned long long>(k.bytes_in),
              static_cast<unsigned long long>(k.bytes_out));
  return 0;
}
