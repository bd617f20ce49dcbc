// tickwire passwd: makes a users-file entry (or just the password hash) for USERS_FILE.
// The password comes from stdin: typed twice without echo on a terminal, else the first line.

#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "auth/password_hash.h"
#include "auth/permissions.h"
#include "auth/users_file.h"
#include "commands.h"

namespace tickwire::cli {
namespace {

struct PasswdFlags {
  std::string user;
  std::uint32_t iterations = auth::kDefaultIterations;
  std::string publish;
  std::string subscribe;
};

// Reads one line from stdin; on a terminal, with echo off and a prompt on stderr.
bool ReadSecret(const char* prompt, std::string& out) {
  const bool tty = isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  const bool ok = static_cast<bool>(std::getline(std::cin, out));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return ok;
}

int RunPasswd(const PasswdFlags& f) {
  if (!f.user.empty() && !auth::IsValidUserName(f.user)) {
    std::cerr << "tickwire passwd: user name must be 1-64 bytes of [A-Za-z0-9._@-]\n";
    return 2;
  }
  std::string error;
  for (const auto* list : {&f.publish, &f.subscribe}) {
    if (!list->empty() && !auth::TopicPatterns::Parse(*list, &error)) {
      std::cerr << "tickwire passwd: " << error << "\n";
      return 2;
    }
  }
  std::string password;
  if (!ReadSecret("password: ", password)) {
    std::cerr << "tickwire passwd: no password on stdin\n";
    return 2;
  }
  if (isatty(STDIN_FILENO) != 0) {
    std::string again;
    if (!ReadSecret("again: ", again) || again != password) {
      std::cerr << "tickwire passwd: the passwords differ\n";
      return 2;
    }
  }
  if (password.empty()) {
    std::cerr << "tickwire passwd: empty password\n";
    return 2;
  }
  const std::string hash = auth::FormatPasswordHash(auth::HashPassword(password, f.iterations));
  if (f.user.empty()) {
    std::cout << hash << "\n";
  } else {
    std::cout << f.user << " " << hash;
    if (!f.publish.empty()) std::cout << " publish=" << f.publish;
    if (!f.subscribe.empty()) std::cout << " subscribe=" << f.subscribe;
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void RegisterPasswd(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<PasswdFlags>();
  CLI::App* cmd = app.add_subcommand(
      "passwd",
      "make a USERS_FILE line (with a user) or a password hash (PBKDF2-HMAC-SHA256, salted); "
      "the password is read from stdin");
  cmd->add_option("user", flags->user, "user name: print a whole users-file line");
  cmd->add_option("--iterations", flags->iterations, "PBKDF2 iterations")
      ->check(CLI::Range(auth::kMinIterations, auth::kMaxIterations))
      ->capture_default_str();
  cmd->add_option("--publish", flags->publish,
                  "topics the user may publish: names, prefixes like FX.*, or *");
  cmd->add_option("--subscribe", flags->subscribe,
                  "topics the user may subscribe to: names, prefixes like FX.*, or *");
  cmd->callback([flags, &exit_code] { exit_code = RunPasswd(*flags); });
}

}  // namespace tickwire::cli
