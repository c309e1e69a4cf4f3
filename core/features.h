// io_uring feature probing at start-up. Everything the pipeline relies on is checked here,
// logged once, and missing essentials produce an error that says how to fix it.
#pragma once

#include <string>

namespace ringlb::core {

struct UringFeatures {
  bool available = false;        // io_uring_setup works at all
  std::string unavailable_reason;// when !available: why, and how to enable it
  std::string kernel;            // uname release
  bool single_issuer = false;    // IORING_SETUP_SINGLE_ISSUER accepted
  bool defer_taskrun = false;    // IORING_SETUP_DEFER_TASKRUN accepted
  bool ext_arg = false;          // IORING_FEAT_EXT_ARG (wait with timeout without an SQE)
  bool fast_poll = false;        // IORING_FEAT_FAST_POLL
  bool nodrop = false;
  bool op_accept = false, op_recv = false, op_send = false, op_connect = false;
  bool op_splice = false, op_shutdown = false, op_async_cancel = false, op_link_timeout = false;
  bool op_send_zc = false;
  bool buf_ring = false;         // IORING_REGISTER_PBUF_RING (5.19+)
  bool multishot_accept = false; // 5.19+ (implied by buf_ring support)
  bool multishot_recv = false;   // 6.0+
  bool cancel_fd = false;        // IORING_ASYNC_CANCEL_FD (5.19+)

  // Empty when everything ringlb needs is present; else what is missing.
  std::string missingEssentials() const;
  std::string summary() const;
};

// Probes with a throw-away ring. Safe to call from any thread.
UringFeatures probeUring();

}  // namespace ringlb::core
