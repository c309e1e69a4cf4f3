#include "health/server_state.h"

#include <algorithm>

namespace ringlb::health {

const char* checkTypeName(CheckType type) {
  switch (type) {
    case CheckType::None: return "none";
    case CheckType::Tcp: return "tcp";
    case CheckType::Tls: return "tls";
    case CheckType::Http: return "http";
    case CheckType::Https: return "https";
  }
  return "?";
}

const char* adminStateName(AdminState state) {
  switch (state) {
    case AdminState::Ready: return "ready";
    case AdminState::Drain: return "drain";
    case AdminState::Maint: return "maint";
  }
  return "?";
}

std::string StateSnapshot::status() const {
  if (admin == AdminState::Maint) return "MAINT";
  if (admin == AdminState::Drain) return "DRAIN";
  if (ejected) return "DOWN";
  if (!checked) return "no check";
  if (up) return consecutive_fail > 0 ? "UP " + std::to_string(consecutive_fail) + "/" + std::to_string(fall) : "UP";
  return consecutive_ok > 0 ? "DOWN " + std::to_string(consecutive_ok) + "/" + std::to_string(rise) : "DOWN";
}

namespace {

int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }
int64_t ticks(Millis d) { return std::chrono::duration_cast<Clock::duration>(d).count(); }

}  // namespace

ServerState::ServerState(uint32_t weight, Clock::time_point now) : weight_(weight), config_weight_(weight) {
  last_change_ = now;
}

void ServerState::configure(const CheckConfig& check, const LifecycleConfig& life, uint32_t config_weight) {
  std::lock_guard lock(mu_);
  if (config_weight != config_weight_) {
    config_weight_ = config_weight;
    weight_.store(config_weight, std::memory_order_relaxed);
  }
  bool checked = check.type != CheckType::None;
  if (!checked && !up_.load(std::memory_order_relaxed)) {
    Clock::time_point now = Clock::now();
    downtime_ += std::chrono::duration_cast<Millis>(now - down_since_);
    last_change_ = now;
    up_.store(true, std::memory_order_relaxed);
  }
  if (checked != checked_ || check.rise != rise_ || check.fall != fall_) consecutive_ok_ = consecutive_fail_ = 0;
  checked_ = checked;
  rise_ = std::max<uint32_t>(1, check.rise);
  fall_ = std::max<uint32_t>(1, check.fall);
  life_ = life;
  slow_start_.store(ticks(life.slow_start), std::memory_order_relaxed);
}

uint32_t ServerState::effectiveWeight(Clock::time_point now) const {
  uint32_t weight = weight_.load(std::memory_order_relaxed);
  int64_t period = slow_start_.load(std::memory_order_relaxed);
  if (period <= 0 || weight == 0) return weight;
  int64_t elapsed = ticks(now) - usable_since_.load(std::memory_order_relaxed);
  if (elapsed >= period) return weight;
  // Linear ramp from 1/16 of the weight; never 0 while the backend is usable. weight <= 2^16
  // and elapsed < period <= 720 h in ns (2.6e15): the product fits in 64 bits.
  elapsed = std::max(elapsed, period / 16);
  auto ramped = static_cast<uint32_t>(static_cast<int64_t>(weight) * elapsed / period);
  return std::max<uint32_t>(1, ramped);
}

void ServerState::markUsable(Clock::time_point when) { usable_since_.store(ticks(when), std::memory_order_relaxed); }

Change ServerState::onCheck(const CheckResult& result, Clock::time_point now) {
  std::lock_guard lock(mu_);
  // A late result from a retired generation's checker after a reload turned checks off.
  if (!checked_) return Change::None;
  ++checks_;
  last_check_ = result.reason;
  last_check_ok_ = result.ok;
  last_http_status_ = result.http_status;
  last_latency_ = result.latency;
  bool up = up_.load(std::memory_order_relaxed);
  if (result.ok) {
    consecutive_fail_ = 0;
    if (up || ++consecutive_ok_ < rise_) return Change::None;
    consecutive_ok_ = 0;
    downtime_ += std::chrono::duration_cast<Millis>(now - down_since_);
    last_change_ = now;
    markUsable(now);
    up_.store(true, std::memory_order_relaxed);
    return Change::WentUp;
  }
  ++check_failures_;
  consecutive_ok_ = 0;
  if (!up || ++consecutive_fail_ < fall_) return Change::None;
  consecutive_fail_ = 0;
  ++went_down_;
  down_since_ = last_change_ = now;
  up_.store(false, std::memory_order_relaxed);
  return Change::WentDown;
}

