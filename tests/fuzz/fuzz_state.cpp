// libFuzzer target: ep-score's --state file reader (tools/ep-score/score.cpp
// Scorer::load_state, with the likelihood and range-novelty parts of surprise.cpp).
// Properties: a rejection names its reason (and the file is moved aside); an accepted
// state saves, and the saved state loads back and saves to the same series (the file's
// series order follows a hash map, so series are compared as a set).
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/fsutil.h"
#include "ep/json.h"
#include "ep/log.h"
#include "fuzz_check.h"
#include "fuzz_tmpdir.h"
#include "score.h"

using ep::fuzz::check;

namespace {

ep::score::Options options() {
  ep::score::Options o;
  o.likelihood = 4;  // the stream-mode parts of a state are read only when enabled
  o.likelihood_history = 16;
  o.likelihood_min = 8;
  o.novelty = 0.1;
  o.novelty_after = 4;
  return o;
}

// The saved series, each serialised, sorted.
std::vector<std::string> series_of(const std::string& path) {
  auto text = ep::fs::read_file(path);
  check(text.is_ok(), "a saved state is readable");
  rapidjson::Document doc;
  check(ep::parse_json(*text, doc).is_ok() && doc.IsObject() && doc.HasMember("series") &&
            doc["series"].IsArray(),
        "a saved state is a JSON object with a series array", *text);
  std::vector<std::string> out;
  for (const auto& s : doc["series"].GetArray()) out.push_back(ep::to_json(s));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ep::log::set_min_level(ep::log::Level::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string dir = ep::fuzz::scratch_dir();
  const std::string path = dir + "/state", saved = dir + "/state.saved",
                    resaved = dir + "/state.resaved";
  if (!ep::fs::write_file_atomic(path, in)) std::abort();
  ep::score::Scorer scorer(options(), nullptr);
  ep::Status st = scorer.load_state(path);
  if (!st) {
    ep::fuzz::check_reason(st, "load_state");
    check(scorer.series() == 0, "a rejected state leaves a fresh start");
    return 0;
  }
  check(scorer.save_state(saved).is_ok(), "an accepted state saves");
  ep::score::Scorer again(options(), nullptr);
  ep::Status st2 = again.load_state(saved);
  check(st2.is_ok(), "a saved state loads", st2.message());
  check(again.series() == scorer.series(), "save -> load keeps every series");
  check(again.save_state(resaved).is_ok(), "a reloaded state saves");
  std::vector<std::string> a = series_of(saved), b = series_of(resaved);
  check(a == b, "load -> save -> load -> save is stable");
  return 0;
}
