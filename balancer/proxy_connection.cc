#include "balancer/proxy_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "balancer/affinity_table.h"
#include "balancer/proxy_protocol.h"
#include "balancer/proxy_protocol_parse.h"
#include "tls/server_context.h"
#include "balancer/router.h"
#include "balancer/worker.h"
#include "balancer/access_record.h"
#include "core/log.h"

namespace ringlb::balancer {
namespace {

// TLS alert records (RFC 8446 s6): level fatal (2), then the description. The record
// version 0x0301 is what a server that has not negotiated anything may send.
constexpr uint8_t kAlertUnrecognizedName = 112;
constexpr uint8_t kAlertDecodeError = 50;
constexpr uint8_t kAlertHandshakeFailure = 40;
constexpr uint8_t kAlertInternalError = 80;
constexpr uint8_t kAlertRecords[4][7] = {
    {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, kAlertUnrecognizedName},
    {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, kAlertDecodeError},
    {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, kAlertHandshakeFailure},
    {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, kAlertInternalError},
};
const uint8_t* alertRecord(uint8_t alert) {
  switch (alert) {
    case kAlertUnrecognizedName: return kAlertRecords[0];
    case kAlertDecodeError: return kAlertRecords[1];
    case kAlertInternalError: return kAlertRecords[3];
    default: return kAlertRecords[2];
  }
}

}  // namespace

const char* endReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::Done: return "done";
    case EndReason::ClientClosed: return "client_closed";
    case EndReason::ClientReset: return "client_error";
    case EndReason::BackendReset: return "backend_error";
    case EndReason::IdleTimeout: return "idle_timeout";
    case EndReason::HelloTimeout: return "hello_timeout";
    case EndReason::HelloInvalid: return "hello_invalid";
    case EndReason::NotTls: return "not_tls";
    case EndReason::NoRoute: return "no_route";
    case EndReason::NoBackend: return "no_backend";
    case EndReason::ConnectFailed: return "connect_failed";
    case EndReason::Draining: return "draining";
    case EndReason::InternalError: return "internal_error";
    case EndReason::HandshakeFailed: return "handshake_failed";
    case EndReason::BackendTlsFailed: return "backend_tls_failed";
    case EndReason::ProxyHeaderInvalid: return "proxy_header_invalid";
    case EndReason::ProxyUntrusted: return "proxy_untrusted";
  }
  return "?";
}

void ProxyConnection::start(int client_fd, ListenerRuntime& listener, Generation& generation) {
  core::EventLoop& loop = worker_.loop();
  gen_ = &generation;
  slot_ = loop.attach(this);
  state_ = State::Hello;
  end_ = EndReason::Done;
  end_errno_ = 0;
  client_fd_ = client_fd;
  backend_fd_ = -1;
  listener_ = &listener;
  pool_ = nullptr;
  backend_ = nullptr;
  hello_ = worker_.acquireHelloBuffer();
  hello_len_ = 0;
  hello_needed_ = 0;
  preamble_len_ = preamble_sent_ = preamble_off_ = 0;
  sni_len_ = alpn_len_ = 0;
  hash_ = 0;
  peer_known_ = false;
  backend_connected_ = false;
  proxied_dst_known_ = false;
  hello_version_ = 0;
  proxy_pending_ = listener.config->accept_proxy != AcceptProxy::None;
  if (core::accessLog() != nullptr || proxy_pending_) peer();
  tried_count_ = 0;
  attempts_left_ = 0;
  for (Direction& dir : dirs_) {
    dir.queue.clear();  // keeps its storage: pooled connections do not reallocate
    BufferQueue kept = std::move(dir.queue);
    dir = Direction{};
    dir.queue = std::move(kept);
  }
  observer_ = tls::ServerFlightObserver{};
  io_ = false;
  flush_then_close_ = false;
  tls_error_.clear();
  ktls_planned_ = ktls_switching_ = ktls_draining_ = ktls_active_ = false;
  started_ = last_activity_ = loop.now();
  hello_timer_.handler = idle_timer_.handler = this;
  retry_timers_[0].handler = retry_timers_[1].handler = this;
  hello_timer_.kind = kHelloTimer;
  idle_timer_.kind = kIdleTimer;
  retry_timers_[0].kind = kRetryRecv0;
  retry_timers_[1].kind = kRetryRecv1;
  // The deadline runs from accept and is never extended by bytes trickling in (slowloris).
  loop.timers().schedule(hello_timer_, started_ + listener.config->client_hello_timeout);
  if (proxy_pending_ && !listener.proxy_trusted.empty()) {
    bool trusted = false;
    for (const core::Cidr& cidr : listener.proxy_trusted) trusted = trusted || cidr.contains(peer_);
    if (!trusted) {
      listener.stats.refused_proxy.fetch_add(1, std::memory_order_relaxed);
      core::log().warn("listener {}: {} is not in proxy_trusted; closing", listener.config->name, peer_.toString());
      finish(EndReason::ProxyUntrusted);
      return;
    }
  }
  armHelloRecv();
}

