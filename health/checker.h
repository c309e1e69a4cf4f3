// The active health check of one backend, run on one worker's EventLoop (no threads of its
// own): every `interval` (or `fast_interval` while the state is in transition), +-10% jitter
// so a pool's checks spread over time, it connects, optionally completes a TLS handshake
// (Tls/Https) and an HTTP exchange (Http/Https), all within `timeout`, and feeds the result
// to the backend's ServerState, logging each up/down transition.
//
// Contract:
//  - config, state and tls (required when config.speaksTls()) must outlive the checker. `tls`
//    is built from config.tls: its CAs, policy and ALPN offer are what the check uses. Checks
//    never resume sessions: each one is a full handshake with certificate verification.
//  - start() again after stop() only once idle().
//  - A check holds one socket; it is closed only once every operation on it has completed
//    (closing an fd does not cancel io_uring work), and the next check is scheduled then.
//  - While state.checksPaused() (Maint) the schedule keeps running but no check is made.
//  - Single-threaded: every call happens on the loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/event_loop.h"
#include "core/unique_fd.h"
#include "health/check_config.h"
#include "health/http_probe.h"
#include "health/server_state.h"
#include "tls/tls_stream.h"

namespace ringlb::tls {
class ClientContext;
}

namespace ringlb::health {

struct CheckTarget {
  std::string pool;             // names for logs
  std::string backend;
  core::SocketAddress address;  // where to connect (check port already applied by the caller)
  std::string host;             // HTTP Host when HttpCheckConfig::host is empty
  std::string sni;              // TLS: SNI to send ("" = none)
  std::string verify_name;      // TLS: name the backend certificate must carry
};

class Checker final : public core::CompletionHandler, public core::TimerHandler {
 public:
  // `tls` is required when config.speaksTls(); config, state and tls must outlive the checker.
  Checker(core::EventLoop& loop, const CheckConfig& config, CheckTarget target, ServerState& state,
          const tls::ClientContext* tls);
  ~Checker();                          // precondition: idle()
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  void start(Millis first_delay);      // first check after first_delay, then forever
  // Stops scheduling and cancels the check in flight. Returns true if already idle (the caller may
  // destroy it now); otherwise `on_idle(this)` is called later from a completion once nothing is in
  // flight (it may destroy the checker; the checker touches nothing after calling it).
  bool stop(std::function<void(Checker*)> on_idle);
  bool idle() const;

  void onCompletion(uint8_t op, const core::Completion& completion) override;
  void onTimer(uint8_t kind) override;

 private:
  enum Op : uint8_t { kOpConnect = 1, kOpConnectTimeout, kOpSend, kOpRecv, kOpCancel };
  enum TimerKind : uint8_t { kTimerNext = 1, kTimerDeadline };
  enum class Phase : uint8_t { Idle, Connecting, Handshaking, Exchanging, Draining };

  // Ciphertext from the TLS engine goes to the send queue.
  struct Sink final : tls::CiphertextSink {
    Checker* checker = nullptr;
    bool writeCiphertext(const uint8_t* data, size_t len) override;
  };

  void beginCheck();
  void onConnect(int32_t res);
  void driveTls();
  void tlsFailed(tls::TlsStatus status);
  void onRecv(int32_t res);
  void onSend(int32_t res);
  void queue(const uint8_t* data, size_t len);
  void flush();
  void armRecv();
  // Feeds response bytes; true (and the check completed) once the verdict is known.
  bool feedHttp(const uint8_t* data, size_t len);
  // Ends the check with this result (recorded unless the checker is stopping) and enters
  // Draining; the caller's entry point then calls drain().
  void complete(bool ok, std::string reason, unsigned http_status = 0);
  void drain();
  void releaseCheck();
  void scheduleNext();
  const char* phaseWhat() const;

  core::EventLoop& loop_;
  const CheckConfig& config_;
  CheckTarget target_;
  ServerState& state_;
  const tls::ClientContext* tls_;
  core::SlotRef slot_;
  core::Timer next_{this, kTimerNext};
  core::Timer deadline_{this, kTimerDeadline};
  std::minstd_rand rng_;
  std::string request_;               // built once: the config does not change under us

  // The check in flight.
  Phase phase_ = Phase::Idle;
  bool stopping_ = false;
  std::function<void(Checker*)> on_idle_;
  core::UniqueFd fd_;
  Clock::time_point started_{};
  bool cancel_sent_ = false;
  bool abort_ = false;                // drain without waiting for the last send
  bool recv_inflight_ = false;
  bool send_inflight_ = false;
  std::vector<uint8_t> out_;          // queued, not yet handed to send()
  std::vector<uint8_t> sending_;      // owned by the send in flight
  size_t send_offset_ = 0;
  std::unique_ptr<uint8_t[]> in_;     // recv buffer (ciphertext or plain HTTP)
  std::unique_ptr<uint8_t[]> plain_;  // decrypted HTTP bytes (Https)
  Sink sink_;
  tls::TlsStream stream_;
  std::unique_ptr<HttpResponseParser> http_;
};

}  // namespace ringlb::health
