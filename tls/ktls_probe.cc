#include "tls/ktls_probe.h"

#include <arpa/inet.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace ringlb::tls {
namespace {

// A connected loopback TCP pair: TCP_ULP needs an established socket (ENOTCONN otherwise).
// Returns 0, or the errno of the step that failed.
int connectedPair(core::UniqueFd& client, core::UniqueFd& server) {
  core::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) return errno;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return errno;
  }
  client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (client.get() < 0) return errno;
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return errno;
  server.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return server.get() < 0 ? errno : 0;
}

// All-zero TLS 1.3 parameters for `cipher`: enough for the kernel to accept or refuse it.
KtlsCryptoInfo zeroInfo(KtlsCipher cipher) {
  KtlsCryptoInfo info;
  auto* header = reinterpret_cast<tls_crypto_info*>(info.bytes);
  header->version = TLS_1_3_VERSION;
  switch (cipher) {
    case KtlsCipher::AesGcm128:
      header->cipher_type = TLS_CIPHER_AES_GCM_128;
      info.size = sizeof(tls12_crypto_info_aes_gcm_128);
      break;
    case KtlsCipher::AesGcm256:
      header->cipher_type = TLS_CIPHER_AES_GCM_256;
      info.size = sizeof(tls12_crypto_info_aes_gcm_256);
      break;
    case KtlsCipher::Chacha20Poly1305:
      header->cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
      info.size = sizeof(tls12_crypto_info_chacha20_poly1305);
      break;
  }
  return info;
}

static_assert(sizeof(tls12_crypto_info_aes_gcm_256) <= sizeof(KtlsCryptoInfo::bytes));
static_assert(sizeof(tls12_crypto_info_chacha20_poly1305) <= sizeof(KtlsCryptoInfo::bytes));

}  // namespace

const char* ktlsCipherName(KtlsCipher cipher) {
  switch (cipher) {
    case KtlsCipher::AesGcm128: return "AES-GCM-128";
    case KtlsCipher::AesGcm256: return "AES-GCM-256";
    case KtlsCipher::Chacha20Poly1305: return "ChaCha20-Poly1305";
  }
  return "?";
}

int attachKtlsUlp(int fd) {
  static constexpr char kUlp[] = "tls";
  return ::setsockopt(fd, SOL_TCP, TCP_ULP, kUlp, sizeof(kUlp) - 1) == 0 ? 0 : errno;
}

int installKtls(int fd, bool tx, const KtlsCryptoInfo& info) {
  return ::setsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, info.bytes, info.size) == 0 ? 0 : errno;
}

KtlsCaps probeKtls() {
  KtlsCaps caps;
  for (size_t i = 0; i < kKtlsCipherCount; ++i) {
    core::UniqueFd client, server;
    if (int err = connectedPair(client, server); err != 0) {
      caps.reason = std::string("cannot open a loopback TCP pair to probe: ") + std::strerror(err);
      return caps;
    }
    if (int err = attachKtlsUlp(client.get()); err != 0) {
      // ENOENT: no "tls" ULP registered (module missing, or not loadable without
      // CAP_NET_ADMIN: tcp_set_ulp only autoloads for privileged callers).
      caps.reason = std::string("kernel has no TLS ULP: setsockopt(TCP_ULP, \"tls\"): ") + std::strerror(err);
      return caps;
    }
    caps.ulp = true;
    KtlsCryptoInfo info = zeroInfo(static_cast<KtlsCipher>(i));
    caps.tx[i] = installKtls(client.get(), true, info) == 0;
    caps.rx[i] = installKtls(client.get(), false, info) == 0;
  }
  if (!caps.anyTx()) caps.reason = "the TLS ULP accepts none of AES-GCM-128/256, ChaCha20-Poly1305 for TLS 1.3";
  return caps;
}

const KtlsCaps& ktlsCaps() {
  static const KtlsCaps caps = probeKtls();
  return caps;
}

std::string KtlsCaps::summary() const {
  if (!usable()) return "kTLS: unavailable (" + reason + ")";
  std::string out = "kTLS: TX";
  if (anyRx()) out += "+RX";
  for (size_t i = 0; i < kKtlsCipherCount; ++i) {
    if (!tx[i]) continue;
    out += ", ";
    out += ktlsCipherName(static_cast<KtlsCipher>(i));
    if (!rx[i]) out += " (TX only)";
  }
  return out;
}

}  // namespace ringlb::tls
