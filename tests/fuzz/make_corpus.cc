// Writes the seed corpus for client_hello_fuzz: real OpenSSL ClientHellos (TLS 1.2/1.3, with
// and without SNI/ALPN, re-framed into several records, a TLS 1.3 resumption with a PSK) and
// real server flights (TLS 1.2 with a ticket, TLS 1.3). Run once and commit the output:
//   cmake --build <dir> --target fuzz_make_corpus
//   <dir>/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus/client_hello
#include <cstdio>
#include <string>

#include "tests/unit/tls/tls_test_support.h"

namespace {

using namespace ringlb::tls::test_support;  // NOLINT: test helpers only

void write(const std::string& dir, const char* name, const Bytes& bytes) {
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  check(f != nullptr, path.c_str());
  check(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(), "fwrite");
  std::fclose(f);
}

ClientOptions client(int max_version, const char* sni, std::vector<std::string> alpn) {
  ClientOptions options;
  options.max_version = max_version;
  options.sni = sni;
  options.alpn = std::move(alpn);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  write(dir, "hello_tls12", makeClientHello(client(TLS1_2_VERSION, "", {})));
  write(dir, "hello_tls12_sni_alpn", makeClientHello(client(TLS1_2_VERSION, "api.example.com", {"http/1.1"})));
  write(dir, "hello_tls13", makeClientHello(client(TLS1_3_VERSION, "", {})));
  write(dir, "hello_tls13_sni_alpn",
        makeClientHello(client(TLS1_3_VERSION, "www.example.com", {"h2", "http/1.1"})));
  write(dir, "hello_tls13_sni_records",
        rechunk(makeClientHello(client(TLS1_3_VERSION, "split.example.com", {"h2"})), {3, 40, 1, 90}));

  const ClientOptions options = client(TLS1_3_VERSION, "resume.example.com", {"h2"});
  SslCtxPtr client13 = makeClientCtx(options);
  SslCtxPtr server13 = makeServerCtx({});
  Handshake full13 = runHandshake(client13.get(), options, server13.get());
  check(full13.ok, "TLS 1.3 handshake");
  write(dir, "server_tls13", full13.server_to_client);
  ClientOptions resume = options;
  resume.session = full13.client_session.get();
  write(dir, "hello_tls13_psk", makeClientHello(resume));

  const ClientOptions options12 = client(TLS1_2_VERSION, "ticket.example.com", {});
  SslCtxPtr client12 = makeClientCtx(options12);
  SslCtxPtr server12 = makeServerCtx({.max_version = TLS1_2_VERSION, .tickets = true});
  Handshake full12 = runHandshake(client12.get(), options12, server12.get());
  check(full12.ok, "TLS 1.2 handshake");
  write(dir, "server_tls12_ticket", full12.server_to_client);
  ClientOptions resume12 = options12;
  resume12.session = full12.client_session.get();
  write(dir, "hello_tls12_ticket", makeClientHello(resume12));
  return 0;
}