bool ServerState::inTransition() const {
  std::lock_guard lock(mu_);
  return checked_ && (up_.load(std::memory_order_relaxed) ? consecutive_fail_ > 0 : consecutive_ok_ > 0);
}

bool ServerState::onConnectFailure(Clock::time_point now, Millis* ejected_for) {
  std::lock_guard lock(mu_);
  ++connect_failures_;
  if (life_.eject_after == 0) return false;
  if (ticks(now) < ejected_until_.load(std::memory_order_relaxed)) return false;  // already ejected
  uint32_t failures = consecutive_connect_failures_.load(std::memory_order_relaxed) + 1;
  consecutive_connect_failures_.store(failures, std::memory_order_relaxed);
  // After an ejection, the first try decides (half-open): one more failure ejects again, for
  // longer; a success (onConnectSuccess) closes the circuit.
  uint32_t threshold = ejections_in_row_ > 0 ? 1 : life_.eject_after;
  if (failures < threshold) return false;
  ++ejections_in_row_;
  ++ejections_;
  Millis length = std::min<Millis>(life_.eject_for * ejections_in_row_, std::max(life_.eject_max, life_.eject_for));
  Clock::time_point until = now + length;
  ejected_until_.store(ticks(until), std::memory_order_relaxed);
  markUsable(until);
  // The failure count stays non-zero while the circuit is open or half-open: it is what tells
  // onConnectSuccess()'s lock-free fast path that a success must close the circuit (reset
  // ejections_in_row_). Resetting it here made that success a no-op, so a backend that had
  // recovered was re-ejected, for longer, by its next single failure.
  if (ejected_for) *ejected_for = length;
  return true;
}

void ServerState::resetConnectFailures() {
  std::lock_guard lock(mu_);
  consecutive_connect_failures_.store(0, std::memory_order_relaxed);
  ejections_in_row_ = 0;
}

void ServerState::setAdmin(AdminState state, Clock::time_point now) {
  std::lock_guard lock(mu_);
  AdminState old = admin_.load(std::memory_order_relaxed);
  if (old == state) return;
  if (old == AdminState::Maint) {
    // Checks were paused: start counting afresh, and ramp up from now.
    consecutive_ok_ = consecutive_fail_ = 0;
    markUsable(now);
  }
  last_change_ = now;
  admin_.store(state, std::memory_order_relaxed);
}

void ServerState::setWeight(uint32_t weight) { weight_.store(weight, std::memory_order_relaxed); }

StateSnapshot ServerState::snapshot(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  StateSnapshot s;
  s.admin = admin_.load(std::memory_order_relaxed);
  s.checked = checked_;
  s.up = up_.load(std::memory_order_relaxed);
  s.ejected = ticks(now) < ejected_until_.load(std::memory_order_relaxed);
  s.accepts_new = acceptsNew(now);
  s.weight = weight_.load(std::memory_order_relaxed);
  s.effective_weight = effectiveWeight(now);
  s.rise = rise_;
  s.fall = fall_;
  s.consecutive_ok = consecutive_ok_;
  s.consecutive_fail = consecutive_fail_;
  s.checks = checks_;
  s.check_failures = check_failures_;
  s.went_down = went_down_;
  s.ejections = ejections_;
  s.connect_failures = connect_failures_;
  s.last_check = last_check_;
  s.last_check_ok = last_check_ok_;
  s.last_http_status = last_http_status_;
  s.last_latency = last_latency_;
  s.last_change = last_change_;
  s.downtime = downtime_;
  s.down_since = down_since_;
  return s;
}

}  // namespace ringlb::health
