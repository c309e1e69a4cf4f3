// The client side of re-encryption: ringlb -> the backends of one pool.
//
// Contract:
//  - ClientCredentials::load() reads the CA file / CA directory and the optional client
//    certificate chain + key once, before privileges are dropped. Immutable afterwards and
//    shared read-only by the per-worker ClientContexts.
//  - ClientContext is built per worker per pool (no SSL_CTX shared between threads) and does
//    no file I/O. It verifies the backend (SSL_VERIFY_PEER, the configured CAs only, never the
//    system store) unless verify = false.
//  - newSsl() makes a client-mode SSL: SNI, the name the certificate must carry, ALPN offer,
//    and the cached session of `slot` to resume.
//  - BackendSessionSlot holds the newest resumable session of one backend for one worker.
//    It is filled when the backend sends a session (new-session callback; in TLS 1.3 after
//    the handshake, when the client reads the NewSessionTicket), and cleared when a handshake
//    with it fails (our or the peer's fatal alert, including verification failure) or when an
//    offered session was not resumed and no newer one arrived. Single-threaded (per worker).
//  - Lifetimes: the ClientContext and the slot passed to newSsl() must outlive the SSL.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls/ssl_ptr.h"
#include "tls/tls_config.h"

namespace ringlb::tls {

class ClientCredentials {
 public:
  // nullptr if any error; all problems are appended to *errors, key-permission warnings to
  // *warnings (either may be null).
  static std::shared_ptr<const ClientCredentials> load(const ClientTlsConfig& config,
                                                       std::vector<std::string>* errors,
                                                       std::vector<std::string>* warnings);

  const std::vector<X509Ptr>& cas() const { return cas_; }
  X509* certificate() const { return cert_.get(); }  // null = no client certificate
  const std::vector<X509Ptr>& chain() const { return chain_; }
  EVP_PKEY* key() const { return key_.get(); }

 private:
  std::vector<X509Ptr> cas_;
  X509Ptr cert_;
  std::vector<X509Ptr> chain_;
  EvpPkeyPtr key_;
};

// A resumed session skips certificate verification, so the slot remembers the name the
// session's certificate was verified for and the SNI it was made with; newSsl() offers it
// only for the same pair (with forward_sni, different clients' names must not share a
// session). OpenSSL's SSL_SESSION_get0_hostname() cannot serve: a client session records
// the SNI only if the server acknowledged it.
class BackendSessionSlot {
 public:
  SSL_SESSION* get() const { return session_.get(); }
  const std::string& verifiedName() const { return verified_name_; }
  const std::string& sni() const { return sni_; }
  void set(SslSessionPtr session, std::string verified_name, std::string sni) {
    session_ = std::move(session);
    verified_name_ = std::move(verified_name);
    sni_ = std::move(sni);
  }
  void clear() {
    session_.reset();
    verified_name_.clear();
    sni_.clear();
  }

 private:
  SslSessionPtr session_;
  std::string verified_name_;
  std::string sni_;
};

class ClientContext {
 public:
  static std::unique_ptr<ClientContext> create(const ClientTlsConfig& config,
                                               std::shared_ptr<const ClientCredentials> creds,
                                               std::string* error);

  // The name a backend certificate must carry when config.verify_name is empty: `sni` if one
  // is sent, else the backend's address. Callers pass the result as newSsl()'s verify_name,
  // so the fallback is visible at the call site.
  static std::string_view verifyNameFor(const ClientTlsConfig& config, std::string_view sni,
                                        std::string_view backend_ip);

  // `sni`: server_name to send ("" = none). `verify_name`: DNS name, or IPv4/IPv6 literal,
  // the certificate must match; required (non-empty) when verifying. `slot`: may be null (no
  // resumption). `alpn_override`: offer only this protocol instead of config.alpn (forward
  // the client's), "" = config.alpn. nullptr + *error on a bad name or OpenSSL failure.
  SslPtr newSsl(std::string_view sni, std::string_view verify_name, BackendSessionSlot* slot,
                std::string_view alpn_override, std::string* error = nullptr) const;

  SSL_CTX* context() const { return ctx_.get(); }

  // [crypto] async: SSL_MODE_ASYNC, so the SSLs made afterwards run their handshakes as
  // OpenSSL async jobs (see TlsStream::WantAsync). Call before the first newSsl().
  void enableAsync() { SSL_CTX_set_mode(ctx_.get(), SSL_MODE_ASYNC); }

 private:
  ClientContext() = default;

  std::shared_ptr<const ClientCredentials> creds_;
  SslCtxPtr ctx_;
  std::vector<unsigned char> alpn_;  // RFC 7301 wire format
  bool verify_ = true;
  bool session_reuse_ = true;
};

// Why the handshake on `ssl` failed verification, exact enough for the log line:
//   "certificate verify failed: certificate has expired (depth 0, subject CN=b2.internal.test)"
//   "Hostname mismatch: certificate is for DNS:wrong.internal.test, expected b1.internal.test"
//   "IP address mismatch: certificate is for IP:10.0.0.1, expected 10.0.0.2"
//   "certificate verify failed: unable to get local issuer certificate (depth 0, subject
//    CN=b1.internal.test, issuer CN=Other CA)"
// "" if verification did not fail. Works for SSLs of any ClientContext.
std::string verifyFailure(const SSL* ssl);

}  // namespace ringlb::tls
