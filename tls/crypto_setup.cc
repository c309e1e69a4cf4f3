// ENGINE_* is deprecated in OpenSSL 3.0 but is the only interface to the engines [crypto]
// names (afalg, padlock, QAT's engine); providers are the supported path.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "tls/crypto_setup.h"

#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "tls/cpu_features.h"

namespace ringlb::tls {
namespace {

enum class Kind { Cipher, Signature, KeyExchange, Digest, Kdf };

struct Algorithm {
  std::string_view label;
  Kind kind;
  const char* name;  // OpenSSL 3 fetch name
  int nid;           // for the ENGINE tables
};

// What ringlb's TLS 1.2/1.3 suites, certificates and groups use.
constexpr Algorithm kReported[] = {
    {"AES-128-GCM", Kind::Cipher, "AES-128-GCM", NID_aes_128_gcm},
    {"AES-256-GCM", Kind::Cipher, "AES-256-GCM", NID_aes_256_gcm},
    {"ChaCha20-Poly1305", Kind::Cipher, "ChaCha20-Poly1305", NID_chacha20_poly1305},
    {"ECDSA (P-256 signing)", Kind::Signature, "ECDSA", NID_X9_62_id_ecPublicKey},
    {"RSA (2048 signing)", Kind::Signature, "RSA", NID_rsaEncryption},
    {"X25519", Kind::KeyExchange, "X25519", NID_X25519},
};
// Needed by every handshake (transcript hash, key schedule); reported on one line.
constexpr Algorithm kTlsSupport[] = {
    {"SHA-256", Kind::Digest, "SHA256", NID_sha256},
    {"SHA-384", Kind::Digest, "SHA384", NID_sha384},
    {"HKDF", Kind::Kdf, "HKDF", NID_undef},
    {"TLS1-PRF", Kind::Kdf, "TLS1-PRF", NID_undef},
};
constexpr std::string_view kTlsSupportLabel = "TLS hashes and KDFs (SHA-256, SHA-384, HKDF, TLS1-PRF)";

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// The thread's OpenSSL error queue as "reason (data); reason", emptied. Codes without an
// error string (engines loaded from engines-3/ register none) are shown as numbers, and only
// when nothing else in the queue has a name.
std::string drainErrors() {
  std::string named;
  std::string unnamed;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    const char* reason = ERR_reason_error_string(code);
    std::string item = reason != nullptr ? reason
                                         : "reason " + std::to_string(ERR_GET_REASON(code)) + " of library " +
                                               std::to_string(ERR_GET_LIB(code));
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') item += " (" + std::string(data) + ")";
    std::string& out = reason != nullptr ? named : unnamed;
    if (out.find(item) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += item;
  }
  if (!named.empty()) return named;
  return unnamed.empty() ? "no reason in OpenSSL's error queue" : unnamed;
}

std::string activeProviders(OSSL_LIB_CTX* ctx) {
  std::string names;
  OSSL_PROVIDER_do_all(
      ctx,
      [](OSSL_PROVIDER* provider, void* out) {
        auto* text = static_cast<std::string*>(out);
        if (!text->empty()) *text += ", ";
        *text += OSSL_PROVIDER_get0_name(provider);
        return 1;
      },
      &names);
  return names.empty() ? "none" : names;
}

// OpenSSL_version(OPENSSL_MODULES_DIR) reads `MODULESDIR: "/usr/lib/.../ossl-modules"`.
std::string modulesDir() {
  std::string_view text = OpenSSL_version(OPENSSL_MODULES_DIR);
  size_t open = text.find('"');
  size_t close = text.rfind('"');
  if (open == std::string_view::npos || close <= open) return std::string(text);
  return std::string(text.substr(open + 1, close - open - 1));
}

}  // namespace

std::string providerModulesDir() { return modulesDir(); }

namespace {

// Providers loaded explicitly hold a reference that only OSSL_PROVIDER_unload() drops:
// freeing their library context (or OPENSSL_cleanup at exit) leaves them behind otherwise.
using LoadedProviders = std::vector<OSSL_PROVIDER*>;

void unloadProviders(LoadedProviders& loaded) {
  for (auto it = loaded.rbegin(); it != loaded.rend(); ++it) OSSL_PROVIDER_unload(*it);
  loaded.clear();
}

// The providers applyCryptoConfig() loaded into the default context, for releaseCrypto().
LoadedProviders& processProviders() {
  static LoadedProviders providers;
  return providers;
}

bool loadProviders(OSSL_LIB_CTX* ctx, const CryptoConfig& config, LoadedProviders& loaded, std::string* error) {
  for (const std::string& name : config.providers) {
    ERR_clear_error();
    OSSL_PROVIDER* provider = OSSL_PROVIDER_load(ctx, name.c_str());
    if (provider != nullptr) loaded.push_back(provider);
    if (provider == nullptr) {
      *error = "cannot load OpenSSL provider " + quoted(name) + ": " + drainErrors() +
               " (providers are looked up by name in " + modulesDir() +
               " or $OPENSSL_MODULES, or given as an absolute path)";
      return false;
    }
  }
  return true;
}

bool setPropertyQuery(OSSL_LIB_CTX* ctx, const CryptoConfig& config, std::string* error) {
  if (config.property_query.empty()) return true;
  ERR_clear_error();
  if (EVP_set_default_properties(ctx, config.property_query.c_str()) == 1) return true;
  *error = "property_query " + quoted(config.property_query) + " is not a valid OpenSSL property query: " +
           drainErrors() + " (see property(7): e.g. \"provider=default\" or \"?provider=qatprovider\")";
  return false;
}

// AF_ALG (af_alg(7)) is what the afalg engine drives; a kernel without it refuses the socket.
bool afAlgUnavailable(std::string* why) {
  int fd = ::socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    ::close(fd);
    return false;
  }
  int err = errno;
  *why = std::strerror(err);
  return err == EAFNOSUPPORT;
}

std::string engineFailure(const std::string& id, std::string_view step, const std::string& reasons) {
  std::string text = "cannot " + std::string(step) + " OpenSSL engine " + quoted(id);
  std::string why;
  if (id == "afalg" && afAlgUnavailable(&why)) {
    text += ": the kernel's AF_ALG interface is not available (socket(AF_ALG, SOCK_SEQPACKET, 0): " + why +
            "; the kernel needs CONFIG_CRYPTO_USER_API_SKCIPHER, or the algif_skcipher module loaded)";
  }
  return text + "; OpenSSL: " + reasons;
}

unsigned engineFlags(const std::vector<std::string>& classes) {
  if (classes.empty()) return ENGINE_METHOD_ALL;
  unsigned flags = 0;
  for (const std::string& c : classes) {
    if (c == "RSA") flags |= ENGINE_METHOD_RSA;
    if (c == "EC") flags |= ENGINE_METHOD_EC;
    if (c == "DH") flags |= ENGINE_METHOD_DH;
    if (c == "PKEY") flags |= ENGINE_METHOD_PKEY_METHS | ENGINE_METHOD_PKEY_ASN1_METHS;
    if (c == "CIPHERS") flags |= ENGINE_METHOD_CIPHERS;
    if (c == "DIGESTS") flags |= ENGINE_METHOD_DIGESTS;
    if (c == "ALL") flags |= ENGINE_METHOD_ALL;
  }
  return flags;
}

// Loads and initialises the engine (engines-3/<id>.so through the "dynamic" engine, or a
// built-in one). `make_default`: hand it the configured classes (ENGINE_set_default takes its
// own functional reference); otherwise release it again.
bool setUpEngine(const CryptoConfig& config, bool make_default, std::string* error) {
  if (config.engine.empty()) return true;
  ENGINE_load_builtin_engines();  // idempotent; registers "dynamic" for ENGINE_by_id
  ERR_clear_error();
  ENGINE* engine = ENGINE_by_id(config.engine.c_str());
  if (engine == nullptr) {
    *error = engineFailure(config.engine, "load", drainErrors());
    return false;
  }
  if (ENGINE_init(engine) != 1) {
    std::string reasons = drainErrors();
    if (reasons.starts_with("no reason"))
      reasons += " (its init function refused: usually the hardware or driver it needs is missing)";
    *error = engineFailure(config.engine, "initialise", reasons);
    ENGINE_free(engine);
    return false;
  }
  bool ok = true;
  if (make_default && ENGINE_set_default(engine, engineFlags(config.engine_algorithms)) != 1) {
    *error = "cannot make OpenSSL engine " + quoted(config.engine) + " the default for its algorithms: " +
             drainErrors();
    ok = false;
  }
  ENGINE_finish(engine);
  ENGINE_free(engine);
  return ok;
}

// The provider that a fetch with the library context's default property query returns.
const OSSL_PROVIDER* fetchProvider(OSSL_LIB_CTX* ctx, const Algorithm& a) {
  const OSSL_PROVIDER* provider = nullptr;
  switch (a.kind) {
    case Kind::Cipher:
      if (EVP_CIPHER* c = EVP_CIPHER_fetch(ctx, a.name, nullptr)) {
        provider = EVP_CIPHER_get0_provider(c);
        EVP_CIPHER_free(c);
      }
      break;
    case Kind::Signature:
      if (EVP_SIGNATURE* s = EVP_SIGNATURE_fetch(ctx, a.name, nullptr)) {
        provider = EVP_SIGNATURE_get0_provider(s);
        EVP_SIGNATURE_free(s);
      }
      break;
    case Kind::KeyExchange:
      if (EVP_KEYEXCH* k = EVP_KEYEXCH_fetch(ctx, a.name, nullptr)) {
        provider = EVP_KEYEXCH_get0_provider(k);
        EVP_KEYEXCH_free(k);
      }
      break;
    case Kind::Digest:
      if (EVP_MD* md = EVP_MD_fetch(ctx, a.name, nullptr)) {
        provider = EVP_MD_get0_provider(md);
        EVP_MD_free(md);
      }
      break;
    case Kind::Kdf:
      if (EVP_KDF* kdf = EVP_KDF_fetch(ctx, a.name, nullptr)) {
        provider = EVP_KDF_get0_provider(kdf);
        EVP_KDF_free(kdf);
      }
      break;
  }
  return provider;
}

// The engine set as the default for `a` by ENGINE_set_default (libssl and EVP prefer it to
// the providers for legacy-style operations), or "".
std::string engineFor(const Algorithm& a) {
  ENGINE* e = nullptr;
  switch (a.kind) {
    case Kind::Cipher: e = ENGINE_get_cipher_engine(a.nid); break;
    case Kind::Signature: e = a.nid == NID_rsaEncryption ? ENGINE_get_default_RSA() : ENGINE_get_default_EC(); break;
    case Kind::KeyExchange: e = ENGINE_get_pkey_meth_engine(a.nid); break;
    case Kind::Digest: e = ENGINE_get_digest_engine(a.nid); break;
    case Kind::Kdf: break;
  }
  if (e == nullptr) return {};
  std::string id = ENGINE_get_id(e);
  ENGINE_finish(e);
  return id;
}

// "provider default" / "engine qatengine", or false with `error` naming the algorithm.
bool implementation(OSSL_LIB_CTX* ctx, const CryptoConfig& config, const Algorithm& a, bool engines,
                    std::string* out, std::string* error) {
  if (engines && !config.engine.empty()) {
    if (std::string id = engineFor(a); !id.empty()) {
      *out = "engine " + id;
      return true;
    }
  }
  ERR_clear_error();
  const OSSL_PROVIDER* provider = fetchProvider(ctx, a);
  if (provider == nullptr) {
    std::string reasons = drainErrors();
    *error = std::string(a.label) + ": no implementation in the loaded providers (" + activeProviders(ctx) + ")";
    if (!config.property_query.empty()) *error += " matches property_query " + quoted(config.property_query);
    *error += "; OpenSSL: " + reasons;
    return false;
  }
  *out = std::string("provider ") + OSSL_PROVIDER_get0_name(provider);
  return true;
}

bool setUp(OSSL_LIB_CTX* ctx, const CryptoConfig& config, bool apply, LoadedProviders& loaded, std::string* error,
           std::vector<std::string>* report) {
  if (!loadProviders(ctx, config, loaded, error) || !setPropertyQuery(ctx, config, error) ||
      !setUpEngine(config, apply, error)) {
    return false;
  }
  std::vector<std::string> lines;
  std::string impl;
  for (const Algorithm& a : kReported) {
    if (!implementation(ctx, config, a, apply, &impl, error)) return false;
    lines.push_back(std::string(a.label) + ": " + impl);
  }
  std::string support;
  for (const Algorithm& a : kTlsSupport) {
    if (!implementation(ctx, config, a, apply, &impl, error)) return false;
    if (support.find(impl) == std::string::npos) support += (support.empty() ? "" : ", ") + impl;
  }
  lines.push_back(std::string(kTlsSupportLabel) + ": " + support);
  if (report == nullptr) return true;
  report->push_back("providers: " + activeProviders(ctx));
  report->push_back("property query: " + (config.property_query.empty() ? "none" : quoted(config.property_query)));
  std::string engine = "none";
  if (!config.engine.empty()) {
    engine = config.engine + " for ";
    if (config.engine_algorithms.empty()) engine += "ALL";
    for (size_t i = 0; i < config.engine_algorithms.size(); ++i)
      engine += (i > 0 ? ", " : "") + config.engine_algorithms[i];
  }
  report->push_back("engine: " + engine);
  report->insert(report->end(), lines.begin(), lines.end());
  for (std::string& line : describeCpuFeatures(readCpuId(), std::getenv("OPENSSL_ia32cap")))
    report->push_back(std::move(line));
  return true;
}

}  // namespace

