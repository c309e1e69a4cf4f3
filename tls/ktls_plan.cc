#include "tls/ktls_plan.h"

namespace ringlb::tls {

std::optional<KtlsCipher> ktlsCipherFromName(std::string_view name) {
  auto has = [&](std::string_view part) { return name.find(part) != std::string_view::npos; };
  if (has("CCM")) return std::nullopt;
  if (has("AES_128_GCM") || has("AES128-GCM")) return KtlsCipher::AesGcm128;
  if (has("AES_256_GCM") || has("AES256-GCM")) return KtlsCipher::AesGcm256;
  if (has("CHACHA20")) return KtlsCipher::Chacha20Poly1305;
  return std::nullopt;
}

KtlsPlan ktlsPlan(KtlsMode mode, const KtlsCaps& caps, uint16_t version, std::string_view cipher, KtlsSide side) {
  KtlsPlan plan;
  plan.side = side;
  plan.cipher = cipher;
  if (mode == KtlsMode::Off) {
    plan.why = KtlsRefusal::ConfigOff;
  } else if (!caps.usable()) {
    plan.why = KtlsRefusal::Kernel;
  } else if (version != 0x0303 && version != 0x0304) {
    plan.why = KtlsRefusal::Version;
  } else if (std::optional<KtlsCipher> c = ktlsCipherFromName(cipher); !c) {
    plan.why = KtlsRefusal::Cipher;
  } else if (!caps.tx[static_cast<size_t>(*c)]) {
    plan.why = KtlsRefusal::CipherNotInKernel;
  } else if (side == KtlsSide::Backend && version == 0x0304) {
    plan.why = KtlsRefusal::PostHandshake;
  } else {
    plan.tx = true;
    plan.rx = caps.rx[static_cast<size_t>(*c)];
    if (!plan.rx) plan.why = KtlsRefusal::RxNotInKernel;
  }
  return plan;
}

void ktlsRelayPlan(KtlsPlan& client, KtlsPlan* backend) {
  bool client_ok = client.full();
  bool backend_ok = backend == nullptr || backend->full();
  if (client_ok && backend_ok) return;
  // Nothing goes to the kernel unless both sides can: a user-space side would need its
  // records made by OpenSSL, and this relay does not mix the two.
  auto drop = [](KtlsPlan& plan) {
    plan.tx = plan.rx = false;
    if (plan.why == KtlsRefusal::None) plan.why = KtlsRefusal::OtherSide;
  };
  drop(client);
  if (backend != nullptr) drop(*backend);
}

std::string KtlsPlan::describe(const KtlsCaps& caps) const {
  std::string out = side == KtlsSide::Client ? "ktls: client " : "ktls: backend ";
  switch (why) {
    case KtlsRefusal::None: return out + "TX+RX (" + std::string(cipher) + ")";
    case KtlsRefusal::ConfigOff: return out + "off in [crypto]";
    case KtlsRefusal::Kernel: return out + "unavailable: " + caps.reason;
    case KtlsRefusal::Version: return out + "protocol version not supported by kTLS";
    case KtlsRefusal::Cipher:
    case KtlsRefusal::CipherNotInKernel: return out + "cipher " + std::string(cipher) + " unsupported by kernel";
    case KtlsRefusal::RxNotInKernel: return out + "TX only: kernel cannot decrypt " + std::string(cipher);
    case KtlsRefusal::PostHandshake:
      return out + "off: a TLS 1.3 server may still send NewSessionTickets, which kernel RX would fail on";
    case KtlsRefusal::OtherSide: return out + "off: the other side of the relay cannot use kTLS";
    case KtlsRefusal::Keys: return out + "off: traffic keys could not be extracted";
    case KtlsRefusal::Busy: return out + "off: records in flight at the end of the handshake";
    case KtlsRefusal::Install: return out + "off: the kernel refused the keys";
  }
  return out;
}

std::string KtlsPlan::logValue() const {
  if (full()) return "tx,rx";
  const char* reason = "?";
  switch (why) {
    case KtlsRefusal::None: reason = "none"; break;
    case KtlsRefusal::ConfigOff: reason = "config"; break;
    case KtlsRefusal::Kernel: reason = "kernel"; break;
    case KtlsRefusal::Version: reason = "version"; break;
    case KtlsRefusal::Cipher:
    case KtlsRefusal::CipherNotInKernel: reason = "cipher"; break;
    case KtlsRefusal::RxNotInKernel: reason = "rx-unsupported"; break;
    case KtlsRefusal::PostHandshake: reason = "tickets"; break;
    case KtlsRefusal::OtherSide: reason = "other-side"; break;
    case KtlsRefusal::Keys: reason = "keys"; break;
    case KtlsRefusal::Busy: reason = "busy"; break;
    case KtlsRefusal::Install: reason = "install"; break;
  }
  return std::string("off(") + reason + ")";
}

}  // namespace ringlb::tls
