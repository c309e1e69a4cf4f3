// EventLoop on io_uring: one per worker thread (SINGLE_ISSUER), never shared.
#pragma once

#include <memory>
#include <string>

#include "core/buffer_ring.h"
#include "core/event_loop.h"
#include "core/ring.h"
#include "core/slot_table.h"
#include "core/timer_wheel.h"

namespace ringlb::core {

struct UringLoopOptions {
  unsigned entries = 1024;       // SQ size (CQ is 8x)
  uint32_t buffer_count = 4096;  // provided buffers (power of two)
  uint32_t buffer_size = 16 * 1024;
  uint32_t buffer_depth = 64;    // buffers posted to the kernel at a time (see BufferRing)
};

class UringLoop final : public EventLoop {
 public:
  UringLoop() = default;
  bool init(const UringLoopOptions& options, const UringFeatures& features, std::string* error);

  SlotRef attach(CompletionHandler* handler) override;
  void detach(SlotRef slot) override;
  uint32_t inflight(SlotRef slot) const override { return slots_.inflight(slot); }

  void acceptMultishot(SlotRef slot, uint8_t op, int listen_fd) override;
  void recv(SlotRef slot, uint8_t op, int fd, void* buf, size_t len) override;
  void recvProvided(SlotRef slot, uint8_t op, int fd, bool multishot) override;
  void send(SlotRef slot, uint8_t op, int fd, const void* buf, size_t len) override;
  void connect(SlotRef slot, uint8_t op, int fd, const SocketAddress& addr,
               std::chrono::milliseconds timeout, uint8_t timeout_op) override;
  void pollAdd(SlotRef slot, uint8_t op, int fd, unsigned mask) override;
  void cancelFd(SlotRef slot, uint8_t op, int fd) override;
  void cancelOp(SlotRef slot, uint8_t op, uint8_t target_op) override;
  void readEventFd(SlotRef slot, uint8_t op, int fd, uint64_t* value) override;

  std::span<uint8_t> buffer(uint16_t buffer_id) override { return buffers_.buffer(buffer_id); }
  void releaseBuffer(uint16_t buffer_id) override { buffers_.release(buffer_id); }
  int32_t acquireBuffer() override { return buffers_.acquire(); }
  uint32_t bufferSize() const override { return buffers_.bufferSize(); }
  uint32_t bufferCount() const override { return buffers_.count(); }
  uint32_t buffersInUse() const override { return buffers_.outstanding(); }
  const BufferRing& bufferRing() const { return buffers_; }

  TimerWheel& timers() override { return *timers_; }
  Clock::time_point now() const override { return now_; }

  void run() override;
  void stop() override { running_ = false; }

 private:
  static constexpr uint16_t kBufferGroup = 0;
  io_uring_sqe* prep(SlotRef slot, uint8_t op);
  void dispatch(io_uring_cqe* cqe);

  // Linked-timeout timespecs are read by the kernel when the SQE is submitted, not when it
  // is prepared: they live here until the next submit (a full pool forces one).
  __kernel_timespec* timespecSlot();
  static constexpr size_t kTimespecs = 256;
  __kernel_timespec timespecs_[kTimespecs] = {};
  size_t timespecs_used_ = 0;

  Ring ring_;
  BufferRing buffers_;
  SlotTable slots_;
  std::unique_ptr<TimerWheel> timers_;
  Clock::time_point now_{};
  bool running_ = false;
};

}  // namespace ringlb::core
