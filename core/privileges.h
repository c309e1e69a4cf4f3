// Privilege separation: give up root after the privileged start-up work (binding low ports,
// reading keys) and warn about private keys others can read.
#pragma once

#include <optional>
#include <string>

namespace ringlb::core {

// Switches the process to `user` and `group` for good: resolves both (getpwnam_r /
// getgrnam_r; an empty `group` means the user's primary group), then setgroups() to just that
// group, setgid(), setuid(), in that order (after setuid we could no longer change groups),
// and finally checks that the ids took and that setuid(0) now fails.
//  - Both empty: nothing to do, returns true.
//  - Already running as exactly that user and group (e.g. started by systemd User=): true.
//  - Not root otherwise: false, "running as uid N, cannot switch to USER".
//  - A group without a user, or a user with uid 0: false (nothing would be dropped).
// On failure returns false and sets *error to the step that failed and why, e.g.
// "setgid(65534): Operation not permitted". Call it before starting threads: glibc does
// apply set*id to every thread, but the process must not serve traffic half-dropped.
bool dropPrivileges(const std::string& user, const std::string& group, std::string* error);

// A warning for a private key file that group or others can access (mode & 077), e.g.
// "/etc/ringlb/key.pem: private key is readable by group/others (mode 0644); chmod 600 it".
// nullopt if the mode is fine or the file cannot be stat()ed (loading it reports that).
std::optional<std::string> keyFilePermissionWarning(const std::string& path);

}  // namespace ringlb::core
