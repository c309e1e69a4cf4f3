#include "core/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace ringlb::core {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

void setError(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

// True if the first `bits` bits of `a` and `b` agree.
bool prefixEqual(const uint8_t* a, const uint8_t* b, unsigned bits) {
  unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return ((a[whole] ^ b[whole]) & mask) == 0;
}

// Clears every bit after the first `bits`.
void maskTo(uint8_t* bytes, unsigned bits) {
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = bits > i * 8 ? std::min(8u, bits - i * 8) : 0;
    bytes[i] &= static_cast<uint8_t>(0xFF00 >> keep);
  }
}

bool parsePrefix(std::string_view text, unsigned max, unsigned& prefix) {
  if (text.empty() || text.size() > 3 || (text.size() > 1 && text[0] == '0')) return false;
  prefix = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    prefix = prefix * 10 + static_cast<unsigned>(c - '0');
  }
  return prefix <= max;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  Cidr out;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    out.ipv4_ = true;
    std::memcpy(out.network_, kMappedPrefix, 12);
    std::memcpy(out.network_ + 12, &v4, 4);
  } else if (inet_pton(AF_INET6, host.c_str(), out.network_) != 1) {
    setError(error, "\"" + host + "\" is not a numeric IPv4 or IPv6 address (host names are not resolved)");
    return std::nullopt;
  }
  unsigned max = out.ipv4_ ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos && !parsePrefix(text.substr(slash + 1), max, prefix)) {
    setError(error, "prefix length after '/' must be a number 0.." + std::to_string(max) + " for " +
                        (out.ipv4_ ? "IPv4" : "IPv6") + ", got \"" + std::string(text.substr(slash + 1)) + "\"");
    return std::nullopt;
  }
  out.prefix_ = out.ipv4_ ? prefix + 96 : prefix;
  uint8_t masked[16];
  std::memcpy(masked, out.network_, 16);
  maskTo(masked, out.prefix_);
  if (std::memcmp(masked, out.network_, 16) != 0) {
    std::memcpy(out.network_, masked, 16);
    setError(error, "\"" + std::string(text) + "\" has address bits set past the prefix; the network is " +
                        out.toString());
    return std::nullopt;
  }
  return out;
}

bool Cidr::contains(const SocketAddress& address) const {
  uint8_t bytes[16];
  if (address.family() == AF_INET) {
    std::memcpy(bytes, kMappedPrefix, 12);
    std::memcpy(bytes + 12, &reinterpret_cast<const sockaddr_in*>(address.sockaddrPtr())->sin_addr, 4);
  } else if (address.family() == AF_INET6) {
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in6*>(address.sockaddrPtr())->sin6_addr, 16);
  } else {
    return false;
  }
  return prefixEqual(bytes, network_, prefix_);
}

std::string Cidr::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ipv4_) {
    inet_ntop(AF_INET, network_ + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, network_, buf, sizeof(buf));
  }
  return std::string(buf) + "/" + std::to_string(prefixLength());
}

}  // namespace ringlb::core
