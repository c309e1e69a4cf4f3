// Two TlsStreams, a server and a client, wired back to back through collecting sinks, the
// way the proxy wires a stream to its socket queues; no sockets. Shared by the TlsStream
// tests (synchronous and async).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_pki.h"
#include "tls/tls_stream.h"

namespace ringlb::tls::testing {

// Collects what a stream writes; can be told to refuse (no buffer free).
class Collector final : public CiphertextSink {
 public:
  bool writeCiphertext(const uint8_t* data, size_t len) override {
    if (refuse) return false;
    bytes.insert(bytes.end(), data, data + len);
    ++writes;
    return true;
  }
  std::vector<uint8_t> bytes;
  bool refuse = false;
  int writes = 0;
};

// A base for test fixtures (members keep the fixture naming, name_).
class StreamPair {
 protected:
  // A CA and a "server.test" leaf with key type `alg`; the server context gets `extra_mode`
  // (e.g. SSL_MODE_ASYNC) besides the proxy's modes; the client verifies "server.test".
  void initPair(const std::string& ca_name, pki::Alg alg = pki::Alg::EcP256, long extra_mode = 0) {
    ca_ = pki::makeCa(ca_name);
    leaf_ = pki::makeLeaf(ca_, pki::spec("server.test", {"server.test"}), alg);
    server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    ASSERT_EQ(SSL_CTX_use_certificate(server_ctx_.get(), leaf_.cert.get()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx_.get(), leaf_.key.get()), 1);
    SSL_CTX_set_mode(server_ctx_.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                           SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | extra_mode);
    client_ctx_.reset(SSL_CTX_new(TLS_client_method()));
    X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx_.get()), ca_.cert.get());
    SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_PEER, nullptr);
    SslPtr s(SSL_new(server_ctx_.get()));
    SSL_set_accept_state(s.get());
    SslPtr c(SSL_new(client_ctx_.get()));
    SSL_set_connect_state(c.get());
    SSL_set1_host(c.get(), "server.test");
    ASSERT_TRUE(server_.attach(std::move(s), &to_client_));
    ASSERT_TRUE(client_.attach(std::move(c), &to_server_));
  }

  pki::Ca ca_;
  pki::Leaf leaf_;
  SslCtxPtr server_ctx_;
  SslCtxPtr client_ctx_;
  TlsStream server_;
  TlsStream client_;
  Collector to_client_;  // the server stream's records
  Collector to_server_;  // the client stream's records
  std::vector<uint8_t> server_in_;
  std::vector<uint8_t> client_in_;
};

}  // namespace ringlb::tls::testing
