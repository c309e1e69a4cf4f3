// Owner of one io_uring instance. The only place SQEs are obtained (sqe()/reserve()), so no
// code path can flush the submission queue in the middle of a linked chain.
#pragma once

#include <liburing.h>

#include <chrono>
#include <string>

#include "core/features.h"

namespace ringlb::core {

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Sets up the ring with the best flags `features` allow. Returns false and fills *error.
  bool init(unsigned entries, const UringFeatures& features, std::string* error);

  // A zeroed SQE; flushes the SQ to the kernel first if it is full. Never returns nullptr
  // (if the kernel cannot take submissions, it waits for completions to make room).
  io_uring_sqe* sqe();
  // Guarantees the next `count` sqe() calls come from the current SQ without a flush in
  // between: call before building a linked chain of `count` SQEs.
  void reserve(unsigned count);

  // Submits pending SQEs and waits for at least one CQE or `timeout`.
  void submitAndWait(std::chrono::milliseconds timeout);

  io_uring* raw() { return &ring_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
};

}  // namespace ringlb::core
