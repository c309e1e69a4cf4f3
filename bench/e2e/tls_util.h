// OpenSSL helpers shared by e2e_tls_loadgen, e2e_sink's TLS mode and e2e_loadgen (which
// only builds its ClientHello with OpenSSL): owning pointers, context set-up and one-line
// error text. Header-only; benchmark tools, not part of ringlb.
//
// Unlike ringlb itself, these tools let OpenSSL read and write the socket (SSL_set_fd): they
// only have to be correct and cheap on their own core, not a model of the data path.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace ringlb::bench::e2e {

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
struct SslSessionFree {
  void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

// The oldest queued OpenSSL error as text (and the queue cleared), or `fallback`.
inline std::string sslErrorText(const char* fallback = "unknown") {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// SSL_write may return after part of a buffer and be called again with a later pointer into
// the same (constant) payload: both modes make that legal (SSL_write(3)).
inline void setWriteModes(SSL_CTX* ctx) {
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

// Server context from a PEM certificate chain and a PEM key (the same file if both are in it).
// OpenSSL's defaults otherwise: TLS 1.2-1.3, two stateless TLS 1.3 tickets per handshake.
inline SslCtxPtr makeServerCtx(const std::string& cert, const std::string& key, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    error = sslErrorText("server context");
    return nullptr;
  }
  setWriteModes(ctx.get());
  return ctx;
}

}  // namespace ringlb::bench::e2e
