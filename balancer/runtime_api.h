// The runtime API: a subset of HAProxy's (management guide, section 9.3 "Unix Socket
// commands"), so operators' scripts and tools that speak to HAProxy's stats socket keep working.
// Pure text in, text out: the control thread's socket server (core/control_server.h) hands
// each client's input to RuntimeApi::execute() and writes back what it returns.
//
// Commands (one or more per input, separated by ';' or newlines):
//   help
//   show info                                  "Name: value" lines
//   show stat [{<iid>|<proxy>} <type> <sid>]   CSV, HAProxy's column names and order
//   set server <pool>/<backend> state ready|drain|maint
//   set server <pool>/<backend> weight <0..256>[%]
//   show ssl cert [<file>]
//   set ssl cert <file> <<\n<PEM>\n\n          stage a replacement for a certificate file
//   commit ssl cert <file>                     rebuild the generation with it (ControlHost)
//   abort ssl cert <file>
//   reload                                     re-read the config file (ControlHost)
//
// Thread model: one RuntimeApi per process, used by the control thread only. It reads the
// current generation's counters (atomics) and writes backend admin state and weight through
// health::ServerState, which serialises writers itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "balancer/runtime.h"

namespace ringlb::balancer {

// Process-wide figures the Runtime does not hold.
struct ProcessInfo {
  std::string version;
  int pid = 0;
  std::chrono::system_clock::time_point started;
  unsigned workers = 0;
  uint64_t connections_total = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  uint32_t max_connections = 0;
  uint32_t current_connections = 0;
};

struct ReloadOutcome {
  bool ok = false;
  std::vector<std::string> messages;  // errors when !ok; warnings (if any) when ok
};

// What the API needs from the process; implemented by the integrator (app/).
class ControlHost {
 public:
  virtual ~ControlHost() = default;
  virtual std::shared_ptr<const Runtime> current() = 0;  // the generation serving new connections
  virtual ProcessInfo processInfo() = 0;
  virtual ReloadOutcome reload() = 0;                      // re-read and apply the config file
  // Rebuild the current configuration with these certificate files' contents replaced (path -> PEM text).
  virtual ReloadOutcome commitCertificates(const std::map<std::string, std::string>& pem_by_path) = 0;
};

class RuntimeApi {
 public:
  explicit RuntimeApi(ControlHost& host);

  // Runs every command in `input` (what one client sent) and returns the concatenated
  // answers. Never throws on bad input: unknown commands and bad arguments produce an error
  // line in the answer, like HAProxy ("Unknown command: 'x'. Type 'help' ...").
  std::string execute(std::string_view input);

  // Re-reads the configuration file (the `reload` command; also SIGHUP, so that the
  // certificates committed at run time, which a reload drops, are forgotten here too).
  std::string reload();

  // Paths with a staged ("set ssl cert") but uncommitted replacement, for tests and logs.
  std::vector<std::string> stagedCertificates() const;

 private:
  std::string command(std::string_view line, std::string_view payload);
  std::string setServer(const std::vector<std::string_view>& words);
  std::string showSslCert(const std::vector<std::string_view>& words);
  std::string setSslCert(const std::vector<std::string_view>& words, std::string_view payload);
  std::string commitSslCert(const std::vector<std::string_view>& words);
  std::string abortSslCert(const std::vector<std::string_view>& words);

  ControlHost& host_;
  // Operator-supplied PEM by certificate path: committed ones are part of every rebuild
  // (the files on disk are older) until a reload re-reads the disk; staged ones await commit.
  std::map<std::string, std::string> committed_;
  std::map<std::string, std::string> staged_;
};

// The commands' output formats, exposed for the metrics/status page and tests.
std::string renderShowInfo(const Runtime& runtime, const ProcessInfo& info);
// `type_mask`: 1 frontends, 2 backends, 4 servers; `iid` -1 or a proxy id; `proxy` "" or a name.
std::string renderShowStat(const Runtime& runtime, const ProcessInfo& info, int type_mask = 7,
                           int iid = -1, std::string_view proxy = {});
// HAProxy's column names in HAProxy's order, as in the "# pxname,..." header line.
const std::vector<std::string_view>& showStatColumns();

}  // namespace ringlb::balancer
