#include "core/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ringlb::core {
namespace {

bool parsePort(std::string_view text, uint16_t& port) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

void setError(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

}  // namespace

std::optional<SocketAddress> SocketAddress::parse(std::string_view text, std::string* error) {
  SocketAddress out;
  if (text.starts_with("unix:")) {
    std::string_view path = text.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&out.storage_);
    if (path.empty() || path.size() >= sizeof(un->sun_path)) {
      setError(error, "unix socket path must be 1.." + std::to_string(sizeof(un->sun_path) - 1) +
                          " bytes");
      return std::nullopt;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    out.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return out;
  }
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      setError(error, "expected \"[IPv6]:port\"");
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      setError(error, "expected \"IPv4:port\", \"[IPv6]:port\" or \"unix:/path\"");
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint16_t port = 0;
  if (!parsePort(port_text, port)) {
    setError(error, "port must be a number 0..65535");
    return std::nullopt;
  }
  std::string host_str(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  if (inet_pton(AF_INET, host_str.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.len_ = sizeof(sockaddr_in);
    return out;
  }
  out.storage_ = {};
  if (inet_pton(AF_INET6, host_str.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.len_ = sizeof(sockaddr_in6);
    return out;
  }
  setError(error, "\"" + host_str + "\" is not a numeric IPv4 or IPv6 address (host names are not resolved)");
  return std::nullopt;
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (len > sizeof(out.storage_)) len = sizeof(out.storage_);
  std::memcpy(&out.storage_, sa, len);
  out.len_ = len;
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

SocketAddress SocketAddress::withPort(uint16_t port) const {
  SocketAddress out = *this;
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_port = htons(port);
  return out;
}

std::string SocketAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
      return std::string(buf) + ":" + std::to_string(port());
    case AF_INET6:
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
      return "[" + std::string(buf) + "]:" + std::to_string(port());
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      if (len_ <= offsetof(sockaddr_un, sun_path)) return "unix:(unnamed)";
      return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, len_ - offsetof(sockaddr_un, sun_path)));
    }
    default:
      return "(none)";
  }
}

bool isIpLiteral(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

std::string SocketAddress::hostString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

std::string_view SocketAddress::hostBytes() const {
  switch (family()) {
    case AF_INET:
      return {reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr), 4};
    case AF_INET6:
      return {reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr), 16};
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      return {un->sun_path, strnlen(un->sun_path, sizeof(un->sun_path))};
    }
    default:
      return {};
  }
}

UniqueFd streamSocket(int family) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd && family != AF_UNIX) setNoDelay(fd.get());
  return fd;
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

UniqueFd listenOn(const SocketAddress& addr, int backlog, std::string* error) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  auto fail = [&](const char* what) {
    setError(error, std::string(what) + " " + addr.toString() + ": " + std::strerror(errno));
    return UniqueFd();
  };
  if (!fd) return fail("socket");
  int one = 1;
  if (!addr.isUnix()) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
      return fail("SO_REUSEPORT on");
    if (addr.family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    setNoDelay(fd.get());
  }
  if (::bind(fd.get(), addr.sockaddrPtr(), addr.length()) != 0) return fail("bind");
  if (::listen(fd.get(), backlog) != 0) return fail("listen");
  return fd;
}

std::optional<SocketAddress> localAddress(int fd) {
  SocketAddress out;
  socklen_t len = sizeof(sockaddr_storage);
  if (::getsockname(fd, out.sockaddrPtr(), &len) != 0) return std::nullopt;
  out.setLength(len);
  return out;
}

}  // namespace ringlb::core
