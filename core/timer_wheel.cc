#include "core/timer_wheel.h"

#include <algorithm>

namespace ringlb::core {
namespace {
void unlink(Timer& t) {
  t.prev->next = t.next;
  t.next->prev = t.prev;
}
void linkBefore(Timer& head, Timer& t) {
  t.next = &head;
  t.prev = head.prev;
  head.prev->next = &t;
  head.prev = &t;
}
}  // namespace


TimerWheel::TimerWheel(Clock::time_point now) : origin_(now), heads_(kSlots) {
  for (Timer& head : heads_) head.prev = head.next = &head;
}

uint64_t TimerWheel::tickOf(Clock::time_point t) const {
  if (t <= origin_) return 0;
  return static_cast<uint64_t>((t - origin_) / kTick);
}

size_t TimerWheel::slotFor(Clock::time_point deadline) const {
  // Round up so a timer never fires before its deadline; never into the slot being
  // processed right now.
  uint64_t tick = tickOf(deadline + kTick - Clock::duration(1));
  tick = std::max(tick, current_tick_ + 1);
  return static_cast<size_t>(tick % kSlots);
}

void TimerWheel::schedule(Timer& timer, Clock::time_point deadline) {
  cancel(timer);
  timer.deadline = deadline;
  linkBefore(heads_[slotFor(deadline)], timer);
  ++armed_;
}

void TimerWheel::cancel(Timer& timer) {
  if (!timer.armed()) return;
  unlink(timer);
  timer.prev = timer.next = nullptr;
  --armed_;
}

void TimerWheel::advance(Clock::time_point now) {
  uint64_t target = tickOf(now);
  while (current_tick_ < target) {
    ++current_tick_;
    Timer& head = heads_[current_tick_ % kSlots];
    // Pop one timer at a time from the live list, so a handler that cancels or re-arms any
    // timer (including one still in this slot) sees consistent lists. Timers due in a later
    // revolution wait in `later` (still armed, still cancellable) and are re-slotted after.
    Timer later;
    later.prev = later.next = &later;
    while (head.next != &head) {
      Timer* t = head.next;
      unlink(*t);
      if (t->deadline <= now) {
        t->prev = t->next = nullptr;
        --armed_;
        t->handler->onTimer(t->kind);
      } else {
        linkBefore(later, *t);
      }
    }
    while (later.next != &later) {
      Timer* t = later.next;
      unlink(*t);
      t->prev = t->next = nullptr;
      --armed_;
      schedule(*t, t->deadline);
    }
  }
}

std::chrono::milliseconds TimerWheel::sleepBudget(Clock::time_point now,
                                                  std::chrono::milliseconds idle) const {
  if (armed_ == 0) return idle;
  auto next_tick = origin_ + kTick * static_cast<int64_t>(current_tick_ + 1);
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
  return std::clamp(wait, std::chrono::milliseconds(0), idle);
}

}  // namespace ringlb::core
