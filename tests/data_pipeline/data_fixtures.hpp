#pragma once
// Helpers of the data-pipeline tests: a fresh temporary directory per test (removed at exit), whole
// files as bytes.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace fiber::test {

// The directories fresh_dir made, removed when the test program exits normally: a run leaves
// nothing behind in the temp dir. After a crash they stay, for a look.
class ScratchDirs {
 public:
  void add(const std::filesystem::path& dir) { dirs_.push_back(dir); }
  ~ScratchDirs() {
    for (const auto& dir : dirs_) {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  }

 private:
  std::vector<std::filesystem::path> dirs_;
};

// An empty directory under the system temp dir, unique to this process and `name`.
inline std::filesystem::path fresh_dir(const std::string& name) {
  static ScratchDirs made;
  const auto dir = std::filesystem::temp_directory_path() / ("fiber_data_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made.add(dir);
  return dir;
}

inline std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace fiber::test