bool checkCryptoConfig(const CryptoConfig& config, std::string* error) {
  std::unique_ptr<OSSL_LIB_CTX, decltype(&OSSL_LIB_CTX_free)> ctx(OSSL_LIB_CTX_new(), &OSSL_LIB_CTX_free);
  if (!ctx) {
    *error = "cannot create an OpenSSL library context: " + drainErrors();
    return false;
  }
  LoadedProviders loaded;
  bool ok = setUp(ctx.get(), config, /*apply=*/false, loaded, error, nullptr);
  unloadProviders(loaded);  // before the context goes
  return ok;
}

void releaseCrypto() { unloadProviders(processProviders()); }

bool applyCryptoConfig(const CryptoConfig& config, std::string* error, std::vector<std::string>* report) {
  // A private context first: a provider that fails to load or an algorithm no provider
  // serves is found without changing the default context that every SSL_CTX uses.
  if (!checkCryptoConfig(config, error)) return false;
  LoadedProviders loaded;
  if (!setUp(nullptr, config, /*apply=*/true, loaded, error, report)) {
    unloadProviders(loaded);
    return false;
  }
  LoadedProviders& process = processProviders();
  process.insert(process.end(), loaded.begin(), loaded.end());
  return true;
}

}  // namespace ringlb::tls
