#include "core/socket.h"

#include <gtest/gtest.h>

namespace ringlb::core {
namespace {

TEST(SocketAddressTest, ParsesIpv4Ipv6AndUnix) {
  auto v4 = SocketAddress::parse("127.0.0.1:8443");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->port(), 8443);
  EXPECT_EQ(v4->toString(), "127.0.0.1:8443");
  auto v6 = SocketAddress::parse("[::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->toString(), "[::1]:443");
  auto un = SocketAddress::parse("unix:/run/keystone.sock");
  ASSERT_TRUE(un);
  EXPECT_TRUE(un->isUnix());
  EXPECT_EQ(un->toString(), "unix:/run/keystone.sock");
}

TEST(SocketAddressTest, RejectsMalformedWithAReason) {
  std::string error;
  EXPECT_FALSE(SocketAddress::parse("localhost:80", &error));
  EXPECT_NE(error.find("not a numeric"), std::string::npos) << error;
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4:99999", &error));
  EXPECT_NE(error.find("port"), std::string::npos) << error;
  EXPECT_FALSE(SocketAddress::parse("[::1]443", &error));
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4", &error));
  EXPECT_FALSE(SocketAddress::parse("unix:", &error));
}

TEST(SocketAddressTest, KernelChosenPortIsVisibleAfterListen) {
  auto addr = SocketAddress::parse("127.0.0.1:0");
  std::string error;
  UniqueFd fd = listenOn(*addr, 16, &error);
  ASSERT_TRUE(fd) << error;
  auto local = localAddress(fd.get());
  ASSERT_TRUE(local);
  EXPECT_NE(local->port(), 0);
}

}  // namespace
}  // namespace ringlb::core
