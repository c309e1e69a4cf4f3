#include "core/timer_wheel.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringlb::core {
namespace {

using std::chrono::milliseconds;

struct Recorder final : TimerHandler {
  std::vector<uint8_t> fired;
  std::function<void(uint8_t)> hook;
  void onTimer(uint8_t kind) override {
    fired.push_back(kind);
    if (hook) hook(kind);
  }
};

TEST(TimerWheelTest, NeverFiresBeforeItsDeadline) {
  Clock::time_point t0{};
  TimerWheel wheel(t0);
  Recorder r;
  Timer timer{&r, 1};
  wheel.schedule(timer, t0 + milliseconds(55));
  for (int ms = 0; ms < 55; ++ms) {
    wheel.advance(t0 + milliseconds(ms));
    ASSERT_TRUE(r.fired.empty()) << "fired at " << ms << " ms";
  }
  wheel.advance(t0 + milliseconds(70));
  EXPECT_EQ(r.fired.size(), 1u);
  EXPECT_FALSE(timer.armed());
  EXPECT_EQ(wheel.armedCount(), 0u);
}

TEST(TimerWheelTest, CancelledTimerDoesNotFire) {
  Clock::time_point t0{};
  TimerWheel wheel(t0);
  Recorder r;
  Timer a{&r, 1}, b{&r, 2};
  wheel.schedule(a, t0 + milliseconds(20));
  wheel.schedule(b, t0 + milliseconds(20));
  wheel.cancel(a);
  wheel.advance(t0 + milliseconds(100));
  ASSERT_EQ(r.fired.size(), 1u);
  EXPECT_EQ(r.fired[0], 2);
}

TEST(TimerWheelTest, TimersBeyondOneRevolutionFireOnTime) {
  Clock::time_point t0{};
  TimerWheel wheel(t0);
  Recorder r;
  Timer timer{&r, 7};
  auto deadline = t0 + milliseconds(100000);  // > 40.96 s revolution
  wheel.schedule(timer, deadline);
  for (int s = 1; s < 100; ++s) {
    wheel.advance(t0 + std::chrono::seconds(s));
    ASSERT_TRUE(r.fired.empty()) << "fired early at " << s << " s";
  }
  wheel.advance(deadline + milliseconds(10));
  EXPECT_EQ(r.fired.size(), 1u);
}

TEST(TimerWheelTest, HandlerMayCancelAnotherTimerInTheSameSlot) {
  Clock::time_point t0{};
  TimerWheel wheel(t0);
  Recorder r;
  Timer a{&r, 1}, b{&r, 2}, c{&r, 3};
  wheel.schedule(a, t0 + milliseconds(30));
  wheel.schedule(b, t0 + milliseconds(30));
  wheel.schedule(c, t0 + milliseconds(30));
  r.hook = [&](uint8_t kind) {
    if (kind == 1) wheel.cancel(b);
  };
  wheel.advance(t0 + milliseconds(50));
  EXPECT_EQ(r.fired, (std::vector<uint8_t>{1, 3}));
  EXPECT_EQ(wheel.armedCount(), 0u);
}

TEST(TimerWheelTest, HandlerMayRearmItself) {
  Clock::time_point t0{};
  TimerWheel wheel(t0);
  Recorder r;
  Timer a{&r, 1};
  Clock::time_point now = t0;
  r.hook = [&](uint8_t) {
    if (r.fired.size() < 3) wheel.schedule(a, now + milliseconds(20));
  };
  wheel.schedule(a, t0 + milliseconds(20));
  for (int ms = 0; ms <= 200; ms += 5) {
    now = t0 + milliseconds(ms);
    wheel.advance(now);
  }
  EXPECT_EQ(r.fired.size(), 3u);
}

TEST(TimerWheelTest, SleepBudgetIsBoundedByTheNextTickWhenArmed) {
  Clock::time_point t0{};
  TimerWheel wheel(t0);
  Recorder r;
  EXPECT_EQ(wheel.sleepBudget(t0, milliseconds(1000)), milliseconds(1000));
  Timer a{&r, 1};
  wheel.schedule(a, t0 + milliseconds(5000));
  EXPECT_LE(wheel.sleepBudget(t0, milliseconds(1000)), TimerWheel::kTick);
}

}  // namespace
}  // namespace ringlb::core
