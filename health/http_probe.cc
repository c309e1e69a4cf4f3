#include "health/http_probe.h"

#include <algorithm>
#include <cctype>

namespace ringlb::health {
namespace {

constexpr size_t kMaxChunkLine = 1024;  // chunk-size [; ext] line (RFC 9112 s7.1)

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

// The header's name if `line` is "Name: value" (trimmed), else "".
std::string_view headerName(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return {};
  std::string_view name = line.substr(0, colon);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  return name;
}

std::string_view headerValue(std::string_view line) {
  size_t colon = line.find(':');
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value;
}

bool nameIs(std::string_view line, std::string_view name) {
  std::string_view n = headerName(line);
  return n.size() == name.size() && startsWithNoCase(n, name);
}

// Quoted, at most 64 characters, non-printable bytes as '?': peer bytes go into a log line.
std::string quoteForLog(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += std::isprint(c) ? static_cast<char>(c) : '?';
  }
  if (text.size() > 64) out += "...";
  return out + "\"";
}

}  // namespace

std::string buildHttpRequest(const HttpCheckConfig& config, std::string_view default_host) {
  bool own_host = true;
  bool own_agent = true;
  for (const auto& h : config.headers) {
    if (nameIs(h, "Host")) own_host = false;
    if (nameIs(h, "User-Agent")) own_agent = false;
  }
  std::string req = config.method + " " + (config.path.empty() ? "/" : config.path) + " HTTP/1.1\r\n";
  // RFC 9112 s3.2: a client MUST send Host in every HTTP/1.1 request.
  if (own_host) req += "Host: " + (config.host.empty() ? std::string(default_host) : config.host) + "\r\n";
  if (own_agent) req += "User-Agent: ringlb-health\r\n";
  for (const auto& h : config.headers) {
    if (nameIs(h, "Connection")) continue;
    req += h + "\r\n";
  }
  // One request per connection (RFC 9112 s9.6): the server closes, no keep-alive state.
  req += "Connection: close\r\n\r\n";
  return req;
}

std::string describeStatusRanges(const std::vector<StatusRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ",";
    out += std::to_string(r.low);
    if (r.high != r.low) out += "-" + std::to_string(r.high);
  }
  return out;
}

bool HttpResponseParser::feed(std::string_view bytes) {
  std::string line;
  while (!done_ && !bytes.empty()) {
    switch (stage_) {
      case Stage::StatusLine:
        if (!takeLine(bytes, kMaxHeaderBytes - header_bytes_, &line)) break;
        onStatusLine(line);
        break;
      case Stage::Headers:
        if (!takeLine(bytes, kMaxHeaderBytes - header_bytes_, &line)) break;
        if (line.empty()) {
          onHeadersEnd();
        } else {
          onHeaderLine(line);
        }
        break;
      case Stage::Body: consumeBody(bytes); break;
      case Stage::ChunkSize:
      case Stage::ChunkData:
      case Stage::ChunkDataEnd: consumeChunked(bytes); break;
      case Stage::Done: return true;
    }
  }
  return done_;
}

