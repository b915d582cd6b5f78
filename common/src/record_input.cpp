#include "ep/record_input.h"

#include "ep/json.h"
#include "ep/log.h"

namespace ep {

Status read_records(const std::vector<std::string>& paths, bool strict, InputStats& stats,
                    const RecordFn& fn) {
  LineReader reader(paths);
  Line line;
  rapidjson::Document doc;
  while (reader.next(line)) {
    Status st;
    if (line.too_long) {
      st = Status::data("line longer than the limit");
    } else {
      std::string_view text = line.text;
      while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
      if (text.empty()) continue;
      ++stats.lines;
      st = parse_json(text, doc);
      if (st.is_ok() && !doc.IsObject()) st = Status::data("record is not a JSON object");
      if (st.is_ok()) st = fn(doc, kind_of(doc));
    }
    if (line.too_long) ++stats.lines;
    if (st.is_ok()) {
      ++stats.records;
      continue;
    }
    if (st.code() == kIgnoredRecord.code() && st.message() == kIgnoredRecord.message()) {
      ++stats.ignored;
      continue;
    }
    ++stats.rejected;
    log::reject(line.stream, line.number, st.message());
    if (strict)
      return Status::data(st.message()).with_context(std::string(line.stream) + ":" +
                                                    std::to_string(line.number));
  }
  return reader.status();
}

}  // namespace ep
