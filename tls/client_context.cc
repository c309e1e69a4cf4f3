#include "tls/client_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "core/privileges.h"
#include "core/socket.h"
#include "tls/pem_files.h"
#include "tls/policy.h"

namespace ringlb::tls {
namespace {

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = withOpensslErrors(std::move(message));
  ERR_clear_error();
  return false;
}

void freeString(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

// SSL ex_data slots (CRYPTO_get_ex_new_index(3)); allocated once, immutable afterwards.
struct Indices {
  int slot = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);     // BackendSessionSlot*
  int offered = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);  // SSL_SESSION* (no ref)
  int failure = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, freeString);  // std::string*
};
const Indices& indices() {
  static const Indices instance;
  return instance;
}

// A NUL-terminated copy of `s` in `buf`, or false if it does not fit or contains a NUL.
bool toCString(std::string_view s, char (&buf)[256]) {
  if (s.size() >= sizeof(buf) || s.find('\0') != std::string_view::npos) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return true;
}

std::string subjectAltNames(X509* cert) {
  std::string out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr,
                                                            nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(sans, i);
    std::string item;
    if (gen->type == GEN_DNS) {
      item = "DNS:" + std::string(reinterpret_cast<const char*>(
                                      ASN1_STRING_get0_data(gen->d.dNSName)),
                                  static_cast<size_t>(ASN1_STRING_length(gen->d.dNSName)));
    } else if (gen->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(gen->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = "?";
      if (len == 4 || len == 16) {
        inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gen->d.iPAddress), text,
                  sizeof(text));
      }
      item = std::string("IP:") + text;
    } else {
      continue;
    }
    if (!out.empty()) out += ", ";
    out += item;
  }
  GENERAL_NAMES_free(sans);
  if (out.empty()) out = "no SAN, " + nameToString(X509_get_subject_name(cert));
  return out;
}

std::string describeFailure(X509_STORE_CTX* store_ctx) {
  const int err = X509_STORE_CTX_get_error(store_ctx);
  X509* cert = X509_STORE_CTX_get_current_cert(store_ctx);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(store_ctx);
  if (err == X509_V_ERR_HOSTNAME_MISMATCH && cert != nullptr) {
    const char* host = X509_VERIFY_PARAM_get0_host(param, 0);
    return "Hostname mismatch: certificate is for " + subjectAltNames(cert) + ", expected " +
           (host != nullptr ? host : "?");
  }
  if (err == X509_V_ERR_IP_ADDRESS_MISMATCH && cert != nullptr) {
    char* ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    std::string out = "IP address mismatch: certificate is for " + subjectAltNames(cert) +
                      ", expected " + (ip != nullptr ? ip : "?");
    OPENSSL_free(ip);
    return out;
  }
  std::string out = std::string("certificate verify failed: ") +
                    X509_verify_cert_error_string(err) + " (depth " +
                    std::to_string(X509_STORE_CTX_get_error_depth(store_ctx));
  if (cert != nullptr) {
    out += ", subject " + nameToString(X509_get_subject_name(cert));
    switch (err) {
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        out += ", issuer " + nameToString(X509_get_issuer_name(cert));
        break;
      default:
        break;
    }
  }
  return out + ")";
}

// SSL_CTX_set_verify(3) callback: record the first failure with its certificate while the
// X509_STORE_CTX still exists (after the handshake only the error code is left). Never
// changes the verdict.
int onVerify(int preverify_ok, X509_STORE_CTX* store_ctx) {
  if (preverify_ok == 1) return 1;
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl != nullptr && SSL_get_ex_data(ssl, indices().failure) == nullptr) {
    auto* text = new std::string(describeFailure(store_ctx));
    if (SSL_set_ex_data(ssl, indices().failure, text) != 1) delete text;
  }
  return preverify_ok;
}

// SSL_CTX_sess_set_new_cb(3): keep the newest resumable session of this backend. Returning 1
// means we took the reference.
int onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<BackendSessionSlot*>(SSL_get_ex_data(ssl, indices().slot));
  if (slot == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  std::string name;
  if (const char* host = X509_VERIFY_PARAM_get0_host(param, 0)) {
    name = host;
  } else if (char* ip = X509_VERIFY_PARAM_get1_ip_asc(param)) {
    name = ip;
    OPENSSL_free(ip);
  }
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);  // what we sent
  slot->set(SslSessionPtr(session), std::move(name), sni != nullptr ? sni : "");
  return 1;
}

