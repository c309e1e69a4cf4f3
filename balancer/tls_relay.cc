// The terminate half of ProxyConnection: TLS handshakes with the client (and, when the pool
// re-encrypts, with the backend), then plaintext relay between the two streams.
//
// Buffers: ciphertext arrives in provided buffers (multishot recv) and waits in the side's
// `in` queue until OpenSSL has read it through the stream's BIO; the buffer is released
// then. SSL_read decrypts one record into a freshly acquired provided buffer, which is
// either queued for sending as is (plain backend) or handed to the other stream's SSL_write,
// whose records the RecordSink packs into the buffers queued on the sending direction. So
// a connection holds buffers only while data is in flight, and at most queueLimit() per
// queue: an idle terminated connection holds its two SSL objects (whose record buffers
// SSL_MODE_RELEASE_BUFFERS frees) and nothing else.
//
// Backpressure: a direction stops decrypting while the queue towards its destination is
// full, and stops reading its socket once its `in` queue is full; a send completion drives
// whatever was blocked.
//
// Async crypto ([crypto] async, SSL_MODE_ASYNC): a stream call that returns WantAsync has
// an OpenSSL job paused inside an accelerator's operation. The side then waits on the job's
// wait fd with a one-shot poll (kAsync0/1) and calls nothing on that stream until the poll
// completes; the loop serves other connections meanwhile. The completion repeats the call
// (drive()), which resumes the job. A paused SSL_read keeps its buffer, since the job
// decrypts into the buffer of the call that started it. Teardown cannot cancel that poll
// and free the SSL: SSL_free(3) does not free a paused job (its stack, and what the engine
// holds for it, would leak). So a closing connection keeps the poll, resumes the job into
// a discarding sink when it fires (TlsStream::resumeDiscarding), and is freed once no job is
// left; that takes at most the accelerator's latency.
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "balancer/backend.h"
#include "balancer/proxy_connection.h"
#include "balancer/proxy_protocol.h"
#include "balancer/worker.h"
#include "balancer/access_record.h"
#include "core/log.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace ringlb::balancer {

bool ProxyConnection::RecordSink::writeCiphertext(const uint8_t* data, size_t len) {
  return conn->queueBytes(1 - side, data, len);
}

// Appends to direction d's send queue, filling the newest buffer first.
bool ProxyConnection::queueBytes(int d, const uint8_t* data, size_t len) {
  core::EventLoop& loop = worker_.loop();
  // After our close_notify and shutdown(SHUT_WR) nothing more can reach that peer (e.g. a
  // KeyUpdate answer): sending would fail with EPIPE and reset the other direction too.
  if (dirs_[d].finished) return true;
  BufferQueue& queue = dirs_[d].queue;
  const uint32_t size = loop.bufferSize();
  uint32_t room = queue.empty() ? 0 : size - queue.backLen();
  size_t rest = len > room ? len - room : 0;
  size_t needed = (rest + size - 1) / size;
  // A record is at most 2^14 + 256 + 5 bytes (RFC 8446 s5.2), and buffers are >= 1 KiB.
  constexpr size_t kMaxNew = 24;
  int32_t ids[kMaxNew];
  if (needed > kMaxNew) return false;
  for (size_t i = 0; i < needed; ++i) {
    ids[i] = loop.acquireBuffer();
    if (ids[i] < 0) {
      for (size_t j = 0; j < i; ++j) loop.releaseBuffer(static_cast<uint16_t>(ids[j]));
      return false;  // all or nothing: OpenSSL retries the whole write later
    }
  }
  size_t first = len < room ? len : room;
  if (first > 0) {
    std::memcpy(loop.buffer(queue.backId()).data() + queue.backLen(), data, first);
    queue.growBack(static_cast<uint32_t>(first));
  }
  size_t done = first;
  for (size_t i = 0; i < needed; ++i) {
    auto id = static_cast<uint16_t>(ids[i]);
    size_t n = std::min<size_t>(size, len - done);
    std::memcpy(loop.buffer(id).data(), data + done, n);
    queue.push(id, static_cast<uint32_t>(n));
    done += n;
  }
  return true;
}