// The upstream's PROXY header (v1 or v2) comes before the ClientHello: parse it, take the
// client's address from it, and drop it from the input.
bool ProxyConnection::consumeProxyHeader() {
  ProxyVersionAccepted accepted = ProxyVersionAccepted::Any;
  if (listener_->config->accept_proxy == AcceptProxy::V1) accepted = ProxyVersionAccepted::V1;
  if (listener_->config->accept_proxy == AcceptProxy::V2) accepted = ProxyVersionAccepted::V2;
  ProxyHeader header;
  ProxyParseResult result = parseProxyHeader({hello_->input(), hello_len_}, accepted, header);
  if (result.status == ProxyParseStatus::NeedMore && hello_len_ < hello_->input_capacity) {
    hello_needed_ = static_cast<uint32_t>(result.bytes_needed);
    armHelloRecv();
    return false;
  }
  if (result.status != ProxyParseStatus::Complete) {
    listener_->stats.refused_proxy.fetch_add(1, std::memory_order_relaxed);
    core::log().warn("listener {}: invalid PROXY header from {}: {} ({} bytes read); closing", listener_->config->name,
                     peer().toString(), proxyParseErrorName(result.error), hello_len_);
    finish(EndReason::ProxyHeaderInvalid);
    return false;
  }
  proxy_pending_ = false;
  if (header.has_addresses) {
    peer_ = header.source;  // LOCAL / UNKNOWN: the connection's own addresses stand
    peer_known_ = true;
    proxied_dst_ = header.destination;
    proxied_dst_known_ = true;
  }
  hello_len_ -= static_cast<uint32_t>(result.consumed);
  std::memmove(hello_->input(), hello_->input() + result.consumed, hello_len_);
  hello_needed_ = 0;
  if (hello_len_ == 0) {
    armHelloRecv();
    return false;
  }
  return true;
}

void ProxyConnection::armHelloRecv() {
  uint32_t room = hello_->input_capacity - hello_len_;
  worker_.loop().recv(slot_, kHelloRecv, client_fd_, hello_->input() + hello_len_, room);
}

