#include "core/control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ringlb::core {

using SteadyClock = std::chrono::steady_clock;

struct ControlServer::Client {
  UniqueFd fd;
  bool http = false;
  bool answered = false;      // `out` holds the whole answer; close once it is written
  bool read_closed = false;   // the client half-closed (or we stopped reading)
  std::string in;
  std::string out;
  size_t written = 0;
  SteadyClock::time_point deadline;
};

namespace {

std::string errnoText(int err) { return std::strerror(err); }

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string httpMessage(int status, std::string_view content_type, std::string_view body,
                        std::string_view extra_headers = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  out.append("Content-Type: ").append(content_type).append("\r\n");
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out.append(extra_headers);
  out += "Connection: close\r\n\r\n";
  out.append(body);
  return out;
}

// Binds a unix socket at `path` with `mode` (see ControlServer::start()).
UniqueFd bindUnix(const std::string& path, uint32_t mode, std::string* error) {
  sockaddr_un sun{};
  if (path.size() + 1 > sizeof(sun.sun_path) - 16) {  // room for the ".<pid>.tmp" suffix
    *error = "unix:" + path + ": path too long";
    return {};
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = "unix:" + path + ": exists and is not a socket";
      return {};
    }
    // A socket someone still accepts on belongs to a running process: do not steal it.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0) {
      *error = "unix:" + path + ": in use by another process";
      return {};
    }
  }
  const std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  ::unlink(tmp.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, tmp.c_str(), tmp.size() + 1);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
    *error = "unix:" + path + ": bind: " + errnoText(errno);
    return {};
  }
  // chmod before the rename: the socket is never reachable at `path` with the umask's mode.
  if (::chmod(tmp.c_str(), static_cast<mode_t>(mode)) != 0 || ::listen(fd.get(), 64) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "unix:" + path + ": " + errnoText(errno);
    ::unlink(tmp.c_str());
    return {};
  }
  return fd;
}

// A TCP listener without SO_REUSEPORT (unlike core::listenOn): a second process must not
// silently share the admin port.
UniqueFd bindTcp(const std::string& text, std::string* error) {
  auto addr = SocketAddress::parse(text, error);
  if (!addr || addr->isUnix()) {
    if (addr) *error = "HTTP needs an IP address";
    *error = text + ": " + *error;
    return {};
  }
  UniqueFd fd(::socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  if (fd) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd && addr->family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (!fd || ::bind(fd.get(), addr->sockaddrPtr(), addr->length()) != 0 || ::listen(fd.get(), 64) != 0) {
    *error = "bind " + text + ": " + errnoText(errno);
    return {};
  }
  return fd;
}

}  // namespace

bool cliRequestComplete(std::string_view input) {
  if (input.empty() || input.back() != '\n') return false;
  bool in_payload = false;
  size_t pos = 0;
  while (pos < input.size()) {
    size_t eol = input.find('\n', pos);
    std::string_view line = input.substr(pos, eol - pos);
    pos = eol + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (in_payload) {
      if (line.empty()) in_payload = false;
    } else if (line.size() >= 2 && line.substr(line.size() - 2) == "<<") {
      in_payload = true;
    }
  }
  return !in_payload;
}

ControlServer::ControlServer(ControlServerOptions options) : options_(std::move(options)) {}

ControlServer::~ControlServer() {
  if (unix_fd_) ::unlink(options_.unix_path.c_str());
}

bool ControlServer::start(std::string* error) {
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) {
    *error = "eventfd: " + errnoText(errno);
    return false;
  }
  if (!options_.unix_path.empty()) {
    unix_fd_ = bindUnix(options_.unix_path, options_.unix_mode, error);
    if (!unix_fd_) return false;
  }
  if (!options_.http_address.empty()) {
    http_fd_ = bindTcp(options_.http_address, error);
    if (!http_fd_) return false;
  }
  if (options_.signals) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    // signalfd(2): the signals must be blocked, or their default action still runs.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal_fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!signal_fd_) {
      *error = "signalfd: " + errnoText(errno);
      return false;
    }
  }
  started_ = true;
  return true;
}

std::optional<SocketAddress> ControlServer::httpAddress() const {
  if (!http_fd_) return std::nullopt;
  return localAddress(http_fd_.get());
}

void ControlServer::stop() {
  stopping_.store(true);
  if (wake_fd_) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  }
}

