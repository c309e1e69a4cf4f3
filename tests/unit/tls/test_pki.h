// In-process PKI and in-memory handshakes for the OpenSSL engine tests: keys (RSA-2048,
// ECDSA P-256), a CA, leaves with DNS/IP SANs, expired leaves, PEM files in a temp dir, and
// handshakes between two SSL objects over a BIO pair. Test code: setup failures abort.
#pragma once

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tls/ssl_ptr.h"

namespace ringlb::tls::pki {

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test PKI setup failed: %s\n", what);
    ERR_print_errors_fp(stderr);
    std::abort();
  }
}

enum class Alg { Rsa2048, EcP256 };

inline EvpPkeyPtr makeKey(Alg alg) {
  EvpPkeyPtr key(alg == Alg::Rsa2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  check(key != nullptr, "key generation");
  return key;
}

// RSA-2048 generation costs ~0.1 s: one shared RSA key per test binary.
inline EVP_PKEY* sharedRsaKey() {
  static EvpPkeyPtr key = makeKey(Alg::Rsa2048);
  return key.get();
}

struct CertSpec {
  std::string cn;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  long not_before_s = -3600;       // relative to now
  long not_after_s = 30L * 86400;  // relative to now
  bool ca = false;
  long serial = 1;
};

inline CertSpec spec(std::string cn, std::vector<std::string> dns = {},
                     std::vector<std::string> ips = {}) {
  CertSpec s;
  s.cn = std::move(cn);
  s.dns = std::move(dns);
  s.ips = std::move(ips);
  return s;
}

inline void addExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

// A certificate for `key`, signed by `issuer`/`issuer_key` (both null = self-signed).
inline X509Ptr makeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer = nullptr,
                        EVP_PKEY* issuer_key = nullptr) {
  X509Ptr cert(X509_new());
  X509* x = cert.get();
  check(X509_set_version(x, 2) == 1, "version");
  check(ASN1_INTEGER_set(X509_get_serialNumber(x), spec.serial) == 1, "serial");
  check(X509_gmtime_adj(X509_getm_notBefore(x), spec.not_before_s) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(x), spec.not_after_s) != nullptr, "notAfter");
  check(X509_set_pubkey(x, key) == 1, "pubkey");
  X509_NAME* name = X509_get_subject_name(x);
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                                   -1, 0) == 1,
        "CN");
  X509* signer = issuer != nullptr ? issuer : x;
  check(X509_set_issuer_name(x, X509_get_subject_name(signer)) == 1, "issuer");
  if (spec.ca) {
    addExt(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    addExt(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExt(x, signer, NID_basic_constraints, "critical,CA:FALSE");
    addExt(x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  addExt(x, signer, NID_subject_key_identifier, "hash");
  std::string san;
  for (const auto& d : spec.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : spec.ips) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) addExt(x, signer, NID_subject_alt_name, san.c_str());
  check(X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "sign");
  return cert;
}

struct Ca {
  EvpPkeyPtr key;
  X509Ptr cert;
};

inline Ca makeCa(const std::string& cn) {
  Ca ca;
  ca.key = makeKey(Alg::EcP256);
  CertSpec spec;
  spec.cn = cn;
  spec.ca = true;
  spec.not_after_s = 365L * 86400;
  ca.cert = makeCert(spec, ca.key.get());
  return ca;
}

// A leaf and its key, issued by `ca`.
struct Leaf {
  EvpPkeyPtr key;
  X509Ptr cert;
};

inline Leaf makeLeaf(const Ca& ca, CertSpec spec, Alg alg = Alg::EcP256) {
  Leaf leaf;
  if (alg == Alg::Rsa2048) {
    EVP_PKEY_up_ref(sharedRsaKey());
    leaf.key.reset(sharedRsaKey());
  } else {
    leaf.key = makeKey(alg);
  }
  static long serial = 100;
  spec.serial = ++serial;
  leaf.cert = makeCert(spec, leaf.key.get(), ca.cert.get(), ca.key.get());
  return leaf;
}

inline std::string certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

inline std::string keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ringlb-tls-XXXXXX").string();
    check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `content` to <dir>/<name> with `mode`; returns the full path.
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string file = path_ + "/" + name;
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << content;
      check(out.good(), "write temp file");
    }
    check(::chmod(file.c_str(), mode) == 0, "chmod");
    return file;
  }

  // A PEM file with the leaf, then the chain, then (optionally) the key.
  std::string writeLeaf(const std::string& name, const Leaf& leaf, const Ca* ca = nullptr,
                        bool with_key = true, mode_t mode = 0600) {
    std::string pem = certPem(leaf.cert.get());
    if (ca != nullptr) pem += certPem(ca->cert.get());
    if (with_key) pem += keyPem(leaf.key.get());
    return write(name, pem, mode);
  }

 private:
  std::string path_;
};

// ---- in-memory handshakes ----

struct HandshakeResult {
  bool ok = false;
  std::string client_error;  // OpenSSL error queue text of the failing side
  std::string server_error;
  int client_alert = -1;     // fatal alert description the client received, -1 = none
};

inline thread_local int t_last_alert_received = -1;

inline void recordAlert(const SSL*, int where, int ret) {
  if ((where & SSL_CB_READ_ALERT) != 0) t_last_alert_received = ret & 0xff;
}

// Connects client and server with a BIO pair and runs both handshakes to completion or
// failure (the other side then gets one more step to read the alert).
inline HandshakeResult handshake(SSL* client, SSL* server) {
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  check(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1, "BIO_new_bio_pair");
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  t_last_alert_received = -1;
  // Only where the context has no info callback of its own (ClientContext has one, and a
  // per-SSL callback would replace it).
  if (SSL_CTX_get_info_callback(SSL_get_SSL_CTX(client)) == nullptr) {
    SSL_set_info_callback(client, recordAlert);
  }
  HandshakeResult result;
  bool client_done = false;
  bool server_done = false;
  int failed_steps = 0;
  auto step = [](SSL* ssl, bool* done, std::string* error) {
    if (*done) return true;
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
      *done = true;
      return true;
    }
    const int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    *error = opensslErrors();
    if (error->empty()) *error = "SSL_get_error " + std::to_string(e);
    return false;
  };
  for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
    bool ok = step(client, &client_done, &result.client_error);
    ok = step(server, &server_done, &result.server_error) && ok;
    if (!ok && ++failed_steps >= 2) break;
  }
  result.ok = client_done && server_done && result.client_error.empty() &&
              result.server_error.empty();
  result.client_alert = t_last_alert_received;
  return result;
}

// Lets the client read what the server sent after the handshake (TLS 1.3 NewSessionTicket).
inline void readPostHandshake(SSL* client) {
  char byte;
  const int rc = SSL_read(client, &byte, 1);
  check(rc <= 0 && SSL_get_error(client, rc) == SSL_ERROR_WANT_READ, "post-handshake read");
}

// close_notify both ways. Freeing an SSL that was not shut down marks its session
// non-resumable (SSL_free(3) -> ssl_clear_bad_session), so tests that resume must close.
inline void closeCleanly(SSL* client, SSL* server) {
  SSL_shutdown(client);
  SSL_shutdown(server);
}

}  // namespace ringlb::tls::pki
