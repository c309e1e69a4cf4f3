#include "core/ring.h"

#include <cerrno>
#include <cstring>

namespace ringlb::core {

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

bool Ring::init(unsigned entries, const UringFeatures& features, std::string* error) {
  io_uring_params params{};
  // CQ larger than SQ: multishot operations post many CQEs per SQE.
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  params.cq_entries = entries * 8;
  if (features.single_issuer) params.flags |= IORING_SETUP_SINGLE_ISSUER;
  // DEFER_TASKRUN: completion work runs when we wait, in our thread, in batches
  // (io_uring_setup(2)); it needs SINGLE_ISSUER.
  if (features.defer_taskrun) params.flags |= IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &ring_, &params);
  if (rc < 0) {
    if (error) *error = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    return false;
  }
  initialized_ = true;
  return true;
}

io_uring_sqe* Ring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    int rc = io_uring_submit(&ring_);
    if (rc == -EBUSY || rc == -EAGAIN) {
      // The kernel is out of room for completions: reap is the caller's job, so wait for
      // at least one to become visible; it will be processed in the next loop iteration.
      io_uring_cqe* cqe = nullptr;
      io_uring_wait_cqe(&ring_, &cqe);
    }
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void Ring::reserve(unsigned count) {
  // SUBMIT_ALL makes the kernel consume every SQE unless it fails to enter at all; keep
  // trying (waiting for completions to drain) until the chain fits in one go, so it is
  // never split by a flush.
  while (io_uring_sq_space_left(&ring_) < count) {
    int rc = io_uring_submit(&ring_);
    if (rc == -EBUSY || rc == -EAGAIN) {
      io_uring_cqe* cqe = nullptr;
      io_uring_wait_cqe(&ring_, &cqe);
    }
  }
}

void Ring::submitAndWait(std::chrono::milliseconds timeout) {
  __kernel_timespec ts{};
  ts.tv_sec = timeout.count() / 1000;
  ts.tv_nsec = (timeout.count() % 1000) * 1000000;
  io_uring_cqe* cqe = nullptr;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

}  // namespace ringlb::core
