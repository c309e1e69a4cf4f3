// Socket addresses and socket set-up (listen, connect-side options).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/unique_fd.h"

namespace ringlb::core {

// An IPv4, IPv6 or unix-socket address. Trivially copyable.
class SocketAddress {
 public:
  SocketAddress() = default;

  // Parses "1.2.3.4:443", "[::1]:443", "unix:/path". Port 0 is allowed (kernel-chosen)
  // only where the caller accepts it. Returns nullopt and an explanation on error.
  static std::optional<SocketAddress> parse(std::string_view text, std::string* error = nullptr);
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);

  int family() const { return storage_.ss_family; }
  bool isUnix() const { return family() == AF_UNIX; }
  uint16_t port() const;
  // The same address with another port (IP only; a unix address is returned unchanged).
  SocketAddress withPort(uint16_t port) const;
  const sockaddr* sockaddrPtr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* sockaddrPtr() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t length() const { return len_; }
  socklen_t* lengthPtr() { return &len_; }
  void setLength(socklen_t len) { len_ = len; }

  std::string toString() const;  // "1.2.3.4:443", "[::1]:443", "unix:/path"
  std::string hostString() const;  // "1.2.3.4", "::1"; "" for unix sockets
  // The address bytes only (4 or 16 for IP, path for unix) for hashing.
  std::string_view hostBytes() const;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// True if `text` is an IPv4 or IPv6 address literal ("192.0.2.1", "2001:db8::1"), e.g. to
// tell a host name from an address (RFC 6066 s3: SNI never carries an address).
bool isIpLiteral(std::string_view text);

// A bound, listening socket: SO_REUSEADDR, SO_REUSEPORT (one listener per worker), IPV6_V6ONLY
// for IPv6 so v4 and v6 binds are independent, non-blocking, close-on-exec.
// On failure returns an invalid fd and sets *error to "bind 1.2.3.4:443: Address in use".
UniqueFd listenOn(const SocketAddress& addr, int backlog, std::string* error);

// The address a socket is bound to (to learn a kernel-chosen port).
std::optional<SocketAddress> localAddress(int fd);

// A new non-blocking, close-on-exec stream socket for `family`, TCP_NODELAY set for IP.
UniqueFd streamSocket(int family);

void setNoDelay(int fd);

}  // namespace ringlb::core