// Called once the route says terminate: the bytes already read (the ClientHello, maybe more)
// become the input of a server-mode stream.
bool ProxyConnection::startTermination() {
  const tls::ServerContext* context = gen_->serverTls(listener_->index);
  tls::SslPtr ssl = context != nullptr ? context->newSsl() : nullptr;
  if (!ssl || !tls_[0].stream.attach(std::move(ssl), &tls_[0].sink)) {
    core::log().error("listener {}: cannot create a TLS session: {}", listener_->config->name,
                      tls::opensslErrors());
    finish(EndReason::InternalError);
    return false;
  }
  trackKtls(0);
  state_ = State::Handshake;
  io_ = true;
  dirs_[0].from = client_fd_;
  dirs_[1].to = client_fd_;
  tls_[0].feeding_hello = true;
  tls_[0].stream.setInput(hello_->input(), hello_len_);
  // The hello deadline (from accept) keeps running until the handshake is complete.
  drive(0);
  return true;
}

// Points `side`'s stream at its next unread input; releases what it has consumed. False if
// nothing is left to read. The transport's EOF reaches the stream only once every buffer
// received before it has been read: telling OpenSSL earlier would end the stream while
// queued records were still unread (a truncated transfer that looked clean).
bool ProxyConnection::nextInput(int side) {
  TlsSide& t = tls_[side];
  if (t.stream.inputLeft() > 0) return true;
  if (t.feeding_hello) {
    t.feeding_hello = false;
    worker_.releaseHelloBuffer(hello_);
    hello_ = nullptr;
  }
  if (t.in_set) {
    t.in_set = false;
    worker_.loop().releaseBuffer(t.in.frontId());
    t.in.pop();
  }
  if (t.in.empty()) {
    if (!dirs_[side].eof || t.eof_fed) return false;
    t.eof_fed = true;
    t.stream.setInputEof();
    return true;  // once more: OpenSSL now reports the end (close_notify or not)
  }
  t.stream.setInput(worker_.loop().buffer(t.in.frontId()).data(), t.in.frontLen());
  t.in_set = true;
  return true;
}

void ProxyConnection::drive(int side) {
  TlsSide& t = tls_[side];
  if (flush_then_close_) return;  // a failed stream: only OpenSSL's alert still goes out
  if (t.async_wait) return;       // onAsyncReady resumes it
  t.blocked = false;
  Step step = Step::Progress;
  while (step == Step::Progress && io_) {
    if (sideIsTls(side) && !t.stream.handshakeDone()) {
      step = driveHandshake(side);
    } else {
      step = drivePlaintext(side);
    }
  }
  if (!io_ || flush_then_close_) return;
  t.blocked = step == Step::Blocked;
  trySend(1 - side);  // this stream's own records: handshake flights, alerts, tickets
  trySend(side);      // plaintext passed on
  // Blocked with no send in flight means no completion will come to retry it (the sink found
  // no free buffer while both queues were empty): poll again on the next timer tick.
  if (t.blocked && !dirs_[0].send_inflight && !dirs_[1].send_inflight) {
    core::EventLoop& loop = worker_.loop();
    loop.timers().schedule(retry_timers_[side], loop.now() + core::TimerWheel::kTick);
  }
  armRecv(side);
}

ProxyConnection::Step ProxyConnection::driveHandshake(int side) {
  TlsSide& t = tls_[side];
  nextInput(side);
  tls::TlsStatus status = t.stream.handshake();
  switch (status) {
    case tls::TlsStatus::Ok:
      onHandshakeDone(side);
      return io_ ? Step::Progress : Step::Stop;
    case tls::TlsStatus::WantRead:
      return nextInput(side) ? Step::Progress : Step::NeedInput;
    case tls::TlsStatus::WantWrite:
      return Step::Blocked;
    case tls::TlsStatus::WantAsync:
      return waitForAsync(side);
    case tls::TlsStatus::Closed:
      if (side == 0) {
        // The client went away mid-handshake (a probe, a client that gave up): not a failure.
        tls_error_ = "client closed the connection during the handshake";
        finish(EndReason::ClientClosed);
        return Step::Stop;
      }
      tlsFailed(side, "handshake");
      return Step::Stop;
    case tls::TlsStatus::Error:
      tlsFailed(side, "handshake");
      return Step::Stop;
  }
  return Step::Stop;
}

