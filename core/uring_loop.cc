#include "core/uring_loop.h"

#include <algorithm>

#include <cassert>
#include <cerrno>

namespace ringlb::core {

bool Completion::more() const { return flags & IORING_CQE_F_MORE; }
bool Completion::hasBuffer() const { return flags & IORING_CQE_F_BUFFER; }
uint16_t Completion::bufferId() const { return static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT); }

bool UringLoop::init(const UringLoopOptions& options, const UringFeatures& features, std::string* error) {
  if (!ring_.init(options.entries, features, error)) return false;
  // Post at most half the buffers: the rest is the reserve acquireBuffer() draws from (TLS
  // records), so a small ring cannot leave terminated connections without any.
  uint32_t depth = std::max<uint32_t>(1, std::min(options.buffer_depth, options.buffer_count / 2));
  if (!buffers_.init(ring_.raw(), kBufferGroup, options.buffer_count, options.buffer_size, depth, error))
    return false;
  now_ = Clock::now();
  timers_ = std::make_unique<TimerWheel>(now_);
  return true;
}

SlotRef UringLoop::attach(CompletionHandler* handler) { return slots_.acquire(handler); }

void UringLoop::detach(SlotRef slot) {
  assert(slots_.inflight(slot) == 0 && "detach with operations in flight");
  slots_.release(slot);
}

io_uring_sqe* UringLoop::prep(SlotRef slot, uint8_t op) {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_sqe_set_data64(sqe, encodeUserData(slot, op));
  ++slots_.inflight(slot);
  return sqe;
}

void UringLoop::acceptMultishot(SlotRef slot, uint8_t op, int listen_fd) {
  io_uring_sqe* sqe = prep(slot, op);
  io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void UringLoop::recv(SlotRef slot, uint8_t op, int fd, void* buf, size_t len) {
  io_uring_prep_recv(prep(slot, op), fd, buf, len, 0);
}

void UringLoop::recvProvided(SlotRef slot, uint8_t op, int fd, bool multishot) {
  io_uring_sqe* sqe = prep(slot, op);
  if (multishot) {
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  } else {
    io_uring_prep_recv(sqe, fd, nullptr, buffers_.bufferSize(), 0);
  }
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
}

void UringLoop::send(SlotRef slot, uint8_t op, int fd, const void* buf, size_t len) {
  // MSG_NOSIGNAL: a peer that went away is an error result, not SIGPIPE. MSG_WAITALL makes
  // the kernel retry short sends on stream sockets instead of completing early.
  io_uring_prep_send(prep(slot, op), fd, buf, len, MSG_NOSIGNAL | MSG_WAITALL);
}

void UringLoop::connect(SlotRef slot, uint8_t op, int fd, const SocketAddress& addr,
                        std::chrono::milliseconds timeout, uint8_t timeout_op) {
  __kernel_timespec* ts = timespecSlot();
  ts->tv_sec = timeout.count() / 1000;
  ts->tv_nsec = (timeout.count() % 1000) * 1000000;
  ring_.reserve(2);
  io_uring_sqe* sqe = prep(slot, op);
  // The connect address is copied by the kernel at submission too: SocketAddress lives in the
  // pool's Backend, which outlives the connection.
  io_uring_prep_connect(sqe, fd, addr.sockaddrPtr(), addr.length());
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_prep_link_timeout(prep(slot, timeout_op), ts, 0);
}

__kernel_timespec* UringLoop::timespecSlot() {
  if (timespecs_used_ == kTimespecs) {
    io_uring_submit(ring_.raw());
    timespecs_used_ = 0;
  }
  return &timespecs_[timespecs_used_++];
}

void UringLoop::pollAdd(SlotRef slot, uint8_t op, int fd, unsigned mask) {
  io_uring_prep_poll_add(prep(slot, op), fd, mask);
}

void UringLoop::cancelFd(SlotRef slot, uint8_t op, int fd) {
  io_uring_prep_cancel_fd(prep(slot, op), fd, IORING_ASYNC_CANCEL_ALL);
}

void UringLoop::cancelOp(SlotRef slot, uint8_t op, uint8_t target_op) {
  io_uring_prep_cancel64(prep(slot, op), encodeUserData(slot, target_op), 0);
}

void UringLoop::readEventFd(SlotRef slot, uint8_t op, int fd, uint64_t* value) {
  io_uring_prep_read(prep(slot, op), fd, value, sizeof(*value), 0);
}

void UringLoop::dispatch(io_uring_cqe* cqe) {
  uint64_t user_data = io_uring_cqe_get_data64(cqe);
  SlotRef slot = decodeSlot(user_data);
  CompletionHandler* handler = slots_.lookup(slot);
  Completion completion{cqe->res, cqe->flags};
  if (handler == nullptr) {
    // A completion for a recycled slot: cannot happen while handlers wait for inflight == 0
    // before detaching, but never let it reach a new owner. Return any buffer it carries.
    if (completion.hasBuffer()) {
      buffers_.noteTaken();
      buffers_.release(completion.bufferId());
    }
    return;
  }
  if (!completion.more()) --slots_.inflight(slot);
  if (completion.hasBuffer()) buffers_.noteTaken();
  handler->onCompletion(decodeOp(user_data), completion);
}

void UringLoop::run() {
  running_ = true;
  while (running_) {
    auto budget = timers_->sleepBudget(now_, std::chrono::milliseconds(1000));
    ring_.submitAndWait(budget);
    timespecs_used_ = 0;  // everything prepared so far has been submitted
    now_ = Clock::now();
    unsigned head;
    unsigned count = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring_.raw(), head, cqe) {
      dispatch(cqe);
      ++count;
    }
    io_uring_cq_advance(ring_.raw(), count);
    timers_->advance(now_);
  }
  io_uring_submit(ring_.raw());
}

}  // namespace ringlb::core