// SSL_CTX_set_info_callback(3): drop the cached session when a handshake fails (a fatal
// alert either way before the handshake finished; covers verification failures) or when
// the offered session was not resumed and the backend sent no replacement.
void onInfo(const SSL* ssl, int where, int ret) {
  auto* slot = static_cast<BackendSessionSlot*>(SSL_get_ex_data(ssl, indices().slot));
  if (slot == nullptr) return;
  if ((where & SSL_CB_ALERT) != 0 && (ret >> 8) == SSL3_AL_FATAL && !SSL_is_init_finished(ssl)) {
    slot->clear();
    return;
  }
  if ((where & SSL_CB_HANDSHAKE_DONE) != 0) {
    const void* offered = SSL_get_ex_data(ssl, indices().offered);
    // Comparing addresses only: the slot's reference keeps `offered` alive while it is there.
    if (offered != nullptr && SSL_session_reused(ssl) != 1 && slot->get() == offered) {
      slot->clear();
    }
  }
}

}  // namespace

std::shared_ptr<const ClientCredentials> ClientCredentials::load(
    const ClientTlsConfig& config, std::vector<std::string>* errors,
    std::vector<std::string>* warnings) {
  auto creds = std::make_shared<ClientCredentials>();
  std::vector<std::string> found;
  std::string error;
  if (!config.ca_file.empty() && !loadCaFile(config.ca_file, &creds->cas_, &error)) {
    found.push_back(error);
  }
  if (!config.ca_dir.empty() && !loadCaDir(config.ca_dir, &creds->cas_, &error)) {
    found.push_back(error);
  }
  if (config.verify && config.ca_file.empty() && config.ca_dir.empty()) {
    found.push_back("verify is on but neither ca_file nor ca_dir is set");
  }
  if (!config.client_certificate.empty()) {
    const std::string& path = config.client_certificate;
    const std::string& key_path = config.client_key.empty() ? path : config.client_key;
    std::string pem;
    std::string key_pem;
    std::vector<X509Ptr> chain;
    if (!readFile(path, &pem, &error) || !parseCertificates(pem, path, &chain, &error)) {
      found.push_back(error);
    } else if (chain.empty()) {
      found.push_back(path + ": no certificate");
    } else if (!readFile(key_path, &key_pem, &error) ||
               !(creds->key_ = parsePrivateKey(key_pem, key_path, nullptr, &error))) {
      found.push_back(error);
    } else if (X509_check_private_key(chain.front().get(), creds->key_.get()) != 1) {
      ERR_clear_error();
      found.push_back(path + ": private key does not match certificate" +
                      (config.client_key.empty() ? "" : " (key from " + key_path + ")"));
    } else {
      if (auto warning = core::keyFilePermissionWarning(key_path); warning && warnings != nullptr) {
        warnings->push_back(*warning);
      }
      creds->cert_ = std::move(chain.front());
      creds->chain_.assign(std::make_move_iterator(chain.begin() + 1),
                           std::make_move_iterator(chain.end()));
    }
    OPENSSL_cleanse(pem.data(), pem.size());
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
  }
  if (!found.empty()) {
    if (errors != nullptr) errors->insert(errors->end(), found.begin(), found.end());
    return nullptr;
  }
  return creds;
}

std::unique_ptr<ClientContext> ClientContext::create(const ClientTlsConfig& config,
                                                     std::shared_ptr<const ClientCredentials> creds,
                                                     std::string* error) {
  if (creds == nullptr) {
    fail(error, "no client credentials");
    return nullptr;
  }
  std::unique_ptr<ClientContext> self(new ClientContext());
  self->creds_ = std::move(creds);
  self->verify_ = config.verify;
  self->session_reuse_ = config.session_reuse;
  self->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = self->ctx_.get();
  if (ctx == nullptr || !applyPolicy(ctx, config.policy, false, error)) {
    if (ctx == nullptr) fail(error, "cannot create SSL_CTX");
    return nullptr;
  }
  X509StorePtr trust(X509_STORE_new());
  for (const auto& ca : self->creds_->cas()) {
    if (!trust || X509_STORE_add_cert(trust.get(), ca.get()) != 1) {
      fail(error, "OpenSSL refused a CA certificate");
      return nullptr;
    }
  }
  SSL_CTX_set_cert_store(ctx, trust.release());  // takes ownership
  SSL_CTX_set_verify(ctx, config.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, onVerify);
  if (X509* cert = self->creds_->certificate()) {
    if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, self->creds_->key()) != 1) {
      fail(error, config.client_certificate + ": OpenSSL refused the certificate or key");
      return nullptr;
    }
    for (const auto& intermediate : self->creds_->chain()) {
      if (SSL_CTX_add1_chain_cert(ctx, intermediate.get()) != 1) {
        fail(error, config.client_certificate + ": OpenSSL refused a chain certificate");
        return nullptr;
      }
    }
  }
  for (const auto& proto : config.alpn) {
    if (proto.empty() || proto.size() > 255) {
      fail(error, "alpn \"" + proto + "\": must be 1..255 bytes");
      return nullptr;
    }
    self->alpn_.push_back(static_cast<unsigned char>(proto.size()));
    self->alpn_.insert(self->alpn_.end(), proto.begin(), proto.end());
  }
  // SSL_CTX_set_alpn_protos(3) returns 0 on success.
  if (!self->alpn_.empty() &&
      SSL_CTX_set_alpn_protos(ctx, self->alpn_.data(),
                              static_cast<unsigned>(self->alpn_.size())) != 0) {
    fail(error, "cannot set ALPN protocols");
    return nullptr;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One BIO read per record batch instead of one for the header and one for the body.
  SSL_CTX_set_read_ahead(ctx, 1);
  // A peer closing without close_notify is an end of stream, not a fatal error: OpenSSL would
  // otherwise send itself a fatal alert, which removes the session from every cache and marks
  // it non-resumable (ssl3_send_alert), for all connections sharing it (e.g. a backend
  // session offered to many connections). HTTP peers close without close_notify all the time.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (config.session_reuse) {
    // Sessions live in BackendSessionSlots only: no internal client cache to lock or expire.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, onNewSession);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }
  SSL_CTX_set_info_callback(ctx, onInfo);
  return self;
}