// After the handshakes: plaintext from `side` to the other side.
ProxyConnection::Step ProxyConnection::drivePlaintext(int side) {
  Direction& dir = dirs_[side];
  // Held until the gate opens, and during a kTLS switch (ktls_switch.cc decrypts what is left).
  if (state_ != State::Relay || dir.plain_done || ktls_switching_) return Step::NeedInput;
  if (dir.plain_id >= 0) return flushPlain(side);
  if (dir.queue.size() >= queueLimit()) return Step::Blocked;
  if (sideIsTls(side)) return readPlain(side);
  // A plain backend: what it sent is plaintext for the client's stream.
  TlsSide& t = tls_[side];
  if (t.in.empty()) {
    if (dir.eof) endOfPlaintext(side);
    return Step::NeedInput;
  }
  dir.plain_id = t.in.frontId();
  dir.plain_off = 0;
  dir.plain_len = t.in.frontLen();
  t.in.pop();
  return flushPlain(side);
}

ProxyConnection::Step ProxyConnection::readPlain(int side) {
  Direction& dir = dirs_[side];
  TlsSide& t = tls_[side];
  core::EventLoop& loop = worker_.loop();
  nextInput(side);
  int32_t id = t.async_read_buffer >= 0 ? t.async_read_buffer : loop.acquireBuffer();
  t.async_read_buffer = -1;
  if (id < 0) return Step::Blocked;  // every buffer in use: drive() arranges the retry
  auto buffer = static_cast<uint16_t>(id);
  size_t n = 0;
  tls::TlsStatus status = t.stream.read(loop.buffer(buffer).data(), loop.bufferSize(), n);
  if (status == tls::TlsStatus::WantAsync) {
    t.async_read_buffer = id;
    return waitForAsync(side);
  }
  if (status != tls::TlsStatus::Ok) loop.releaseBuffer(buffer);
  switch (status) {
    case tls::TlsStatus::Ok:
      dir.bytes += n;
      touch();
      if (sideIsTls(1 - side)) {
        dir.plain_id = buffer;
        dir.plain_off = 0;
        dir.plain_len = static_cast<uint32_t>(n);
        return flushPlain(side);
      }
      dir.queue.push(buffer, static_cast<uint32_t>(n));
      trySend(side);
      return Step::Progress;
    case tls::TlsStatus::WantRead:
      return nextInput(side) ? Step::Progress : Step::NeedInput;
    case tls::TlsStatus::WantWrite:
    case tls::TlsStatus::WantAsync:  // handled above
      return Step::Blocked;
    case tls::TlsStatus::Closed:
      endOfPlaintext(side);
      return Step::Stop;
    case tls::TlsStatus::Error:
      tlsFailed(side, "read");
      return Step::Stop;
  }
  return Step::Stop;
}

// Direction d's pending plaintext into the other side's stream.
ProxyConnection::Step ProxyConnection::flushPlain(int d) {
  Direction& dir = dirs_[d];
  tls::TlsStream& out = tls_[1 - d].stream;
  core::EventLoop& loop = worker_.loop();
  while (dir.plain_id >= 0) {
    if (tls_[1 - d].async_wait) return Step::Async;  // resumed by that side's onAsyncReady
    auto id = static_cast<uint16_t>(dir.plain_id);
    size_t written = 0;
    // After WantAsync the same bytes are offered again (the paused job holds this pointer).
    tls::TlsStatus status = out.write(loop.buffer(id).data() + dir.plain_off, dir.plain_len, written);
    if (status == tls::TlsStatus::WantWrite) return Step::Blocked;
    if (status == tls::TlsStatus::WantAsync) return waitForAsync(1 - d);
    if (status != tls::TlsStatus::Ok) {
      tlsFailed(1 - d, "write");
      return Step::Stop;
    }
    dir.plain_off += static_cast<uint32_t>(written);
    dir.plain_len -= static_cast<uint32_t>(written);
    if (dir.plain_len == 0) {
      loop.releaseBuffer(id);
      dir.plain_id = -1;
    }
  }
  trySend(d);
  return dir.queue.size() >= queueLimit() ? Step::Blocked : Step::Progress;
}