void ProxyConnection::onHelloRecv(int32_t res) {
  if (state_ != State::Hello) return;
  if (res <= 0) {
    end_errno_ = -res;
    // EOF before a complete hello: a TCP health probe or a client that gave up.
    finish(res == 0 ? EndReason::ClientClosed : EndReason::ClientReset);
    return;
  }
  hello_len_ += static_cast<uint32_t>(res);
  // Re-parse only once the parser can make progress: a hello trickled in 1-byte records
  // would otherwise cost a walk over every record header per byte.
  if (hello_len_ < hello_needed_ && hello_len_ < hello_->input_capacity) {
    armHelloRecv();
    return;
  }
  if (proxy_pending_ && !consumeProxyHeader()) return;
  tls::ParseLimits limits;
  limits.max_hello_bytes = listener_->config->client_hello_max;
  tls::ClientHelloInfo hello;
  tls::ParseStatus status = tls::parseClientHello({hello_->input(), hello_len_},
                                                  {hello_->scratch(), hello_->scratch_capacity}, limits, hello);
  if (status == tls::ParseStatus::NeedMore) {
    hello_needed_ = static_cast<uint32_t>(hello.bytes_needed);
    if (hello_len_ < hello_->input_capacity) {
      armHelloRecv();
      return;
    }
    hello.error = tls::ParseError::HelloTooLarge;
    status = tls::ParseStatus::Invalid;
  }
  if (status == tls::ParseStatus::Invalid) {
    if (hello.error == tls::ParseError::NotTls) {
      RouteDecision d = listener_->router.routeNotTls();
      if (d.kind == RouteDecision::Kind::Pool) {
        worker_.loop().timers().cancel(hello_timer_);
        listener_->routeStats(d.route).connections.fetch_add(1, std::memory_order_relaxed);
        enterPool(d.pool);
        chooseAndConnect();
        return;
      }
      refuse(EndReason::NotTls, d.kind == RouteDecision::Kind::Alert ? kAlertUnrecognizedName : 0);
      return;
    }
    listener_->stats.refused_hello.fetch_add(1, std::memory_order_relaxed);
    core::log().warn("listener {}: refusing invalid ClientHello: {} ({} bytes read)", listener_->config->name,
                     tls::parseErrorName(hello.error), hello_len_);
    refuse(EndReason::HelloInvalid, kAlertDecodeError);
    return;
  }
  onHelloComplete(hello);
}

void ProxyConnection::onHelloComplete(const tls::ClientHelloInfo& hello) {
  hello_version_ = hello.maxOfferedVersion();
  if (hello.has_sni) {
    std::string_view lower = Router::lowerSni(hello.sni, sni_);
    sni_len_ = static_cast<uint8_t>(lower.size());
  }
  if (hello.has_alpn) {
    hello.alpn.forEach([&](std::string_view p) {
      alpn_len_ = static_cast<uint8_t>(std::min(p.size(), sizeof(alpn_)));
      std::memcpy(alpn_, p.data(), alpn_len_);
      return false;  // the first protocol is what the access log and PROXY header carry
    });
  }
  RouteDecision d = listener_->router.route(hello);
  if (d.kind != RouteDecision::Kind::Pool) {
    listener_->stats.refused_route.fetch_add(1, std::memory_order_relaxed);
    refuse(EndReason::NoRoute, d.kind == RouteDecision::Kind::Alert ? kAlertUnrecognizedName : 0);
    return;
  }
  listener_->routeStats(d.route).connections.fetch_add(1, std::memory_order_relaxed);
  enterPool(d.pool);
  const PoolConfig& pc = *pool_->config;
  if (pc.algorithm == Algorithm::Maglev) {
    std::string_view client_bytes;
    if (pc.hash_key != HashKey::Sni) client_bytes = peer().hostBytes();
    hash_ = hashKey(pc.hash_key, {sni_, sni_len_}, client_bytes);
  }
  ListenerMode mode = d.route >= 0 ? listener_->config->routes[static_cast<size_t>(d.route)].mode
                                   : listener_->config->mode;
  if (mode == ListenerMode::Terminate) {
    // The backend is chosen once the client's handshake is done; the hello deadline (from
    // accept) keeps running until then. With no backend to go to, refuse before spending a
    // handshake on it.
    if (!pool_->hasEligible(worker_.loop().now())) {
      listener_->stats.backend_failures.fetch_add(1, std::memory_order_relaxed);
      worker_.loop().timers().cancel(hello_timer_);
      noBackend();
      return;
    }
    startTermination();
    return;
  }
  worker_.loop().timers().cancel(hello_timer_);
  // Session affinity: a resumption attempt goes back to the backend that issued the
  // session, if that backend is still in this pool and eligible.
  if (pool_->affinity) {
    std::optional<uint32_t> hit;
    if (hello.has_session_ticket && !hello.session_ticket.empty()) {
      hit = pool_->affinity->lookup(AffinityTable::ticketKey(tls::ticketDigest(hello.session_ticket)));
    }
    if (!hit && !hello.session_id.empty()) hit = pool_->affinity->lookup(AffinityTable::sessionIdKey(hello.session_id));
    if (hit && *hit < pool_->backends.size() && pool_->backends[*hit]->eligible(worker_.loop().now())) {
      backend_ = pool_->backends[*hit].get();
    }
  }
  if (backend_ != nullptr) {
    startConnect();
  } else {
    chooseAndConnect();
  }
}

