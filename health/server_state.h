// The health and administrative state of one backend, shared by every configuration
// generation in which the backend is unchanged (same pool, name and address), so a reload
// keeps it. Written by three parties, read by every worker's selection:
//  - active checks (on the one worker that owns this backend's checks): onCheck();
//  - passive health (any worker's connections): onConnectFailure() / onConnectSuccess();
//  - the operator (runtime socket, control thread): setAdmin() / setWeight().
// Selection reads acceptsNew() and effectiveWeight() only: relaxed atomics, no lock. The
// writers serialise on a mutex (checks run every few hundred ms, failures are rare, and
// onConnectSuccess() writes nothing unless failures were being counted).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/timer_wheel.h"
#include "health/check_config.h"

namespace ringlb::health {

using Clock = core::Clock;

// Ready: in rotation. Drain: no new connections (live ones finish; checks go on). Maint: out
// of rotation and its active checks are paused.
enum class AdminState : uint8_t { Ready, Drain, Maint };
const char* adminStateName(AdminState state);

// The outcome of one active check.
struct CheckResult {
  bool ok = false;
  // What was seen, for logs and `show stat`: "HTTP 200", "connection refused",
  // "timeout after 1000 ms (connecting)", "TLS: certificate verify failed: Hostname mismatch ...".
  std::string reason;
  Millis latency{0};
  unsigned http_status = 0;   // 0 when no HTTP response was read
};

enum class Change : uint8_t { None, WentUp, WentDown };

// A consistent copy for reporting (show stat, metrics, status page).
struct StateSnapshot {
  AdminState admin = AdminState::Ready;
  bool checked = false;          // active checks configured
  bool up = true;                // from checks (always true without checks)
  bool ejected = false;          // passive ejection in force now
  bool accepts_new = true;
  uint32_t weight = 1;           // current (configured, or set at run time)
  uint32_t effective_weight = 1; // with the slow-start ramp applied
  uint32_t rise = 0, fall = 0;
  uint32_t consecutive_ok = 0;   // counted towards rise while down
  uint32_t consecutive_fail = 0; // counted towards fall while up
  uint64_t checks = 0;
  uint64_t check_failures = 0;   // HAProxy's chkfail
  uint64_t went_down = 0;        // HAProxy's chkdown: up -> down transitions
  uint64_t ejections = 0;        // passive ejections
  uint64_t connect_failures = 0; // counted by passive health
  std::string last_check;        // CheckResult::reason of the last check ("" = none yet)
  bool last_check_ok = false;
  unsigned last_http_status = 0;
  Millis last_latency{0};
  Clock::time_point last_change{};  // last up/down/admin transition
  Millis downtime{0};               // total time down (excluding the current down period)
  Clock::time_point down_since{};   // valid when !up
  // HAProxy-style status word: "UP", "DOWN", "UP 1/3" (going down), "DOWN 1/2" (going up),
  // "MAINT", "DRAIN", "no check" (up, not checked).
  std::string status() const;
};

class ServerState {
 public:
  explicit ServerState(uint32_t weight, Clock::time_point now = Clock::now());
  ServerState(const ServerState&) = delete;
  ServerState& operator=(const ServerState&) = delete;

  // Applies one generation's settings. A configured weight different from the previous
  // generation's replaces any weight set at run time; an unchanged one keeps it. Turning
  // checks off makes the backend up; turning them on keeps the current state.
  void configure(const CheckConfig& check, const LifecycleConfig& life, uint32_t config_weight);

  // Selection (any thread, lock-free).
  bool acceptsNew(Clock::time_point now) const {
    return admin_.load(std::memory_order_relaxed) == AdminState::Ready && up_.load(std::memory_order_relaxed) &&
           now.time_since_epoch().count() >= ejected_until_.load(std::memory_order_relaxed);
  }
  // The weight to use now: weight() ramped by slow start (at least 1 while weight() > 0).
  uint32_t effectiveWeight(Clock::time_point now) const;
  uint32_t weight() const { return weight_.load(std::memory_order_relaxed); }
  bool up() const { return up_.load(std::memory_order_relaxed); }
  AdminState admin() const { return admin_.load(std::memory_order_relaxed); }

  // Active checks. Returns the transition this result caused, if any.
  Change onCheck(const CheckResult& result, Clock::time_point now);
  // Fewer than rise successes (while down) or fall failures (while up) in a row have been
  // seen: the checker then uses fast_interval.
  bool inTransition() const;
  bool checksPaused() const { return admin() == AdminState::Maint; }

  // Passive health. onConnectFailure() returns true when this failure ejected the backend,
  // with the ejection's length in *ejected_for.
  bool onConnectFailure(Clock::time_point now, Millis* ejected_for);
  void onConnectSuccess() {
    if (consecutive_connect_failures_.load(std::memory_order_relaxed) != 0) resetConnectFailures();
  }

  // Operator. setWeight(0) takes the backend out of rotation like HAProxy's weight 0.
  void setAdmin(AdminState state, Clock::time_point now = Clock::now());
  void setWeight(uint32_t weight);

  StateSnapshot snapshot(Clock::time_point now = Clock::now()) const;

 private:
  void resetConnectFailures();
  void markUsable(Clock::time_point when);  // slow start runs from `when`

  mutable std::mutex mu_;
  // Read lock-free by selection.
  std::atomic<AdminState> admin_{AdminState::Ready};
  std::atomic<bool> up_{true};
  std::atomic<int64_t> ejected_until_{0};   // steady-clock ticks; 0 = not ejected
  std::atomic<uint32_t> weight_{1};
  std::atomic<int64_t> usable_since_{0};    // steady-clock ticks; slow start runs from here
  std::atomic<int64_t> slow_start_{0};      // steady-clock ticks; 0 = off
  std::atomic<uint32_t> consecutive_connect_failures_{0};
  // Under mu_.
  uint32_t config_weight_ = 1;
  bool checked_ = false;
  uint32_t rise_ = 2, fall_ = 3;
  uint32_t consecutive_ok_ = 0, consecutive_fail_ = 0;
  uint64_t checks_ = 0, check_failures_ = 0, went_down_ = 0, ejections_ = 0, connect_failures_ = 0;
  uint32_t ejections_in_row_ = 0;
  LifecycleConfig life_{};
  std::string last_check_;
  bool last_check_ok_ = false;
  unsigned last_http_status_ = 0;
  Millis last_latency_{0};
  Clock::time_point last_change_{};
  Clock::time_point down_since_{};
  Millis downtime_{0};
};

}  // namespace ringlb::health
