// The HTTP check's request builder and response parser: pure, fed whole and byte by byte.
#include "health/http_probe.h"

#include <gtest/gtest.h>

#include <string>

namespace ringlb::health {
namespace {

HttpVerdict parseWhole(const HttpCheckConfig& config, const std::string& response, bool eof = true) {
  HttpResponseParser parser(config);
  if (!parser.feed(response) && eof) parser.finish();
  return parser.verdict();
}

HttpVerdict parseByteByByte(const HttpCheckConfig& config, const std::string& response, bool eof = true) {
  HttpResponseParser parser(config);
  for (char c : response) {
    if (parser.feed(std::string_view(&c, 1))) break;
  }
  if (!parser.done() && eof) parser.finish();
  return parser.verdict();
}

TEST(HttpRequestTest, HasMethodPathHostAgentExtraHeadersAndConnectionClose) {
  HttpCheckConfig config;
  config.method = "HEAD";
  config.path = "/healthz?full=1";
  config.headers = {"X-Check: 1", "Connection: keep-alive"};
  EXPECT_EQ(buildHttpRequest(config, "10.0.0.1:8080"),
            "HEAD /healthz?full=1 HTTP/1.1\r\n"
            "Host: 10.0.0.1:8080\r\n"
            "User-Agent: ringlb-health\r\n"
            "X-Check: 1\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpRequestTest, ConfiguredHostWinsOverTheDefaultAndExtraHostOrAgentReplacesOurs) {
  HttpCheckConfig config;
  config.host = "app.internal";
  EXPECT_NE(buildHttpRequest(config, "10.0.0.1").find("Host: app.internal\r\n"), std::string::npos);
  config.headers = {"host: other", "user-agent: probe/2"};
  std::string req = buildHttpRequest(config, "10.0.0.1");
  EXPECT_EQ(req.find("Host: app.internal"), std::string::npos);
  EXPECT_EQ(req.find("ringlb-health"), std::string::npos);
  EXPECT_NE(req.find("host: other\r\n"), std::string::npos);
  EXPECT_NE(req.find("user-agent: probe/2\r\n"), std::string::npos);
}

TEST(HttpResponseTest, StatusInRangeIsOkFromTheStatusLineAlone) {
  HttpCheckConfig config;
  HttpResponseParser parser(config);
  EXPECT_TRUE(parser.feed("HTTP/1.1 204 No Content\r\n"));
  EXPECT_TRUE(parser.verdict().ok);
  EXPECT_EQ(parser.verdict().status, 204u);
  EXPECT_EQ(parser.verdict().reason, "HTTP 204");
}

TEST(HttpResponseTest, StatusOutOfRangeFailsNamingTheExpectedRanges) {
  HttpCheckConfig config;
  HttpVerdict v = parseWhole(config, "HTTP/1.1 503 Service Unavailable\r\n\r\n");
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, 503u);
  EXPECT_EQ(v.reason, "HTTP 503 (expected 200-399)");
  config.expect_status = {{200, 200}, {301, 302}};
  EXPECT_EQ(parseWhole(config, "HTTP/1.0 404 Not Found\r\n").reason, "HTTP 404 (expected 200,301-302)");
  EXPECT_TRUE(parseWhole(config, "HTTP/1.0 302 Found\r\n").ok);
}

TEST(HttpResponseTest, AcceptsHttp10BareLfAndAMissingReasonPhrase) {
  HttpCheckConfig config;
  EXPECT_TRUE(parseWhole(config, "HTTP/1.0 200 OK\n").ok);
  EXPECT_TRUE(parseWhole(config, "HTTP/1.1 200\r\n").ok);
}

TEST(HttpResponseTest, MalformedStatusLinesFailWithAReason) {
  HttpCheckConfig config;
  for (const char* bad : {"HTTP/2 200 OK\r\n", "SSH-2.0-OpenSSH_9.2\r\n", "HTTP/1.1 20 OK\r\n", "HTTP/1.1 2000 OK\r\n",
                          "HTTP/1.1 abc OK\r\n", "HTTP/1.1 099 Odd\r\n"}) {
    HttpVerdict v = parseWhole(config, bad);
    EXPECT_FALSE(v.ok) << bad;
    EXPECT_EQ(v.reason.rfind("malformed HTTP response: ", 0), 0u) << v.reason;
  }
}

TEST(HttpResponseTest, ConnectionClosedBeforeAStatusLine) {
  HttpCheckConfig config;
  EXPECT_EQ(parseWhole(config, "").reason, "connection closed before a status line");
  EXPECT_EQ(parseWhole(config, "HTTP/1.1 200 O").reason, "connection closed before a status line");
}

TEST(HttpResponseTest, InterimResponsesAreSkipped) {
  HttpCheckConfig config;
  HttpVerdict v = parseWhole(config, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 503 Down\r\n\r\n");
  EXPECT_EQ(v.reason, "HTTP 503 (expected 200-399)");
}

TEST(HttpResponseTest, ExpectedBodyFoundWithContentLength) {
  HttpCheckConfig config;
  config.expect_body = "ok";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nstatus: ok\r\n";
  EXPECT_TRUE(parseWhole(config, response).ok);
  EXPECT_TRUE(parseByteByByte(config, response).ok);
  EXPECT_EQ(parseByteByByte(config, response).reason, "HTTP 200");
}

TEST(HttpResponseTest, BodyEndingWithoutTheSubstringFails) {
  HttpCheckConfig config;
  config.expect_body = "ok";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ndegraded";
  // Content-Length ends the body: known without EOF.
  EXPECT_EQ(parseWhole(config, response, /*eof=*/false).reason, "HTTP 200 but body lacks \"ok\"");
  EXPECT_EQ(parseByteByByte(config, response, false).reason, "HTTP 200 but body lacks \"ok\"");
  // A body delimited by EOF: decided at finish().
  HttpResponseParser parser(config);
  EXPECT_FALSE(parser.feed("HTTP/1.0 200 OK\r\n\r\nall is wel"));
  EXPECT_FALSE(parser.finish().ok);
  EXPECT_EQ(parser.verdict().reason, "HTTP 200 but body lacks \"ok\"");
}

TEST(HttpResponseTest, SubstringSplitAcrossPiecesIsFound) {
  HttpCheckConfig config;
  config.expect_body = "healthy";
  HttpResponseParser parser(config);
  EXPECT_FALSE(parser.feed("HTTP/1.1 200 OK\r\n\r\nI am heal"));
  EXPECT_TRUE(parser.feed("thy today"));
  EXPECT_TRUE(parser.verdict().ok);
}

TEST(HttpResponseTest, ChunkedBodyIsDecodedSoChunkBoundariesDoNotHideTheSubstring) {
  HttpCheckConfig config;
  config.expect_body = "alive";
  const std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nali\r\n2\r\nve\r\n0\r\n\r\n";
  EXPECT_TRUE(parseWhole(config, response).ok);
  EXPECT_TRUE(parseByteByByte(config, response).ok);
  config.expect_body = "dead";
  EXPECT_EQ(parseWhole(config, response, false).reason, "HTTP 200 but body lacks \"dead\"");
  EXPECT_FALSE(parseWhole(config, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").ok);
}

TEST(HttpResponseTest, BodyIsSearchedOnlyUpToTheCap) {
  HttpCheckConfig config;
  config.expect_body = "needle";
  std::string response = "HTTP/1.1 200 OK\r\n\r\n" + std::string(HttpResponseParser::kMaxBodyBytes, 'x') + "needle";
  HttpResponseParser parser(config);
  EXPECT_TRUE(parser.feed(response)) << "the cap decides without waiting for EOF";
  EXPECT_EQ(parser.verdict().reason, "HTTP 200 but body lacks \"needle\"");
}

TEST(HttpResponseTest, StatusOutOfRangeFailsEvenWhenTheBodyMatches) {
  HttpCheckConfig config;
  config.expect_body = "ok";
  EXPECT_EQ(parseWhole(config, "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nok").reason,
            "HTTP 500 (expected 200-399)");
}

TEST(HttpResponseTest, OversizedHeaderSectionIsMalformed) {
  HttpCheckConfig config;
  config.expect_body = "ok";
  std::string response = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 1000; ++i) response += "X-Filler: 0123456789abcdef\r\n";
  HttpVerdict v = parseWhole(config, response);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "malformed HTTP response: header section exceeds 16384 bytes");
}

TEST(HttpResponseTest, NoBodyForHeadOr204) {
  HttpCheckConfig config;
  config.expect_body = "ok";
  EXPECT_EQ(parseWhole(config, "HTTP/1.1 204 No Content\r\n\r\n", false).reason, "HTTP 204 but body lacks \"ok\"");
}

TEST(HttpResponseTest, BadContentLengthIsMalformed) {
  HttpCheckConfig config;
  config.expect_body = "ok";
  EXPECT_EQ(parseWhole(config, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n").reason,
            "malformed HTTP response: bad Content-Length \"1x\"");
}

}  // namespace
}  // namespace ringlb::health
