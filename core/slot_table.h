// Completion slots: every in-flight io_uring operation carries (slot index, generation, op
// tag) in its user_data, so a late completion for a recycled slot is recognised and dropped,
// and the loop knows how many operations each owner still has in flight. Slots are recycled
// from a free list: no allocation per operation (only when the table grows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringlb::core {

class CompletionHandler;

struct SlotRef {
  uint32_t index = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return index != UINT32_MAX; }
};

// user_data layout: [generation:32][index:24][op:8].
inline uint64_t encodeUserData(SlotRef ref, uint8_t op) {
  return (uint64_t{ref.generation} << 32) | (uint64_t{ref.index & 0xffffff} << 8) | op;
}
inline SlotRef decodeSlot(uint64_t user_data) {
  return {static_cast<uint32_t>((user_data >> 8) & 0xffffff), static_cast<uint32_t>(user_data >> 32)};
}
inline uint8_t decodeOp(uint64_t user_data) { return static_cast<uint8_t>(user_data & 0xff); }

class SlotTable {
 public:
  static constexpr uint32_t kMaxSlots = 1u << 24;

  SlotRef acquire(CompletionHandler* handler) {
    uint32_t index;
    if (free_head_ != UINT32_MAX) {
      index = free_head_;
      free_head_ = slots_[index].next_free;
    } else {
      index = static_cast<uint32_t>(slots_.size());
      if (index >= kMaxSlots) return {};
      slots_.push_back({});
    }
    Slot& slot = slots_[index];
    slot.handler = handler;
    slot.inflight = 0;
    return {index, slot.generation};
  }

  // Precondition: inflight(ref) == 0 (checked by the loop).
  void release(SlotRef ref) {
    Slot& slot = slots_[ref.index];
    slot.handler = nullptr;
    ++slot.generation;  // any straggling completion now mismatches
    slot.next_free = free_head_;
    free_head_ = ref.index;
  }

  // The live handler for a completion, or nullptr if the slot was recycled.
  CompletionHandler* lookup(SlotRef ref) const {
    if (ref.index >= slots_.size()) return nullptr;
    const Slot& slot = slots_[ref.index];
    return slot.generation == ref.generation ? slot.handler : nullptr;
  }

  uint32_t& inflight(SlotRef ref) { return slots_[ref.index].inflight; }
  uint32_t inflight(SlotRef ref) const { return slots_[ref.index].inflight; }
  size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    CompletionHandler* handler = nullptr;
    uint32_t generation = 0;
    uint32_t inflight = 0;
    uint32_t next_free = UINT32_MAX;
  };
  std::vector<Slot> slots_;
  uint32_t free_head_ = UINT32_MAX;
};

}  // namespace ringlb::core