void ProxyConnection::refuse(EndReason reason, uint8_t alert) {
  worker_.loop().timers().cancel(hello_timer_);
  end_ = reason;
  if (alert == 0) {
    finish(reason);
    return;
  }
  state_ = State::Refusing;
  worker_.loop().send(slot_, kAlert, client_fd_, alertRecord(alert), 7);
}

void ProxyConnection::enterPool(uint32_t pool) {
  pool_ = &gen_->runtime().pools[pool];
  attempts_left_ = static_cast<uint8_t>(std::min<uint32_t>(pool_->config->retries + 1, kMaxTries));
}

void ProxyConnection::chooseAndConnect() {
  bool backup = false;
  PickRequest request{hash_, {tried_, tried_count_}, worker_.loop().now()};
  uint32_t index = pickBackend(gen_->selector(pool_->index), request, &backup);
  if (index == kNoBackend) {
    listener_->stats.backend_failures.fetch_add(1, std::memory_order_relaxed);
    if (tried_count_ == 0) {
      noBackend();
    } else {
      core::log().warn("listener {} pool {}: no eligible backend left ({} tried)", listener_->config->name,
                       pool_->name, tried_count_);
      finishWithoutBackend(EndReason::ConnectFailed);
    }
    return;
  }
  if (backup) pool_->stats->backup_used.fetch_add(1, std::memory_order_relaxed);
  backend_ = pool_->backends[index].get();
  startConnect();
}

// Every backend of the pool is down, ejected, draining, in maintenance or at weight 0: fail
// now rather than let the client wait. Logged at the 1st, 2nd, 4th, 8th... occurrence.
void ProxyConnection::noBackend() {
  uint64_t n = pool_->stats->no_backend.fetch_add(1, std::memory_order_relaxed);
  if ((n & (n + 1)) == 0) {
    core::log().warn("listener {} pool {}: no backend available (all {} down, ejected, draining or in maintenance); "
                     "refusing new connections ({} so far)",
                     listener_->config->name, pool_->name, pool_->backends.size(), n + 1);
  }
  finishWithoutBackend(EndReason::NoBackend);
}

// Before any byte reached a backend: a TLS client that is still waiting for the server's
// reply (passthrough) gets an internal_error alert (RFC 8446 section 6.2), which clients
// report plainly, instead of a bare close.
void ProxyConnection::finishWithoutBackend(EndReason reason) {
  if (!tlsMode() && hello_version_ != 0) {
    refuse(reason, kAlertInternalError);
  } else {
    finish(reason);
  }
}

void ProxyConnection::startConnect() {
  state_ = State::Connecting;
  tried_[tried_count_++] = backend_->index;
  --attempts_left_;
  backend_->stats().active.fetch_add(1, std::memory_order_relaxed);
  core::UniqueFd fd = core::streamSocket(backend_->address.family());
  if (!fd) {
    backend_->stats().active.fetch_sub(1, std::memory_order_relaxed);
    end_errno_ = errno;
    core::log().error("socket() for backend {}: {}", backend_->name, std::strerror(errno));
    backend_ = nullptr;
    finish(EndReason::InternalError);
    return;
  }
  backend_fd_ = fd.release();
  worker_.loop().connect(slot_, kConnect, backend_fd_, backend_->address, pool_->config->connect_timeout,
                         kConnectTimeout);
}

