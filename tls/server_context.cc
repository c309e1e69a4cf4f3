#include "tls/server_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "tls/pem_files.h"
#include "tls/policy.h"
#include "tls/session_cache.h"

namespace ringlb::tls {
namespace {

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = withOpensslErrors(std::move(message));
  ERR_clear_error();
  return false;
}

// The host_name of a server_name extension body (RFC 6066 s3):
//   u16 list length | { u8 name_type | u16 length | name }...
// Returns false if malformed; *name is empty if there is no host_name entry.
bool parseServerName(const unsigned char* data, size_t len, std::string_view* name) {
  *name = {};
  if (len < 2) return false;
  const size_t list_len = (size_t{data[0]} << 8) | data[1];
  if (list_len + 2 != len) return false;
  size_t pos = 2;
  while (pos + 3 <= len) {
    const unsigned type = data[pos];
    const size_t name_len = (size_t{data[pos + 1]} << 8) | data[pos + 2];
    pos += 3;
    if (pos + name_len > len) return false;
    if (type == 0 /* host_name */ && name->empty()) {
      *name = std::string_view(reinterpret_cast<const char*>(data + pos), name_len);
    }
    pos += name_len;
  }
  return pos == len;
}

bool installCertificates(SSL_CTX* ctx, const Identity& identity, std::string* error) {
  for (const Certificate* cert : identity.certificates) {
    // SSL_CTX_use_certificate(3) selects the slot by the certificate's key type, so each key
    // type gets its own cert + key + chain; add1 keeps our references intact.
    if (SSL_CTX_use_certificate(ctx, cert->leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, cert->key.get()) != 1) {
      return fail(error, cert->path + ": OpenSSL refused the certificate or key");
    }
    for (const auto& intermediate : cert->chain) {
      if (SSL_CTX_add1_chain_cert(ctx, intermediate.get()) != 1) {
        return fail(error, cert->path + ": OpenSSL refused a chain certificate");
      }
    }
  }
  return true;
}

bool installClientVerification(SSL_CTX* ctx, const ServerTlsConfig& config,
                               const CertificateStore& store, std::string* error) {
  if (config.client_verify == ClientVerify::None) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return true;
  }
  X509StorePtr trust(X509_STORE_new());
  if (!trust) return fail(error, "cannot create X509_STORE");
  for (const auto& ca : store.clientCas()) {
    if (X509_STORE_add_cert(trust.get(), ca.get()) != 1 ||
        SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {  // also the certificate_authorities list
      return fail(error, config.client_ca_file + ": OpenSSL refused a CA certificate");
    }
  }
  for (const auto& crl : store.clientCrls()) {
    if (X509_STORE_add_crl(trust.get(), crl.get()) != 1) {
      return fail(error, config.client_crl_file + ": OpenSSL refused a CRL");
    }
  }
  if (!store.clientCrls().empty()) {
    // Leaf only: CRLs for intermediates would have to be configured too, which nobody does.
    X509_STORE_set_flags(trust.get(), X509_V_FLAG_CRL_CHECK);
  }
  SSL_CTX_set_cert_store(ctx, trust.release());  // takes ownership
  int mode = SSL_VERIFY_PEER;
  if (config.client_verify == ClientVerify::Required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, mode, nullptr);
  SSL_CTX_set_verify_depth(ctx, static_cast<int>(config.client_verify_depth));
  return true;
}

// Sessions must not resume across listeners with different client verification (RFC 5246
// s7.4.1.2 leaves it to the server; SSL_CTX_set_session_id_context(3)): hash the settings
// that make a session valid here into the 32-byte context.
std::vector<unsigned char> sessionIdContext(const ServerTlsConfig& config) {
  std::string material = "ringlb-server|verify=";
  material += std::to_string(static_cast<int>(config.client_verify));
  material += "|ca=" + config.client_ca_file + "|crl=" + config.client_crl_file;
  std::vector<unsigned char> digest(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EVP_Digest(material.data(), material.size(), digest.data(), &len, EVP_sha256(), nullptr);
  digest.resize(std::min<size_t>(len, SSL_MAX_SID_CTX_LENGTH));
  return digest;
}

}  // namespace

ServerContext::~ServerContext() = default;

std::unique_ptr<ServerContext> ServerContext::create(const ServerTlsConfig& config,
                                                     std::shared_ptr<const CertificateStore> store,
                                                     std::shared_ptr<const TicketKeys> ticket_keys,
                                                     std::string* error,
                                                     std::shared_ptr<SharedSessionCache> sessions) {
  if (store == nullptr || store->identities().empty()) {
    fail(error, "no certificate store");
    return nullptr;
  }
  if (config.session_tickets && ticket_keys == nullptr) {
    fail(error, "session_tickets is on but no ticket keys were given");
    return nullptr;
  }
  std::unique_ptr<ServerContext> self(new ServerContext());
  self->store_ = std::move(store);
  self->ticket_keys_ = std::move(ticket_keys);
  self->sessions_ = std::move(sessions);
  self->strict_sni_ = config.strict_sni;
  self->sid_ctx_ = sessionIdContext(config);
  for (const auto& proto : config.alpn) {
    if (proto.empty() || proto.size() > 255) {
      fail(error, "alpn \"" + proto + "\": must be 1..255 bytes");
      return nullptr;
    }
    self->alpn_.push_back(static_cast<unsigned char>(proto.size()));
    self->alpn_.insert(self->alpn_.end(), proto.begin(), proto.end());
  }
  for (const Identity& identity : self->store_->identities()) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
      fail(error, "cannot create SSL_CTX");
      return nullptr;
    }
    if (!self->configure(ctx.get(), identity, config, error)) return nullptr;
    self->contexts_.push_back(std::move(ctx));
  }
  return self;
}

