// TlsStream with SSL_MODE_ASYNC against ringlb_async_test (tests/async_engine), a provider
// that signs after a delay on a helper thread and wakes the paused job through an eventfd.
// The provider and the default property query are set once for this whole binary.
#include <openssl/provider.h>
#include <poll.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "stream_pair.h"
#include "test_pki.h"
#include "tls/tls_stream.h"

namespace ringlb::tls {
namespace {

constexpr int kDelayUs = 100000;  // long enough to see on a loaded machine, short enough for a unit test

// Loads the default provider and the accelerator for the whole binary, and unloads them at
// the end (under AddressSanitizer, a provider left loaded reads as a leak).
class AcceleratorEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    ::setenv("RINGLB_TEST_ASYNC_DELAY_US", std::to_string(kDelayUs).c_str(), 1);
    // Loading any provider explicitly stops the default one from loading implicitly.
    default_ = OSSL_PROVIDER_load(nullptr, "default");
    accelerator_ = OSSL_PROVIDER_load(nullptr, RINGLB_ASYNC_PROVIDER_PATH);
    pki::check(default_ != nullptr && accelerator_ != nullptr, "load the providers");
    pki::check(EVP_set_default_properties(nullptr, "?ringlb.async=yes,?ringlb.wrapped=no") == 1,
               "default properties");
  }
  void TearDown() override {
    EVP_set_default_properties(nullptr, "");
    OSSL_PROVIDER_unload(accelerator_);
    OSSL_PROVIDER_unload(default_);
  }

 private:
  OSSL_PROVIDER* default_ = nullptr;
  OSSL_PROVIDER* accelerator_ = nullptr;
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new AcceleratorEnvironment);

using testing::Collector;

// Waits until one of the stream's async wait fds is readable; false after `timeout_ms`.
bool waitForJob(const TlsStream& stream, int timeout_ms = 5000) {
  int fds[4];
  size_t n = stream.asyncWaitFds(fds, 4);
  if (n == 0 || n > 4) return false;
  pollfd pfds[4];
  for (size_t i = 0; i < n; ++i) pfds[i] = {fds[i], POLLIN, 0};
  return ::poll(pfds, n, timeout_ms) > 0;
}

class TlsStreamAsyncTest : public ::testing::TestWithParam<pki::Alg>, protected testing::StreamPair {
 protected:
  void SetUp() override { initPair("async test CA", GetParam(), SSL_MODE_ASYNC); }

  // A test that failed half way may leave a job paused: finish it (SSL_free would leak it).
  void TearDown() override {
    for (int i = 0; i < 100 && server_.resumeDiscarding() == TlsStatus::WantAsync; ++i) waitForJob(server_);
  }

  // One step of the server's handshake over what the client sent so far.
  TlsStatus serverStep() {
    server_in_.insert(server_in_.end(), to_server_.bytes.begin(), to_server_.bytes.end());
    to_server_.bytes.clear();
    server_.setInput(server_in_.data(), server_in_.size());
    TlsStatus status = server_.handshake();
    server_in_.erase(server_in_.begin(), server_in_.end() - static_cast<long>(server_.inputLeft()));
    return status;
  }

  TlsStatus clientStep() {
    client_in_.insert(client_in_.end(), to_client_.bytes.begin(), to_client_.bytes.end());
    to_client_.bytes.clear();
    client_.setInput(client_in_.data(), client_in_.size());
    TlsStatus status = client_.handshake();
    client_in_.erase(client_in_.begin(), client_in_.end() - static_cast<long>(client_.inputLeft()));
    return status;
  }

  // Runs both handshakes to the end, waiting on the server's job whenever it pauses.
  void handshake() {
    for (int round = 0; round < 100 && !(server_.handshakeDone() && client_.handshakeDone()); ++round) {
      if (!client_.handshakeDone()) {
        ASSERT_NE(clientStep(), TlsStatus::Error) << client_.error();
      }
      if (server_.handshakeDone()) continue;
      TlsStatus status = serverStep();
      while (status == TlsStatus::WantAsync) {
        ++pauses_;
        ASSERT_TRUE(server_.asyncPaused());
        ASSERT_TRUE(waitForJob(server_)) << "the accelerator never signalled";
        status = serverStep();
      }
      ASSERT_NE(status, TlsStatus::Error) << server_.error();
    }
    ASSERT_TRUE(server_.handshakeDone());
    ASSERT_TRUE(client_.handshakeDone());
  }

  int pauses_ = 0;
};