void ProxyConnection::onConnect(int32_t res) {
  if (state_ != State::Connecting) return;
  if (res < 0) {
    connectFailed(res);
    return;
  }
  backend_->stats().connections_total.fetch_add(1, std::memory_order_relaxed);
  // Passive health learns the outcome when the connection ends (maybeFree): a reset before
  // any response byte or a failed backend handshake must still count as a failure.
  backend_connected_ = true;
  if (tlsMode()) {
    queueProxyHeader();
    if (state_ != State::Closing) startBackendTls();
    return;
  }
  sendPreamble();
}

void ProxyConnection::connectFailed(int32_t res) {
  // -ECANCELED here means the linked timeout fired (connect(2) would say ETIMEDOUT).
  int err = res == -ECANCELED ? ETIMEDOUT : -res;
  backend_->stats().connect_failures.fetch_add(1, std::memory_order_relaxed);
  backend_->stats().active.fetch_sub(1, std::memory_order_relaxed);
  core::log().warn("listener {} pool {}: connect to backend {} ({}) failed: {}{}", listener_->config->name,
                   pool_->name, backend_->name, backend_->address.toString(), std::strerror(err),
                   attempts_left_ > 0 ? "; trying another backend" : "");
  passiveFailure(std::strerror(err));
  // No operation can still reference the failed socket: its connect has completed.
  ::close(backend_fd_);
  backend_fd_ = -1;
  end_errno_ = err;
  if (attempts_left_ == 0 || worker_.draining()) {
    listener_->stats.backend_failures.fetch_add(1, std::memory_order_relaxed);
    backend_ = nullptr;
    finishWithoutBackend(EndReason::ConnectFailed);
    return;
  }
  backend_->stats().redispatches.fetch_add(1, std::memory_order_relaxed);
  backend_ = nullptr;
  chooseAndConnect();
}

// Passive health: a failed connect, a backend TLS handshake failure, or a reset before the
// backend sent anything counts towards ejecting the backend (see health::ServerState).
void ProxyConnection::passiveFailure(std::string_view what) {
  if (backend_ == nullptr) return;
  health::Millis length{0};
  if (backend_->health().onConnectFailure(worker_.loop().now(), &length)) {
    core::log().warn("pool {} backend {} ({}): ejected for {} ms after {} consecutive failures (last: {})", pool_->name,
                     backend_->name, backend_->address.toString(), length.count(),
                     pool_->config->lifecycle.eject_after, what);
  }
}

void ProxyConnection::sendPreamble() {
  state_ = State::Preamble;
  preamble_off_ = HelloBuffer::kHeadroom;
  preamble_len_ = hello_len_;
  if (pool_->config->proxy_protocol == ProxyProtocol::V2) {
    uint8_t header[kProxyV2MaxHeader];
    size_t n = encodeOurProxyHeader(header);
    if (n == 0) {
      core::log().error("pool {}: cannot encode the PROXY v2 header", pool_->name);
      finish(EndReason::InternalError);
      return;
    }
    static_assert(HelloBuffer::kHeadroom >= kProxyV2MaxHeader);
    preamble_off_ = static_cast<uint32_t>(HelloBuffer::kHeadroom - n);
    std::memcpy(hello_->data.get() + preamble_off_, header, n);
    preamble_len_ += static_cast<uint32_t>(n);
  }
  preamble_sent_ = 0;
  worker_.loop().send(slot_, kPreamble, backend_fd_, hello_->data.get() + preamble_off_, preamble_len_);
}