// Moves bytes into line_ up to and including '\n'; true with the line (CR LF or bare LF
// stripped, RFC 9112 s2.2 lets a recipient accept a bare LF) when one is complete.
bool HttpResponseParser::takeLine(std::string_view& bytes, size_t cap, std::string* line) {
  size_t nl = bytes.find('\n');
  size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
  if (line_.size() + take > cap) {
    malformed(stage_ == Stage::StatusLine || stage_ == Stage::Headers
                  ? "header section exceeds " + std::to_string(kMaxHeaderBytes) + " bytes"
                  : std::string("chunk size line too long"));
    return false;
  }
  line_.append(bytes.substr(0, take));
  bytes.remove_prefix(take);
  if (nl == std::string_view::npos) return false;
  if (stage_ == Stage::StatusLine || stage_ == Stage::Headers) header_bytes_ += line_.size();
  line_.pop_back();
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  line->swap(line_);
  line_.clear();
  return true;
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 s4). Some servers
// omit the SP before an empty reason; accept that.
void HttpResponseParser::onStatusLine(const std::string& line) {
  std::string_view l = line;
  if (l.substr(0, 8) != "HTTP/1.1" && l.substr(0, 8) != "HTTP/1.0") {
    malformed("bad status line " + quoteForLog(l));
    return;
  }
  bool digits = l.size() >= 12 && l[8] == ' ' && std::isdigit(static_cast<unsigned char>(l[9])) &&
                std::isdigit(static_cast<unsigned char>(l[10])) && std::isdigit(static_cast<unsigned char>(l[11]));
  if (!digits || (l.size() > 12 && l[12] != ' ') || l[9] == '0') {
    malformed("bad status code in " + quoteForLog(l));
    return;
  }
  unsigned status = static_cast<unsigned>((l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0'));
  stage_ = Stage::Headers;
  // 1xx (e.g. 103 Early Hints) precede the final response; 101 would switch protocols,
  // which a check never asks for, so it counts as the final status.
  interim_ = status >= 100 && status < 200 && status != 101;
  if (interim_) return;
  verdict_.status = status;
  bool in_range = std::any_of(config_->expect_status.begin(), config_->expect_status.end(),
                              [status](const StatusRange& r) { return r.contains(status); });
  std::string http = "HTTP " + std::to_string(status);
  if (!in_range) {
    decide(false, http + " (expected " + describeStatusRanges(config_->expect_status) + ")");
  } else if (config_->expect_body.empty()) {
    decide(true, http);
  }
}

void HttpResponseParser::onHeaderLine(const std::string& line) {
  if (interim_) return;
  if (nameIs(line, "Transfer-Encoding")) {
    // RFC 9112 s6.1: chunked, when present, is the final coding.
    std::string_view value = headerValue(line);
    chunked_ = value.size() >= 7 && startsWithNoCase(value.substr(value.size() - 7), "chunked");
  } else if (nameIs(line, "Content-Length")) {
    std::string_view value = headerValue(line);
    uint64_t n = 0;
    if (value.empty() || value.size() > 18 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      malformed("bad Content-Length " + quoteForLog(value));
      return;
    }
    for (char c : value) n = n * 10 + static_cast<uint64_t>(c - '0');
    has_length_ = true;
    remaining_ = n;
  }
}

void HttpResponseParser::onHeadersEnd() {
  if (interim_) {
    interim_ = false;
    stage_ = Stage::StatusLine;
    header_bytes_ = 0;
    return;
  }
  // RFC 9110 s6.4.1: no body for HEAD, 204 and 304. Transfer-Encoding overrides
  // Content-Length (RFC 9112 s6.3).
  if (config_->method == "HEAD" || verdict_.status == 204 || verdict_.status == 304) {
    bodyEnded();
  } else if (chunked_) {
    stage_ = Stage::ChunkSize;
  } else if (has_length_ && remaining_ == 0) {
    bodyEnded();
  } else {
    stage_ = Stage::Body;  // until Content-Length bytes, or EOF without one
  }
}

void HttpResponseParser::consumeBody(std::string_view& bytes) {
  size_t take = has_length_ ? static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size())) : bytes.size();
  appendBody(bytes.substr(0, take));
  bytes.remove_prefix(take);
  if (has_length_) {
    remaining_ -= take;
    if (remaining_ == 0) bodyEnded();
  }
}

// chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*"0" ... (RFC 9112
// s7.1). Trailers after the last chunk are not read: the body has ended by then.
void HttpResponseParser::consumeChunked(std::string_view& bytes) {
  std::string line;
  if (stage_ == Stage::ChunkData) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size()));
    appendBody(bytes.substr(0, take));
    bytes.remove_prefix(take);
    remaining_ -= take;
    if (remaining_ == 0) stage_ = Stage::ChunkDataEnd;
    return;
  }
  if (!takeLine(bytes, kMaxChunkLine, &line)) return;
  if (stage_ == Stage::ChunkDataEnd) {
    if (!line.empty()) {
      malformed("chunk data longer than its size");
      return;
    }
    stage_ = Stage::ChunkSize;
    return;
  }
  std::string_view size_text = std::string_view(line).substr(0, line.find(';'));
  while (!size_text.empty() && (size_text.back() == ' ' || size_text.back() == '\t')) size_text.remove_suffix(1);
  if (size_text.empty() || size_text.size() > 15 ||
      !std::all_of(size_text.begin(), size_text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
    malformed("bad chunk size " + quoteForLog(line));
    return;
  }
  remaining_ = std::stoull(std::string(size_text), nullptr, 16);
  if (remaining_ == 0) {
    bodyEnded();
  } else {
    stage_ = Stage::ChunkData;
  }
}

void HttpResponseParser::appendBody(std::string_view data) {
  if (done_ || data.empty()) return;
  const std::string& needle = config_->expect_body;
  body_.append(data.substr(0, kMaxBodyBytes - body_.size()));
  if (body_.find(needle, searched_) != std::string::npos) {
    decide(true, "HTTP " + std::to_string(verdict_.status));
    return;
  }
  // A match may still start in the last needle-1 bytes, completed by the next piece.
  searched_ = body_.size() >= needle.size() ? body_.size() - needle.size() + 1 : 0;
  if (body_.size() == kMaxBodyBytes) bodyEnded();
}

void HttpResponseParser::bodyEnded() {
  if (done_) return;
  decide(false, "HTTP " + std::to_string(verdict_.status) + " but body lacks \"" + config_->expect_body + "\"");
}

const HttpVerdict& HttpResponseParser::finish() {
  if (done_) return verdict_;
  if (stage_ == Stage::StatusLine || interim_) {
    decide(false, "connection closed before a status line");
  } else {
    bodyEnded();  // the body (or the header section) ended at EOF without the substring
  }
  return verdict_;
}

void HttpResponseParser::decide(bool ok, std::string reason) {
  done_ = true;
  stage_ = Stage::Done;
  verdict_.ok = ok;
  verdict_.reason = std::move(reason);
}

void HttpResponseParser::malformed(std::string_view what) { decide(false, "malformed HTTP response: " + std::string(what)); }

}  // namespace ringlb::health