void ControlServer::run() {
  if (!started_) return;
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    fds.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    fds.push_back({signal_fd_.get(), POLLIN, 0});  // fd -1 is ignored by poll(2)
    fds.push_back({unix_fd_.get(), POLLIN, 0});
    fds.push_back({http_fd_.get(), POLLIN, 0});
    const auto now = SteadyClock::now();
    auto next = now + std::chrono::hours(1);
    for (const auto& c : clients_) {
      short events = c->answered ? POLLOUT : (c->read_closed ? 0 : POLLIN);
      fds.push_back({c->fd.get(), events, 0});
      next = std::min(next, c->deadline);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait)));
    if (n < 0 && errno != EINTR) break;
    if (n > 0) {
      if (fds[0].revents) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_.get(), &v, sizeof(v));
      }
      if (fds[1].revents) readSignals();
      if (fds[2].revents) acceptAll(unix_fd_.get(), false);
      if (fds[3].revents) acceptAll(http_fd_.get(), true);
      // Clients accepted in this round are not in `fds`; the first 4 entries are fixed.
      for (size_t i = 4; i < fds.size(); ++i) {
        Client& c = *clients_[i - 4];
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          if (!c.answered) onReadable(c);
        }
        if (c.answered && c.fd && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) onWritable(c);
      }
    }
    const auto after = SteadyClock::now();
    std::erase_if(clients_, [&](const auto& c) { return !c->fd || after >= c->deadline; });
  }
}

void ControlServer::acceptAll(int listen_fd, bool http) {
  for (;;) {
    UniqueFd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN, or a transient error (ECONNABORTED, EMFILE): poll again
    if (clients_.size() >= options_.max_clients) continue;  // closed at once: bounded state
    auto c = std::make_unique<Client>();
    c->fd = std::move(fd);
    c->http = http;
    c->deadline = SteadyClock::now() + options_.idle_timeout;
    clients_.push_back(std::move(c));
  }
}

void ControlServer::onReadable(Client& c) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(c.fd.get(), buf, sizeof(buf));
    if (n > 0) {
      // Reads do not push the deadline back: the request must arrive within idle_timeout of
      // the accept, or a client trickling bytes keeps its slot (of max_clients, shared by
      // the CLI and HTTP) for ever.
      if (c.in.size() + static_cast<size_t>(n) > options_.max_request) {
        if (c.http) {
          c.out = httpMessage(413, "text/plain", "request too large\n");
          c.answered = true;
          c.read_closed = true;
          onWritable(c);
        } else {
          c.fd.reset();  // a CLI client gets no partial answer to a truncated command
        }
        return;
      }
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      c.read_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      c.fd.reset();
      return;
    }
    break;
  }
  const bool complete = c.http ? c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos
                               : cliRequestComplete(c.in);
  if (complete || c.read_closed) respond(c);
}

void ControlServer::respond(Client& c) {
  if (c.http) {
    c.out = httpAnswer(c.in);
  } else if (!c.in.empty() && command_) {
    c.out = command_(c.in);
  }
  // HAProxy's non-interactive mode: one request, one answer, then close. A client that
  // half-closed with nothing sent just gets the close.
  c.answered = true;
  c.read_closed = true;
  onWritable(c);
}

void ControlServer::onWritable(Client& c) {
  while (c.written < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (n > 0) {
      c.written += static_cast<size_t>(n);
      c.deadline = SteadyClock::now() + options_.idle_timeout;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    c.fd.reset();  // EPIPE, ECONNRESET: the client left
    return;
  }
  // Everything written: shutdown(SHUT_WR) sends the FIN, which is what tells socat and
  // HTTP clients the answer is complete; close() right after is fine, as the client's
  // remaining unread input (if any) was already consumed.
  ::shutdown(c.fd.get(), SHUT_WR);
  c.fd.reset();
}

std::string ControlServer::httpAnswer(std::string_view request) {
  // RFC 9112 s3: request-line = method SP request-target SP HTTP-version CRLF.
  const size_t eol = request.find('\n');
  std::string_view line = request.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
      line.substr(sp2 + 1, 7) != "HTTP/1." || sp2 == sp1 + 1) {
    return httpMessage(400, "text/plain", "bad request\n");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method != "GET") return httpMessage(405, "text/plain", "only GET is supported\n", "Allow: GET\r\n");
  if (target.front() != '/') return httpMessage(400, "text/plain", "bad request target\n");
  target = target.substr(0, target.find('?'));
  std::optional<HttpResponse> response = http_ ? http_(target) : std::nullopt;
  if (!response) return httpMessage(404, "text/plain", "not found\n");
  return httpMessage(response->status, response->content_type, response->body);
}

void ControlServer::readSignals() {
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    if (signal_) signal_(static_cast<int>(info.ssi_signo));
  }
}

}  // namespace ringlb::core
