#include "core/features.h"

#include <liburing.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace ringlb::core {
namespace {

// Kernel (major, minor) from uname, for features io_uring cannot probe by opcode
// (multishot flavours are flags of existing opcodes).
std::pair<int, int> kernelVersion(const std::string& release) {
  int major = 0, minor = 0;
  std::sscanf(release.c_str(), "%d.%d", &major, &minor);
  return {major, minor};
}

bool atLeast(std::pair<int, int> v, int major, int minor) {
  return v.first > major || (v.first == major && v.second >= minor);
}

std::string disabledSysctl() {
  std::ifstream f("/proc/sys/kernel/io_uring_disabled");
  std::string value;
  if (f >> value) return value;
  return "";
}

}  // namespace

UringFeatures probeUring() {
  UringFeatures f;
  utsname u{};
  if (uname(&u) == 0) f.kernel = u.release;

  io_uring ring{};
  int rc = io_uring_queue_init(8, &ring, 0);
  if (rc < 0) {
    std::string sysctl = disabledSysctl();
    f.unavailable_reason = std::string("io_uring_setup failed: ") + std::strerror(-rc) + ". ";
    if (!sysctl.empty() && sysctl != "0") {
      f.unavailable_reason += "kernel.io_uring_disabled = " + sysctl +
                              "; enable it with `sysctl -w kernel.io_uring_disabled=0`.";
    } else if (rc == -ENOSYS) {
      f.unavailable_reason += "This kernel (" + f.kernel +
                              ") has no io_uring; ringlb needs Linux 6.0 or newer built with CONFIG_IO_URING.";
    } else if (rc == -EPERM) {
      f.unavailable_reason += "A seccomp profile (e.g. a container runtime's default) blocks io_uring_setup; "
                              "allow io_uring_setup/io_uring_enter/io_uring_register for ringlb.";
    } else {
      f.unavailable_reason += "Check the kernel version (6.0+) and RLIMIT_MEMLOCK.";
    }
    return f;
  }
  f.available = true;
  f.ext_arg = ring.features & IORING_FEAT_EXT_ARG;
  f.fast_poll = ring.features & IORING_FEAT_FAST_POLL;
  f.nodrop = ring.features & IORING_FEAT_NODROP;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring)) {
    f.op_accept = io_uring_opcode_supported(probe, IORING_OP_ACCEPT);
    f.op_recv = io_uring_opcode_supported(probe, IORING_OP_RECV);
    f.op_send = io_uring_opcode_supported(probe, IORING_OP_SEND);
    f.op_connect = io_uring_opcode_supported(probe, IORING_OP_CONNECT);
    f.op_splice = io_uring_opcode_supported(probe, IORING_OP_SPLICE);
    f.op_shutdown = io_uring_opcode_supported(probe, IORING_OP_SHUTDOWN);
    f.op_async_cancel = io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    f.op_link_timeout = io_uring_opcode_supported(probe, IORING_OP_LINK_TIMEOUT);
    f.op_send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
  }
  // Provided buffer rings: try to register a tiny one.
  void* mem = nullptr;
  if (posix_memalign(&mem, 4096, 4096) == 0) {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = 1;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&ring, &reg, 0) == 0) {
      f.buf_ring = true;
      io_uring_unregister_buf_ring(&ring, 0);
    }
    free(mem);
  }
  io_uring_queue_exit(&ring);

  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER;
  if (io_uring_queue_init_params(8, &ring, &params) == 0) {
    f.single_issuer = true;
    io_uring_queue_exit(&ring);
    params = {};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(8, &ring, &params) == 0) {
      f.defer_taskrun = true;
      io_uring_queue_exit(&ring);
    }
  }
  auto version = kernelVersion(f.kernel);
  f.multishot_accept = f.buf_ring && atLeast(version, 5, 19);
  f.cancel_fd = atLeast(version, 5, 19);
  f.multishot_recv = atLeast(version, 6, 0);
  return f;
}

std::string UringFeatures::missingEssentials() const {
  if (!available) return unavailable_reason;
  std::string missing;
  auto need = [&](bool have, const char* what) {
    if (!have) missing += std::string(missing.empty() ? "" : ", ") + what;
  };
  need(op_accept && multishot_accept, "multishot accept");
  need(op_recv && multishot_recv, "multishot recv");
  need(op_send, "send");
  need(op_connect, "connect");
  need(op_async_cancel && cancel_fd, "cancel by fd");
  need(op_link_timeout, "linked timeouts");
  need(buf_ring, "provided buffer rings");
  need(ext_arg, "waits with a timeout (IORING_FEAT_EXT_ARG)");
  if (missing.empty()) return "";
  return "kernel " + kernel + " lacks io_uring " + missing + "; ringlb needs Linux 6.0 or newer";
}

std::string UringFeatures::summary() const {
  if (!available) return "io_uring unavailable: " + unavailable_reason;
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "kernel %s: io_uring multishot_accept=%s multishot_recv=%s buf_ring=%s splice=%s "
                "send_zc=%s cancel_fd=%s single_issuer=%s defer_taskrun=%s ext_arg=%s fast_poll=%s",
                kernel.c_str(), yn(multishot_accept), yn(multishot_recv), yn(buf_ring), yn(op_splice),
                yn(op_send_zc), yn(cancel_fd), yn(single_issuer), yn(defer_taskrun), yn(ext_arg),
                yn(fast_poll));
  return buf;
}

}  // namespace ringlb::core