bool ServerContext::configure(SSL_CTX* ctx, const Identity& identity,
                              const ServerTlsConfig& config, std::string* error) {
  // SSL_set_SSL_CTX() only swaps certificates and the session id context; every other
  // setting that OpenSSL reads from s->ctx mid-handshake (ALPN callback, verify store, CA
  // list) must therefore be the same on all contexts, hence one configure() for all.
  if (!applyPolicy(ctx, config.policy, true, error)) return false;
  if (!installCertificates(ctx, identity, error)) return false;
  if (!installClientVerification(ctx, config, *store_, error)) return false;
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One BIO read per record batch instead of one for the header and one for the body.
  SSL_CTX_set_read_ahead(ctx, 1);
  // A peer closing without close_notify is an end of stream, not a fatal error: OpenSSL would
  // otherwise send itself a fatal alert, which removes the session from every cache and marks
  // it non-resumable (ssl3_send_alert), for all connections sharing it (e.g. a backend
  // session offered to many connections). HTTP peers close without close_notify all the time.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_set_session_id_context(ctx, sid_ctx_.data(),
                                     static_cast<unsigned>(sid_ctx_.size())) != 1) {
    return fail(error, "cannot set session id context");
  }
  if (config.session_cache_size == 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  } else if (sessions_) {
    sessions_->install(ctx);  // shared by the listener's workers
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(config.session_cache_size));
  }
  // Also the ticket lifetime hint (RFC 5077 s3.3, RFC 8446 s4.6.1).
  SSL_CTX_set_timeout(ctx, static_cast<long>(config.session_lifetime.count()));
  if (config.session_tickets) {
    if (!installTicketKeys(ctx, ticket_keys_, error)) return false;
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }
  SSL_CTX_set_client_hello_cb(ctx, onClientHello, this);
  if (!alpn_.empty()) SSL_CTX_set_alpn_select_cb(ctx, onAlpn, this);
  return true;
}

void ServerContext::enableAsync() {
  for (SslCtxPtr& ctx : contexts_) SSL_CTX_set_mode(ctx.get(), SSL_MODE_ASYNC);
}

