// The server side of TLS termination, one ServerContext per worker thread.
//
// Contract:
//  - create() builds one SSL_CTX per Identity of the CertificateStore (all of an identity's
//    certificates + chains installed, so OpenSSL picks RSA or ECDSA from the client's
//    signature_algorithms), every context otherwise configured identically: policy, ALPN,
//    tickets, session cache, client verification, modes. Per worker, so no SSL_CTX lock is
//    shared between threads; the parsed certificates and keys are shared read-only.
//  - It performs no file I/O: everything was read by CertificateStore::load() (and the ticket
//    keys by TicketKeys::load()), so it may run after privileges are dropped.
//  - newSsl() returns a server-mode SSL on the default identity's context. During the
//    handshake the client-hello callback reads SNI and switches the SSL to the identity's
//    context (SSL_set_SSL_CTX). With strict_sni, an absent or unknown name fails the handshake
//    with an unrecognized_name alert (RFC 6066 s3). The SSL keeps a pointer to this
//    ServerContext: the ServerContext must outlive every SSL it made.
//  - Tickets: when session_tickets is on, `ticket_keys` must be non-null (TicketKeys::random()
//    if the operator configured no file); all contexts get the same keys, so tickets work
//    across workers (and instances sharing a key file). Off: SSL_OP_NO_TICKET; TLS 1.3 then
//    issues stateful tickets backed by the session cache.
//  - Session cache: internal, bounded to session_cache_size entries (0 = off), entries live
//    session_lifetime; per worker (a client resuming on another worker does a full handshake
//    unless it uses a ticket).
//  - ALPN: server preference over config.alpn; no overlap = no ALPN (SSL_TLSEXT_ERR_NOACK).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls/certificate_store.h"
#include "tls/ssl_ptr.h"
#include "tls/ticket_keys.h"
#include "tls/tls_config.h"

namespace ringlb::tls {

class SharedSessionCache;

class ServerContext {
 public:
  // nullptr and *error on failure (message names the setting or identity at fault).
  // `sessions`: the listener's session cache shared by all workers (see session_cache.h);
  // null = this context's own (per worker) cache.
  static std::unique_ptr<ServerContext> create(const ServerTlsConfig& config,
                                               std::shared_ptr<const CertificateStore> store,
                                               std::shared_ptr<const TicketKeys> ticket_keys,
                                               std::string* error,
                                               std::shared_ptr<SharedSessionCache> sessions = nullptr);

  // A fresh server-mode SSL (accept state), no BIOs attached. nullptr if OpenSSL is out of
  // memory.
  SslPtr newSsl() const;

  // [crypto] async: SSL_MODE_ASYNC on every identity's context, so the SSLs made afterwards
  // run their handshakes as OpenSSL async jobs (see TlsStream::WantAsync). Call before
  // the first newSsl().
  void enableAsync();

  // The context of an identity (tests, stats). `index` < store().identities().size().
  SSL_CTX* contextFor(size_t index) const { return contexts_[index].get(); }
  const CertificateStore& store() const { return *store_; }

  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;
  ~ServerContext();

 private:
  ServerContext() = default;
  bool configure(SSL_CTX* ctx, const Identity& identity, const ServerTlsConfig& config,
                 std::string* error);
  static int onClientHello(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_len,
                    const unsigned char* in, unsigned int in_len, void* arg);

  std::shared_ptr<const CertificateStore> store_;
  std::shared_ptr<const TicketKeys> ticket_keys_;
  std::shared_ptr<SharedSessionCache> sessions_;
  std::vector<SslCtxPtr> contexts_;     // parallel to store_->identities()
  std::vector<unsigned char> alpn_;     // RFC 7301 wire format, server preference order
  std::vector<unsigned char> sid_ctx_;  // SSL_CTX_set_session_id_context value
  bool strict_sni_ = false;
};

// What logs and PROXY v2 TLVs want to know about an established connection. The views point
// into OpenSSL-owned memory (static tables or the SSL/SSL_SESSION) and are valid while `ssl`
// lives and is not renegotiated (ringlb never renegotiates).
struct SessionInfo {
  std::string_view version;   // "TLSv1.3"
  std::string_view cipher;    // OpenSSL name, e.g. "TLS_AES_128_GCM_SHA256"
  std::string_view sni;       // "" if the client sent none
  std::string_view alpn;      // "" if none was negotiated
  bool resumed = false;
  bool client_cert_presented = false;
  bool client_cert_verified = false;  // presented, and chain verification succeeded
  std::string client_subject;         // RFC 2253, "" without a client certificate
  std::string client_cn;
  std::string_view key_alg;   // our certificate's key: "RSA", "ECDSA", or OpenSSL's type name
  int key_bits = 0;
  // Hash of the signature we made ("SHA256"); OpenSSL 3.0 does not expose the scheme itself
  // (RSA-PSS vs PKCS#1) for our own side.
  std::string_view sig_hash;
};

// `with_client_names` = false skips the two client certificate strings (the only allocations).
SessionInfo sessionInfo(SSL* ssl, bool with_client_names = true);

}  // namespace ringlb::tls
