// The HTTP half of an active check, without sockets: the request to send, and an incremental
// parser that turns the response bytes (fed in pieces of any size, as they arrive) into a
// verdict. The checker (health/checker.h) moves the bytes; this decides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "health/check_config.h"

namespace ringlb::health {

// "GET /health HTTP/1.1\r\nHost: ...\r\nUser-Agent: ringlb-health\r\n<extra>\r\nConnection:
// close\r\n\r\n". Host is config.host, or `default_host` when that is empty (the caller
// brackets an IPv6 literal). An extra header named Host or User-Agent replaces ours; an extra
// Connection header is dropped: the check always asks the server to close.
std::string buildHttpRequest(const HttpCheckConfig& config, std::string_view default_host);

// "200-399", "200,204,300-302": the expect_status ranges for reasons and logs.
std::string describeStatusRanges(const std::vector<StatusRange>& ranges);

struct HttpVerdict {
  bool ok = false;
  unsigned status = 0;  // 0 until a status line was parsed
  // "HTTP 200", "HTTP 503 (expected 200-399)", "HTTP 200 but body lacks \"ok\"",
  // "malformed HTTP response: ...", "connection closed before a status line".
  std::string reason;
};

// One response. Accepts HTTP/1.0 and HTTP/1.1 status lines (a 1xx interim response is
// skipped, RFC 9110 s15.2), a header section up to kMaxHeaderBytes, and, only when
// config.expect_body is set, up to kMaxBodyBytes of body (Content-Length, chunked or
// until EOF) in which the substring must appear. Without expect_body the verdict is known
// from the status line alone.
//
// `config` must outlive the parser. feed() after done() ignores its input.
class HttpResponseParser {
 public:
  static constexpr size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr size_t kMaxBodyBytes = 16 * 1024;

  explicit HttpResponseParser(const HttpCheckConfig& config) : config_(&config) {}

  // Consumes response bytes; returns true once the verdict is known.
  bool feed(std::string_view bytes);
  // The connection ended: decides if feed() has not (a body that ended without the
  // substring, or no status line at all). Returns the verdict.
  const HttpVerdict& finish();

  bool done() const { return done_; }
  const HttpVerdict& verdict() const { return verdict_; }

 private:
  enum class Stage : uint8_t { StatusLine, Headers, Body, ChunkSize, ChunkData, ChunkDataEnd, Done };

  bool takeLine(std::string_view& bytes, size_t cap, std::string* line);
  void onStatusLine(const std::string& line);
  void onHeaderLine(const std::string& line);
  void onHeadersEnd();
  void consumeBody(std::string_view& bytes);
  void consumeChunked(std::string_view& bytes);
  void appendBody(std::string_view data);
  void bodyEnded();
  void decide(bool ok, std::string reason);
  void malformed(std::string_view what);

  const HttpCheckConfig* config_;
  Stage stage_ = Stage::StatusLine;
  bool done_ = false;
  HttpVerdict verdict_;
  std::string line_;            // a partial line carried between feed() calls
  size_t header_bytes_ = 0;     // status line + header lines of the current response
  bool interim_ = false;        // a 1xx response, to be followed by the real one
  bool chunked_ = false;
  bool has_length_ = false;
  uint64_t remaining_ = 0;      // Content-Length left, or the current chunk's bytes left
  std::string body_;            // up to kMaxBodyBytes
  size_t searched_ = 0;         // body_ before this offset cannot start a match
};

}  // namespace ringlb::health