void ProxyConnection::onTlsRecv(int d, const core::Completion& c) {
  Direction& dir = dirs_[d];
  core::EventLoop& loop = worker_.loop();
  if (!c.more()) dir.recv_armed = false;
  if (c.res <= 0 && c.hasBuffer()) loop.releaseBuffer(c.bufferId());
  if (c.res > 0 && c.hasBuffer()) {
    if (!io_ || flush_then_close_) {
      loop.releaseBuffer(c.bufferId());
      return;
    }
    tls_[d].in.push(c.bufferId(), static_cast<uint32_t>(c.res));
    if (!sideIsTls(d)) dir.bytes += static_cast<uint32_t>(c.res);
    touch();
    if (tls_[d].in.size() >= queueLimit()) stopMultishotRecv(d);
    drive(d);
    return;
  }
  if (c.res == 0) {
    dir.eof = true;  // passed to the stream by nextInput(), after what is still queued
    if (io_) drive(d);
    return;
  }
  if (c.res == -ENOBUFS) {
    if (io_ && tls_[d].in.empty()) loop.timers().schedule(retry_timers_[d], loop.now() + core::TimerWheel::kTick);
    return;
  }
  if (c.res == -ECANCELED) {
    dir.cancel_pending = false;
  } else if (c.res < 0) {
    end_errno_ = -c.res;
    finish(resetReason(d));
    return;
  }
  if (!dir.recv_armed) armRecv(d);
}

// A send on direction d completed (its buffer released if fully sent).
void ProxyConnection::afterTlsSend(int d) {
  Direction& dir = dirs_[d];
  if (ktls_switching_) {
    trySend(d);  // the handshake's last records (TLS 1.3 tickets) leave before the keys go
    tryFinishKtlsSwitch();
    return;
  }
  if (flush_then_close_) {
    trySend(d);
    if (dirs_[0].queue.empty() && dirs_[1].queue.empty()) finish(end_);
    return;
  }
  trySend(d);
  if (dir.plain_done && dir.queue.empty() && !dir.send_inflight) {
    propagateEof(d);
    return;
  }
  // Room again: the side feeding this queue may continue, and a stream that could not get
  // a buffer for its records retries.
  if (tls_[d].blocked || !tls_[d].in.empty() || dir.plain_id >= 0) {
    drive(d);
  } else {
    armRecv(d);
  }
  if (io_ && tls_[1 - d].blocked) drive(1 - d);
}

void ProxyConnection::onHandshakeDone(int side) {
  tls::SessionInfo info = tls::sessionInfo(tls_[side].stream.ssl(), /*with_client_names=*/false);
  if (side == 0) {
    worker_.loop().timers().cancel(hello_timer_);
    listener_->stats.handshakes.fetch_add(1, std::memory_order_relaxed);
    if (info.resumed) listener_->stats.handshakes_resumed.fetch_add(1, std::memory_order_relaxed);
    // Logs and the PROXY header carry the negotiated protocol from now on.
    alpn_len_ = static_cast<uint8_t>(std::min(info.alpn.size(), sizeof(alpn_)));
    if (alpn_len_ > 0) std::memcpy(alpn_, info.alpn.data(), alpn_len_);
    state_ = State::Connecting;
    chooseAndConnect();
    return;
  }
  backend_->stats().tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (info.resumed) backend_->stats().tls_resumed.fetch_add(1, std::memory_order_relaxed);
  openGate();
}

// The PROXY v2 header goes first on the backend connection, in the clear, ahead of any TLS
// record to the backend.
void ProxyConnection::queueProxyHeader() {
  if (pool_->config->proxy_protocol != ProxyProtocol::V2) return;
  uint8_t header[kProxyV2MaxHeader];
  size_t n = encodeOurProxyHeader(header);
  if (n == 0 || !queueBytes(0, header, n)) {
    core::log().error("pool {}: cannot encode or queue the PROXY v2 header", pool_->name);
    finish(EndReason::InternalError);
  }
}

