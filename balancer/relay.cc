// The relay half of ProxyConnection: copies bytes both ways once the backend is connected
// and the hello replayed.
//
// Provided-buffer relay: a multishot recv on each side takes buffers from the worker's
// buffer ring; each direction queues what it received and has at most one send in flight
// (sends to one socket must stay ordered). When a direction has max_queued_per_direction
// buffers waiting, its recv is cancelled (backpressure: the peer's TCP window closes) and
// re-armed as the queue drains. While the server flight is being observed for session
// affinity, direction 1 uses single-shot recvs so it can stop after the handshake.
//
// Splice relay: socket -> pipe -> socket with direct non-blocking splice(2) calls from the
// worker thread, woken by io_uring polls. Not IORING_OP_SPLICE: io_uring has no non-blocking
// path for splice and runs every one in an io-wq thread (profiled: thread switches cost more
// than the copies splice saves). The bytes never enter user space.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "balancer/backend.h"
#include "balancer/proxy_connection.h"
#include "balancer/worker.h"
#include "core/log.h"

namespace ringlb::balancer {

RelayKind ProxyConnection::relayKind() const { return gen_->runtime().config.global.relay; }

void ProxyConnection::BufferQueue::push(uint16_t id, uint32_t len) {
  uint32_t capacity = static_cast<uint32_t>(entries_.size());
  if (count_ == capacity) {
    std::vector<Entry> grown(capacity == 0 ? 32 : capacity * 2);
    for (uint32_t i = 0; i < count_; ++i) grown[i] = entries_[(head_ + i) & (capacity - 1)];
    entries_ = std::move(grown);
    head_ = 0;
    capacity = static_cast<uint32_t>(entries_.size());
  }
  entries_[(head_ + count_) & (capacity - 1)] = {id, len};
  ++count_;
}

void ProxyConnection::touch() { last_activity_ = worker_.loop().now(); }

void ProxyConnection::startRelay() {
  state_ = State::Relay;
  io_ = true;
  touch();
  worker_.loop().timers().schedule(idle_timer_, last_activity_ + pool_->config->idle_timeout);
  bool splice = relayKind() == RelayKind::Splice;
  dirs_[0].from = client_fd_;
  dirs_[0].to = backend_fd_;
  dirs_[1].from = backend_fd_;
  dirs_[1].to = client_fd_;
  dirs_[1].observe = pool_->affinity != nullptr;
  for (int d = 0; d < 2; ++d) {
    Direction& dir = dirs_[d];
    dir.splice = splice && !dir.observe;
    if (dir.splice) {
      if (!openPipe(dir)) {
        finish(EndReason::InternalError);
        return;
      }
      pump(d);
    } else {
      armRecv(d);
    }
  }
}

// ---------------------------------------------------------------- provided-buffer relay

// The worker's buffer ring is shared by all its connections, and a connection whose peer does
// not read pins what it has queued. Under pressure every direction gets a smaller share, so a
// crowd of slow readers cannot starve the rest (see armRecv for the multishot side).
uint32_t ProxyConnection::queueLimit() const {
  const core::EventLoop& loop = worker_.loop();
  if (loop.buffersInUse() * 4 >= loop.bufferCount() * 3) return 1;
  return gen_->runtime().config.global.max_queued_per_direction;
}

void ProxyConnection::armRecv(int d) {
  if (ktls_switching_) {
    tryFinishKtlsSwitch();  // no new reads until the switch: the next ones may be the kernel's
    return;
  }
  Direction& dir = dirs_[d];
  if (!io_ || flush_then_close_ || dir.recv_armed || dir.cancel_pending || dir.eof || dir.splice) return;
  if (dir.queue.size() >= queueLimit()) return;
  if (tlsMode() && (dir.from < 0 || tls_[d].in.size() >= queueLimit())) return;
  if (!dir.observe && !tlsMode() && (relayKind() == RelayKind::Splice || dir.want_splice)) {
    // Splice from now on (the server flight has been observed, or relay = auto found this a
    // bulk direction), once everything read so far has been sent: onSend calls back here
    // when the queue drains, so no byte is reordered.
    if (!dir.queue.empty() || dir.send_inflight) return;
    if (!openPipe(dir)) {
      finish(EndReason::InternalError);
      return;
    }
    dir.splice = true;
    pump(d);
    return;
  }
  dir.recv_armed = true;
  // Multishot while buffers are plentiful (one SQE for many reads). Past half the ring,
  // single-shot: a multishot recv can post dozens of buffers in one batch before a
  // backpressure cancel lands, a single-shot recv exactly one.
  const core::EventLoop& loop = worker_.loop();
  dir.multishot = !dir.observe && loop.buffersInUse() * 2 < loop.bufferCount();
  worker_.loop().recvProvided(slot_, static_cast<uint8_t>(kRecv0 + d), dir.from, dir.multishot);
}

void ProxyConnection::onRecv(int d, const core::Completion& c) {
  if (tlsMode()) {
    onTlsRecv(d, c);
    return;
  }
  Direction& dir = dirs_[d];
  if (!c.more()) dir.recv_armed = false;
  if (c.res <= 0 && c.hasBuffer()) worker_.loop().releaseBuffer(c.bufferId());  // defensive: never leak one
  if (c.res > 0 && c.hasBuffer()) {
    uint16_t id = c.bufferId();
    if (!io_) {
      worker_.loop().releaseBuffer(id);
      return;
    }
    dir.queue.push(id, static_cast<uint32_t>(c.res));
    dir.bytes += static_cast<uint32_t>(c.res);
    touch();
    if (dir.observe) {
      observer_.feed(worker_.loop().buffer(id).first(static_cast<size_t>(c.res)));
      if (observer_.done()) {
        dir.observe = false;
        learnAffinity();
      }
    }
    trySend(d);
    if (!dir.want_splice && !dir.observe && relayKind() == RelayKind::Auto &&
        dir.bytes >= kAutoSpliceBytes) {
      dir.want_splice = true;  // bulk: hand over to splice (no copies through user space)
      stopMultishotRecv(d);
    }
    if (dir.queue.size() >= queueLimit()) stopMultishotRecv(d);  // backpressure until the queue drains
  } else if (c.res == 0) {
    dir.eof = true;
    if (dir.queue.empty() && !dir.send_inflight) propagateEof(d);
  } else if (c.res == -ENOBUFS) {
    // The worker's buffer ring is empty: retry shortly (buffers return as sends complete).
    if (io_ && dir.queue.empty())
      worker_.loop().timers().schedule(retry_timers_[d], worker_.loop().now() + core::TimerWheel::kTick);
  } else if (c.res == -ECANCELED) {
    dir.cancel_pending = false;
  } else if (c.res < 0) {
    end_errno_ = -c.res;
    finish(resetReason(d));
    return;
  }
  if (!dir.recv_armed && c.res != -ENOBUFS) armRecv(d);
}

// Cancels this direction's multishot recv (a single-shot one ends by itself); armRecv
// decides what comes next once the cancel and the queue allow it.
void ProxyConnection::stopMultishotRecv(int d) {
  Direction& dir = dirs_[d];
  if (!dir.recv_armed || !dir.multishot || dir.cancel_pending) return;
  dir.cancel_pending = true;
  worker_.loop().cancelOp(slot_, static_cast<uint8_t>(kCancelRecv0 + d), static_cast<uint8_t>(kRecv0 + d));
}

void ProxyConnection::onRecvCancelled(int d) {
  // The cancel may have found the recv already finished (-ENOENT): either way it is over.
  dirs_[d].cancel_pending = false;
  armRecv(d);
}

void ProxyConnection::trySend(int d) {
  Direction& dir = dirs_[d];
  if (dir.send_inflight || dir.queue.empty() || !io_ || ktls_draining_) return;
  std::span<uint8_t> buf = worker_.loop().buffer(dir.queue.frontId());
  dir.send_inflight = true;
  worker_.loop().send(slot_, static_cast<uint8_t>(kSend0 + d), dir.to, buf.data() + dir.head_sent,
                      dir.queue.frontLen() - dir.head_sent);
}

void ProxyConnection::onSend(int d, int32_t res) {
  Direction& dir = dirs_[d];
  dir.send_inflight = false;
  if (!io_) return;
  if (res < 0) {
    end_errno_ = -res;
    finish(resetReason(1 - d));  // the receiving side failed
    return;
  }
  touch();
  dir.head_sent += static_cast<uint32_t>(res);
  if (dir.head_sent >= dir.queue.frontLen()) {
    worker_.loop().releaseBuffer(dir.queue.frontId());
    dir.queue.pop();
    dir.head_sent = 0;
  }
  if (tlsMode()) {
    afterTlsSend(d);
    return;
  }
  trySend(d);
  if (dir.eof && dir.queue.empty() && !dir.send_inflight) {
    propagateEof(d);
    return;
  }
  armRecv(d);
}

void ProxyConnection::releaseQueued(Direction& dir) {
  while (!dir.queue.empty()) {
    worker_.loop().releaseBuffer(dir.queue.frontId());
    dir.queue.pop();
  }
  dir.head_sent = 0;
}

// ---------------------------------------------------------------- half-close

void ProxyConnection::propagateEof(int d) {
  Direction& dir = dirs_[d];
  if (dir.finished || !io_) return;
  // The reader saw FIN: pass it on with shutdown(SHUT_WR) so the other peer sees EOF while
  // the opposite direction keeps flowing (TCP half-close). A direct call, not
  // IORING_OP_SHUTDOWN: that opcode has no non-blocking path and io_uring punts every one
  // to an io-wq thread (measured: ~30% of a worker's CPU in thread switches), while
  // shutdown(2) on a stream socket only queues a FIN and never blocks.
  dir.finished = true;
  if (::shutdown(dir.to, SHUT_WR) != 0 && errno != ENOTCONN) {
    end_errno_ = errno;
    finish(resetReason(1 - d));
    return;
  }
  if (dirs_[0].finished && dirs_[1].finished) finish(EndReason::Done);
}

// ---------------------------------------------------------------- splice relay

bool ProxyConnection::openPipe(Direction& dir) {
  int fds[2];
  // Non-blocking: a full pipe makes splice(2) return EAGAIN instead of blocking the worker.
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    end_errno_ = errno;
    core::log().error("pipe2 for splice relay: {}", std::strerror(errno));
    return false;
  }
  dir.pipe_r = fds[0];
  dir.pipe_w = fds[1];
  int size = ::fcntl(dir.pipe_w, F_SETPIPE_SZ, 256 * 1024);
  if (size <= 0) size = ::fcntl(dir.pipe_w, F_GETPIPE_SZ);
  dir.pipe_capacity = size > 0 ? static_cast<uint32_t>(size) : 65536;
  return true;
}

