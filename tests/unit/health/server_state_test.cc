// ServerState: rise/fall, status words, passive ejection with half-open retries, slow start,
// admin states and configure() across generations. Pure: time is passed in.
#include "health/server_state.h"

#include <gtest/gtest.h>

namespace ringlb::health {
namespace {

using std::chrono::milliseconds;

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

CheckConfig checks(uint32_t rise, uint32_t fall) {
  CheckConfig c;
  c.type = CheckType::Tcp;
  c.rise = rise;
  c.fall = fall;
  return c;
}

CheckResult ok() { return {true, "connected", milliseconds(1), 0}; }
CheckResult fail() { return {false, "connection refused", milliseconds(1), 0}; }

TEST(ServerStateTest, FallFailuresInARowTakeItDownAndRiseSuccessesBringItBack) {
  ServerState s(10, kT0);
  s.configure(checks(2, 3), {}, 10);
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.onCheck(fail(), kT0), Change::None);
  EXPECT_EQ(s.onCheck(fail(), kT0), Change::None);
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.onCheck(fail(), kT0), Change::WentDown);
  EXPECT_FALSE(s.up());
  EXPECT_FALSE(s.acceptsNew(kT0));
  EXPECT_EQ(s.onCheck(ok(), kT0), Change::None);
  EXPECT_EQ(s.onCheck(ok(), kT0), Change::WentUp);
  EXPECT_TRUE(s.acceptsNew(kT0));
  StateSnapshot snap = s.snapshot(kT0);
  EXPECT_EQ(snap.checks, 5u);
  EXPECT_EQ(snap.check_failures, 3u);
  EXPECT_EQ(snap.went_down, 1u);
}

TEST(ServerStateTest, ASuccessResetsTheFailureCount) {
  ServerState s(1, kT0);
  s.configure(checks(2, 2), {}, 1);
  s.onCheck(fail(), kT0);
  s.onCheck(ok(), kT0);
  EXPECT_EQ(s.onCheck(fail(), kT0), Change::None);
  EXPECT_TRUE(s.up());
}

TEST(ServerStateTest, InTransitionWhileCountingTowardsRiseOrFall) {
  ServerState s(1, kT0);
  s.configure(checks(2, 2), {}, 1);
  EXPECT_FALSE(s.inTransition());
  s.onCheck(fail(), kT0);
  EXPECT_TRUE(s.inTransition());
  s.onCheck(fail(), kT0);  // down: settled
  EXPECT_FALSE(s.inTransition());
  s.onCheck(ok(), kT0);
  EXPECT_TRUE(s.inTransition());
  s.onCheck(ok(), kT0);
  EXPECT_FALSE(s.inTransition());
}

TEST(ServerStateTest, StatusWordsFollowHaproxy) {
  ServerState s(1, kT0);
  EXPECT_EQ(s.snapshot(kT0).status(), "no check");
  s.configure(checks(2, 3), {}, 1);
  EXPECT_EQ(s.snapshot(kT0).status(), "UP");
  s.onCheck(fail(), kT0);
  EXPECT_EQ(s.snapshot(kT0).status(), "UP 1/3");
  s.onCheck(fail(), kT0);
  s.onCheck(fail(), kT0);
  EXPECT_EQ(s.snapshot(kT0).status(), "DOWN");
  s.onCheck(ok(), kT0);
  EXPECT_EQ(s.snapshot(kT0).status(), "DOWN 1/2");
  s.setAdmin(AdminState::Drain, kT0);
  EXPECT_EQ(s.snapshot(kT0).status(), "DRAIN");
  s.setAdmin(AdminState::Maint, kT0);
  EXPECT_EQ(s.snapshot(kT0).status(), "MAINT");
}

TEST(ServerStateTest, EjectAfterConsecutiveConnectFailures) {
  ServerState s(1, kT0);
  LifecycleConfig life;
  life.eject_after = 3;
  life.eject_for = milliseconds(1000);
  life.eject_max = milliseconds(3000);
  s.configure({}, life, 1);
  Millis length{0};
  EXPECT_FALSE(s.onConnectFailure(kT0, &length));
  EXPECT_FALSE(s.onConnectFailure(kT0, &length));
  EXPECT_TRUE(s.onConnectFailure(kT0, &length));
  EXPECT_EQ(length, milliseconds(1000));
  EXPECT_FALSE(s.acceptsNew(kT0));
  EXPECT_EQ(s.snapshot(kT0).status(), "DOWN");
  EXPECT_TRUE(s.acceptsNew(kT0 + milliseconds(1000)));
  EXPECT_EQ(s.snapshot(kT0).ejections, 1u);
}