void ProxyConnection::onPreamble(int32_t res) {
  if (state_ != State::Preamble) return;
  if (res < 0) {
    end_errno_ = -res;
    finish(EndReason::BackendReset);
    return;
  }
  preamble_sent_ += static_cast<uint32_t>(res);
  dirs_[0].bytes += static_cast<uint32_t>(res);
  if (preamble_sent_ < preamble_len_) {
    worker_.loop().send(slot_, kPreamble, backend_fd_, hello_->data.get() + preamble_off_ + preamble_sent_,
                        preamble_len_ - preamble_sent_);
    return;
  }
  dirs_[0].bytes -= preamble_len_ - hello_len_;  // count client bytes only, not our header
  worker_.releaseHelloBuffer(hello_);
  hello_ = nullptr;
  startRelay();
}

void ProxyConnection::learnAffinity() {
  if (!pool_->affinity || backend_ == nullptr) return;
  // TLS 1.3 resumption uses PSKs from encrypted tickets: nothing to learn (RFC 8446 s2.2).
  if (observer_.version() >= 0x0304) return;
  if (!observer_.sessionId().empty())
    pool_->affinity->insert(AffinityTable::sessionIdKey(observer_.sessionId()), backend_->index);
  if (observer_.hasTicket())
    pool_->affinity->insert(AffinityTable::ticketKey(observer_.ticketDigest()), backend_->index);
}

void ProxyConnection::onCompletion(uint8_t op, const core::Completion& c) {
  switch (op) {
    case kHelloRecv: onHelloRecv(c.res); break;
    case kConnect: onConnect(c.res); break;
    case kConnectTimeout: break;  // the connect's own completion carries the outcome
    case kPreamble: onPreamble(c.res); break;
    case kAlert: if (state_ == State::Refusing) finish(end_); break;
    case kCancel: break;
    case kCancelRecv0: case kCancelRecv1: onRecvCancelled(op - kCancelRecv0); break;
    case kRecv0: case kRecv1: onRecv(op - kRecv0, c); break;
    case kSend0: case kSend1: onSend(op - kSend0, c.res); break;
    case kPollIn0: case kPollIn1: onPoll(op - kPollIn0, false, c.res); break;
    case kPollOut0: case kPollOut1: onPoll(op - kPollOut0, true, c.res); break;
    case kAsync0: case kAsync1: onAsyncReady(op - kAsync0, c.res); break;
    default: break;
  }
  if (state_ == State::Closing) maybeFree();
}

void ProxyConnection::onTimer(uint8_t kind) {
  core::Clock::time_point now = worker_.loop().now();
  switch (kind) {
    case kHelloTimer:
      if (state_ == State::BackendHandshake) {
        backend_->stats().tls_failures.fetch_add(1, std::memory_order_relaxed);
        tls_error_ = "handshake timed out";
        core::log().warn("pool {} backend {} ({}): TLS handshake not complete within {} ms; closing", pool_->name,
                         backend_->name, backend_->address.toString(), pool_->config->connect_timeout.count());
        passiveFailure(tls_error_);
        finish(EndReason::BackendTlsFailed);
      } else if (state_ == State::Handshake) {
        listener_->stats.handshake_failures.fetch_add(1, std::memory_order_relaxed);
        tls_error_ = "handshake timed out";
        core::log().info("listener {}: TLS handshake with client {} not complete within {} ms; closing",
                         listener_->config->name, peer().toString(),
                         listener_->config->client_hello_timeout.count());
        finish(EndReason::HelloTimeout);
      } else if (state_ == State::Hello) {
        listener_->stats.refused_hello.fetch_add(1, std::memory_order_relaxed);
        core::log().info("listener {}: ClientHello not complete within {} ms ({} bytes read); closing",
                         listener_->config->name, listener_->config->client_hello_timeout.count(), hello_len_);
        finish(EndReason::HelloTimeout);
      }
      break;
    case kIdleTimer: {
      auto idle = pool_->config->idle_timeout;
      if (now - last_activity_ >= idle) {
        finish(EndReason::IdleTimeout);
      } else {
        worker_.loop().timers().schedule(idle_timer_, last_activity_ + idle);
      }
      break;
    }
    case kRetryRecv0: case kRetryRecv1:
      if (tlsMode()) {
        if (io_) drive(kind - kRetryRecv0);
      } else {
        armRecv(kind - kRetryRecv0);
      }
      break;
    default: break;
  }
  if (state_ == State::Closing) maybeFree();
}