TEST_P(TlsStreamAsyncTest, HandshakePausesForTheSignatureThenCompletesAndDataFlows) {
  auto start = std::chrono::steady_clock::now();
  handshake();
  EXPECT_GE(pauses_, 1) << "the signature should have run as a paused async job";
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(kDelayUs));
  EXPECT_FALSE(server_.asyncPaused());

  const std::string request = "GET / HTTP/1.1\r\n\r\n";
  size_t written = 0;
  ASSERT_EQ(client_.write(reinterpret_cast<const uint8_t*>(request.data()), request.size(), written), TlsStatus::Ok);
  server_in_.insert(server_in_.end(), to_server_.bytes.begin(), to_server_.bytes.end());
  to_server_.bytes.clear();
  server_.setInput(server_in_.data(), server_in_.size());
  uint8_t buf[256];
  size_t n = 0;
  ASSERT_EQ(server_.read(buf, sizeof(buf), n), TlsStatus::Ok) << server_.error();
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), request);
  const std::string response = "HTTP/1.1 204 No Content\r\n\r\n";
  ASSERT_EQ(server_.write(reinterpret_cast<const uint8_t*>(response.data()), response.size(), written), TlsStatus::Ok);
  client_in_.insert(client_in_.end(), to_client_.bytes.begin(), to_client_.bytes.end());
  to_client_.bytes.clear();
  std::string got;
  for (int i = 0; i < 4 && got.size() < response.size(); ++i) {
    client_.setInput(client_in_.data(), client_in_.size());
    TlsStatus status = client_.read(buf, sizeof(buf), n);
    client_in_.erase(client_in_.begin(), client_in_.end() - static_cast<long>(client_.inputLeft()));
    if (status == TlsStatus::Ok) got.append(reinterpret_cast<char*>(buf), n);
  }
  EXPECT_EQ(got, response);
}

TEST_P(TlsStreamAsyncTest, ResumingBeforeTheWaitFdFiresPausesAgain) {
  ASSERT_EQ(clientStep(), TlsStatus::WantRead);
  ASSERT_EQ(serverStep(), TlsStatus::WantAsync);
  // Called again at once (new input arrived, say): the accelerator is not done yet.
  EXPECT_EQ(serverStep(), TlsStatus::WantAsync);
  int fds[4];
  EXPECT_EQ(server_.asyncWaitFds(fds, 4), 1u);
  ASSERT_TRUE(waitForJob(server_));
  TlsStatus status = serverStep();
  EXPECT_TRUE(status == TlsStatus::WantRead || status == TlsStatus::Ok) << static_cast<int>(status);
  EXPECT_FALSE(server_.asyncPaused());
}

// SSL_free(3) does not free a paused job: teardown resumes it into a discarding sink first.
// Under AddressSanitizer a job, its stack or the provider's request left behind is a leak.
TEST_P(TlsStreamAsyncTest, StreamWithAPausedJobIsFinishedByResumeDiscardingAndFreed) {
  ASSERT_EQ(clientStep(), TlsStatus::WantRead);
  ASSERT_EQ(serverStep(), TlsStatus::WantAsync);
  ASSERT_TRUE(server_.asyncPaused());
  to_client_.bytes.clear();
  TlsStatus status = server_.resumeDiscarding();  // too early: pauses again
  EXPECT_EQ(status, TlsStatus::WantAsync);
  for (int i = 0; i < 10 && status == TlsStatus::WantAsync; ++i) {
    ASSERT_TRUE(waitForJob(server_));
    status = server_.resumeDiscarding();
  }
  EXPECT_NE(status, TlsStatus::WantAsync);
  EXPECT_FALSE(server_.asyncPaused());
  EXPECT_TRUE(to_client_.bytes.empty()) << "the rest of the flight was discarded";
  server_.reset();
  EXPECT_FALSE(server_.active());
}

// The freed stream's eventfd goes with its SSL's wait context: a new stream on the same
// context gets its own and works (nothing of the old job is left to wake it).
TEST_P(TlsStreamAsyncTest, AStreamAfterAnAbandonedOneHandshakesNormally) {
  ASSERT_EQ(clientStep(), TlsStatus::WantRead);
  ASSERT_EQ(serverStep(), TlsStatus::WantAsync);
  while (server_.resumeDiscarding() == TlsStatus::WantAsync) ASSERT_TRUE(waitForJob(server_));
  server_.reset();
  client_.reset();
  to_client_.bytes.clear();
  to_server_.bytes.clear();
  server_in_.clear();
  client_in_.clear();
  SslPtr s(SSL_new(server_ctx_.get()));
  SSL_set_accept_state(s.get());
  SslPtr c(SSL_new(client_ctx_.get()));
  SSL_set_connect_state(c.get());
  SSL_set1_host(c.get(), "server.test");
  ASSERT_TRUE(server_.attach(std::move(s), &to_client_));
  ASSERT_TRUE(client_.attach(std::move(c), &to_server_));
  handshake();
  EXPECT_GE(pauses_, 1);
}

// Without SSL_MODE_ASYNC the same provider signs synchronously, after the full delay.
TEST_P(TlsStreamAsyncTest, WithoutAsyncModeTheSignatureBlocksForTheDelay) {
  SSL_CTX_clear_mode(server_ctx_.get(), SSL_MODE_ASYNC);
  SslPtr s(SSL_new(server_ctx_.get()));
  SSL_set_accept_state(s.get());
  ASSERT_TRUE(server_.attach(std::move(s), &to_client_));
  ASSERT_EQ(clientStep(), TlsStatus::WantRead);
  auto start = std::chrono::steady_clock::now();
  TlsStatus status = serverStep();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(kDelayUs));
  EXPECT_EQ(status, TlsStatus::WantRead) << server_.error();
  handshake();
  EXPECT_EQ(pauses_, 0);
}

INSTANTIATE_TEST_SUITE_P(Keys, TlsStreamAsyncTest, ::testing::Values(pki::Alg::EcP256, pki::Alg::Rsa2048),
                         [](const ::testing::TestParamInfo<pki::Alg>& param) {
                           return param.param == pki::Alg::EcP256 ? "Ecdsa" : "Rsa";
                         });

}  // namespace
}  // namespace ringlb::tls
