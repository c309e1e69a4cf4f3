// Checker on a real UringLoop against real loopback servers (a listening socket, a tiny
// blocking HTTP server thread, an OpenSSL server thread with a test-PKI certificate).
#include "health/checker.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "core/features.h"
#include "core/uring_loop.h"
#include "tests/unit/tls/test_pki.h"
#include "tls/client_context.h"

namespace ringlb::health {
namespace {

using namespace std::chrono_literals;
namespace pki = tls::pki;

// A loopback server thread handling one connection at a time with `handler` (blocking fd).
class TestServer {
 public:
  using Handler = std::function<void(int fd, const std::atomic<bool>& stop)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    // A client that closes right after its check makes the server's next write (a TLS 1.3
    // session ticket) fail: an error here, not a signal that ends the test binary.
    ::signal(SIGPIPE, SIG_IGN);
    std::string error;
    listen_ = core::listenOn(*core::SocketAddress::parse("127.0.0.1:0"), 16, &error);
    EXPECT_TRUE(listen_) << error;
    address_ = *core::localAddress(listen_.get());
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
  }
  const core::SocketAddress& address() const { return address_; }
  int connections() const { return connections_.load(); }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      core::UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      ++connections_;
      timeval tv{1, 0};
      ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      handler_(conn.get(), stop_);
    }
  }

  Handler handler_;
  core::UniqueFd listen_;
  core::SocketAddress address_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Reads a request head (up to the blank line), then sends `response` and closes.
TestServer::Handler respondWith(std::string response) {
  return [response](int fd, const std::atomic<bool>&) {
    std::string request;
    char buf[1024];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    (void)!::write(fd, response.data(), response.size());
  };
}

// Accepts and never answers (until the client goes away or the server stops).
void silent(int fd, const std::atomic<bool>& stop) {
  char buf[1024];
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0 && ::read(fd, buf, sizeof(buf)) <= 0) return;
  }
}

// Stops the loop when `done` holds (polled every tick) or after `limit`.
struct Poller final : core::TimerHandler {
  core::EventLoop* loop = nullptr;
  std::function<bool()> done;
  core::Timer tick{this, 1};
  core::Timer guard{this, 2};
  bool timed_out = false;
  void onTimer(uint8_t kind) override {
    if (kind == 2) {
      timed_out = true;
      loop->stop();
    } else if (done()) {
      loop->stop();
    } else {
      loop->timers().schedule(tick, loop->now() + 10ms);
    }
  }
};

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::UringFeatures features = core::probeUring();
    if (!features.available) GTEST_SKIP() << "io_uring unavailable: " << features.unavailable_reason;
    core::UringLoopOptions options;
    options.buffer_count = 16;
    options.buffer_size = 4096;
    std::string error;
    ASSERT_TRUE(loop_.init(options, features, &error)) << error;
    config_.type = CheckType::Tcp;
    config_.interval = 30ms;
    config_.fast_interval = 30ms;
    config_.timeout = 200ms;
    config_.rise = 1;
    config_.fall = 1;
  }

  bool runUntil(std::function<bool()> done, Millis limit = 3000ms) {
    Poller poller;
    poller.loop = &loop_;
    poller.done = std::move(done);
    loop_.timers().schedule(poller.tick, loop_.now());
    loop_.timers().schedule(poller.guard, core::Clock::now() + limit);
    loop_.run();
    loop_.timers().cancel(poller.tick);
    loop_.timers().cancel(poller.guard);
    return !poller.timed_out;
  }

  std::unique_ptr<Checker> makeChecker(const core::SocketAddress& address, std::string verify_name = "",
                                       const tls::ClientContext* tls = nullptr) {
    state_.configure(config_, {}, 1);
    CheckTarget target{"web", "b1", address, "backend.internal.test", "backend.internal.test", std::move(verify_name)};
    return std::make_unique<Checker>(loop_, config_, std::move(target), state_, tls);
  }

  // Runs until `checks` results were recorded; returns the last reason.
  std::string runChecks(Checker& checker, uint64_t checks = 1) {
    checker.start(0ms);
    EXPECT_TRUE(runUntil([&] { return state_.snapshot().checks >= checks; })) << "no check result in time";
    return state_.snapshot().last_check;
  }

  void stopAndWait(Checker& checker) {
    bool idle_called = false;
    if (!checker.stop([&](Checker*) { idle_called = true; })) {
      EXPECT_TRUE(runUntil([&] { return idle_called; }));
    }
    EXPECT_TRUE(checker.idle());
  }

  // Brings the state down first so a passing check shows as a transition.
  void startDown() {
    state_.configure(config_, {}, 1);
    state_.onCheck(CheckResult{false, "setup", 0ms, 0}, loop_.now());
    ASSERT_FALSE(state_.up());
  }

  core::UringLoop loop_;
  CheckConfig config_;
  ServerState state_{1};
};

core::SocketAddress closedPort() {
  std::string error;
  core::UniqueFd probe = core::listenOn(*core::SocketAddress::parse("127.0.0.1:0"), 1, &error);
  EXPECT_TRUE(probe) << error;
  return *core::localAddress(probe.get());  // closed when `probe` goes out of scope
}

