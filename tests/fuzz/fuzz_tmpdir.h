#pragma once
// A private scratch directory for targets whose parser reads a file: one per process,
// on tmpfs when there is one, removed at exit.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ep::fuzz {

inline const std::string& scratch_dir() {
  struct Scratch {
    std::string path;
    Scratch() {
      std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
      if (const char* t = std::getenv("TMPDIR"); t && *t) base = t;
      path = base + "/ep-fuzz-XXXXXX";
      if (!::mkdtemp(path.data())) std::abort();
    }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Scratch dir;
  return dir.path;
}

}  // namespace ep::fuzz
