// What OpenSSL itself costs a TLS-terminating, re-encrypting proxy: in-memory handshakes
// between two SSL objects joined by a BIO pair (no sockets, no kernel), and record
// encryption + decryption through SSL_write/SSL_read.
//
//   BM_FullHandshake/ecdsa, /rsa  full TLS 1.3 handshake, P-256 or RSA-2048 server certificate,
//                                 x25519, the client verifying the chain and the name
//   BM_ResumedHandshake           TLS 1.3 resumption (psk_dhe_ke) with the newest ticket
//   BM_RecordRoundTrip/<cipher>   16 KiB SSL_write on one side + SSL_read on the other
//
// Each handshake iteration includes SSL_new and SSL_free on both sides. The counters
// `server_us` and `client_us` split the iteration's CPU by side: every call on one side's SSL
// is timed with the thread CPU clock (CLOCK_THREAD_CPUTIME_ID, a syscall of ~0.3 us, about
// eight per iteration and side, so each side is over-counted by a few microseconds).
//
// For a proxy that terminates TLS and re-encrypts to a backend, the CPU floor per client
// connection is server_us (full or resumed) + the backend side's client_us (resumed when the
// proxy reuses backend sessions), and per GB relayed it is one RecordRoundTrip per byte.
// bench/e2e/run.py runs this binary and reports those floors next to the LBs' measured CPU.
//
// The certificates are made in memory at start-up (a P-256 CA, a P-256 and an RSA-2048 leaf
// for bench.example.test); nothing is read from disk. Server session cache off: TLS 1.3
// tickets are stateless, so resumption needs no server state.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr const char* kHost = "bench.example.test";

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct CtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
struct SessionFree {
  void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_tls_handshake: %s failed\n", what);
  std::abort();
}

// A certificate for `key`, signed by `issuer_key` (self-signed when `issuer` is null).
X509Ptr makeCert(EVP_PKEY* key, EVP_PKEY* issuer_key, X509* issuer, const char* cn, bool is_ca) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), is_ca ? 1 : 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::string san = std::string("DNS:") + kHost;
  const char* exts[][2] = {{"basicConstraints", is_ca ? "critical,CA:TRUE" : "CA:FALSE"},
                           {"keyUsage", is_ca ? "critical,keyCertSign" : "critical,digitalSignature,keyEncipherment"},
                           {"subjectAltName", is_ca ? nullptr : san.c_str()}};
  for (const auto& e : exts) {
    if (!e[1]) continue;
    X509_EXTENSION* ext = X509V3_EXT_conf(nullptr, &v3, e[0], e[1]);
    if (!ext) die("X509V3_EXT_conf");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) die("X509_sign");
  return cert;
}

// The PKI and contexts, made once.
struct Pki {
  PkeyPtr ca_key{EVP_EC_gen("P-256")};
  X509Ptr ca = makeCert(ca_key.get(), ca_key.get(), nullptr, "bench CA", true);
  PkeyPtr ecdsa_key{EVP_EC_gen("P-256")};
  X509Ptr ecdsa = makeCert(ecdsa_key.get(), ca_key.get(), ca.get(), kHost, false);
  PkeyPtr rsa_key{EVP_RSA_gen(2048)};
  X509Ptr rsa = makeCert(rsa_key.get(), ca_key.get(), ca.get(), kHost, false);
  CtxPtr ecdsa_server = serverCtx(ecdsa.get(), ecdsa_key.get());
  CtxPtr rsa_server = serverCtx(rsa.get(), rsa_key.get());
  CtxPtr client = clientCtx();

  static CtxPtr serverCtx(X509* cert, EVP_PKEY* key) {
    CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx || SSL_CTX_use_certificate(ctx.get(), cert) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), key) != 1)
      die("server context");
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    return ctx;
  }
  CtxPtr clientCtx() const {
    CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx || X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get()) != 1) die("client context");
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);  // sessions kept by hand
    return ctx;
  }
};

Pki& pki() {
  static Pki p;
  return p;
}

int64_t threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Runs `f` and adds the thread CPU time it took to `acc`.
template <typename F>
auto timed(int64_t& acc, F&& f) {
  int64_t t0 = threadCpuNs();
  auto r = f();
  acc += threadCpuNs() - t0;
  return r;
}

// One client and one server SSL joined by a BIO pair (64 KiB each way).
struct Pair {
  SslPtr client;
  SslPtr server;
};

Pair makePair(SSL_CTX* server_ctx, SSL_SESSION* session, int64_t& client_ns, int64_t& server_ns) {
  Pair p;
  p.server.reset(timed(server_ns, [&] { return SSL_new(server_ctx); }));
  p.client.reset(timed(client_ns, [&] { return SSL_new(pki().client.get()); }));
  BIO* c_bio = nullptr;
  BIO* s_bio = nullptr;
  if (!p.client || !p.server || BIO_new_bio_pair(&c_bio, 64 * 1024, &s_bio, 64 * 1024) != 1) die("pair");
  SSL_set_bio(p.client.get(), c_bio, c_bio);
  SSL_set_bio(p.server.get(), s_bio, s_bio);
  SSL_set_tlsext_host_name(p.client.get(), kHost);
  SSL_set1_host(p.client.get(), kHost);
  if (session) SSL_set_session(p.client.get(), session);
  SSL_set_connect_state(p.client.get());
  SSL_set_accept_state(p.server.get());
  return p;
}