// Moves what it can: socket -> pipe while the pipe has room and the socket has data, pipe ->
// socket while the peer accepts it; then waits (one poll per side) for whichever blocked.
void ProxyConnection::pump(int d) {
  Direction& dir = dirs_[d];
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  bool need_out = false;
  for (;;) {
    bool progress = false;
    if (!dir.eof && !dir.poll_in_armed && dir.in_pipe < dir.pipe_capacity) {
      ssize_t n = ::splice(dir.from, nullptr, dir.pipe_w, nullptr, dir.pipe_capacity - dir.in_pipe, kFlags);
      if (n > 0) {
        dir.in_pipe += static_cast<uint32_t>(n);
        dir.bytes += static_cast<uint64_t>(n);
        progress = true;
      } else if (n == 0) {
        dir.eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        // EAGAIN: no data on the socket, or the pipe is full by slots (one per skb fragment),
        // not bytes; either way splice-out or a POLLIN below gets things moving again.
        end_errno_ = errno;
        finish(resetReason(d));
        return;
      }
    }
    if (dir.in_pipe > 0 && !dir.poll_out_armed) {
      ssize_t n = ::splice(dir.pipe_r, nullptr, dir.to, nullptr, dir.in_pipe, kFlags);
      if (n > 0) {
        dir.in_pipe -= static_cast<uint32_t>(n);
        progress = true;
      } else if (n < 0 && errno == EAGAIN) {
        need_out = true;
      } else if (n < 0 && errno != EINTR) {
        end_errno_ = errno;
        finish(resetReason(1 - d));
        return;
      }
    }
    if (!progress) break;
    need_out = false;
  }
  touch();
  if (dir.eof && dir.in_pipe == 0) {
    propagateEof(d);
    return;
  }
  if (need_out && !dir.poll_out_armed) {
    dir.poll_out_armed = true;
    worker_.loop().pollAdd(slot_, static_cast<uint8_t>(kPollOut0 + d), dir.to, POLLOUT);
  }
  // Wait for data only with an empty pipe: otherwise splice-out (or its POLLOUT) comes first.
  if (dir.in_pipe == 0 && !dir.eof && !dir.poll_in_armed) {
    dir.poll_in_armed = true;
    worker_.loop().pollAdd(slot_, static_cast<uint8_t>(kPollIn0 + d), dir.from, POLLIN);
  }
}

void ProxyConnection::onPoll(int d, bool out, int32_t res) {
  Direction& dir = dirs_[d];
  (out ? dir.poll_out_armed : dir.poll_in_armed) = false;
  if (!io_) return;
  if (res < 0 && res != -ECANCELED) {
    end_errno_ = -res;
    finish(out ? resetReason(1 - d) : resetReason(d));
    return;
  }
  pump(d);  // POLLERR/POLLHUP also land here: splice(2) reports the error or EOF
}

}  // namespace ringlb::balancer