TEST_F(CheckerTest, TcpCheckPassesAgainstAListeningSocket) {
  std::string error;
  core::UniqueFd listener = core::listenOn(*core::SocketAddress::parse("127.0.0.1:0"), 16, &error);
  ASSERT_TRUE(listener) << error;
  startDown();
  auto checker = makeChecker(*core::localAddress(listener.get()));
  EXPECT_EQ(runChecks(*checker, 2), "connected");
  EXPECT_TRUE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTest, TcpCheckAgainstAClosedPortGoesDownWithConnectionRefused) {
  auto checker = makeChecker(closedPort());
  EXPECT_EQ(runChecks(*checker), "connection refused");
  EXPECT_FALSE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTest, ChecksRepeatOnTheInterval) {
  std::string error;
  core::UniqueFd listener = core::listenOn(*core::SocketAddress::parse("127.0.0.1:0"), 64, &error);
  ASSERT_TRUE(listener) << error;
  auto checker = makeChecker(*core::localAddress(listener.get()));
  runChecks(*checker, 4);  // 30 ms +-10% apart: well within the 3 s bound
  EXPECT_GE(state_.snapshot().checks, 4u);
  stopAndWait(*checker);
}

TEST_F(CheckerTest, HttpCheckPassesOn200) {
  TestServer server(respondWith("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  config_.type = CheckType::Http;
  startDown();
  auto checker = makeChecker(server.address());
  EXPECT_EQ(runChecks(*checker, 2), "HTTP 200");
  EXPECT_TRUE(state_.up());
  EXPECT_EQ(state_.snapshot().last_http_status, 200u);
  stopAndWait(*checker);
}

TEST_F(CheckerTest, HttpCheckFailsOn503) {
  TestServer server(respondWith("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
  config_.type = CheckType::Http;
  auto checker = makeChecker(server.address());
  EXPECT_EQ(runChecks(*checker), "HTTP 503 (expected 200-399)");
  EXPECT_FALSE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTest, HttpCheckLooksForTheExpectedBody) {
  config_.type = CheckType::Http;
  config_.http.expect_body = "alive";
  {
    TestServer server(respondWith("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nI am alive!\r\n"));
    startDown();
    auto checker = makeChecker(server.address());
    EXPECT_EQ(runChecks(*checker, 2), "HTTP 200");
    EXPECT_TRUE(state_.up());
    stopAndWait(*checker);
  }
  {
    TestServer server(respondWith("HTTP/1.0 200 OK\r\n\r\nmaintenance"));  // body ends at EOF
    auto checker = makeChecker(server.address());
    EXPECT_EQ(runChecks(*checker, 3), "HTTP 200 but body lacks \"alive\"");
    EXPECT_FALSE(state_.up());
    stopAndWait(*checker);
  }
}

TEST_F(CheckerTest, ServerThatNeverAnswersTimesOut) {
  TestServer server(silent);
  config_.type = CheckType::Http;
  auto checker = makeChecker(server.address());
  EXPECT_EQ(runChecks(*checker), "timeout after 200 ms (waiting for response)");
  EXPECT_FALSE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTest, StopWhileACheckIsInFlightReachesIdleAndCallsOnIdle) {
  TestServer server(silent);
  config_.type = CheckType::Http;
  config_.timeout = 2000ms;
  auto checker = makeChecker(server.address());
  checker->start(0ms);
  ASSERT_TRUE(runUntil([&] { return server.connections() > 0; }));
  runUntil([] { return false; }, 30ms);  // let the request go out; the response never comes
  ASSERT_FALSE(checker->idle());
  Checker* reported = nullptr;
  EXPECT_FALSE(checker->stop([&](Checker* c) { reported = c; }));
  EXPECT_TRUE(runUntil([&] { return reported != nullptr; }, 1000ms));
  EXPECT_EQ(reported, checker.get());
  EXPECT_TRUE(checker->idle());
  EXPECT_EQ(state_.snapshot().checks, 0u) << "an aborted check records no result";
  EXPECT_TRUE(checker->stop(nullptr)) << "stopping an idle checker is immediate";
}

TEST_F(CheckerTest, OnIdleMayDestroyTheChecker) {
  TestServer server(silent);
  config_.type = CheckType::Http;
  config_.timeout = 2000ms;
  std::unique_ptr<Checker> checker = makeChecker(server.address());
  checker->start(0ms);
  ASSERT_TRUE(runUntil([&] { return server.connections() > 0; }));
  ASSERT_FALSE(checker->idle());
  EXPECT_FALSE(checker->stop([&](Checker* c) {
    EXPECT_EQ(c, checker.get());
    checker.reset();  // the integrator's pattern: destroy from the callback
  }));
  EXPECT_TRUE(runUntil([&] { return checker == nullptr; }, 1000ms));
}

TEST_F(CheckerTest, MaintPausesChecksButKeepsTheSchedule) {
  std::string error;
  core::UniqueFd listener = core::listenOn(*core::SocketAddress::parse("127.0.0.1:0"), 16, &error);
  ASSERT_TRUE(listener) << error;
  auto checker = makeChecker(*core::localAddress(listener.get()));
  state_.setAdmin(AdminState::Maint, loop_.now());
  checker->start(0ms);
  runUntil([] { return false; }, 150ms);
  EXPECT_EQ(state_.snapshot().checks, 0u);
  state_.setAdmin(AdminState::Ready, loop_.now());
  EXPECT_TRUE(runUntil([&] { return state_.snapshot().checks > 0; }, 1000ms)) << "checks resume";
  stopAndWait(*checker);
}

// ---- TLS ----

const pki::Ca& internalCa() {
  static const pki::Ca ca = pki::makeCa("Health Test CA");
  return ca;
}

// An OpenSSL server with a certificate for backend.internal.test; with `http_response` it
// reads one request and answers it over TLS.
TestServer::Handler tlsServer(SSL_CTX* ctx, std::string http_response = "") {
  return [ctx, http_response](int fd, const std::atomic<bool>&) {
    tls::SslPtr ssl(SSL_new(ctx));
    SSL_set_fd(ssl.get(), fd);
    if (SSL_accept(ssl.get()) != 1) return;
    char buf[1024];
    if (!http_response.empty()) {
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        int n = SSL_read(ssl.get(), buf, sizeof(buf));
        if (n <= 0) return;
        request.append(buf, static_cast<size_t>(n));
      }
      SSL_write(ssl.get(), http_response.data(), static_cast<int>(http_response.size()));
      SSL_shutdown(ssl.get());
      return;
    }
    while (SSL_read(ssl.get(), buf, sizeof(buf)) > 0) {
    }
  };
}

class CheckerTlsTest : public CheckerTest {
 protected:
  void SetUp() override {
    CheckerTest::SetUp();
    if (IsSkipped()) return;
    leaf_ = pki::makeLeaf(internalCa(), pki::spec("backend.internal.test", {"backend.internal.test"}));
    server_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    ASSERT_EQ(SSL_CTX_use_certificate(server_ctx_.get(), leaf_.cert.get()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx_.get(), leaf_.key.get()), 1);
    config_.tls.enabled = true;
    config_.tls.ca_file = dir_.write("ca.pem", pki::certPem(internalCa().cert.get()));
    std::vector<std::string> errors;
    auto creds = tls::ClientCredentials::load(config_.tls, &errors, nullptr);
    ASSERT_NE(creds, nullptr) << ::testing::PrintToString(errors);
    std::string error;
    client_ = tls::ClientContext::create(config_.tls, creds, &error);
    ASSERT_NE(client_, nullptr) << error;
  }

  pki::TempDir dir_;
  pki::Leaf leaf_;
  tls::SslCtxPtr server_ctx_;
  std::unique_ptr<tls::ClientContext> client_;
};

TEST_F(CheckerTlsTest, TlsCheckPassesWithTheRightName) {
  TestServer server(tlsServer(server_ctx_.get()));
  config_.type = CheckType::Tls;
  startDown();
  auto checker = makeChecker(server.address(), "backend.internal.test", client_.get());
  std::string reason = runChecks(*checker, 2);
  EXPECT_EQ(reason.rfind("TLS handshake done", 0), 0u) << reason;
  EXPECT_TRUE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTlsTest, TlsCheckFailsOnAWrongNameWithOpenSslsReason) {
  TestServer server(tlsServer(server_ctx_.get()));
  config_.type = CheckType::Tls;
  auto checker = makeChecker(server.address(), "other.internal.test", client_.get());
  std::string reason = runChecks(*checker);
  EXPECT_EQ(reason.rfind("TLS: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("Hostname mismatch"), std::string::npos) << reason;
  EXPECT_NE(reason.find("other.internal.test"), std::string::npos) << reason;
  EXPECT_FALSE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTlsTest, HttpsCheckReadsTheResponseThroughTls) {
  TestServer server(tlsServer(server_ctx_.get(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok\r\n"));
  config_.type = CheckType::Https;
  config_.http.expect_body = "ok";
  startDown();
  auto checker = makeChecker(server.address(), "backend.internal.test", client_.get());
  EXPECT_EQ(runChecks(*checker, 2), "HTTP 200");
  EXPECT_TRUE(state_.up());
  stopAndWait(*checker);
}

TEST_F(CheckerTlsTest, HttpsCheckFailsOn503) {
  TestServer server(tlsServer(server_ctx_.get(), "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"));
  config_.type = CheckType::Https;
  auto checker = makeChecker(server.address(), "backend.internal.test", client_.get());
  EXPECT_EQ(runChecks(*checker), "HTTP 503 (expected 200-399)");
  stopAndWait(*checker);
}

TEST_F(CheckerTlsTest, TlsHandshakeAgainstASilentServerTimesOut) {
  TestServer server(silent);
  config_.type = CheckType::Tls;
  auto checker = makeChecker(server.address(), "backend.internal.test", client_.get());
  EXPECT_EQ(runChecks(*checker), "timeout after 200 ms (TLS handshake)");
  stopAndWait(*checker);
}

}  // namespace
}  // namespace ringlb::health