void ProxyConnection::abort(EndReason reason) { finish(reason); }

void ProxyConnection::finish(EndReason reason) {
  if (state_ == State::Closing || state_ == State::Idle) return;
  if (end_ == EndReason::Done) end_ = reason;
  state_ = State::Closing;
  io_ = false;
  core::TimerWheel& timers = worker_.loop().timers();
  timers.cancel(hello_timer_);
  timers.cancel(idle_timer_);
  timers.cancel(retry_timers_[0]);
  timers.cancel(retry_timers_[1]);
  // Closing an fd does not cancel io_uring operations on it: cancel, then wait for every
  // completion (maybeFree) before closing and recycling.
  // A poll on a paused async job's wait fd is not cancelled: the job must run to its end
  // before its SSL can be freed, and that poll's completion resumes it (tls_relay.cc).
  if (worker_.loop().inflight(slot_) > 0) {
    if (client_fd_ >= 0) worker_.loop().cancelFd(slot_, kCancel, client_fd_);
    if (backend_fd_ >= 0) worker_.loop().cancelFd(slot_, kCancel, backend_fd_);
  }
  maybeFree();
}

void ProxyConnection::maybeFree() {
  if (worker_.loop().inflight(slot_) > 0) return;
  logAccess();
  releaseTls();
  for (Direction& dir : dirs_) {
    releaseQueued(dir);
    if (dir.pipe_r >= 0) ::close(dir.pipe_r);
    if (dir.pipe_w >= 0) ::close(dir.pipe_w);
    dir.pipe_r = dir.pipe_w = -1;
  }
  WorkerStats& stats = worker_.stats();
  stats.bytes_in.fetch_add(dirs_[0].bytes, std::memory_order_relaxed);
  stats.bytes_out.fetch_add(dirs_[1].bytes, std::memory_order_relaxed);
  listener_->stats.bytes_in.fetch_add(dirs_[0].bytes, std::memory_order_relaxed);
  listener_->stats.bytes_out.fetch_add(dirs_[1].bytes, std::memory_order_relaxed);
  if (client_fd_ >= 0) ::close(client_fd_);
  if (backend_fd_ >= 0) ::close(backend_fd_);
  client_fd_ = backend_fd_ = -1;
  if (backend_ != nullptr) {
    BackendStats& backend_stats = backend_->stats();
    backend_stats.active.fetch_sub(1, std::memory_order_relaxed);
    backend_stats.bytes_in.fetch_add(dirs_[0].bytes, std::memory_order_relaxed);
    backend_stats.bytes_out.fetch_add(dirs_[1].bytes, std::memory_order_relaxed);
    if (end_ == EndReason::BackendReset) backend_stats.resets.fetch_add(1, std::memory_order_relaxed);
    if (end_ == EndReason::BackendReset && dirs_[1].bytes == 0) {
      passiveFailure("reset before any response byte");
    } else if (backend_connected_ && end_ != EndReason::BackendTlsFailed) {
      backend_->health().onConnectSuccess();
    }
  }
  backend_ = nullptr;
  if (hello_ != nullptr) {
    worker_.releaseHelloBuffer(hello_);
    hello_ = nullptr;
  }
  // Admitted by Worker::admit, which counted it; maybeFree runs once per connection.
  listener_->stats.active.fetch_sub(1, std::memory_order_relaxed);
  gen_->runtime().active.fetch_sub(1, std::memory_order_relaxed);
  worker_.loop().detach(slot_);
  state_ = State::Idle;
  Generation* generation = gen_;
  gen_ = nullptr;
  worker_.connectionClosed(this, generation);  // may hand this object to the next accept: touch nothing after
}

