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
// Splice relay: socket -> pipe -> socket, each splice preceded by a linked poll so the
// io-wq worker that performs it never blocks waiting for data.
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
  touch();
  worker_.loop().timers().schedule(idle_timer_, last_activity_ + pool_->config->idle_timeout);
  bool splice = worker_.relayKind() == RelayKind::Splice;
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
      spliceIn(d);
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
  return worker_.runtime().config.global.max_queued_per_direction;
}

void ProxyConnection::armRecv(int d) {
  Direction& dir = dirs_[d];
  if (state_ != State::Relay || dir.recv_armed || dir.cancel_pending || dir.eof || dir.splice) return;
  if (dir.queue.size() >= queueLimit()) return;
  if (!dir.observe && worker_.relayKind() == RelayKind::Splice) {
    // The server flight has been observed (affinity learned): splice from now on, once
    // everything read so far has been sent (onSend calls back here when the queue drains).
    if (!dir.queue.empty() || dir.send_inflight) return;
    if (!openPipe(dir)) {
      finish(EndReason::InternalError);
      return;
    }
    dir.splice = true;
    spliceIn(d);
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
  Direction& dir = dirs_[d];
  if (!c.more()) dir.recv_armed = false;
  if (c.res > 0 && c.hasBuffer()) {
    uint16_t id = c.bufferId();
    if (state_ != State::Relay) {
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
    if (dir.queue.size() >= queueLimit() && dir.recv_armed && dir.multishot && !dir.cancel_pending) {
      dir.cancel_pending = true;  // backpressure: stop reading until the queue drains
      worker_.loop().cancelOp(slot_, static_cast<uint8_t>(kCancelRecv0 + d), static_cast<uint8_t>(kRecv0 + d));
    }
  } else if (c.res == 0) {
    dir.eof = true;
    if (dir.queue.empty() && !dir.send_inflight) propagateEof(d);
  } else if (c.res == -ENOBUFS) {
    // The worker's buffer ring is empty: retry shortly (buffers return as sends complete).
    if (state_ == State::Relay && dir.queue.empty())
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

void ProxyConnection::onRecvCancelled(int d) {
  // The cancel may have found the recv already finished (-ENOENT): either way it is over.
  dirs_[d].cancel_pending = false;
  armRecv(d);
}

void ProxyConnection::trySend(int d) {
  Direction& dir = dirs_[d];
  if (dir.send_inflight || dir.queue.empty() || state_ != State::Relay) return;
  std::span<uint8_t> buf = worker_.loop().buffer(dir.queue.frontId());
  dir.send_inflight = true;
  worker_.loop().send(slot_, static_cast<uint8_t>(kSend0 + d), dir.to, buf.data() + dir.head_sent,
                      dir.queue.frontLen() - dir.head_sent);
}

void ProxyConnection::onSend(int d, int32_t res) {
  Direction& dir = dirs_[d];
  dir.send_inflight = false;
  if (state_ != State::Relay) return;
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
  trySend(d);
  if (dir.queue.empty() && !dir.send_inflight) {
    if (dir.eof) {
      propagateEof(d);
      return;
    }
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
  if (dir.finished || state_ != State::Relay) return;
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
  // A blocking pipe: io_uring performs splice in an io-wq worker, after our linked poll said
  // the socket is ready, so it does not wait there.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
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

void ProxyConnection::spliceIn(int d) {
  Direction& dir = dirs_[d];
  if (state_ != State::Relay || dir.splice_in_inflight || dir.eof || dir.pipe_full ||
      dir.in_pipe >= dir.pipe_capacity)
    return;
  dir.splice_in_inflight = true;
  worker_.loop().pollThenSplice(slot_, static_cast<uint8_t>(kPoll0 + d), static_cast<uint8_t>(kSpliceIn0 + d),
                                dir.from, POLLIN, dir.from, dir.pipe_w, dir.pipe_capacity - dir.in_pipe);
}

void ProxyConnection::spliceOut(int d) {
  Direction& dir = dirs_[d];
  if (state_ != State::Relay || dir.splice_out_inflight || dir.in_pipe == 0) return;
  dir.splice_out_inflight = true;
  worker_.loop().pollThenSplice(slot_, static_cast<uint8_t>(kPollOut0 + d), static_cast<uint8_t>(kSpliceOut0 + d),
                                dir.to, POLLOUT, dir.pipe_r, dir.to, dir.in_pipe);
}

void ProxyConnection::onSpliceIn(int d, int32_t res) {
  Direction& dir = dirs_[d];
  dir.splice_in_inflight = false;
  if (state_ != State::Relay) return;
  if (res == -EAGAIN || res == -ECANCELED || res == -EINTR) {
    if (res == -EAGAIN && dir.in_pipe > 0) {
      // The pipe is full by slots (one per skb fragment), not bytes: wait for splice-out to
      // make room instead of polling a socket that is readable anyway (a busy loop).
      dir.pipe_full = true;
      return;
    }
    // Nothing in the pipe yet the splice could not proceed: retry on the next tick.
    worker_.loop().timers().schedule(retry_timers_[d], worker_.loop().now() + core::TimerWheel::kTick);
    return;
  }
  if (res < 0) {
    end_errno_ = -res;
    finish(resetReason(d));
    return;
  }
  if (res == 0) {
    dir.eof = true;
    if (dir.in_pipe == 0 && !dir.splice_out_inflight) propagateEof(d);
    return;
  }
  touch();
  dir.in_pipe += static_cast<uint32_t>(res);
  dir.bytes += static_cast<uint32_t>(res);
  spliceOut(d);
  spliceIn(d);
}

void ProxyConnection::onSpliceOut(int d, int32_t res) {
  Direction& dir = dirs_[d];
  dir.splice_out_inflight = false;
  if (state_ != State::Relay) return;
  if (res == -EAGAIN || res == -ECANCELED || res == -EINTR) {
    // POLLOUT said writable but the send buffer had too little room: retry next tick.
    worker_.loop().timers().schedule(retry_out_timers_[d], worker_.loop().now() + core::TimerWheel::kTick);
    return;
  }
  if (res <= 0) {
    end_errno_ = res < 0 ? -res : EPIPE;
    finish(resetReason(1 - d));
    return;
  }
  touch();
  dir.in_pipe -= static_cast<uint32_t>(res);
  dir.pipe_full = false;
  spliceOut(d);
  spliceIn(d);
  if (dir.eof && dir.in_pipe == 0 && !dir.splice_out_inflight) propagateEof(d);
}

}  // namespace ringlb::balancer
