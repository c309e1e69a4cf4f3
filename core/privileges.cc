#include "core/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace ringlb::core {
namespace {

void setError(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

std::string errnoText(int err) { return std::strerror(err); }

// getpwnam_r/getgrnam_r report a too-small buffer with ERANGE (getpwnam_r(3)); grow and retry.
template <typename Entry, typename Lookup>
int lookupEntry(const std::string& name, Entry& entry, std::vector<char>& buf, Lookup lookup, int size_hint,
                bool& found) {
  long hint = sysconf(size_hint);
  buf.resize(hint > 0 ? static_cast<size_t>(hint) : 16384);
  for (;;) {
    Entry* result = nullptr;
    int rc = lookup(name.c_str(), &entry, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    found = rc == 0 && result != nullptr;
    return rc;
  }
}

struct Ids {
  uid_t uid = 0;
  gid_t gid = 0;
};

bool resolve(const std::string& user, const std::string& group, Ids& ids, std::string* error) {
  struct passwd pw {};
  std::vector<char> pw_buf;
  bool found = false;
  if (int rc = lookupEntry(user, pw, pw_buf, getpwnam_r, _SC_GETPW_R_SIZE_MAX, found); rc != 0) {
    setError(error, "getpwnam_r(\"" + user + "\"): " + errnoText(rc));
    return false;
  }
  if (!found) {
    setError(error, "unknown user \"" + user + "\"");
    return false;
  }
  ids.uid = pw.pw_uid;
  ids.gid = pw.pw_gid;
  if (group.empty()) return true;
  struct group gr {};
  std::vector<char> gr_buf;
  if (int rc = lookupEntry(group, gr, gr_buf, getgrnam_r, _SC_GETGR_R_SIZE_MAX, found); rc != 0) {
    setError(error, "getgrnam_r(\"" + group + "\"): " + errnoText(rc));
    return false;
  }
  if (!found) {
    setError(error, "unknown group \"" + group + "\"");
    return false;
  }
  ids.gid = gr.gr_gid;
  return true;
}

bool alreadyThere(const Ids& ids) {
  return getuid() == ids.uid && geteuid() == ids.uid && getgid() == ids.gid && getegid() == ids.gid;
}

}  // namespace

bool dropPrivileges(const std::string& user, const std::string& group, std::string* error) {
  if (user.empty() && group.empty()) return true;
  if (user.empty()) {
    setError(error, "group \"" + group + "\" given without a user: set the user to drop privileges");
    return false;
  }
  Ids ids;
  if (!resolve(user, group, ids, error)) return false;
  if (ids.uid == 0) {
    setError(error, "user \"" + user + "\" has uid 0: that drops no privileges");
    return false;
  }
  if (alreadyThere(ids)) return true;
  if (geteuid() != 0) {
    setError(error, "running as uid " + std::to_string(geteuid()) + ", cannot switch to " + user);
    return false;
  }
  // Order matters (setuid(2), setgroups(2)): supplementary groups and the gid can only be
  // changed while we are still root.
  if (setgroups(1, &ids.gid) != 0) {
    setError(error, "setgroups(" + std::to_string(ids.gid) + "): " + errnoText(errno));
    return false;
  }
  if (setgid(ids.gid) != 0) {
    setError(error, "setgid(" + std::to_string(ids.gid) + "): " + errnoText(errno));
    return false;
  }
  if (setuid(ids.uid) != 0) {
    setError(error, "setuid(" + std::to_string(ids.uid) + "): " + errnoText(errno));
    return false;
  }
  // With euid 0, setuid() sets real, effective and saved uid; check that it really did,
  // and that nothing (e.g. a retained saved uid or CAP_SETUID) lets us back.
  if (!alreadyThere(ids)) {
    setError(error, "after setuid/setgid the ids are uid " + std::to_string(getuid()) + "/" +
                        std::to_string(geteuid()) + " gid " + std::to_string(getgid()) + "/" +
                        std::to_string(getegid()) + ", expected " + std::to_string(ids.uid) + "/" +
                        std::to_string(ids.gid));
    return false;
  }
  if (setuid(0) == 0) {
    setError(error, "setuid(0) still succeeds after switching to " + user + ": privileges were not dropped");
    return false;
  }
  return true;
}

std::optional<std::string> keyFilePermissionWarning(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  mode_t mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return std::nullopt;
  char octal[8];
  std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mode));
  const char* how = (mode & 044) != 0 ? "readable" : "accessible";
  return path + ": private key is " + how + " by group/others (mode " + octal + "); chmod 600 it";
}

}  // namespace ringlb::core
