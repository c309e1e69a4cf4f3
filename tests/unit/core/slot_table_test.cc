#include "core/slot_table.h"

#include <gtest/gtest.h>

#include "core/event_loop.h"

namespace ringlb::core {
namespace {

struct Dummy final : CompletionHandler {
  void onCompletion(uint8_t, const Completion&) override {}
};

TEST(SlotTableTest, UserDataRoundTrips) {
  SlotRef ref{0x123456, 0xdeadbeef};
  uint64_t ud = encodeUserData(ref, 0xab);
  EXPECT_EQ(decodeSlot(ud).index, ref.index);
  EXPECT_EQ(decodeSlot(ud).generation, ref.generation);
  EXPECT_EQ(decodeOp(ud), 0xab);
}

TEST(SlotTableTest, LateCompletionForRecycledSlotIsNotDelivered) {
  SlotTable table;
  Dummy a, b;
  SlotRef first = table.acquire(&a);
  EXPECT_EQ(table.lookup(first), &a);
  table.release(first);
  SlotRef second = table.acquire(&b);
  EXPECT_EQ(second.index, first.index) << "free list reuses the slot";
  EXPECT_NE(second.generation, first.generation);
  EXPECT_EQ(table.lookup(first), nullptr) << "stale generation must not reach the new owner";
  EXPECT_EQ(table.lookup(second), &b);
}

TEST(SlotTableTest, SlotsAreReusedWithoutGrowing) {
  SlotTable table;
  Dummy a;
  for (int i = 0; i < 1000; ++i) table.release(table.acquire(&a));
  EXPECT_EQ(table.capacity(), 1u);
}

}  // namespace
}  // namespace ringlb::core
