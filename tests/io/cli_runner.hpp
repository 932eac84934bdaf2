#pragma once
// Runs the `fiber` binary (FIBER_CLI_PATH) as a child process with a deadline, and reports its
// exit status, whether a signal ended it, stdout, stderr and its peak memory: the hostile-input
// tests check that a command ends (no hang), with a message, without a crash, within a memory
// bound.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace fiber::test {

struct CliResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  std::string out, err;
  long max_rss_kib = 0;
  double seconds = 0;
};

inline CliResult run_cli(const std::vector<std::string>& args, const std::string& input = "", double timeout_s = 60) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  REQUIRE(::pipe(out_pipe) == 0);
  REQUIRE(::pipe(err_pipe) == 0);
  REQUIRE(::pipe(in_pipe) == 0);
  const auto start = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    std::vector<char*> argv;
    static std::string cli = FIBER_CLI_PATH;
    argv.push_back(cli.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::signal(SIGPIPE, SIG_IGN);
  std::size_t written = 0;
  if (input.empty()) ::close(in_pipe[1]), in_pipe[1] = -1;
  else ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  CliResult r;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > timeout_s) {
      r.timed_out = true;
      ::kill(child, SIGKILL);
      break;
    }
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out_pipe[0], POLLIN, 0});
    if (err_open) fds.push_back({err_pipe[0], POLLIN, 0});
    if (in_pipe[1] >= 0) fds.push_back({in_pipe[1], POLLOUT, 0});
    ::poll(fds.data(), fds.size(), 100);
    for (const pollfd& p : fds) {
      if (p.fd == in_pipe[1] && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
        const ::ssize_t n = ::write(in_pipe[1], input.data() + written, input.size() - written);
        if (n > 0) written += std::size_t(n);
        if (n < 0 || written == input.size()) ::close(in_pipe[1]), in_pipe[1] = -1;
        continue;
      }
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[65536];
      const ::ssize_t n = ::read(p.fd, buffer, sizeof buffer);
      std::string& sink = p.fd == out_pipe[0] ? r.out : r.err;
      if (n > 0) {
        if (sink.size() < (std::size_t(4) << 20)) sink.append(buffer, std::size_t(n));
      } else {
        (p.fd == out_pipe[0] ? out_open : err_open) = false;
      }
    }
  }
  if (in_pipe[1] >= 0) ::close(in_pipe[1]);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  rusage usage{};
  ::wait4(child, &status, 0, &usage);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.max_rss_kib = usage.ru_maxrss;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// Fails the test with everything known about the run.
#define FIBER_CHECK_CLI(result, expected_code, expected_err)                                                  \
  do {                                                                                                         \
    const ::fiber::test::CliResult& r_ = (result);                                                            \
    INFO("exit " << r_.exit_code << ", signal " << r_.signal << ", timed out " << r_.timed_out << ", "         \
                 << r_.seconds << " s\nstdout: " << r_.out.substr(0, 2000) << "\nstderr: " << r_.err.substr(0, 2000)); \
    CHECK_FALSE(r_.timed_out);                                                                                 \
    CHECK(r_.signal == 0);                                                                                     \
    CHECK(r_.exit_code == (expected_code));                                                                    \
    CHECK(r_.err.find(expected_err) != std::string::npos);                                                     \
  } while (0)

}  // namespace fiber::test
