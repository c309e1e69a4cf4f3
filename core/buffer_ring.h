// A provided-buffer ring (IORING_REGISTER_PBUF_RING): the kernel picks a free buffer for
// each recv, so idle connections hold no receive memory. Buffers return to the ring when
// the data in them has been sent on.
//
// The kernel consumes a buffer ring in FIFO order, so a ring holding all N buffers cycles
// through N * size bytes (64 MiB by default) and every recv writes into cache-cold memory
// (profiled: kernel copies took twice HAProxy's share of CPU per GB). Only `depth` buffers are
// posted to the kernel at a time; the rest wait in a LIFO stack in user space, and a
// released buffer (still hot) goes back to the ring only when the ring is below depth.
// The working set stays near depth * size while all N buffers still back bursts and slow
// readers.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ringlb::core {

class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // `count` must be a power of two <= 32768; `depth` buffers (at most count) are posted.
  bool init(io_uring* ring, uint16_t group_id, uint32_t count, uint32_t size, uint32_t depth,
            std::string* error);

  std::span<uint8_t> buffer(uint16_t id) { return {data_ + size_t{id} * size_, size_}; }
  void release(uint16_t id);
  // Takes a buffer for the caller's own use (e.g. TLS records it builds), from the user-space
  // reserve only: buffers posted to the kernel stay there. -1 if the reserve is empty.
  int32_t acquire();
  uint32_t bufferSize() const { return size_; }
  uint32_t count() const { return count_; }
  uint32_t outstanding() const { return outstanding_; }
  // A completion handed us buffer `id`: the kernel took it from the ring.
  void noteTaken();

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t ring_bytes_ = 0;
  size_t data_bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint32_t outstanding_ = 0;  // handed to us by completions, not yet released
  uint32_t posted_ = 0;       // in the ring, available to the kernel
  uint32_t depth_ = 0;
  std::vector<uint16_t> reserve_;  // LIFO: the most recently released (hottest) on top
  void post(uint16_t id);
  uint16_t group_id_ = 0;
};

}  // namespace ringlb::core
