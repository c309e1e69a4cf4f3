// A hashed timer wheel in user space for connection-level deadlines (ClientHello, idle,
// drain). Timers are intrusive (no allocation), O(1) to schedule and cancel. Resolution is
// one tick (kTick); a timer never fires early.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace ringlb::core {

using Clock = std::chrono::steady_clock;

class TimerHandler {
 public:
  virtual void onTimer(uint8_t kind) = 0;

 protected:
  ~TimerHandler() = default;
};

// Embed one per deadline in the owning object. Must be cancelled (or fired) before the owner
// is destroyed; the destructor does not unlink.
struct Timer {
  TimerHandler* handler = nullptr;
  uint8_t kind = 0;
  Clock::time_point deadline{};
  Timer* prev = nullptr;
  Timer* next = nullptr;
  bool armed() const { return prev != nullptr; }
};

class TimerWheel {
 public:
  static constexpr std::chrono::milliseconds kTick{10};
  static constexpr size_t kSlots = 4096;  // one revolution = 40.96 s; later timers re-queue

  explicit TimerWheel(Clock::time_point now);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms (or re-arms) `timer` to fire at `deadline` (clamped to at least one tick ahead).
  void schedule(Timer& timer, Clock::time_point deadline);
  void cancel(Timer& timer);
  // Fires every timer whose deadline <= now. Handlers may schedule and cancel timers.
  void advance(Clock::time_point now);
  size_t armedCount() const { return armed_; }
  // How long the loop may sleep: until the next tick if any timer is armed, else `idle`.
  std::chrono::milliseconds sleepBudget(Clock::time_point now, std::chrono::milliseconds idle) const;

 private:
  size_t slotFor(Clock::time_point deadline) const;
  uint64_t tickOf(Clock::time_point t) const;

  Clock::time_point origin_;
  uint64_t current_tick_ = 0;  // every slot up to this tick has been processed
  std::vector<Timer> heads_;   // sentinel per slot (circular list)
  size_t armed_ = 0;
};

}  // namespace ringlb::core
