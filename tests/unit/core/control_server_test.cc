// The control server over real sockets: a unix socket in a temp dir and TCP on 127.0.0.1
// with a kernel-chosen port.
#include "core/control_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace ringlb::core {
namespace {

struct Received {
  std::string data;
  bool eof = false;
};

// Reads until EOF or until nothing arrives for `quiet_ms`.
Received readFor(int fd, int quiet_ms = 2000) {
  Received r;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, quiet_ms) <= 0) return r;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) {
      r.eof = true;
      return r;
    }
    r.data.append(buf, static_cast<size_t>(n));
  }
}

UniqueFd connectUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) return {};
  return fd;
}

UniqueFd connectTcp(const SocketAddress& addr) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(fd.get(), addr.sockaddrPtr(), addr.length()) != 0) return {};
  return fd;
}

void sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

class ControlServerTest : public ::testing::Test {
 protected:
  ControlServerTest() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ringlb-ctl-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
    options_.unix_path = dir_ + "/admin.sock";
    options_.unix_mode = 0640;
    options_.http_address = "127.0.0.1:0";
    options_.idle_timeout = std::chrono::milliseconds(300);
    options_.signals = false;
  }
  ~ControlServerTest() override {
    if (server_) {
      server_->stop();
      thread_.join();
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start() {
    server_ = std::make_unique<ControlServer>(options_);
    server_->setCommandHandler([this](std::string_view in) {
      ++commands_;
      return "answer to [" + std::string(in) + "]\n";
    });
    server_->setHttpHandler([](std::string_view path) -> std::optional<HttpResponse> {
      if (path == "/metrics") return HttpResponse{200, "text/plain; version=0.0.4", "ringlb_up 1\n"};
      return std::nullopt;
    });
    std::string error;
    ASSERT_TRUE(server_->start(&error)) << error;
    thread_ = std::thread([this] { server_->run(); });
  }

  std::string http(std::string_view request) {
    UniqueFd fd = connectTcp(*server_->httpAddress());
    EXPECT_TRUE(fd.valid());
    sendAll(fd.get(), request);
    Received r = readFor(fd.get());
    EXPECT_TRUE(r.eof);
    return r.data;
  }

  std::string dir_;
  ControlServerOptions options_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
  std::atomic<int> commands_{0};
};

TEST(CliFramingTest, RequestIsCompleteAtALineEndOutsideAPayload) {
  EXPECT_FALSE(cliRequestComplete(""));
  EXPECT_FALSE(cliRequestComplete("show info"));
  EXPECT_TRUE(cliRequestComplete("show info\n"));
  EXPECT_TRUE(cliRequestComplete("show info\r\n"));
  EXPECT_FALSE(cliRequestComplete("set ssl cert a.pem <<\n"));
  EXPECT_FALSE(cliRequestComplete("set ssl cert a.pem <<\n-----BEGIN\n"));
  EXPECT_TRUE(cliRequestComplete("set ssl cert a.pem <<\n-----BEGIN\n\n"));
  EXPECT_TRUE(cliRequestComplete("set ssl cert a.pem <<\n-----BEGIN\n\ncommit ssl cert a.pem\n"));
}

// `echo "show info" | socat stdio UNIX-CONNECT:...`: the line, then a half-close.
TEST_F(ControlServerTest, UnixClientThatHalfClosesGetsTheAnswerThenEof) {
  start();
  UniqueFd fd = connectUnix(options_.unix_path);
  ASSERT_TRUE(fd.valid());
  sendAll(fd.get(), "show info\n");
  ::shutdown(fd.get(), SHUT_WR);
  Received r = readFor(fd.get());
  EXPECT_EQ(r.data, "answer to [show info\n]\n");
  EXPECT_TRUE(r.eof);
}

// `socat - UNIX-CONNECT:...` typed by hand: a full line and no EOF.
TEST_F(ControlServerTest, UnixClientGetsTheAnswerAfterAFullLineWithoutHalfClosing) {
  start();
  UniqueFd fd = connectUnix(options_.unix_path);
  ASSERT_TRUE(fd.valid());
  sendAll(fd.get(), "show st");
  EXPECT_EQ(readFor(fd.get(), 100).data, "");  // half a line: no answer yet
  sendAll(fd.get(), "at\n");
  Received r = readFor(fd.get());
  EXPECT_EQ(r.data, "answer to [show stat\n]\n");
  EXPECT_TRUE(r.eof);
}

TEST_F(ControlServerTest, PayloadIsReadUpToTheEmptyLine) {
  start();
  UniqueFd fd = connectUnix(options_.unix_path);
  ASSERT_TRUE(fd.valid());
  sendAll(fd.get(), "set ssl cert /a.pem <<\n-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(readFor(fd.get(), 150).data, "");
  EXPECT_EQ(commands_.load(), 0);
  sendAll(fd.get(), "MIIB\n-----END CERTIFICATE-----\n\n");
  Received r = readFor(fd.get());
  EXPECT_EQ(r.data, "answer to [set ssl cert /a.pem <<\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\n]\n");
  EXPECT_TRUE(r.eof);
}

TEST_F(ControlServerTest, SocketFileGetsTheConfiguredMode) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(options_.unix_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(ControlServerTest, StaleSocketIsReplacedButALiveOneOrAFileIsNot) {
  {  // A socket left behind by a dead process: bound, then closed without unlink.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, options_.unix_path.c_str(), sizeof(sun.sun_path) - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0);
  }
  start();
  ControlServer second(options_);
  std::string error;
  EXPECT_FALSE(second.start(&error));
  EXPECT_NE(error.find("in use"), std::string::npos) << error;

  ControlServerOptions file_options = options_;
  file_options.unix_path = dir_ + "/plain-file";
  std::ofstream(file_options.unix_path) << "keep me";
  ControlServer third(file_options);
  EXPECT_FALSE(third.start(&error));
  EXPECT_NE(error.find("not a socket"), std::string::npos) << error;
  EXPECT_TRUE(std::filesystem::exists(file_options.unix_path));
}

TEST_F(ControlServerTest, OversizedRequestIsCutOffWithoutAnAnswer) {
  options_.max_request = 1024;
  start();
  UniqueFd fd = connectUnix(options_.unix_path);
  ASSERT_TRUE(fd.valid());
  sendAll(fd.get(), std::string(2000, 'x'));
  Received r = readFor(fd.get());
  EXPECT_EQ(r.data, "");
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(commands_.load(), 0);
}

TEST_F(ControlServerTest, IdleClientIsDisconnected) {
  start();
  UniqueFd fd = connectUnix(options_.unix_path);
  ASSERT_TRUE(fd.valid());
  const auto t0 = std::chrono::steady_clock::now();
  Received r = readFor(fd.get(), 3000);
  EXPECT_TRUE(r.eof);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
}

// A client that trickles bytes and never completes its request must not keep its slot (and,
// with max_clients, lock everyone else out of the CLI and /metrics) for ever: reads do not
// push the deadline back.
TEST_F(ControlServerTest, TrickledRequestIsCutOffAtTheDeadline) {
  options_.max_clients = 1;
  start();
  const SocketAddress http = *server_->httpAddress();
  UniqueFd slow = connectTcp(http);
  ASSERT_TRUE(slow.valid());
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(2000)) {
    if (::send(slow.get(), "G", 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    pollfd p{slow.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char c;
      if (::read(slow.get(), &c, 1) <= 0) {
        closed = true;
        break;
      }
    }
  }
  EXPECT_TRUE(closed) << "a client sending a byte every 100 ms outlived idle_timeout (300 ms) by far";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  UniqueFd cli = connectUnix(options_.unix_path);
  ASSERT_TRUE(cli.valid());
  sendAll(cli.get(), "help\n");
  EXPECT_EQ(readFor(cli.get()).data, "answer to [help\n]\n");
}

TEST_F(ControlServerTest, ClientsBeyondTheLimitAreClosedAtOnce) {
  options_.max_clients = 2;
  options_.idle_timeout = std::chrono::milliseconds(5000);
  start();
  UniqueFd a = connectUnix(options_.unix_path);
  UniqueFd b = connectUnix(options_.unix_path);
  UniqueFd c = connectUnix(options_.unix_path);
  ASSERT_TRUE(a.valid() && b.valid() && c.valid());
  Received r = readFor(c.get(), 1000);
  EXPECT_TRUE(r.eof);
  sendAll(a.get(), "help\n");
  EXPECT_EQ(readFor(a.get()).data, "answer to [help\n]\n");
}

TEST_F(ControlServerTest, HttpGetIsRoutedByPath) {
  start();
  const std::string ok = http("GET /metrics?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(ok, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 12\r\n"
                "Connection: close\r\n\r\nringlb_up 1\n");
  EXPECT_EQ(http("GET /nope HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  const std::string post = http("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
  EXPECT_EQ(http("hello\r\n\r\n").rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
  EXPECT_EQ(http("GET metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
}

TEST_F(ControlServerTest, SignalsBecomeCallbacks) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);  // before any thread starts
  options_.signals = true;
  std::atomic<int> hups{0};
  std::atomic<int> terms{0};
  server_ = std::make_unique<ControlServer>(options_);
  server_->setSignalHandler([&](int sig) {
    if (sig == SIGHUP) ++hups;
    if (sig == SIGTERM) {
      ++terms;
      server_->stop();
    }
  });
  std::string error;
  ASSERT_TRUE(server_->start(&error)) << error;
  thread_ = std::thread([this] { server_->run(); });
  ::kill(::getpid(), SIGHUP);
  for (int i = 0; i < 200 && hups.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(hups.load(), 1);
  ::kill(::getpid(), SIGTERM);
  thread_.join();  // run() returned because the SIGTERM callback called stop()
  EXPECT_EQ(terms.load(), 1);
  server_.reset();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace
}  // namespace ringlb::core
