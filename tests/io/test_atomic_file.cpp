// AtomicFile: the new file appears complete or not at all, and an interrupted write leaves
// nothing behind (issue 14, item 6): the unnamed O_TMPFILE file survives no kill, SIGKILL
// included; the named fallback is removed on SIGINT, SIGTERM and SIGHUP. Also check_output_path.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fiber/io/atomic_file.hpp"

namespace fs = std::filesystem;
using fiber::io::AtomicFile;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("fiber_test_atomic_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

std::string contents(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_text(AtomicFile& f, const std::string& s) { f.write(std::as_bytes(std::span(s.data(), s.size()))); }

// Forks a child that starts writing `target` (mode), tells the parent through a pipe, and waits
// to be killed; the parent sends `sig` and returns the child's wait status.
int kill_while_writing(const fs::path& target, AtomicFile::Mode mode, int sig) {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::signal(s, SIG_DFL);  // as in a program without handlers (doctest has some)
    AtomicFile f(target, mode);
    write_text(f, std::string(1 << 20, 'x'));
    const char c = f.temporary().empty() ? 'u' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  CHECK(c == (mode == AtomicFile::Mode::named ? 'n' : 'u'));
  ::kill(child, sig);
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

}  // namespace

TEST_CASE("AtomicFile: the new file has no name until commit (O_TMPFILE), then replaces the old one") {
  const fs::path dir = fresh_dir("commit");
  const fs::path target = dir / "w.bin";
  {
    AtomicFile f(target);
    CHECK(f.temporary().empty());  // tmpfs and ext4 have O_TMPFILE
    write_text(f, "new");
    CHECK(entries(dir).empty());  // nothing visible while writing
    f.commit();
  }
  CHECK(contents(target) == "new");
  {  // over an existing file: linked beside it, renamed over it
    AtomicFile f(target);
    write_text(f, "newer");
    CHECK(contents(target) == "new");
    f.commit();
  }
  CHECK(contents(target) == "newer");
  CHECK(entries(dir) == std::vector<std::string>{"w.bin"});
  struct stat st {};
  REQUIRE(::stat(target.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  {  // destroyed uncommitted: the old file stays, nothing else appears
    AtomicFile f(target);
    write_text(f, "lost");
  }
  CHECK(contents(target) == "newer");
  CHECK(entries(dir) == std::vector<std::string>{"w.bin"});
  fs::remove_all(dir);
}

TEST_CASE("AtomicFile: the named fallback commits and is removed when destroyed uncommitted") {
  const fs::path dir = fresh_dir("named");
  const fs::path target = dir / "w.bin";
  {
    AtomicFile f(target, AtomicFile::Mode::named);
    CHECK(fs::exists(f.temporary()));
    CHECK(fs::path(f.temporary()).filename().string().starts_with(".w.bin.tmp."));
    write_text(f, "abc");
  }
  CHECK(entries(dir).empty());
  {
    AtomicFile f(target, AtomicFile::Mode::named);
    write_text(f, "abc");
    f.commit();
  }
  CHECK(contents(target) == "abc");
  CHECK(entries(dir) == std::vector<std::string>{"w.bin"});
  fs::remove_all(dir);
}

TEST_CASE("AtomicFile: SIGKILL in the middle of a write leaves nothing behind") {
  const fs::path dir = fresh_dir("sigkill");
  const int status = kill_while_writing(dir / "w.bin", AtomicFile::Mode::automatic, SIGKILL);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(entries(dir).empty());
  fs::remove_all(dir);
}

TEST_CASE("AtomicFile: SIGINT, SIGTERM and SIGHUP remove the named temporary and still end the process") {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    CAPTURE(sig);
    const fs::path dir = fresh_dir("signal" + std::to_string(sig));
    const int status = kill_while_writing(dir / "w.bin", AtomicFile::Mode::named, sig);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == sig);  // the default action still happens after the cleanup
    CHECK(entries(dir).empty());
    fs::remove_all(dir);
  }
}

TEST_CASE("check_output_path: refuses before any work") {
  const fs::path dir = fresh_dir("paths");
  using fiber::io::check_output_path;
  CHECK_THROWS_WITH_AS(check_output_path(""), "output: the path is empty", fiber::Error);
  CHECK_THROWS_WITH_AS(check_output_path(dir), doctest::Contains("': is a directory"), fiber::Error);
  CHECK_THROWS_WITH_AS(check_output_path(dir / "."), doctest::Contains("names a directory, not a file"), fiber::Error);
  CHECK_THROWS_WITH_AS(check_output_path(dir / "no" / "x.bin"), doctest::Contains("' does not exist"), fiber::Error);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  const std::string fifo_message =
      "convert: output '" + (dir / "fifo").string() + "': is a FIFO (named pipe); fiber writes regular files only";
  CHECK_THROWS_WITH_AS(check_output_path(dir / "fifo", "convert: output"), doctest::Contains(fifo_message.c_str()),
                       fiber::Error);
  CHECK_NOTHROW(check_output_path(dir / "new.bin"));
  CHECK_THROWS_WITH_AS(AtomicFile(""), "output: the path is empty", fiber::Error);
  fs::remove_all(dir);
}