core::SocketAddress ProxyConnection::destination() {
  if (proxied_dst_known_) return proxied_dst_;
  core::SocketAddress local;
  socklen_t len = sizeof(sockaddr_storage);
  if (::getsockname(client_fd_, local.sockaddrPtr(), &len) == 0) local.setLength(len);
  return local;
}

namespace {
const char* versionName(uint16_t version) {
  switch (version) {
    case 0x0304: return "TLSv1.3";
    case 0x0303: return "TLSv1.2";
    case 0x0302: return "TLSv1.1";
    case 0x0301: return "TLSv1";
    default: return "";
  }
}
}  // namespace

// PROXY v2 with AUTHORITY (SNI), ALPN and the SSL TLV (section 2.2.6). Terminated: what was
// negotiated with the client, including its certificate's CN and whether it verified.
// Passthrough: only that the client speaks TLS and the highest version it offered (the
// header leaves before the backend has even seen the hello).
size_t ProxyConnection::encodeOurProxyHeader(std::span<uint8_t> out) {
  ProxyV2Ssl ssl;
  ssl.client = kPp2ClientSsl;
  ssl.verify = 1;  // non-zero: no verified client certificate
  tls::SessionInfo info;
  std::string key_alg;
  if (tlsMode()) {
    info = tls::sessionInfo(tls_[0].stream.ssl());
    ssl.version = info.version;
    ssl.cipher = info.cipher;
    ssl.sig_alg = info.sig_hash;
    key_alg = std::string(info.key_alg) + std::to_string(info.key_bits);
    ssl.key_alg = key_alg;
    if (info.client_cert_presented) {
      ssl.client |= kPp2ClientCertConn | (info.resumed ? kPp2ClientCertSess : 0);
      ssl.cn = info.client_cn;
      if (info.client_cert_verified) ssl.verify = 0;
    }
  } else if (hello_version_ != 0) {
    ssl.version = versionName(hello_version_);
  }
  bool tls_client = tlsMode() || hello_version_ != 0;
  return encodeProxyV2(out, peer(), destination(),
                       {{sni_, sni_len_}, {alpn_, alpn_len_}, tls_client ? &ssl : nullptr});
}

const core::SocketAddress& ProxyConnection::peer() {
  if (!peer_known_) {
    peer_known_ = true;
    peer_ = core::SocketAddress{};
    socklen_t len = sizeof(sockaddr_storage);
    if (::getpeername(client_fd_, peer_.sockaddrPtr(), &len) == 0) peer_.setLength(len);
  }
  return peer_;
}

void ProxyConnection::logAccess() {
  spdlog::logger* access = core::accessLog();
  if (access == nullptr) return;
  const core::SocketAddress& client = peer();
  AccessRecord record(gen_->runtime().config.global.access_log_format == AccessLogFormat::Json);
  record.add("client", client.length() ? client.toString() : "-");
  record.add("listener", listener_->config->name);
  record.add("sni", std::string_view(sni_, sni_len_));
  record.add("alpn", std::string_view(alpn_, alpn_len_));
  record.add("pool", pool_ ? std::string_view(pool_->name) : "-");
  record.add("backend", backend_ ? std::string_view(backend_->name) : "-");
  record.add("bytes_in", dirs_[0].bytes);
  record.add("bytes_out", dirs_[1].bytes);
  char relay[16];
  std::snprintf(relay, sizeof(relay), "%s,%s", dirs_[0].splice ? "splice" : "buffers",
                dirs_[1].splice ? "splice" : "buffers");
  record.add("relay", relay);
  if (tls_[0].stream.active()) addTlsLogFields(record);
  record.addMillis("duration_ms", std::chrono::duration<double, std::milli>(worker_.loop().now() - started_).count());
  record.add("end", endReasonName(end_));
  if (end_errno_) record.add("errno", std::strerror(end_errno_));
  access->info("{}", record.finish());
}

}  // namespace ringlb::balancer