SslPtr ServerContext::newSsl() const {
  SslPtr ssl(SSL_new(contexts_[store_->defaultIdentity().index].get()));
  if (ssl) SSL_set_accept_state(ssl.get());
  return ssl;
}

// Why the client-hello callback and not the servername callback: it runs first, before
// OpenSSL has chosen version, cipher or resumption (SSL_CTX_set_client_hello_cb(3)), so the
// identity switch happens before anything depends on the context, and strict SNI can refuse
// the connection before any work. It may run twice in TLS 1.3 (after a HelloRetryRequest);
// the second run selects the same context.
int ServerContext::onClientHello(SSL* ssl, int* alert, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const unsigned char* data = nullptr;
  size_t len = 0;
  std::string_view name;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &data, &len) == 1 &&
      !parseServerName(data, len, &name)) {
    *alert = SSL_AD_DECODE_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  const Identity* identity = self->store_->findByName(name);
  if (identity == nullptr) {
    if (self->strict_sni_) {
      // The reason for the log (tls::opensslErrors() appends the error's data).
      if (name.empty()) {
        ERR_raise_data(ERR_LIB_SSL, SSL_R_CALLBACK_FAILED, "strict_sni: the client sent no server name");
      } else {
        ERR_raise_data(ERR_LIB_SSL, SSL_R_CALLBACK_FAILED, "strict_sni: no certificate for server name \"%.*s\"",
                       static_cast<int>(std::min<size_t>(name.size(), 255)), name.data());
      }
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_CLIENT_HELLO_ERROR;
    }
    identity = &self->store_->defaultIdentity();
  }
  SSL_CTX* wanted = self->contexts_[identity->index].get();
  if (SSL_get_SSL_CTX(ssl) != wanted && SSL_set_SSL_CTX(ssl, wanted) != wanted) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

// RFC 7301 s3.2: the server picks; ours is the first of our list the client also offers.
int ServerContext::onAlpn(SSL*, const unsigned char** out, unsigned char* out_len,
                          const unsigned char* in, unsigned int in_len, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const auto& ours = self->alpn_;
  for (size_t i = 0; i < ours.size(); i += 1 + ours[i]) {
    for (unsigned j = 0; j < in_len; j += 1u + in[j]) {
      if (j + 1u + in[j] > in_len) break;  // OpenSSL validated it; be safe anyway
      if (in[j] == ours[i] && std::equal(in + j + 1, in + j + 1 + in[j], ours.begin() +
                                         static_cast<long>(i) + 1)) {
        *out = in + j + 1;
        *out_len = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

SessionInfo sessionInfo(SSL* ssl, bool with_client_names) {
  SessionInfo info;
  info.version = SSL_get_version(ssl);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl)) {
    info.cipher = SSL_CIPHER_get_name(cipher);
  }
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) info.sni = sni;
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn != nullptr) info.alpn = std::string_view(reinterpret_cast<const char*>(alpn), alpn_len);
  info.resumed = SSL_session_reused(ssl) == 1;
  if (X509* peer = SSL_get0_peer_certificate(ssl)) {
    info.client_cert_presented = true;
    info.client_cert_verified = SSL_get_verify_result(ssl) == X509_V_OK &&
                                (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
    if (with_client_names) {
      info.client_subject = nameToString(X509_get_subject_name(peer));
      info.client_cn = commonName(X509_get_subject_name(peer));
    }
  }
  if (X509* own = SSL_get_certificate(ssl)) {
    if (EVP_PKEY* key = X509_get0_pubkey(own)) {
      const int id = EVP_PKEY_get_base_id(key);
      info.key_alg = id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "ECDSA"
                                                                    : EVP_PKEY_get0_type_name(key);
      info.key_bits = EVP_PKEY_get_bits(key);
    }
  }
  int hash_nid = NID_undef;
  if (SSL_get_signature_nid(ssl, &hash_nid) == 1 && hash_nid != NID_undef) {
    info.sig_hash = OBJ_nid2sn(hash_nid);
  }
  return info;
}

}  // namespace ringlb::tls
