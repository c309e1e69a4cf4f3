// UringLoop on real sockets (socketpairs and loopback TCP): no mocks.
#include "core/uring_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ringlb::core {
namespace {

struct Harness final : CompletionHandler, TimerHandler {
  UringLoop loop;
  SlotRef slot;
  std::vector<std::pair<uint8_t, Completion>> events;
  std::function<void(uint8_t, const Completion&)> on;
  Timer guard{this, 1};
  bool timed_out = false;

  void init(uint32_t buffers = 16, uint32_t size = 4096) {
    UringFeatures f = probeUring();
    ASSERT_TRUE(f.available) << f.unavailable_reason;
    std::string error;
    UringLoopOptions o;
    o.buffer_count = buffers;
    o.buffer_size = size;
    ASSERT_TRUE(loop.init(o, f, &error)) << error;
    slot = loop.attach(this);
  }
  void onCompletion(uint8_t op, const Completion& c) override {
    events.emplace_back(op, c);
    if (on) on(op, c);
  }
  void onTimer(uint8_t) override {
    timed_out = true;
    loop.stop();
  }
  void runFor(std::chrono::milliseconds limit) {
    loop.timers().schedule(guard, loop.now() + limit);
    loop.run();
    loop.timers().cancel(guard);
  }
};

std::pair<UniqueFd, UniqueFd> socketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST(UringLoopTest, MultishotRecvDeliversChunksInProvidedBuffersThenEof) {
  Harness h;
  h.init();
  auto [a, b] = socketPair();
  std::string received;
  h.on = [&](uint8_t, const Completion& c) {
    if (c.res > 0) {
      ASSERT_TRUE(c.hasBuffer());
      received.append(reinterpret_cast<char*>(h.loop.buffer(c.bufferId()).data()), static_cast<size_t>(c.res));
      h.loop.releaseBuffer(c.bufferId());
    }
    if (c.res == 0) h.loop.stop();
  };
  h.loop.recvProvided(h.slot, 5, a.get(), true);
  ASSERT_EQ(::write(b.get(), "hello ", 6), 6);
  ASSERT_EQ(::write(b.get(), "world", 5), 5);
  ::shutdown(b.get(), SHUT_WR);
  h.runFor(std::chrono::milliseconds(2000));
  EXPECT_FALSE(h.timed_out);
  EXPECT_EQ(received, "hello world");
  EXPECT_EQ(h.loop.inflight(h.slot), 0u) << "EOF ends the multishot recv";
  EXPECT_EQ(h.loop.bufferRing().outstanding(), 0u);
}

TEST(UringLoopTest, CancelFdCompletesEveryOperationOnTheFd) {
  Harness h;
  h.init();
  auto [a, b] = socketPair();
  char buf[16];
  h.loop.recv(h.slot, 1, a.get(), buf, sizeof(buf));
  h.loop.recvProvided(h.slot, 2, a.get(), true);
  EXPECT_EQ(h.loop.inflight(h.slot), 2u);
  h.loop.cancelFd(h.slot, 9, a.get());
  h.on = [&](uint8_t, const Completion&) {
    if (h.loop.inflight(h.slot) == 0) h.loop.stop();
  };
  h.runFor(std::chrono::milliseconds(2000));
  EXPECT_FALSE(h.timed_out);
  std::map<uint8_t, int32_t> results;
  for (auto& [op, c] : h.events) results[op] = c.res;
  EXPECT_EQ(results[1], -ECANCELED);
  EXPECT_EQ(results[2], -ECANCELED);
  EXPECT_EQ(results[9], 2) << "cancel reports how many it cancelled";
}

TEST(UringLoopTest, ConnectToAClosedPortFailsAndTheLinkedTimeoutIsReported) {
  Harness h;
  h.init();
  // Find a closed port: bind, read the port, close.
  auto addr = SocketAddress::parse("127.0.0.1:0");
  std::string error;
  UniqueFd probe = listenOn(*addr, 1, &error);
  ASSERT_TRUE(probe) << error;
  auto target = *localAddress(probe.get());
  probe.reset();
  UniqueFd fd = streamSocket(AF_INET);
  h.loop.connect(h.slot, 1, fd.get(), target, std::chrono::milliseconds(1000), 2);
  h.on = [&](uint8_t, const Completion&) {
    if (h.loop.inflight(h.slot) == 0) h.loop.stop();
  };
  h.runFor(std::chrono::milliseconds(3000));
  ASSERT_FALSE(h.timed_out);
  std::map<uint8_t, int32_t> results;
  for (auto& [op, c] : h.events) results[op] = c.res;
  EXPECT_EQ(results[1], -ECONNREFUSED);
  EXPECT_EQ(results[2], -ECANCELED) << "the timeout is cancelled when connect finishes first";
}

}  // namespace
}  // namespace ringlb::core
