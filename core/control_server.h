// The control thread's server: one poll() loop serving
//  - a unix stream socket speaking HAProxy's CLI framing in non-interactive mode (management
//    guide 9.3): the client sends one or more command lines, gets the answer, and the server
//    closes. Works with `echo "show info" | socat stdio UNIX-CONNECT:/path` (input ends with a
//    half-close) and with an interactive `socat - UNIX-CONNECT:/path` (a full line arrives, no
//    EOF). A line ending in "<<" opens a payload that ends at the first empty line;
//  - optionally a TCP listener for minimal HTTP/1.1: GET only, one request per connection,
//    "Connection: close"; 400 malformed, 405 other methods, 404 unknown paths;
//  - a signalfd for SIGHUP, SIGTERM and SIGINT, turned into callbacks.
// It knows nothing of what the commands mean: handlers supply the answers. Not on the data
// path; single-threaded: every handler runs on the thread that called run().
//
// Wiring (app/main.cc, by the integrator):
//   block SIGHUP/SIGTERM/SIGINT with pthread_sigmask() before starting worker threads;
//   core::ControlServer server(options);
//   server.setCommandHandler([&](std::string_view in) { return runtime_api.execute(in); });
//   server.setHttpHandler([&](std::string_view path) -> std::optional<HttpResponse> {
//     if (path == "/metrics") return HttpResponse{200, "text/plain; version=0.0.4", renderPrometheus(...)};
//     ... });
//   server.setSignalHandler([&](int sig) { sig == SIGHUP ? reload() : server.stop(); });
//   if (!server.start(&error)) fail(error);
//   server.run();
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/socket.h"
#include "core/unique_fd.h"

namespace ringlb::core {

struct ControlServerOptions {
  std::string unix_path;              // "" = no CLI socket
  uint32_t unix_mode = 0600;          // permission bits of the socket file
  std::string http_address;           // "127.0.0.1:9100", "[::1]:0"; "" = no HTTP
  size_t max_request = 1 << 20;       // bytes a client may send before being cut off
  std::chrono::milliseconds idle_timeout{10000};  // to send the request (from accept), then since the last write progress
  size_t max_clients = 32;            // further connections are accepted and closed at once
  bool signals = true;                // own a signalfd for SIGHUP/SIGTERM/SIGINT
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Whether `input` holds a complete CLI request: it ends with a line feed and no "<<" payload
// is still open. Exposed for tests.
bool cliRequestComplete(std::string_view input);

class ControlServer {
 public:
  using CommandHandler = std::function<std::string(std::string_view input)>;
  // The response for a GET of `path` (query string removed); nullopt = 404.
  using HttpHandler = std::function<std::optional<HttpResponse>(std::string_view path)>;
  using SignalHandler = std::function<void(int signo)>;

  explicit ControlServer(ControlServerOptions options);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  void setCommandHandler(CommandHandler handler) { command_ = std::move(handler); }
  void setHttpHandler(HttpHandler handler) { http_ = std::move(handler); }
  void setSignalHandler(SignalHandler handler) { signal_ = std::move(handler); }

  // Binds the sockets. The unix socket is bound under a temporary name, chmod'ed, then
  // renamed over `unix_path`, so clients never see it with the wrong mode; a stale socket
  // there is replaced, but a live one (something accepts connections) or a non-socket file
  // is an error. With `signals`, blocks SIGHUP/SIGTERM/SIGINT in the calling thread (other
  // threads must already block them) and reads them from a signalfd.
  // Returns false with *error set ("unix:/run/x.sock: ...") on failure.
  bool start(std::string* error);

  // Serves until stop(). Returns at once if start() was not successful.
  void run();
  // Makes run() return after the current iteration. Safe from any thread and from handlers.
  void stop();

  // The bound HTTP address (kernel-chosen port resolved), if any.
  std::optional<SocketAddress> httpAddress() const;

 private:
  struct Client;
  void acceptAll(int listen_fd, bool http);
  void onReadable(Client& client);
  void onWritable(Client& client);
  void respond(Client& client);
  std::string httpAnswer(std::string_view request);
  void readSignals();

  ControlServerOptions options_;
  CommandHandler command_;
  HttpHandler http_;
  SignalHandler signal_;
  UniqueFd unix_fd_;
  UniqueFd http_fd_;
  UniqueFd signal_fd_;
  UniqueFd wake_fd_;  // eventfd: stop() from another thread
  std::vector<std::unique_ptr<Client>> clients_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
};

}  // namespace ringlb::core