std::string_view ClientContext::verifyNameFor(const ClientTlsConfig& config, std::string_view sni,
                                              std::string_view backend_ip) {
  if (!config.verify_name.empty()) return config.verify_name;
  return !sni.empty() ? sni : backend_ip;
}

SslPtr ClientContext::newSsl(std::string_view sni, std::string_view verify_name,
                             BackendSessionSlot* slot, std::string_view alpn_override,
                             std::string* error) const {
  char sni_buf[256];
  char name_buf[256];
  if (!sni.empty() && !toCString(sni, sni_buf)) {
    fail(error, "sni \"" + std::string(sni) + "\": too long or contains NUL");
    return nullptr;
  }
  if (!sni.empty() && core::isIpLiteral(sni_buf)) {
    fail(error, "sni \"" + std::string(sni) + "\": an IP address is not allowed in SNI (RFC 6066 s3)");
    return nullptr;
  }
  if (verify_ && (verify_name.empty() || !toCString(verify_name, name_buf))) {
    fail(error, "verify_name \"" + std::string(verify_name) + "\": empty, too long or contains NUL");
    return nullptr;
  }
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) {
    fail(error, "SSL_new failed");
    return nullptr;
  }
  SSL_set_connect_state(ssl.get());
  if (!sni.empty() && SSL_set_tlsext_host_name(ssl.get(), sni_buf) != 1) {
    fail(error, "sni \"" + std::string(sni) + "\": refused by OpenSSL");
    return nullptr;
  }
  if (verify_) {
    // SSL_set1_host(3) for DNS names; an IP literal must match an iPAddress SAN instead
    // (RFC 6125 s6.2.1 leaves IPs out; X509_VERIFY_PARAM_set1_ip_asc(3) does that check).
    const bool ip = core::isIpLiteral(name_buf);
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name_buf)
                      : SSL_set1_host(ssl.get(), name_buf);
    if (ok != 1) {
      fail(error, "verify_name \"" + std::string(verify_name) + "\": refused by OpenSSL");
      return nullptr;
    }
    if (!ip) SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (!alpn_override.empty()) {
    unsigned char wire[256];
    if (alpn_override.size() > 255) {
      fail(error, "alpn \"" + std::string(alpn_override) + "\": longer than 255 bytes");
      return nullptr;
    }
    wire[0] = static_cast<unsigned char>(alpn_override.size());
    std::memcpy(wire + 1, alpn_override.data(), alpn_override.size());
    if (SSL_set_alpn_protos(ssl.get(), wire, static_cast<unsigned>(alpn_override.size() + 1)) != 0) {
      fail(error, "cannot set ALPN");
      return nullptr;
    }
  }
  if (session_reuse_ && slot != nullptr) {
    SSL_set_ex_data(ssl.get(), indices().slot, slot);
    SSL_SESSION* session = slot->get();
    const bool same_names = session != nullptr &&
                            (!verify_ || slot->verifiedName() == verify_name) &&
                            slot->sni() == sni;
    if (same_names && SSL_SESSION_is_resumable(session) == 1) {
      // Each connection resumes from its own copy: OpenSSL updates the SSL_SESSION an SSL
      // resumes from, and one shared by concurrent connections ended up marked
      // non-resumable, so whole bursts of connections fell back to full handshakes (measured:
      // 78% resumed at 32 concurrent connections with a shared object, 99.9% with copies).
      SslSessionPtr copy(SSL_SESSION_dup(session));
      if (copy && SSL_set_session(ssl.get(), copy.get()) == 1) {
        SSL_set_ex_data(ssl.get(), indices().offered, session);
      }
    }
  }
  return ssl;
}

std::string verifyFailure(const SSL* ssl) {
  if (const auto* text = static_cast<const std::string*>(SSL_get_ex_data(ssl, indices().failure))) {
    return *text;
  }
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return {};
  return std::string("certificate verify failed: ") +
         X509_verify_cert_error_string(static_cast<int>(result));
}

}  // namespace ringlb::tls