// The backend is connected (and its PROXY header queued): re-encrypt, or relay plaintext.
bool ProxyConnection::startBackendTls() {
  dirs_[0].to = backend_fd_;
  dirs_[1].from = backend_fd_;
  const tls::ClientContext* context = gen_->clientTls(pool_->index);
  if (context == nullptr) {
    openGate();
    return true;
  }
  const tls::ClientTlsConfig& config = pool_->config->tls;
  std::string_view sni = config.forward_sni ? std::string_view(sni_, sni_len_) : std::string_view(config.sni);
  // A client's IP-literal "SNI" cannot be forwarded (RFC 6066 s3 forbids it): send none.
  if (config.forward_sni && core::isIpLiteral(sni)) sni = {};
  const std::string& tls_name = pool_->config->backends[backend_->index].tls_name;
  std::string ip = backend_->address.hostString();
  std::string_view verify_name =
      !tls_name.empty() ? std::string_view(tls_name) : tls::ClientContext::verifyNameFor(config, sni, ip);
  std::string_view alpn = config.forward_alpn ? std::string_view(alpn_, alpn_len_) : std::string_view();
  std::string error;
  tls::SslPtr ssl = context->newSsl(sni, verify_name, gen_->backendSession(pool_->index, backend_->index),
                                    alpn, &error);
  if (!ssl || !tls_[1].stream.attach(std::move(ssl), &tls_[1].sink)) {
    core::log().error("pool {} backend {}: cannot create a TLS session: {}", pool_->name, backend_->name, error);
    finish(EndReason::InternalError);
    return false;
  }
  trackKtls(1);
  state_ = State::BackendHandshake;
  // The handshake with the backend is part of connecting to it.
  worker_.loop().timers().schedule(hello_timer_, worker_.loop().now() + pool_->config->connect_timeout);
  drive(1);
  return true;
}

void ProxyConnection::openGate() {
  worker_.loop().timers().cancel(hello_timer_);
  state_ = State::Relay;
  touch();
  worker_.loop().timers().schedule(idle_timer_, last_activity_ + pool_->config->idle_timeout);
  if (planKtls()) return;  // the records go to the kernel (ktls_switch.cc)
  drive(0);
  if (io_) drive(1);
}

// No more plaintext will come from direction d's source: close the destination's stream
// (close_notify, RFC 8446 s6.1), then its write side once the queue has drained.
void ProxyConnection::endOfPlaintext(int d) {
  Direction& dir = dirs_[d];
  if (dir.plain_done) return;
  dir.plain_done = true;
  TlsSide& to = tls_[1 - d];
  if (sideIsTls(1 - d) && !to.close_sent) {
    to.close_sent = true;
    to.stream.close();
  }
  trySend(d);
  if (dir.queue.empty() && !dir.send_inflight) propagateEof(d);
}

// `side`'s stream returned WantAsync: poll its job's wait fd. An accelerator's job waits on
// one fd (QAT's, this project's test provider's); should an engine register several, the
// first is polled, and a resume that finds the job still paused polls again.
ProxyConnection::Step ProxyConnection::waitForAsync(int side) {
  TlsSide& t = tls_[side];
  int fds[4];
  size_t n = t.stream.asyncWaitFds(fds, 4);
  if (n == 0 || n > 4) {
    // Nothing to wait on: the job can never be resumed (an engine bug). Its SSL is freed
    // with the job still paused, which leaks the job.
    core::log().error("TLS side {}: async job paused with {} wait fds; closing", side, n);
    finish(EndReason::InternalError);
    return Step::Stop;
  }
  t.async_wait = true;
  worker_.loop().pollAdd(slot_, static_cast<uint8_t>(kAsync0 + side), fds[0], POLLIN);
  return Step::Async;
}

void ProxyConnection::onAsyncReady(int side, int32_t res) {
  TlsSide& t = tls_[side];
  t.async_wait = false;
  // Closing, or only an alert still going out (drive() would not call the stream again):
  // the job just has to end before the SSL is freed.
  if (state_ == State::Closing || !io_ || flush_then_close_) {
    finishPausedJob(side);
    return;
  }
  // res < 0 (the poll itself failed) resumes too: a job that is still paused says so again.
  (void)res;
  drive(side);
  // Plaintext the other direction was writing into this stream when it paused.
  if (io_ && dirs_[1 - side].plain_id >= 0) drive(1 - side);
}

