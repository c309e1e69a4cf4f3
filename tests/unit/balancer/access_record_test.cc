#include "balancer/access_record.h"

#include <gtest/gtest.h>

namespace ringlb::balancer {
namespace {

TEST(AccessRecordTest, TextQuotesOnlyValuesThatNeedIt) {
  AccessRecord r(false);
  r.add("client", "127.0.0.1:5000");
  r.add("sni", "");
  r.add("errno", "Connection refused");
  r.add("client_cert", R"(CN=a "b"\c)");
  r.add("bytes_in", uint64_t{42});
  r.addMillis("duration_ms", 1.25);
  EXPECT_EQ(r.finish(), R"(client=127.0.0.1:5000 sni=- errno="Connection refused" client_cert="CN=a \"b\"\\c" )"
                        R"(bytes_in=42 duration_ms=1.2)");
}

TEST(AccessRecordTest, JsonEscapesStringsAndLeavesNumbersBare) {
  AccessRecord r(true);
  r.add("sni", "api.example.org");
  r.add("tls_error", "bad \"cert\"\n\x01\\");
  r.add("bytes_out", uint64_t{7});
  r.addMillis("duration_ms", 0.04);
  // The logger's pattern supplies the opening `{"time":"...",`.
  EXPECT_EQ(r.finish(), R"("sni":"api.example.org","tls_error":"bad \"cert\"\n\u0001\\","bytes_out":7,"duration_ms":0.0})");
}

}  // namespace
}  // namespace ringlb::balancer
