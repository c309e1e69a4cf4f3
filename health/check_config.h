// Health settings of one pool, as validated by the configuration loader ([pool.health] and
// the pool's lifecycle keys, see conf/README.md). Plain structs: no sockets, no OpenSSL.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tls/tls_config.h"

namespace ringlb::health {

using Millis = std::chrono::milliseconds;

// What an active check does against a backend:
//  Tcp:   connect.
//  Tls:   connect, then a full TLS handshake (SNI, ALPN, certificate verification).
//  Http:  connect, send one HTTP/1.1 request, read the status line (and the body when a
//         substring is expected).
//  Https: Tls, then Http inside it.
enum class CheckType : uint8_t { None, Tcp, Tls, Http, Https };
const char* checkTypeName(CheckType type);

struct StatusRange {
  uint16_t low = 200;
  uint16_t high = 399;
  bool contains(unsigned status) const { return status >= low && status <= high; }
};

struct HttpCheckConfig {
  std::string method = "GET";
  std::string path = "/";
  std::string host;                    // "" = the backend's address as written
  std::vector<std::string> headers;    // extra "Name: value" lines
  std::vector<StatusRange> expect_status{StatusRange{200, 399}};
  std::string expect_body;             // "" = any body; else a substring of the first 16 KiB
};

struct CheckConfig {
  CheckType type = CheckType::None;    // None: backends are up unless passively ejected
  Millis interval{2000};               // between checks of one backend while its state is settled
  Millis fast_interval{500};           // while in transition (some, but fewer than rise/fall, results)
  Millis timeout{1000};                // whole check: connect + handshake + response
  uint32_t rise = 2;                   // consecutive successes to go up
  uint32_t fall = 3;                   // consecutive failures to go down
  uint16_t port = 0;                   // 0 = the backend's traffic port
  HttpCheckConfig http;                // Http / Https
  // Tls / Https: the pool's [pool.tls] unless [pool.health.tls] is given (which a pool that
  // does not re-encrypt, e.g. a passthrough pool, needs for a TLS check). `enabled` is true
  // whenever the check speaks TLS.
  tls::ClientTlsConfig tls;
  bool speaksTls() const { return type == CheckType::Tls || type == CheckType::Https; }
  bool speaksHttp() const { return type == CheckType::Http || type == CheckType::Https; }
};

// Per-pool lifecycle: passive ejection and slow start.
struct LifecycleConfig {
  // Passive health: after `eject_after` consecutive failed connects (refused, timed out,
  // reset before any byte, backend TLS handshake failure) a backend is ejected for
  // eject_for * (number of ejections in a row), capped at eject_max, then retried.
  uint32_t eject_after = 3;            // 0 = no passive ejection
  Millis eject_for{5000};
  Millis eject_max{60000};
  // A backend that comes up (check, ejection end, maint -> ready) gets a weight that ramps
  // linearly from 1/16 to its full weight over this period. 0 = full weight at once.
  Millis slow_start{0};
};

}  // namespace ringlb::health
