// Whether one TLS connection's records go to the kernel (kTLS) after its handshake, and why
// not. Pure: no OpenSSL, no sockets; the proxy asks it once per side after the handshakes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tls/ktls_probe.h"
#include "tls/tls_config.h"

namespace ringlb::tls {

// The cipher of an OpenSSL cipher name (TLS 1.3 "TLS_AES_128_GCM_SHA256" or TLS 1.2
// "ECDHE-RSA-AES256-GCM-SHA384"), if the kernel has an equivalent (CCM and CBC suites: no).
std::optional<KtlsCipher> ktlsCipherFromName(std::string_view openssl_name);

// Which of the proxy's two TLS connections.
enum class KtlsSide : uint8_t { Client, Backend };

enum class KtlsRefusal : uint8_t {
  None,             // kTLS both ways
  ConfigOff,        // [crypto] ktls = "off"
  Kernel,           // the kernel has no usable kTLS (KtlsCaps::reason)
  Version,          // neither TLS 1.2 nor 1.3
  Cipher,           // a suite the kernel has no equivalent for (CBC, CCM)
  CipherNotInKernel,  // an AEAD the kernel refused at the probe (module missing)
  RxNotInKernel,    // TX only: the kernel cannot decrypt this cipher
  PostHandshake,    // TLS 1.3 backend: NewSessionTickets may still come (see ktlsPlan)
  OtherSide,        // this side could, the other connection of the proxy cannot
  Keys,             // key extraction failed (traffic secrets missing, KeyUpdate seen)
  Busy,             // records in flight when the handshakes ended (partial record, queued output)
  Install,          // setsockopt(TLS_TX/TLS_RX) failed
};

struct KtlsPlan {
  bool tx = false;
  bool rx = false;
  KtlsRefusal why = KtlsRefusal::None;
  KtlsSide side = KtlsSide::Client;
  std::string_view cipher;  // OpenSSL's name; static storage in OpenSSL

  bool full() const { return tx && rx; }
  // For the debug log: "ktls: client cipher TLS_AES_128_CCM_SHA256 unsupported by kernel".
  std::string describe(const KtlsCaps& caps) const;
  // For the access log: "tx,rx", or "off(cipher)", "off(kernel)", "tx(rx-unsupported)".
  std::string logValue() const;
};

// `version`: the negotiated protocol (0x0303 / 0x0304); `cipher`: OpenSSL's cipher name.
// A TLS 1.3 backend connection is refused (PostHandshake): the server sends its
// NewSessionTickets after our Finished, i.e. after the switch would happen, and kernel RX
// fails a read that meets a non-data record unless it is read with recvmsg and a
// TLS_GET_RECORD_TYPE cmsg, which the relay does not do. (Our own tickets to the client
// leave before the switch.)
KtlsPlan ktlsPlan(KtlsMode mode, const KtlsCaps& caps, uint16_t version, std::string_view cipher, KtlsSide side);

// The proxy relays plaintext between two sockets only if neither needs user-space records:
// the client side full kTLS, and the backend side full kTLS or plain TCP (`backend` null).
// Otherwise both plans are turned off, and a side that could have gone ahead on its own
// says OtherSide.
void ktlsRelayPlan(KtlsPlan& client, KtlsPlan* backend);

}  // namespace ringlb::tls
