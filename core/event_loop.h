// The event loop interface the proxy pipeline is written against: a proactor (submit an
// operation, get one completion per operation, or several for multishot ones). The io_uring
// implementation is UringLoop; an epoll backend can implement the same interface by
// performing the operation when the fd is ready and delivering the same completions.
//
// Ownership and lifetime rules:
//  - A CompletionHandler attach()es to get a SlotRef; every operation names the slot and an
//    op tag (0..255) the handler chooses. The loop counts operations in flight per slot.
//  - A handler may detach() only when inflight(slot) == 0; it must cancel its operations
//    (cancelFd/cancelOp) and wait for their completions first. Closing an fd does not cancel
//    operations on it.
//  - Buffers passed to operations must stay valid until the operation completes.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "core/slot_table.h"
#include "core/socket.h"
#include "core/timer_wheel.h"

namespace ringlb::core {

struct Completion {
  int32_t res = 0;      // bytes or -errno
  uint32_t flags = 0;   // raw IORING_CQE_F_* bits
  bool more() const;    // a multishot operation stays armed
  bool hasBuffer() const;
  uint16_t bufferId() const;
};

class CompletionHandler {
 public:
  virtual void onCompletion(uint8_t op, const Completion& completion) = 0;

 protected:
  ~CompletionHandler() = default;
};

class EventLoop {
 public:
  virtual ~EventLoop() = default;

  virtual SlotRef attach(CompletionHandler* handler) = 0;
  virtual void detach(SlotRef slot) = 0;
  virtual uint32_t inflight(SlotRef slot) const = 0;

  // Multishot accept: one completion per accepted fd (res = fd) while more() is true.
  virtual void acceptMultishot(SlotRef slot, uint8_t op, int listen_fd) = 0;
  // Reads into caller memory.
  virtual void recv(SlotRef slot, uint8_t op, int fd, void* buf, size_t len) = 0;
  // Reads into a loop-provided buffer (bufferId() in the completion). Multishot keeps going
  // until an error, EOF (res 0), cancellation or buffer exhaustion (-ENOBUFS).
  virtual void recvProvided(SlotRef slot, uint8_t op, int fd, bool multishot) = 0;
  virtual void send(SlotRef slot, uint8_t op, int fd, const void* buf, size_t len) = 0;
  // Connects `fd`; if the connect has not completed within `timeout`, it completes with
  // -ECANCELED and a second completion with op `timeout_op` is delivered (always delivered,
  // with -ETIME or -ECANCELED / 0, and counted in flight).
  virtual void connect(SlotRef slot, uint8_t op, int fd, const SocketAddress& addr,
                       std::chrono::milliseconds timeout, uint8_t timeout_op) = 0;
  // One-shot readiness: completes with the revents mask once `fd` is ready for `mask`
  // (POLLIN/POLLOUT). For work done with direct non-blocking syscalls, e.g. splice(2), which
  // io_uring can only run by punting to an io-wq thread.
  virtual void pollAdd(SlotRef slot, uint8_t op, int fd, unsigned mask) = 0;
  // Cancels every operation on `fd` submitted by anyone (each cancelled op completes with
  // -ECANCELED); the cancel request itself completes with op `op`.
  virtual void cancelFd(SlotRef slot, uint8_t op, int fd) = 0;
  // Cancels the operation of this slot with tag `target_op`.
  virtual void cancelOp(SlotRef slot, uint8_t op, uint8_t target_op) = 0;
  // One read of 8 bytes from an eventfd (for cross-thread wake-ups).
  virtual void readEventFd(SlotRef slot, uint8_t op, int fd, uint64_t* value) = 0;

  // Provided buffers (for recvProvided).
  virtual std::span<uint8_t> buffer(uint16_t buffer_id) = 0;
  virtual void releaseBuffer(uint16_t buffer_id) = 0;
  // A free provided buffer for the caller to fill (released with releaseBuffer like one a
  // completion handed out); -1 if none is free.
  virtual int32_t acquireBuffer() = 0;
  virtual uint32_t bufferSize() const = 0;
  virtual uint32_t bufferCount() const = 0;
  // Provided buffers handed out by completions and not yet released.
  virtual uint32_t buffersInUse() const = 0;

  virtual TimerWheel& timers() = 0;
  // The time at the start of the current loop iteration (cheap; no syscall).
  virtual Clock::time_point now() const = 0;

  // Runs until stop() is called (from the loop's own thread, e.g. in a handler).
  virtual void run() = 0;
  virtual void stop() = 0;
};

}  // namespace ringlb::core
