// A provided-buffer ring (IORING_REGISTER_PBUF_RING): the kernel picks a free buffer for
// each recv, so idle connections hold no receive memory. Buffers return to the ring when
// the data in them has been sent on.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <span>
#include <string>

namespace ringlb::core {

class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // `count` must be a power of two <= 32768.
  bool init(io_uring* ring, uint16_t group_id, uint32_t count, uint32_t size, std::string* error);

  std::span<uint8_t> buffer(uint16_t id) { return {data_ + size_t{id} * size_, size_}; }
  void release(uint16_t id);
  uint16_t groupId() const { return group_id_; }
  uint32_t bufferSize() const { return size_; }
  uint32_t count() const { return count_; }
  uint32_t outstanding() const { return outstanding_; }
  void noteTaken() { ++outstanding_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t ring_bytes_ = 0;
  size_t data_bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint32_t outstanding_ = 0;  // handed to us by completions, not yet released
  uint16_t group_id_ = 0;
};

}  // namespace ringlb::core
