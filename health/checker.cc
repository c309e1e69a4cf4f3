// One check is a small state machine: Connecting -> (Handshaking) -> (Exchanging) ->
// Draining -> Idle. Every path that ends a check goes through complete(), which records the
// result and enters Draining; the single place that leaves Draining is drain(), called last
// by the two entry points (onCompletion, onTimer), because leaving it may call on_idle,
// which may destroy the checker.
#include "health/checker.h"

#include <cassert>
#include <cerrno>
#include <cstring>
#include <functional>

#include "core/log.h"
#include "tls/client_context.h"

namespace ringlb::health {
namespace {

constexpr size_t kBufferSize = 16 * 1024;

std::string errnoReason(int err) {
  if (err == ECONNREFUSED) return "connection refused";
  return std::strerror(err);
}

}  // namespace

bool Checker::Sink::writeCiphertext(const uint8_t* data, size_t len) {
  checker->queue(data, len);
  return true;
}

Checker::Checker(core::EventLoop& loop, const CheckConfig& config, CheckTarget target, ServerState& state,
                 const tls::ClientContext* tls)
    : loop_(loop), config_(config), target_(std::move(target)), state_(state), tls_(tls) {
  assert(!config_.speaksTls() || tls_ != nullptr);
  slot_ = loop_.attach(this);
  // Jitter only needs to differ between checkers, not to be unpredictable.
  std::random_device seed;
  rng_.seed(seed() ^ static_cast<uint32_t>(std::hash<std::string>{}(target_.pool + "/" + target_.backend)));
  sink_.checker = this;
  if (config_.speaksHttp()) request_ = buildHttpRequest(config_.http, target_.host);
}

Checker::~Checker() {
  assert(idle() && "Checker destroyed with a check in flight");
  loop_.timers().cancel(next_);
  loop_.timers().cancel(deadline_);
  if (slot_.valid()) loop_.detach(slot_);
}

void Checker::start(Millis first_delay) {
  stopping_ = false;
  if (phase_ == Phase::Idle) loop_.timers().schedule(next_, loop_.now() + first_delay);
}

bool Checker::stop(std::function<void(Checker*)> on_idle) {
  stopping_ = true;
  loop_.timers().cancel(next_);
  if (phase_ == Phase::Idle) return true;
  phase_ = Phase::Draining;  // an aborted check records no result
  abort_ = true;
  if (loop_.inflight(slot_) == 0) {  // not expected: a busy check always has an operation out
    releaseCheck();
    return true;
  }
  on_idle_ = std::move(on_idle);
  if (!cancel_sent_) {
    cancel_sent_ = true;
    loop_.cancelFd(slot_, kOpCancel, fd_.get());
  }
  return false;
}

bool Checker::idle() const { return phase_ == Phase::Idle; }

void Checker::onTimer(uint8_t kind) {
  if (kind == kTimerNext) {
    if (stopping_ || phase_ != Phase::Idle) return;
    if (state_.checksPaused()) {
      scheduleNext();  // Maint: keep the rhythm, skip the check
      return;
    }
    beginCheck();
  } else if (kind == kTimerDeadline) {
    if (phase_ == Phase::Draining) {
      abort_ = true;  // a graceful drain (a last send) took too long
    } else if (phase_ != Phase::Idle) {
      complete(false, "timeout after " + std::to_string(config_.timeout.count()) + " ms (" + phaseWhat() + ")");
      abort_ = true;
    }
  }
  if (phase_ == Phase::Draining) drain();
}

void Checker::onCompletion(uint8_t op, const core::Completion& completion) {
  switch (op) {
    case kOpConnect: onConnect(completion.res); break;
    case kOpSend: onSend(completion.res); break;
    case kOpRecv: onRecv(completion.res); break;
    default: break;  // the connect's link timeout and our cancel only count in flight
  }
  if (phase_ == Phase::Draining) drain();
}

void Checker::beginCheck() {
  started_ = loop_.now();
  abort_ = cancel_sent_ = recv_inflight_ = send_inflight_ = false;
  fd_ = core::streamSocket(target_.address.family());
  if (!fd_) {
    complete(false, std::string("socket: ") + std::strerror(errno));
    return;
  }
  loop_.timers().schedule(deadline_, started_ + config_.timeout);
  phase_ = Phase::Connecting;
  // The kernel's link timeout bounds the connect itself (the wheel fires up to a tick late);
  // the deadline timer bounds everything after it.
  loop_.connect(slot_, kOpConnect, fd_.get(), target_.address, config_.timeout, kOpConnectTimeout);
}

void Checker::onConnect(int32_t res) {
  if (phase_ != Phase::Connecting) return;
  if (res == -ECANCELED) {
    complete(false, "timeout after " + std::to_string(config_.timeout.count()) + " ms (connecting)");
    abort_ = true;
    return;
  }
  if (res < 0) {
    complete(false, errnoReason(-res));
    return;
  }
  switch (config_.type) {
    case CheckType::Tls:
    case CheckType::Https: {
      phase_ = Phase::Handshaking;
      std::string error;
      tls::SslPtr ssl = tls_->newSsl(target_.sni, target_.verify_name, nullptr, "", &error);
      if (!ssl || !stream_.attach(std::move(ssl), &sink_)) {
        complete(false, "TLS: " + (error.empty() ? std::string("cannot create the TLS session") : error));
        return;
      }
      driveTls();
      return;
    }
    case CheckType::Http:
      phase_ = Phase::Exchanging;
      http_ = std::make_unique<HttpResponseParser>(config_.http);
      queue(reinterpret_cast<const uint8_t*>(request_.data()), request_.size());
      flush();
      armRecv();
      return;
    default:
      complete(true, "connected");  // Tcp: the connect was the whole check
      return;
  }
}

// Runs the TLS engine over whatever input is set: the handshake first, then (Https) the
// request and response. Called after connect and after every recv.
void Checker::driveTls() {
  if (!stream_.handshakeDone()) {
    tls::TlsStatus status = stream_.handshake();
    flush();  // the next flight, or our alert on failure
    if (status == tls::TlsStatus::WantRead) {
      armRecv();
      return;
    }
    if (status != tls::TlsStatus::Ok) {
      tlsFailed(status);
      return;
    }
    if (config_.type == CheckType::Tls) {
      std::string version = SSL_get_version(stream_.ssl());
      stream_.close();  // close_notify (RFC 8446 s6.1), sent before the socket closes
      flush();
      complete(true, "TLS handshake done (" + version + ")");
      return;
    }
    phase_ = Phase::Exchanging;
    http_ = std::make_unique<HttpResponseParser>(config_.http);
    if (!plain_) plain_ = std::make_unique<uint8_t[]>(kBufferSize);
    size_t written = 0;
    if (stream_.write(reinterpret_cast<const uint8_t*>(request_.data()), request_.size(), written) !=
        tls::TlsStatus::Ok) {
      tlsFailed(tls::TlsStatus::Error);
      return;
    }
    flush();
  }
  for (;;) {
    size_t n = 0;
    tls::TlsStatus status = stream_.read(plain_.get(), kBufferSize, n);
    if (status == tls::TlsStatus::Ok) {
      if (n > 0 && feedHttp(plain_.get(), n)) return;
      continue;
    }
    if (status == tls::TlsStatus::WantRead) {
      armRecv();
    } else if (status == tls::TlsStatus::Closed) {
      const HttpVerdict& verdict = http_->finish();
      complete(verdict.ok, verdict.reason, verdict.status);
    } else {
      tlsFailed(status);
    }
    return;
  }
}

void Checker::tlsFailed(tls::TlsStatus status) {
  // A verification failure names the certificate problem exactly (tls::verifyFailure);
  // anything else is OpenSSL's error queue as the stream recorded it.
  std::string reason = tls::verifyFailure(stream_.ssl());
  if (reason.empty() && status == tls::TlsStatus::Closed && !stream_.handshakeDone()) {
    reason = "connection closed during the handshake";
  }
  if (reason.empty()) reason = stream_.error();
  if (reason.empty()) reason = "connection closed";
  complete(false, "TLS: " + reason);
}

bool Checker::feedHttp(const uint8_t* data, size_t len) {
  if (!http_->feed(std::string_view(reinterpret_cast<const char*>(data), len))) return false;
  const HttpVerdict& verdict = http_->verdict();
  complete(verdict.ok, verdict.reason, verdict.status);
  return true;
}

void Checker::onRecv(int32_t res) {
  recv_inflight_ = false;
  if (phase_ != Phase::Handshaking && phase_ != Phase::Exchanging) return;  // draining
  if (res < 0) {
    complete(false, errnoReason(-res));
    return;
  }
  if (stream_.active()) {
    if (res == 0) {
      stream_.setInputEof();
    } else {
      stream_.setInput(in_.get(), static_cast<size_t>(res));
    }
    driveTls();
    return;
  }
  if (res == 0) {
    const HttpVerdict& verdict = http_->finish();
    complete(verdict.ok, verdict.reason, verdict.status);
    return;
  }
  if (!feedHttp(in_.get(), static_cast<size_t>(res))) armRecv();
}

void Checker::onSend(int32_t res) {
  send_inflight_ = false;
  if (res < 0) {
    if (phase_ != Phase::Draining) complete(false, errnoReason(-res));
    return;
  }
  if (cancel_sent_) return;
  send_offset_ += static_cast<size_t>(res);
  if (send_offset_ < sending_.size()) {
    loop_.send(slot_, kOpSend, fd_.get(), sending_.data() + send_offset_, sending_.size() - send_offset_);
    send_inflight_ = true;
    return;
  }
  sending_.clear();
  flush();
}

void Checker::queue(const uint8_t* data, size_t len) { out_.insert(out_.end(), data, data + len); }

// One send in flight at a time, from `sending_`, which nothing touches until it completes.
void Checker::flush() {
  if (send_inflight_ || out_.empty() || cancel_sent_) return;
  sending_.swap(out_);
  out_.clear();
  send_offset_ = 0;
  loop_.send(slot_, kOpSend, fd_.get(), sending_.data(), sending_.size());
  send_inflight_ = true;
}

void Checker::armRecv() {
  if (recv_inflight_) return;
  if (!in_) in_ = std::make_unique<uint8_t[]>(kBufferSize);
  loop_.recv(slot_, kOpRecv, fd_.get(), in_.get(), kBufferSize);
  recv_inflight_ = true;
}

void Checker::complete(bool ok, std::string reason, unsigned http_status) {
  if (phase_ == Phase::Draining || phase_ == Phase::Idle) return;
  phase_ = Phase::Draining;
  if (stopping_) return;
  CheckResult result;
  result.ok = ok;
  result.reason = std::move(reason);
  result.latency = std::chrono::duration_cast<Millis>(loop_.now() - started_);
  result.http_status = http_status;
  Change change = state_.onCheck(result, loop_.now());
  std::string where = target_.address.toString();
  if (change == Change::WentDown) {
    core::log().warn("pool {} backend {} ({}): health check DOWN after {} failed checks: {}", target_.pool,
                     target_.backend, where, config_.fall, result.reason);
  } else if (change == Change::WentUp) {
    core::log().info("pool {} backend {} ({}): health check UP after {} successful checks: {}", target_.pool,
                     target_.backend, where, config_.rise, result.reason);
  } else {
    core::log().debug("pool {} backend {} ({}): health check {}: {} ({} ms)", target_.pool, target_.backend, where,
                      ok ? "ok" : "failed", result.reason, result.latency.count());
  }
}

// Waits for every operation on the socket before closing it. A check that ended normally
// lets its last send (close_notify, or the alert OpenSSL queued on a failed handshake)
// finish first; a timeout or stop() cancels at once.
void Checker::drain() {
  if (loop_.inflight(slot_) == 0) {
    releaseCheck();
    if (stopping_) {
      std::function<void(Checker*)> on_idle = std::move(on_idle_);
      on_idle_ = nullptr;
      if (on_idle) on_idle(this);  // may destroy *this: nothing after this line
      return;
    }
    scheduleNext();
    return;
  }
  if (!cancel_sent_ && (abort_ || !send_inflight_)) {
    cancel_sent_ = true;
    loop_.cancelFd(slot_, kOpCancel, fd_.get());
  }
}

void Checker::releaseCheck() {
  loop_.timers().cancel(deadline_);
  stream_.reset();
  http_.reset();
  fd_.reset();
  out_.clear();
  sending_.clear();
  send_offset_ = 0;
  phase_ = Phase::Idle;
}

void Checker::scheduleNext() {
  Millis base = state_.inTransition() ? config_.fast_interval : config_.interval;
  int64_t ms = base.count();
  std::uniform_int_distribution<int64_t> jitter(-ms / 10, ms / 10);
  Millis delay{std::max<int64_t>(1, ms + jitter(rng_))};
  loop_.timers().schedule(next_, loop_.now() + delay);
}

const char* Checker::phaseWhat() const {
  switch (phase_) {
    case Phase::Connecting: return "connecting";
    case Phase::Handshaking: return "TLS handshake";
    default: return "waiting for response";
  }
}

}  // namespace ringlb::health
