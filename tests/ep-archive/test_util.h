#pragma once
// Helpers shared by the ep-archive and ep-sim tests.
#include <dirent.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace ep::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ep-archive-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Files below dir whose name contains `part`.
inline int count_files(const std::string& dir, const std::string& part) {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
    if (e.path().filename().string().find(part) != std::string::npos) ++n;
  return n;
}

}  // namespace ep::test