TEST(ServerStateTest, HalfOpenOneFailureReejectsForLongerCappedAtMax) {
  ServerState s(1, kT0);
  LifecycleConfig life;
  life.eject_after = 2;
  life.eject_for = milliseconds(1000);
  life.eject_max = milliseconds(2500);
  s.configure({}, life, 1);
  Millis length{0};
  s.onConnectFailure(kT0, &length);
  ASSERT_TRUE(s.onConnectFailure(kT0, &length));
  EXPECT_EQ(length, milliseconds(1000));
  // During the ejection further failures change nothing.
  EXPECT_FALSE(s.onConnectFailure(kT0 + milliseconds(500), &length));
  Clock::time_point t = kT0 + milliseconds(1000);
  ASSERT_TRUE(s.onConnectFailure(t, &length)) << "after an ejection the first failure re-ejects";
  EXPECT_EQ(length, milliseconds(2000));
  t += length;
  ASSERT_TRUE(s.onConnectFailure(t, &length));
  EXPECT_EQ(length, milliseconds(2500)) << "capped at eject_max";
  t += length;
  s.onConnectSuccess();
  EXPECT_FALSE(s.onConnectFailure(t, &length)) << "a success closes the circuit: eject_after again";
  EXPECT_TRUE(s.onConnectFailure(t, &length));
  EXPECT_EQ(length, milliseconds(1000));
}

TEST(ServerStateTest, NoEjectionWhenEjectAfterIsZero) {
  ServerState s(1, kT0);
  LifecycleConfig life;
  life.eject_after = 0;
  s.configure({}, life, 1);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(s.onConnectFailure(kT0, nullptr));
  EXPECT_TRUE(s.acceptsNew(kT0));
  EXPECT_EQ(s.snapshot(kT0).connect_failures, 10u);
}

TEST(ServerStateTest, SlowStartRampsFromASixteenthToFullWeightAndNeverZero) {
  ServerState s(32, kT0);
  LifecycleConfig life;
  life.slow_start = milliseconds(1600);
  s.configure(checks(1, 1), life, 32);
  s.onCheck(fail(), kT0);
  ASSERT_EQ(s.onCheck(ok(), kT0), Change::WentUp);
  EXPECT_EQ(s.effectiveWeight(kT0), 2u) << "1/16 of 32";
  EXPECT_EQ(s.effectiveWeight(kT0 + milliseconds(800)), 16u);
  EXPECT_EQ(s.effectiveWeight(kT0 + milliseconds(1600)), 32u);
  EXPECT_EQ(s.effectiveWeight(kT0 + std::chrono::hours(1)), 32u);

  ServerState light(1, kT0);
  light.configure(checks(1, 1), life, 1);
  light.onCheck(fail(), kT0);
  light.onCheck(ok(), kT0);
  EXPECT_EQ(light.effectiveWeight(kT0), 1u) << "never 0 while usable";
}

TEST(ServerStateTest, MaintAndDrainStopNewConnections) {
  ServerState s(1, kT0);
  s.setAdmin(AdminState::Drain, kT0);
  EXPECT_FALSE(s.acceptsNew(kT0));
  EXPECT_FALSE(s.checksPaused());
  s.setAdmin(AdminState::Maint, kT0);
  EXPECT_FALSE(s.acceptsNew(kT0));
  EXPECT_TRUE(s.checksPaused());
  s.setAdmin(AdminState::Ready, kT0);
  EXPECT_TRUE(s.acceptsNew(kT0));
}

TEST(ServerStateTest, ConfigureKeepsARuntimeWeightUnlessTheConfiguredOneChanges) {
  ServerState s(10, kT0);
  s.configure({}, {}, 10);
  s.setWeight(3);
  s.configure({}, {}, 10);
  EXPECT_EQ(s.weight(), 3u) << "same configured weight: the operator's weight stays";
  s.configure({}, {}, 20);
  EXPECT_EQ(s.weight(), 20u) << "a new configured weight replaces it";
}

TEST(ServerStateTest, TurningChecksOffBringsADownBackendUp) {
  ServerState s(1, kT0);
  s.configure(checks(1, 1), {}, 1);
  s.onCheck(fail(), kT0);
  ASSERT_FALSE(s.up());
  s.configure({}, {}, 1);
  EXPECT_TRUE(s.up());
}

}  // namespace
}  // namespace ringlb::health
