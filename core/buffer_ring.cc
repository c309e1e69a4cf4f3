#include "core/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace ringlb::core {

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, group_id_);
    munmap(br_, ring_bytes_);
  }
  if (data_ != nullptr) munmap(data_, data_bytes_);
}

bool BufferRing::init(io_uring* ring, uint16_t group_id, uint32_t count, uint32_t size, uint32_t depth,
                      std::string* error) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
    if (error) *error = "buffer count must be a power of two <= 32768";
    return false;
  }
  ring_ = ring;
  group_id_ = group_id;
  count_ = count;
  size_ = size;
  ring_bytes_ = count * sizeof(io_uring_buf);
  void* ring_mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  data_bytes_ = size_t{count} * size;
  void* data_mem = mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED || data_mem == MAP_FAILED) {
    if (error) *error = std::string("mmap for provided buffers: ") + std::strerror(errno);
    if (ring_mem != MAP_FAILED) munmap(ring_mem, ring_bytes_);
    if (data_mem != MAP_FAILED) munmap(data_mem, data_bytes_);
    return false;
  }
  data_ = static_cast<uint8_t*>(data_mem);
  br_ = static_cast<io_uring_buf_ring*>(ring_mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc != 0) {
    if (error) *error = std::string("io_uring_register_buf_ring: ") + std::strerror(-rc);
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    return false;
  }
  depth_ = depth == 0 || depth > count ? count : depth;
  reserve_.reserve(count);
  for (uint32_t i = count; i-- > depth_;) reserve_.push_back(static_cast<uint16_t>(i));
  for (uint32_t i = 0; i < depth_; ++i) post(static_cast<uint16_t>(i));
  return true;
}

void BufferRing::post(uint16_t id) {
  io_uring_buf_ring_add(br_, data_ + size_t{id} * size_, size_, id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  ++posted_;
}

void BufferRing::noteTaken() {
  ++outstanding_;
  --posted_;
  // Keep the kernel's supply at depth from the reserve, so bursts do not hit ENOBUFS while
  // buffers are free.
  while (posted_ < depth_ && !reserve_.empty()) {
    post(reserve_.back());
    reserve_.pop_back();
  }
}

int32_t BufferRing::acquire() {
  if (reserve_.empty()) return -1;
  uint16_t id = reserve_.back();
  reserve_.pop_back();
  ++outstanding_;
  return id;
}

void BufferRing::release(uint16_t id) {
  --outstanding_;
  if (posted_ < depth_) {
    post(id);
  } else {
    reserve_.push_back(id);
  }
}

}  // namespace ringlb::core