// Drives both sides to the end of the handshake, then lets the client read the server's
// NewSessionTicket messages (TLS 1.3 sends them after the handshake).
void handshake(Pair& p, int64_t& client_ns, int64_t& server_ns) {
  bool client_done = false, server_done = false;
  for (int round = 0; !(client_done && server_done); ++round) {
    if (round > 10) die("handshake (did not converge)");
    if (!client_done) client_done = timed(client_ns, [&] { return SSL_do_handshake(p.client.get()); }) == 1;
    if (!server_done) server_done = timed(server_ns, [&] { return SSL_do_handshake(p.server.get()); }) == 1;
  }
  char byte;
  if (timed(client_ns, [&] { return SSL_read(p.client.get(), &byte, 1); }) > 0) die("unexpected data");
}

void freePair(Pair& p, int64_t& client_ns, int64_t& server_ns) {
  // Shut down quietly (a real proxy would send close_notify: one tiny record each side).
  SSL_set_shutdown(p.client.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_set_shutdown(p.server.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  timed(server_ns, [&] { p.server.reset(); return 0; });
  timed(client_ns, [&] { p.client.reset(); return 0; });
}

void setCounters(benchmark::State& state, int64_t client_ns, int64_t server_ns) {
  double n = static_cast<double>(state.iterations());
  state.counters["server_us"] = static_cast<double>(server_ns) / 1e3 / n;
  state.counters["client_us"] = static_cast<double>(client_ns) / 1e3 / n;
}

void BM_FullHandshake(benchmark::State& state, bool rsa) {
  SSL_CTX* server_ctx = rsa ? pki().rsa_server.get() : pki().ecdsa_server.get();
  int64_t client_ns = 0, server_ns = 0;
  for (auto _ : state) {
    Pair p = makePair(server_ctx, nullptr, client_ns, server_ns);
    handshake(p, client_ns, server_ns);
    if (SSL_get_verify_result(p.client.get()) != X509_V_OK) die("verification");
    freePair(p, client_ns, server_ns);
  }
  setCounters(state, client_ns, server_ns);
}
BENCHMARK_CAPTURE(BM_FullHandshake, ecdsa, false);
BENCHMARK_CAPTURE(BM_FullHandshake, rsa, true);

void BM_ResumedHandshake(benchmark::State& state) {
  SSL_CTX* server_ctx = pki().ecdsa_server.get();
  int64_t client_ns = 0, server_ns = 0;
  Pair first = makePair(server_ctx, nullptr, client_ns, server_ns);
  handshake(first, client_ns, server_ns);
  SessionPtr session(SSL_get1_session(first.client.get()));
  freePair(first, client_ns, server_ns);
  client_ns = server_ns = 0;
  benchmark::IterationCount resumed = 0;
  for (auto _ : state) {
    Pair p = makePair(server_ctx, session.get(), client_ns, server_ns);
    handshake(p, client_ns, server_ns);
    resumed += SSL_session_reused(p.client.get()) ? 1 : 0;
    session.reset(SSL_get1_session(p.client.get()));  // the newest ticket, as a client would
    freePair(p, client_ns, server_ns);
  }
  if (resumed != state.iterations()) state.SkipWithError("a handshake did not resume");
  setCounters(state, client_ns, server_ns);
}
BENCHMARK(BM_ResumedHandshake);

// 16 KiB of plaintext: SSL_write on the client (encrypt), SSL_read on the server (decrypt).
// A relaying proxy does one of each per byte it carries.
void BM_RecordRoundTrip(benchmark::State& state, const char* suite) {
  CtxPtr server_ctx = Pki::serverCtx(pki().ecdsa.get(), pki().ecdsa_key.get());
  if (SSL_CTX_set_ciphersuites(server_ctx.get(), suite) != 1) die("ciphersuite");
  int64_t client_ns = 0, server_ns = 0;
  Pair p = makePair(server_ctx.get(), nullptr, client_ns, server_ns);
  handshake(p, client_ns, server_ns);
  std::vector<unsigned char> out(16384, 'x'), in(16384);
  for (auto _ : state) {
    if (SSL_write(p.client.get(), out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size()))
      die("SSL_write");
    size_t got = 0;
    while (got < in.size()) {
      int n = SSL_read(p.server.get(), in.data() + got, static_cast<int>(in.size() - got));
      if (n <= 0) die("SSL_read");
      got += static_cast<size_t>(n);
    }
    benchmark::DoNotOptimize(in.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(out.size()));
  freePair(p, client_ns, server_ns);
}
BENCHMARK_CAPTURE(BM_RecordRoundTrip, aes256gcm, "TLS_AES_256_GCM_SHA384");
BENCHMARK_CAPTURE(BM_RecordRoundTrip, aes128gcm, "TLS_AES_128_GCM_SHA256");
BENCHMARK_CAPTURE(BM_RecordRoundTrip, chacha20poly1305, "TLS_CHACHA20_POLY1305_SHA256");

}  // namespace
