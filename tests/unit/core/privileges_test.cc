#include "core/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ringlb::core {
namespace {

// Runs `body` in a forked child (privileges cannot be regained in this process) and returns
// its exit code; the child reports failures on stderr and with a non-zero code.
template <typename Body>
int inChild(Body body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int fail(int code, const std::string& what) {
  fprintf(stderr, "child: %s\n", what.c_str());
  return code;
}

TEST(DropPrivilegesTest, EmptyUserAndGroupIsANoOp) {
  std::string error;
  EXPECT_TRUE(dropPrivileges("", "", &error));
  EXPECT_EQ(error, "");
}

TEST(DropPrivilegesTest, GroupWithoutUserAndUnknownNamesAreErrors) {
  std::string error;
  EXPECT_FALSE(dropPrivileges("", "nogroup", &error));
  EXPECT_NE(error.find("without a user"), std::string::npos) << error;
  EXPECT_FALSE(dropPrivileges("no-such-user-ringlb", "", &error));
  EXPECT_EQ(error, "unknown user \"no-such-user-ringlb\"");
  EXPECT_FALSE(dropPrivileges("nobody", "no-such-group-ringlb", &error));
  EXPECT_EQ(error, "unknown group \"no-such-group-ringlb\"");
  EXPECT_FALSE(dropPrivileges("root", "", &error));
  EXPECT_NE(error.find("uid 0"), std::string::npos) << error;
}

TEST(DropPrivilegesTest, RootChildDropsToNobodyAndCannotComeBack) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  passwd* pw = getpwnam("nobody");
  if (pw == nullptr) GTEST_SKIP() << "no user nobody on this system";
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  int code = inChild([&] {
    std::string error;
    if (!dropPrivileges("nobody", "", &error)) return fail(1, error);
    if (getuid() != uid || geteuid() != uid) return fail(2, "uid not switched");
    if (getgid() != gid || getegid() != gid) return fail(3, "gid not the primary group");
    gid_t groups[8];
    int n = getgroups(8, groups);
    if (n != 1 || groups[0] != gid) return fail(4, "supplementary groups not reduced to one");
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) return fail(5, "re-escalation succeeded");
    // Now unprivileged: asking for another user says why it cannot.
    if (dropPrivileges("daemon", "", &error)) return fail(6, "switched users without root");
    if (error != "running as uid " + std::to_string(uid) + ", cannot switch to daemon") return fail(7, error);
    // Asking again for what we already are is fine (e.g. started by systemd User=).
    if (!dropPrivileges("nobody", "", &error)) return fail(8, error);
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(DropPrivilegesTest, RootChildTakesAnExplicitGroup) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  passwd* pw = getpwnam("nobody");
  group* gr = getgrnam("daemon");
  if (pw == nullptr || gr == nullptr) GTEST_SKIP() << "needs user nobody and group daemon";
  gid_t gid = gr->gr_gid;
  int code = inChild([&] {
    std::string error;
    if (!dropPrivileges("nobody", "daemon", &error)) return fail(1, error);
    if (getgid() != gid || getegid() != gid) return fail(2, "gid not the requested group");
    return 0;
  });
  EXPECT_EQ(code, 0);
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/ringlb-keyXXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/key.pem";
    int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_, path_;
};

TEST_F(KeyFileTest, OwnerOnlyModesGiveNoWarning) {
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  EXPECT_FALSE(keyFilePermissionWarning(path_));
  ASSERT_EQ(::chmod(path_.c_str(), 0400), 0);
  EXPECT_FALSE(keyFilePermissionWarning(path_));
}

TEST_F(KeyFileTest, GroupOrOtherAccessIsReportedWithModeAndFix) {
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  EXPECT_EQ(keyFilePermissionWarning(path_),
            path_ + ": private key is readable by group/others (mode 0644); chmod 600 it");
  ASSERT_EQ(::chmod(path_.c_str(), 0640), 0);
  EXPECT_NE(keyFilePermissionWarning(path_).value_or("").find("(mode 0640)"), std::string::npos);
  ASSERT_EQ(::chmod(path_.c_str(), 0602), 0);
  EXPECT_NE(keyFilePermissionWarning(path_).value_or("").find("accessible by group/others (mode 0602)"),
            std::string::npos);
}

TEST_F(KeyFileTest, MissingFileGivesNoWarning) {
  EXPECT_FALSE(keyFilePermissionWarning(dir_ + "/missing.pem"));
}

}  // namespace
}  // namespace ringlb::core
