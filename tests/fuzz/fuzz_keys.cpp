// libFuzzer target: the API keys file reader (common/src/keys.cpp, one JSON object per
// line) and the presented-key splitter. Properties: a rejection names the file and line;
// an accepted file saves and loads back to the same entries (the saved text is stable);
// a key that splits reassembles to itself.
#include <cstdint>
#include <string>
#include <string_view>

#include "ep/fsutil.h"
#include "ep/keys.h"
#include "fuzz_check.h"
#include "fuzz_tmpdir.h"

using ep::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto k = ep::keys::parse_key(in)) {
    check(k->prefix.size() == ep::keys::kPrefixLen && k->secret.size() == ep::keys::kSecretLen,
          "a parsed key has the documented lengths");
    check("ep_" + std::string(k->prefix) + "_" + std::string(k->secret) == in,
          "a parsed key reassembles to itself");
  }
  const std::string dir = ep::fuzz::scratch_dir();
  const std::string path = dir + "/keys", saved = dir + "/keys.saved";
  if (!ep::fs::write_file_atomic(path, in)) std::abort();
  auto entries = ep::keys::load_keys_file(path);
  if (!entries) {
    ep::fuzz::check_reason(entries.status(), "load_keys_file");
    check(entries.status().message().rfind(path + ":", 0) == 0, "an error names the file",
          entries.status().message());
    return 0;
  }
  check(ep::keys::save_keys_file(saved, *entries).is_ok(), "an accepted file saves");
  auto text1 = ep::fs::read_file(saved);
  auto again = ep::keys::load_keys_file(saved);
  check(again.is_ok(), "a saved keys file loads", again ? "" : again.status().message());
  check(again->size() == entries->size(), "save -> load keeps every entry");
  check(ep::keys::save_keys_file(saved, *again).is_ok(), "a reloaded file saves");
  auto text2 = ep::fs::read_file(saved);
  check(text1 && text2 && *text1 == *text2, "load -> save -> load -> save is stable");
  return 0;
}