// Teardown: run the paused job to its end (records discarded) so SSL_free frees everything.
void ProxyConnection::finishPausedJob(int side) {
  TlsSide& t = tls_[side];
  if (!t.stream.active() || !t.stream.asyncPaused()) return;
  if (t.stream.resumeDiscarding() != tls::TlsStatus::WantAsync) return;
  int fds[4];
  size_t n = t.stream.asyncWaitFds(fds, 4);
  if (n == 0 || n > 4) {
    core::log().error("TLS side {}: async job paused with {} wait fds at teardown; leaking it", side, n);
    return;
  }
  t.async_wait = true;
  worker_.loop().pollAdd(slot_, static_cast<uint8_t>(kAsync0 + side), fds[0], POLLIN);
}

void ProxyConnection::tlsFailed(int side, const char* what) {
  const tls::TlsStream& stream = tls_[side].stream;
  tls_error_ = stream.error();
  if (side == 0) {
    if (!stream.handshakeDone()) listener_->stats.handshake_failures.fetch_add(1, std::memory_order_relaxed);
    core::log().info("listener {}: TLS with client {}: {}", listener_->config->name, peer().toString(), tls_error_);
    end_ = stream.handshakeDone() ? EndReason::ClientReset : EndReason::HandshakeFailed;
    // Send the alert OpenSSL queued for the client, then close.
    flush_then_close_ = true;
    if (dirs_[1].to < 0 || (dirs_[1].queue.empty() && !dirs_[1].send_inflight)) {
      finish(end_);
    } else {
      trySend(1);
    }
    return;
  }
  std::string reason = tls::verifyFailure(stream.ssl());
  if (!reason.empty()) tls_error_ = std::string(what) + " failed: " + reason;
  backend_->stats().tls_failures.fetch_add(1, std::memory_order_relaxed);
  core::log().warn("pool {} backend {} ({}): TLS {}{}", pool_->name, backend_->name, backend_->address.toString(),
                   tls_error_, stream.handshakeDone() ? "" : "; no client data was sent to it");
  if (!stream.handshakeDone()) passiveFailure(tls_error_);
  finish(stream.handshakeDone() ? EndReason::BackendReset : EndReason::BackendTlsFailed);
}

// " tls=TLSv1.3 cipher=... resumed=0 backend_tls=... backend_resumed=1 tls_error=\"...\"" for
// the access log line.
void ProxyConnection::addTlsLogFields(AccessRecord& record) const {
  for (int side = 0; side < 2; ++side) {
    const tls::TlsStream& stream = tls_[side].stream;
    if (!stream.active() || !stream.handshakeDone()) continue;
    tls::SessionInfo info = tls::sessionInfo(stream.ssl(), /*with_client_names=*/side == 0);
    bool front = side == 0;
    record.add(front ? "tls" : "backend_tls", info.version);
    record.add(front ? "cipher" : "backend_cipher", info.cipher);
    record.add(front ? "resumed" : "backend_resumed", info.resumed ? 1u : 0u);
    if (front && info.client_cert_presented) {
      record.add("client_cert", info.client_subject);
      record.add("client_verified", info.client_cert_verified ? 1u : 0u);
    }
  }
  if (!tls_error_.empty()) record.add("tls_error", tls_error_);
  if (ktls_planned_) {
    record.add("ktls", ktls_[0].logValue());
    if (sideIsTls(1)) record.add("backend_ktls", ktls_[1].logValue());
  }
}

void ProxyConnection::releaseTls() {
  core::EventLoop& loop = worker_.loop();
  for (int side = 0; side < 2; ++side) {
    TlsSide& t = tls_[side];
    while (!t.in.empty()) {
      loop.releaseBuffer(t.in.frontId());
      t.in.pop();
    }
    if (t.stream.asyncPaused()) core::log().error("TLS side {}: freeing a stream whose async job is paused", side);
    t.stream.reset();
    if (t.async_read_buffer >= 0) loop.releaseBuffer(static_cast<uint16_t>(t.async_read_buffer));
    t.async_read_buffer = -1;
    t.async_wait = false;
    t.feeding_hello = t.in_set = t.close_sent = t.blocked = t.eof_fed = false;
    Direction& dir = dirs_[side];
    if (dir.plain_id >= 0) loop.releaseBuffer(static_cast<uint16_t>(dir.plain_id));
    dir.plain_id = -1;
  }
}

}  // namespace ringlb::balancer
