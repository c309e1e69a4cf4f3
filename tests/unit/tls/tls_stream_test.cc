// TlsStream: OpenSSL driven through caller memory. Two streams (a server and a client) are
// wired back to back through their sinks, the way the proxy wires a stream to its socket
// queues; no sockets.
#include "tls/tls_stream.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "stream_pair.h"
#include "test_pki.h"

namespace ringlb::tls {
namespace {

using testing::Collector;

class TlsStreamTest : public ::testing::Test, protected testing::StreamPair {
 protected:
  void SetUp() override { initPair("stream test CA"); }

  // Moves everything each side wrote to the other as its input, `chunk` bytes at a time,
  // until nothing moves; runs handshakes while they are not done.
  void pump(size_t chunk = 1 << 20) {
    for (int round = 0; round < 100000; ++round) {
      bool moved = deliver(to_server_, server_, server_in_, chunk) | deliver(to_client_, client_, client_in_, chunk);
      if (!server_.handshakeDone()) server_status_ = server_.handshake();
      if (!client_.handshakeDone()) client_status_ = client_.handshake();
      if (!moved && to_server_.bytes.empty() && to_client_.bytes.empty()) return;
    }
    FAIL() << "pump did not settle";
  }

  // Reads all plaintext `stream` can produce from its pending input.
  std::string drain(TlsStream& stream, std::vector<uint8_t>& pending, TlsStatus* last = nullptr) {
    std::string out;
    uint8_t buf[4096];
    for (;;) {
      stream.setInput(pending.data(), pending.size());
      size_t n = 0;
      TlsStatus status = stream.read(buf, sizeof(buf), n);
      pending.erase(pending.begin(), pending.end() - static_cast<long>(stream.inputLeft()));
      if (status != TlsStatus::Ok) {
        if (last != nullptr) *last = status;
        return out;
      }
      out.append(reinterpret_cast<char*>(buf), n);
    }
  }

  bool deliver(Collector& from, TlsStream& to, std::vector<uint8_t>& pending, size_t chunk) {
    if (from.bytes.empty()) return false;
    size_t n = std::min(chunk, from.bytes.size());
    pending.insert(pending.end(), from.bytes.begin(), from.bytes.begin() + static_cast<long>(n));
    from.bytes.erase(from.bytes.begin(), from.bytes.begin() + static_cast<long>(n));
    if (!to.handshakeDone()) {
      to.setInput(pending.data(), pending.size());
      (void)to.handshake();
      pending.erase(pending.begin(), pending.end() - static_cast<long>(to.inputLeft()));
    }
    return true;
  }

  TlsStatus server_status_ = TlsStatus::WantRead;
  TlsStatus client_status_ = TlsStatus::WantRead;
};

TEST_F(TlsStreamTest, HandshakeAndDataFlowThroughTheSinksOnly) {
  pump();
  ASSERT_TRUE(server_.handshakeDone());
  ASSERT_TRUE(client_.handshakeDone());
  std::string message(100000, 'x');
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i % 26);
  size_t written = 0;
  size_t total = 0;
  while (total < message.size()) {
    ASSERT_EQ(client_.write(reinterpret_cast<const uint8_t*>(message.data()) + total, message.size() - total, written),
              TlsStatus::Ok);
    total += written;
  }
  server_in_.insert(server_in_.end(), to_server_.bytes.begin(), to_server_.bytes.end());
  to_server_.bytes.clear();
  EXPECT_EQ(drain(server_, server_in_), message);
  EXPECT_TRUE(server_in_.empty()) << "all ciphertext consumed";
}

TEST_F(TlsStreamTest, InputSplitIntoSingleBytesStillHandshakes) {
  pump(/*chunk=*/1);
  EXPECT_TRUE(server_.handshakeDone());
  EXPECT_TRUE(client_.handshakeDone());
}

TEST_F(TlsStreamTest, RefusingSinkGivesWantWriteAndTheSameCallResumes) {
  pump();
  ASSERT_TRUE(client_.handshakeDone());
  const std::string message = "request bytes";
  to_server_.refuse = true;
  size_t written = 0;
  EXPECT_EQ(client_.write(reinterpret_cast<const uint8_t*>(message.data()), message.size(), written),
            TlsStatus::WantWrite);
  EXPECT_EQ(written, 0u);
  to_server_.refuse = false;
  ASSERT_EQ(client_.write(reinterpret_cast<const uint8_t*>(message.data()), message.size(), written), TlsStatus::Ok);
  EXPECT_EQ(written, message.size());
  server_in_.insert(server_in_.end(), to_server_.bytes.begin(), to_server_.bytes.end());
  EXPECT_EQ(drain(server_, server_in_), message);
}

TEST_F(TlsStreamTest, CloseNotifyReadsAsClosed) {
  pump();
  ASSERT_TRUE(client_.close());
  server_in_.insert(server_in_.end(), to_server_.bytes.begin(), to_server_.bytes.end());
  TlsStatus last = TlsStatus::Ok;
  EXPECT_EQ(drain(server_, server_in_, &last), "");
  EXPECT_EQ(last, TlsStatus::Closed);
  EXPECT_TRUE(server_.error().empty()) << server_.error();
}

TEST_F(TlsStreamTest, TransportEofWithoutCloseNotifyIsClosedWithAReason) {
  pump();
  server_.setInputEof();
  TlsStatus last = TlsStatus::Ok;
  drain(server_, server_in_, &last);
  EXPECT_EQ(last, TlsStatus::Closed);
  EXPECT_EQ(server_.error(), "peer closed the connection without close_notify");
}

TEST_F(TlsStreamTest, CorruptRecordIsAnErrorWithOpensslsReason) {
  pump();
  const std::string message = "hello";
  size_t written = 0;
  ASSERT_EQ(client_.write(reinterpret_cast<const uint8_t*>(message.data()), message.size(), written), TlsStatus::Ok);
  to_server_.bytes.back() ^= 0x55;  // flip bits in the AEAD tag
  server_in_.insert(server_in_.end(), to_server_.bytes.begin(), to_server_.bytes.end());
  TlsStatus last = TlsStatus::Ok;
  EXPECT_EQ(drain(server_, server_in_, &last), "");
  EXPECT_EQ(last, TlsStatus::Error);
  EXPECT_NE(server_.error().find("read failed: "), std::string::npos) << server_.error();
  EXPECT_NE(server_.error().find("bad record mac"), std::string::npos) << server_.error();
}

TEST_F(TlsStreamTest, UntrustedServerFailsTheClientHandshakeWithTheVerifyReason) {
  X509_STORE* empty = X509_STORE_new();
  SSL_CTX_set_cert_store(client_ctx_.get(), empty);  // forget the CA
  SslPtr c(SSL_new(client_ctx_.get()));
  SSL_set_connect_state(c.get());
  ASSERT_TRUE(client_.attach(std::move(c), &to_server_));
  pump();
  EXPECT_FALSE(client_.handshakeDone());
  EXPECT_EQ(client_status_, TlsStatus::Error);
  EXPECT_NE(client_.error().find("handshake failed: certificate verify failed"), std::string::npos) << client_.error();
  EXPECT_NE(client_.error().find("unable to get local issuer certificate"), std::string::npos) << client_.error();
}

}  // namespace
}  // namespace ringlb::tls
