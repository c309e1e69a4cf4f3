#include "core/cidr.h"

#include <gtest/gtest.h>

namespace ringlb::core {
namespace {

SocketAddress addr(const char* text) { return *SocketAddress::parse(text); }

Cidr cidr(const char* text) {
  std::string error;
  auto c = Cidr::parse(text, &error);
  EXPECT_TRUE(c) << text << ": " << error;
  return c.value_or(Cidr{});
}

std::string parseError(const char* text) {
  std::string error;
  EXPECT_FALSE(Cidr::parse(text, &error)) << text;
  return error;
}

TEST(CidrTest, ParsesNetworksAndHostsCanonically) {
  EXPECT_EQ(cidr("10.0.0.0/8").toString(), "10.0.0.0/8");
  EXPECT_EQ(cidr("127.0.0.1").toString(), "127.0.0.1/32");
  EXPECT_EQ(cidr("::1").toString(), "::1/128");
  EXPECT_EQ(cidr("::1/128").prefixLength(), 128u);
  EXPECT_EQ(cidr("2001:DB8::/32").toString(), "2001:db8::/32");
  EXPECT_EQ(cidr("0.0.0.0/0").toString(), "0.0.0.0/0");
  EXPECT_TRUE(cidr("192.168.1.0/24").isIpv4());
  EXPECT_FALSE(cidr("fe80::/10").isIpv4());
}

TEST(CidrTest, Ipv4BlockMatchesPrefixOnly) {
  Cidr net = cidr("10.0.0.0/8");
  EXPECT_TRUE(net.contains(addr("10.1.2.3:5000")));
  EXPECT_TRUE(net.contains(addr("10.255.255.255:1")));
  EXPECT_FALSE(net.contains(addr("11.0.0.0:1")));
  EXPECT_FALSE(net.contains(addr("9.255.255.255:1")));
  Cidr odd = cidr("192.168.4.0/22");  // a prefix that does not end on a byte
  EXPECT_TRUE(odd.contains(addr("192.168.7.255:1")));
  EXPECT_FALSE(odd.contains(addr("192.168.8.0:1")));
  EXPECT_FALSE(odd.contains(addr("192.168.3.255:1")));
}

TEST(CidrTest, Ipv4BlockMatchesIpv4MappedIpv6Clients) {
  Cidr net = cidr("10.0.0.0/8");
  EXPECT_TRUE(net.contains(addr("[::ffff:10.1.2.3]:443")));
  EXPECT_FALSE(net.contains(addr("[::ffff:11.1.2.3]:443")));
  EXPECT_FALSE(net.contains(addr("[::10.1.2.3]:443")));  // IPv4-compatible, not mapped
  EXPECT_FALSE(net.contains(addr("[2001:db8::a01:203]:443")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(addr("[::ffff:1.2.3.4]:1")));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(addr("[2001:db8::1]:1")));
}

TEST(CidrTest, Ipv6BlockMatches) {
  Cidr loopback = cidr("::1/128");
  EXPECT_TRUE(loopback.contains(addr("[::1]:80")));
  EXPECT_FALSE(loopback.contains(addr("[::2]:80")));
  EXPECT_FALSE(loopback.contains(addr("127.0.0.1:80")));
  Cidr doc = cidr("2001:db8::/33");
  EXPECT_TRUE(doc.contains(addr("[2001:db8:7fff::1]:1")));
  EXPECT_FALSE(doc.contains(addr("[2001:db8:8000::1]:1")));
  EXPECT_TRUE(cidr("::ffff:0:0/96").contains(addr("10.0.0.1:1")));  // the mapped range is IPv4
}

TEST(CidrTest, HostBlockMatchesOnlyThatHost) {
  Cidr host = cidr("127.0.0.1");
  EXPECT_TRUE(host.contains(addr("127.0.0.1:1")));
  EXPECT_TRUE(host.contains(addr("[::ffff:127.0.0.1]:1")));
  EXPECT_FALSE(host.contains(addr("127.0.0.2:1")));
}

TEST(CidrTest, UnixAndEmptyAddressesAreNeverContained) {
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(addr("unix:/run/x.sock")));
  EXPECT_FALSE(cidr("::/0").contains(SocketAddress{}));
}

TEST(CidrTest, RejectsMalformedWithPreciseReasons) {
  EXPECT_NE(parseError("localhost/8").find("not a numeric IPv4 or IPv6 address"), std::string::npos);
  EXPECT_NE(parseError("10.0.0/8").find("not a numeric"), std::string::npos);
  EXPECT_NE(parseError("010.0.0.0/8").find("not a numeric"), std::string::npos);
  EXPECT_NE(parseError("10.0.0.0/33").find("0..32 for IPv4"), std::string::npos);
  EXPECT_NE(parseError("::/129").find("0..128 for IPv6"), std::string::npos);
  EXPECT_NE(parseError("10.0.0.0/").find("prefix length"), std::string::npos);
  EXPECT_NE(parseError("10.0.0.0/08").find("prefix length"), std::string::npos);
  EXPECT_NE(parseError("10.0.0.0/8/8").find("prefix length"), std::string::npos);
  EXPECT_NE(parseError("10.0.0.0/ 8").find("prefix length"), std::string::npos);
  EXPECT_NE(parseError("").find("not a numeric"), std::string::npos);
}

TEST(CidrTest, RejectsAddressBitsPastThePrefixNamingTheNetwork) {
  EXPECT_EQ(parseError("10.1.0.0/8"),
            "\"10.1.0.0/8\" has address bits set past the prefix; the network is 10.0.0.0/8");
  EXPECT_NE(parseError("2001:db8::1/64").find("the network is 2001:db8::/64"), std::string::npos);
  EXPECT_NE(parseError("192.168.5.0/22").find("192.168.4.0/22"), std::string::npos);
}

}  // namespace
}  // namespace ringlb::core
