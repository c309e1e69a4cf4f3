// Kernel TLS (kTLS, Documentation/networking/tls.rst): what this kernel offers, found once at
// start-up, and the setsockopt calls that hand a socket's record layer to the kernel.
//
// After a handshake done by OpenSSL in user space, TCP_ULP "tls" plus SOL_TLS TLS_TX / TLS_RX
// with the traffic keys (tls/ktls_keys.h) make the kernel encrypt what is sent and decrypt
// what is received on that socket: send/recv/splice then carry plaintext.
// No OpenSSL here: only <linux/tls.h>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ringlb::tls {

// Record ciphers the kernel may take (the AEADs TLS 1.2 and 1.3 share with kTLS).
enum class KtlsCipher : uint8_t { AesGcm128, AesGcm256, Chacha20Poly1305 };
constexpr size_t kKtlsCipherCount = 3;
const char* ktlsCipherName(KtlsCipher cipher);  // "AES-GCM-128" etc.

struct KtlsCaps {
  bool ulp = false;  // setsockopt(TCP_ULP, "tls") works
  // Per cipher (indexed by KtlsCipher): TLS_TX / TLS_RX accepted with TLS 1.3 parameters.
  bool tx[kKtlsCipherCount] = {};
  bool rx[kKtlsCipherCount] = {};
  std::string reason;  // when !ulp: why, as the kernel said it

  bool anyTx() const { return tx[0] || tx[1] || tx[2]; }
  bool anyRx() const { return rx[0] || rx[1] || rx[2]; }
  bool usable() const { return ulp && anyTx(); }
  // "kTLS: unavailable (kernel has no TLS ULP: setsockopt(TCP_ULP, \"tls\"): No such file or
  // directory)" or "kTLS: TX+RX, AES-GCM-128, AES-GCM-256, ChaCha20-Poly1305".
  std::string summary() const;
};

// Probes on a connected loopback TCP pair per cipher: the ULP, then TLS_TX and TLS_RX with
// all-zero keys (nothing is ever sent on the probe sockets, so the keys are never used).
// Blocking, a few milliseconds; call at start-up.
KtlsCaps probeKtls();
// The result of one probeKtls() for the whole process (probed on first call, immutable).
const KtlsCaps& ktlsCaps();

// The kernel's crypto_info for one direction, as bytes of the matching
// tls12_crypto_info_* struct (built by tls/ktls_keys.h).
struct KtlsCryptoInfo {
  uint8_t bytes[64] = {};
  uint32_t size = 0;
};

// setsockopt(fd, SOL_TCP, TCP_ULP, "tls"): needed once before installKtls. 0 or errno.
int attachKtlsUlp(int fd);
// setsockopt(fd, SOL_TLS, TLS_TX or TLS_RX, info). 0 or errno. Every byte sent (received)
// from then on is encrypted (decrypted) by the kernel, continuing the record sequence
// number in `info`.
int installKtls(int fd, bool tx, const KtlsCryptoInfo& info);

}  // namespace ringlb::tls
