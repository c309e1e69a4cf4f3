// In-process OpenSSL helpers for the TLS parser tests, fuzz-corpus generation and benchmarks:
// self-signed certificates, ClientHello generation over memory BIOs, full in-memory
// handshakes that record both directions, and the server-side view of a ClientHello
// (SSL_CTX_set_client_hello_cb) to cross-check our parser against. Header-only so bench/
// can use it without a library target. Test code: failures abort via std::abort, never throw.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace ringlb::tls::test_support {

using Bytes = std::vector<uint8_t>;

struct SslCtxFree { void operator()(SSL_CTX* p) const { SSL_CTX_free(p); } };
struct SslFree { void operator()(SSL* p) const { SSL_free(p); } };
struct SessionFree { void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "OpenSSL test setup failed: %s\n", what);
    ERR_print_errors_fp(stderr);
    std::abort();
  }
}

// P-256 key and a self-signed certificate for it, made in memory.
struct Identity {
  PkeyPtr key;
  X509Ptr cert;
};

inline const Identity& testIdentity() {
  static const Identity identity = [] {
    Identity id;
    id.key.reset(EVP_EC_gen("P-256"));
    check(id.key != nullptr, "EVP_EC_gen");
    id.cert.reset(X509_new());
    X509* x = id.cert.get();
    check(X509_set_version(x, 2) == 1, "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1, "serial");
    check(X509_gmtime_adj(X509_getm_notBefore(x), -3600) != nullptr, "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(x), 86400) != nullptr, "notAfter");
    check(X509_set_pubkey(x, id.key.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(x);
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>("ringlb-test"), -1,
                                     -1, 0) == 1,
          "CN");
    check(X509_set_issuer_name(x, name) == 1, "issuer");
    check(X509_sign(x, id.key.get(), EVP_sha256()) > 0, "X509_sign");
    return id;
  }();
  return identity;
}

struct ClientOptions {
  int max_version = TLS1_3_VERSION;
  std::string sni;                 // empty: no server_name extension
  std::vector<std::string> alpn;   // empty: no ALPN extension
  size_t extra_extension_bytes = 0;  // > 0: a private-use extension of this size (big hellos)
  SSL_SESSION* session = nullptr;    // resume this session
};

constexpr unsigned kBigExtensionType = 0xfe77;  // private use, not GREASE

inline int addBigExtension(SSL*, unsigned, unsigned, const unsigned char** out, size_t* outlen,
                           X509*, size_t, int*, void* arg) {
  static const std::vector<unsigned char> filler(65535, 0x5a);
  *out = filler.data();
  *outlen = *static_cast<size_t*>(arg);
  return 1;
}

inline SslCtxPtr makeClientCtx(const ClientOptions& options) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  check(ctx != nullptr, "SSL_CTX_new(client)");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
  if (options.extra_extension_bytes > 0) {
    check(SSL_CTX_add_custom_ext(ctx.get(), kBigExtensionType, SSL_EXT_CLIENT_HELLO,
                                 addBigExtension, nullptr,
                                 const_cast<size_t*>(&options.extra_extension_bytes), nullptr,
                                 nullptr) == 1,
          "SSL_CTX_add_custom_ext");
  }
  return ctx;
}

inline SslPtr makeClient(SSL_CTX* ctx, const ClientOptions& options) {
  SslPtr ssl(SSL_new(ctx));
  check(ssl != nullptr, "SSL_new(client)");
  SSL_set_bio(ssl.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_connect_state(ssl.get());
  if (!options.sni.empty()) {
    check(SSL_set_tlsext_host_name(ssl.get(), options.sni.c_str()) == 1, "SNI");
  }
  if (!options.alpn.empty()) {
    Bytes wire;
    for (const auto& proto : options.alpn) {
      wire.push_back(static_cast<uint8_t>(proto.size()));
      wire.insert(wire.end(), proto.begin(), proto.end());
    }
    check(SSL_set_alpn_protos(ssl.get(), wire.data(), static_cast<unsigned>(wire.size())) == 0,
          "ALPN");
  }
  if (options.session != nullptr) check(SSL_set_session(ssl.get(), options.session) == 1, "session");
  return ssl;
}

inline Bytes drain(BIO* bio) {
  Bytes out;
  uint8_t buf[4096];
  for (;;) {
    const int n = BIO_read(bio, buf, sizeof(buf));
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

inline void push(BIO* bio, const Bytes& bytes) {
  if (bytes.empty()) return;
  check(BIO_write(bio, bytes.data(), static_cast<int>(bytes.size())) ==
            static_cast<int>(bytes.size()),
        "BIO_write");
}

// The first flight of a fresh OpenSSL client: the ClientHello record(s), nothing else.
inline Bytes makeClientHello(const ClientOptions& options) {
  SslCtxPtr ctx = makeClientCtx(options);
  SslPtr ssl = makeClient(ctx.get(), options);
  const int rc = SSL_do_handshake(ssl.get());
  check(rc <= 0 && SSL_get_error(ssl.get(), rc) == SSL_ERROR_WANT_READ, "client hello");
  return drain(SSL_get_wbio(ssl.get()));
}

// OpenSSL's own server-side view of a ClientHello.
struct OpenSslView {
  bool parsed = false;
  unsigned legacy_version = 0;
  Bytes random, session_id, ciphers;
  std::vector<int> extension_types;
  // Raw extension_data of the extensions we cross-check; `has` says whether present.
  struct Ext { bool has = false; Bytes data; };
  Ext server_name, alpn, supported_versions, session_ticket, pre_shared_key;
};

inline int captureHello(SSL* s, int* alert, void* arg) {
  auto* view = static_cast<OpenSslView*>(arg);
  view->parsed = true;
  view->legacy_version = SSL_client_hello_get0_legacy_version(s);
  const unsigned char* p = nullptr;
  size_t n = SSL_client_hello_get0_random(s, &p);
  view->random.assign(p, p + n);
  n = SSL_client_hello_get0_session_id(s, &p);
  view->session_id.assign(p, p + n);
  n = SSL_client_hello_get0_ciphers(s, &p);
  view->ciphers.assign(p, p + n);
  int* types = nullptr;
  size_t count = 0;
  if (SSL_client_hello_get1_extensions_present(s, &types, &count) == 1) {
    view->extension_types.assign(types, types + count);
    OPENSSL_free(types);
  }
  auto grab = [s](unsigned type, OpenSslView::Ext& ext) {
    const unsigned char* data = nullptr;
    size_t len = 0;
    ext.has = SSL_client_hello_get0_ext(s, type, &data, &len) == 1;
    if (ext.has) ext.data.assign(data, data + len);
  };
  grab(TLSEXT_TYPE_server_name, view->server_name);
  grab(TLSEXT_TYPE_application_layer_protocol_negotiation, view->alpn);
  grab(TLSEXT_TYPE_supported_versions, view->supported_versions);
  grab(TLSEXT_TYPE_session_ticket, view->session_ticket);
  grab(TLSEXT_TYPE_psk, view->pre_shared_key);
  *alert = SSL_AD_HANDSHAKE_FAILURE;
  return SSL_CLIENT_HELLO_ERROR;  // seen enough: stop the handshake here
}

inline OpenSslView openSslView(const Bytes& hello) {
  OpenSslView view;
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  check(ctx != nullptr, "SSL_CTX_new(server)");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_client_hello_cb(ctx.get(), captureHello, &view);
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_bio(ssl.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_accept_state(ssl.get());
  push(SSL_get_rbio(ssl.get()), hello);
  (void)SSL_do_handshake(ssl.get());
  ERR_clear_error();
  return view;
}

struct ServerOptions {
  int max_version = TLS1_3_VERSION;
  bool tickets = true;  // false: SSL_OP_NO_TICKET, resumption by session ID (server cache)
};

inline SslCtxPtr makeServerCtx(const ServerOptions& options) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  check(ctx != nullptr, "SSL_CTX_new(server)");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  const Identity& id = testIdentity();
  check(SSL_CTX_use_certificate(ctx.get(), id.cert.get()) == 1, "use_certificate");
  check(SSL_CTX_use_PrivateKey(ctx.get(), id.key.get()) == 1, "use_PrivateKey");
  static const unsigned char kSidContext[] = "ringlb-test";
  SSL_CTX_set_session_id_context(ctx.get(), kSidContext, sizeof(kSidContext) - 1);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  if (!options.tickets) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  return ctx;
}

// A complete handshake between a client and a server over memory BIOs, recording each
// direction's bytes exactly as they would cross the wire.
struct Handshake {
  Bytes client_to_server;
  Bytes server_to_client;
  SessionPtr client_session;  // what the client would resume with
  bool ok = false;
};

inline Handshake runHandshake(SSL_CTX* client_ctx, const ClientOptions& client_options,
                              SSL_CTX* server_ctx) {
  Handshake result;
  SslPtr client = makeClient(client_ctx, client_options);
  SslPtr server(SSL_new(server_ctx));
  SSL_set_bio(server.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_accept_state(server.get());
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    if (!client_done) client_done = SSL_do_handshake(client.get()) == 1;
    Bytes out = drain(SSL_get_wbio(client.get()));
    result.client_to_server.insert(result.client_to_server.end(), out.begin(), out.end());
    push(SSL_get_rbio(server.get()), out);
    if (!server_done) server_done = SSL_do_handshake(server.get()) == 1;
    out = drain(SSL_get_wbio(server.get()));
    result.server_to_client.insert(result.server_to_client.end(), out.begin(), out.end());
    push(SSL_get_rbio(client.get()), out);
  }
  // TLS 1.3 tickets arrive after the handshake: let the client read them.
  uint8_t sink[64];
  (void)SSL_read(client.get(), sink, sizeof(sink));
  ERR_clear_error();
  result.ok = client_done && server_done;
  result.client_session.reset(SSL_get1_session(client.get()));
  // Freeing an SSL that never shut down marks its session not resumable (and drops it from
  // the server cache): say both sides closed cleanly so resumption tests can resume.
  SSL_set_shutdown(client.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_set_shutdown(server.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  return result;
}

// Re-frames a single-record handshake stream into records of the given fragment sizes
// (cycled), keeping the record header's type and version.
inline Bytes rechunk(const Bytes& records, const std::vector<size_t>& sizes) {
  Bytes payload;
  size_t pos = 0;
  uint8_t type = records.at(0);
  uint8_t v0 = records.at(1);
  uint8_t v1 = records.at(2);
  while (pos + 5 <= records.size()) {
    const size_t len = (size_t{records[pos + 3]} << 8) | records[pos + 4];
    payload.insert(payload.end(), records.begin() + static_cast<long>(pos + 5),
                   records.begin() + static_cast<long>(pos + 5 + len));
    pos += 5 + len;
  }
  Bytes out;
  size_t i = 0;
  for (size_t off = 0; off < payload.size(); ++i) {
    const size_t len = std::min(sizes[i % sizes.size()], payload.size() - off);
    out.insert(out.end(), {type, v0, v1, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    out.insert(out.end(), payload.begin() + static_cast<long>(off),
               payload.begin() + static_cast<long>(off + len));
    off += len;
  }
  return out;
}

inline std::vector<size_t> randomSizes(std::mt19937& rng, size_t max_size, size_t count = 64) {
  std::uniform_int_distribution<size_t> dist(1, max_size);
  std::vector<size_t> sizes(count);
  for (auto& s : sizes) s = dist(rng);
  return sizes;
}

}  // namespace ringlb::tls::test_support
