// Command parsing and the commands of the runtime API (balancer/runtime_api.h); "show stat"
// and "show info" are rendered in show_stat.cc, certificate details by tls/certificate_info.h.
//
// Input framing follows HAProxy's CLI (management guide 9.3): commands are separated by ';'
// or newlines; a line ending in "<<" makes every following line, up to the first empty one,
// the payload of the last command on that line. In non-interactive mode HAProxy ends each
// command's answer with an empty line, and clients (socat, Octavia) rely on it; so do we.
#include "balancer/runtime_api.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "tls/certificate_info.h"
#include "tls/certificate_store.h"
#include "tls/pem_files.h"

namespace ringlb::balancer {

namespace {

constexpr std::string_view kHelp =
    "The following commands are valid at this level:\n"
    "  help                                    : this message\n"
    "  show info                               : report information about the running process\n"
    "  show stat [{<iid>|<proxy>} <type> <sid>] : report counters for each proxy and server (CSV)\n"
    "  set server <bk>/<srv> state ready|drain|maint : change a server's administrative state\n"
    "  set server <bk>/<srv> weight <w>[%]     : change a server's weight (0..256, or % of configured)\n"
    "  enable server <bk>/<srv>                : same as 'set server <bk>/<srv> state ready'\n"
    "  disable server <bk>/<srv>               : same as 'set server <bk>/<srv> state maint'\n"
    "  show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file\n"
    "  set ssl cert <certfile> <payload>       : replace a certificate file (payload after '<<', ends at an empty line)\n"
    "  commit ssl cert <certfile>              : commit a certificate file\n"
    "  abort ssl cert <certfile>               : abort a transaction for a certificate file\n"
    "  reload                                  : re-read the configuration file and apply it\n";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool parseInt(std::string_view s, long* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Every certificate file the generation's listeners serve, in config order.
std::vector<std::string> certificateFiles(const Runtime& rt) {
  std::vector<std::string> files;
  std::set<std::string> seen;
  auto add = [&](const std::string& path) {
    if (seen.insert(path).second) files.push_back(path);
  };
  for (size_t i = 0; i < rt.listener_tls.size(); ++i) {
    if (const auto& store = rt.listener_tls[i].certificates) {
      for (const auto& cert : store->certificates()) add(cert->path);
    } else if (rt.config.listeners[i].has_tls) {
      for (const auto& path : rt.config.listeners[i].tls.certificates) add(path);
    }
  }
  return files;
}

// What "set ssl cert" accepts: at least one certificate, and, when the payload carries a
// private key, a key that matches the leaf (X509_check_private_key(3)). A payload without a
// key relies on "<file>.key" and is checked at commit.
bool validatePem(const std::string& pem, const std::string& path, std::string* error) {
  std::vector<tls::X509Ptr> chain;
  if (!tls::parseCertificates(pem, path, &chain, error)) return false;
  if (chain.empty()) {
    *error = path + ": no certificate in the payload";
    return false;
  }
  if (pem.find("PRIVATE KEY-----") == std::string::npos) return true;
  tls::EvpPkeyPtr key = tls::parsePrivateKey(pem, path, nullptr, error);
  if (!key) return false;
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    *error = path + ": private key does not match certificate";
    return false;
  }
  return true;
}

}  // namespace

RuntimeApi::RuntimeApi(ControlHost& host) : host_(host) {}

std::vector<std::string> RuntimeApi::stagedCertificates() const {
  std::vector<std::string> out;
  for (const auto& [path, pem] : staged_) out.push_back(path);
  return out;
}

std::string RuntimeApi::execute(std::string_view input) {
  std::string out;
  size_t pos = 0;
  while (pos < input.size()) {
    size_t eol = input.find('\n', pos);
    if (eol == std::string_view::npos) eol = input.size();
    std::string_view line = trim(input.substr(pos, eol - pos));
    pos = eol + 1;
    std::string payload;
    if (line.size() >= 2 && line.substr(line.size() - 2) == "<<") {
      line = trim(line.substr(0, line.size() - 2));
      while (pos < input.size()) {
        size_t end = input.find('\n', pos);
        if (end == std::string_view::npos) end = input.size();
        std::string_view pl = input.substr(pos, end - pos);
        pos = end + 1;
        if (trim(pl).empty()) break;
        payload.append(pl).append("\n");
      }
    }
    // ';' separates commands on a line; the payload belongs to the last one.
    size_t start = 0;
    while (start <= line.size()) {
      size_t semi = line.find(';', start);
      const bool last = semi == std::string_view::npos;
      std::string_view cmd = trim(line.substr(start, last ? std::string_view::npos : semi - start));
      if (!cmd.empty()) out += command(cmd, last ? std::string_view(payload) : std::string_view());
      if (last) break;
      start = semi + 1;
    }
  }
  return out;
}

std::string RuntimeApi::command(std::string_view line, std::string_view payload) {
  const std::vector<std::string_view> w = words(line);
  auto is = [&](std::initializer_list<std::string_view> prefix) {
    if (w.size() < prefix.size()) return false;
    return std::equal(prefix.begin(), prefix.end(), w.begin());
  };
  std::string answer;
  if (is({"help"})) {
    answer = std::string(kHelp);
  } else if (is({"show", "info"})) {
    answer = renderShowInfo(*host_.current(), host_.processInfo());
  } else if (is({"show", "stat"})) {
    long type = 7, iid = -1;
    std::string_view proxy;
    if (w.size() >= 5) {
      if (!parseInt(w[2], &iid)) proxy = w[2];
      if (!parseInt(w[3], &type)) return "Invalid stat type.\n\n";
      if (type == -1) type = 7;
    } else if (w.size() != 2) {
      return "Expects: show stat [{<iid>|<proxy>} <type> <sid>]\n\n";
    }
    answer = renderShowStat(*host_.current(), host_.processInfo(), static_cast<int>(type),
                            static_cast<int>(iid), proxy);
  } else if (is({"set", "server"}) || is({"enable", "server"}) || is({"disable", "server"}) ||
             is({"set", "weight"})) {
    answer = setServer(w);
  } else if (is({"show", "ssl", "cert"})) {
    answer = showSslCert(w);
  } else if (is({"set", "ssl", "cert"})) {
    answer = setSslCert(w, payload);
  } else if (is({"commit", "ssl", "cert"})) {
    answer = commitSslCert(w);
  } else if (is({"abort", "ssl", "cert"})) {
    answer = abortSslCert(w);
  } else if (is({"reload"})) {
    answer = reload();
  } else {
    answer = "Unknown command: '" + std::string(line) + "'. Type 'help' for the list of commands.\n";
  }
  return answer + "\n";
}

std::string RuntimeApi::setServer(const std::vector<std::string_view>& w) {
  // Forms: set server B/S state X | set server B/S weight W | set weight B/S W |
  // enable server B/S | disable server B/S.
  const bool set_weight = w[0] == "set" && w[1] == "weight";
  if (w.size() < 3 || w[2].find('/') == std::string_view::npos) return "Require 'backend/server'.\n";
  const std::string_view target = w[2];
  const size_t slash = target.find('/');
  const std::string_view pool_name = target.substr(0, slash);
  const std::string_view server_name = target.substr(slash + 1);
  std::shared_ptr<const Runtime> rt = host_.current();
  auto pool = std::find_if(rt->pools.begin(), rt->pools.end(), [&](const Pool& p) { return p.name == pool_name; });
  if (pool == rt->pools.end()) return "No such backend.\n";
  auto it = std::find_if(pool->backends.begin(), pool->backends.end(),
                         [&](const auto& b) { return b->name == server_name; });
  if (it == pool->backends.end()) return "No such server.\n";
  const Backend& backend = **it;
  if (w[0] == "enable" || w[0] == "disable") {
    backend.health().setAdmin(w[0] == "enable" ? health::AdminState::Ready : health::AdminState::Maint);
    return "";
  }
  std::string_view what = set_weight ? "weight" : (w.size() > 3 ? w[3] : "");
  std::string_view value = set_weight ? (w.size() > 3 ? w[3] : "") : (w.size() > 4 ? w[4] : "");
  if (what == "state") {
    if (value == "ready") backend.health().setAdmin(health::AdminState::Ready);
    else if (value == "drain") backend.health().setAdmin(health::AdminState::Drain);
    else if (value == "maint") backend.health().setAdmin(health::AdminState::Maint);
    else return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n";
    return "";
  }
  if (what == "weight") {
    // HAProxy: "N" is absolute (0..256); "N%" is relative to the configured weight.
    const bool relative = !value.empty() && value.back() == '%';
    if (relative) value.remove_suffix(1);
    long n = 0;
    if (!parseInt(value, &n)) return "Require <weight> or <weight%>.\n";
    if (relative) {
      if (n < 0) return "Relative weight must be positive.\n";
      // weight <= 256, so anything past 25600% is 256 anyway: clamp before multiplying
      // (weight * n overflowed a long for large n).
      n = std::min<long>(256, static_cast<long>(backend.weight) * std::min<long>(n, 25600) / 100);
    } else if (n < 0 || n > 256) {
      return "Absolute weight can only be between 0 and 256 inclusive.\n";
    }
    backend.health().setWeight(static_cast<uint32_t>(n));
    return "";
  }
  return "'set server <srv>' only supports 'state' and 'weight'.\n";
}

std::string RuntimeApi::showSslCert(const std::vector<std::string_view>& w) {
  std::shared_ptr<const Runtime> rt = host_.current();
  if (w.size() < 4) {
    std::string out;
    if (!staged_.empty()) {
      out += "# transaction\n";
      for (const auto& [path, pem] : staged_) out += "*" + path + "\n";
    }
    out += "# filename\n";
    for (const std::string& path : certificateFiles(*rt)) out += path + "\n";
    return out;
  }
  // "show ssl cert *FILE" names the transaction, "FILE" the committed (or on-disk) one.
  std::string path(w[3]);
  const bool want_staged = !path.empty() && path.front() == '*';
  if (want_staged) path.erase(0, 1);
  std::string pem, error;
  std::string status = "Used";
  if (auto s = staged_.find(path); want_staged && s != staged_.end()) {
    pem = s->second;
    status = "Uncommitted";
  } else if (want_staged) {
    return "No ongoing transaction for '" + path + "'!\n";
  } else if (auto c = committed_.find(path); c != committed_.end()) {
    pem = c->second;
  } else {
    const auto files = certificateFiles(*rt);
    if (std::find(files.begin(), files.end(), path) == files.end()) {
      return "Can't display the certificate: Not found or the certificate is a bundle!\n";
    }
    if (!tls::readFile(path, &pem, &error)) return error + "\n";
  }
  std::string details = tls::describeCertificate(pem, path, &error);
  if (details.empty()) return error + "\n";
  return "Filename: " + std::string(want_staged ? "*" : "") + path + "\nStatus: " + status + "\n" + details;
}

std::string RuntimeApi::setSslCert(const std::vector<std::string_view>& w, std::string_view payload) {
  if (w.size() < 4 || payload.empty()) {
    return "'set ssl cert' expects a filename and a certificate as a payload\n";
  }
  const std::string path(w[3]);
  const auto files = certificateFiles(*host_.current());
  if (std::find(files.begin(), files.end(), path) == files.end()) {
    return "Can't replace a certificate which is not referenced by the configuration!\n";
  }
  std::string pem(payload);
  std::string error;
  if (!validatePem(pem, path, &error)) return "unable to load the payload: " + error + "\n";
  const bool existed = staged_.count(path) != 0;
  staged_[path] = std::move(pem);
  return std::string(existed ? "Transaction updated" : "Transaction created") + " for certificate " + path + "!\n";
}

std::string RuntimeApi::commitSslCert(const std::vector<std::string_view>& w) {
  if (w.size() < 4) return "'commit ssl cert' expects a filename\n";
  const std::string path(w[3]);
  auto it = staged_.find(path);
  if (it == staged_.end()) return "No ongoing transaction! !\n";
  // Every earlier commit stays in force: the files on disk still hold the old contents.
  std::map<std::string, std::string> overlay = committed_;
  overlay[path] = it->second;
  ReloadOutcome outcome = host_.commitCertificates(overlay);
  std::string out = "Committing " + path + "\n";
  for (const std::string& m : outcome.messages) out += m + "\n";
  if (!outcome.ok) return out + "Failed!\n";
  committed_ = std::move(overlay);
  staged_.erase(it);
  return out + "Success!\n";
}

std::string RuntimeApi::abortSslCert(const std::vector<std::string_view>& w) {
  if (w.size() < 4) return "'abort ssl cert' expects a filename\n";
  const std::string path(w[3]);
  if (staged_.erase(path) == 0) return "No ongoing transaction!\n";
  return "Transaction aborted for certificate '" + path + "'!\n";
}

std::string RuntimeApi::reload() {
  ReloadOutcome outcome = host_.reload();
  // A reload re-reads every file from disk, so runtime-committed certificates are gone from
  // the new generation (as with HAProxy); staged transactions stay open.
  if (outcome.ok) committed_.clear();
  std::string out = outcome.ok ? "Success=1\n--\n" : "Success=0\n--\n";
  for (const std::string& m : outcome.messages) out += m + "\n";
  return out;
}

}  // namespace ringlb::balancer
