#include "nab_input.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "ep/fsutil.h"
#include "ep/json.h"

namespace ep::eval::nab {

namespace {

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '"'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t next = line.find(sep, pos);
    out.push_back(trim(line.substr(pos, next == std::string_view::npos ? next : next - pos)));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return out;
}

std::optional<TimeNs> parse_ts(std::string_view s) {
  return parse_rfc3339(s, ParseTimeOptions{.assume_utc = true, .allow_date_only = true});
}

std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string base_name(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

// "realTweets/Twitter_volume_AAPL.csv" -> {"realTweets", "Twitter_volume_AAPL.csv"}
std::pair<std::string, std::string> split_name(const std::string& name) {
  auto slash = name.rfind('/');
  if (slash == std::string::npos) return {"", name};
  return {name.substr(0, slash), name.substr(slash + 1)};
}

Result<std::string> find_data_file(const std::string& dir, const std::string& name) {
  for (const std::string& p : {dir + "/" + name, dir + "/data/" + name})
    if (is_file(p)) return p;
  return Status::io(dir + ": no data file " + name + " (looked in DIR/ and DIR/data/)");
}

Result<std::string> find_results_file(const std::string& dir, const std::string& name) {
  auto [cat, file] = split_name(name);
  std::string sub = dir + "/" + (cat.empty() ? "" : cat + "/");
  for (const std::string& p : {sub + base_name(dir) + "_" + file, sub + file})
    if (is_file(p)) return p;
  return Status::io(dir + ": no results file for " + name + " (expected " + sub +
                    base_name(dir) + "_" + file + ")");
}

}  // namespace

Result<std::vector<std::pair<TimeNs, TimeNs>>> parse_window_list(const rapidjson::Value& v,
                                                                 std::string_view path) {
  std::vector<std::pair<TimeNs, TimeNs>> out;
  std::string where(path);
  if (!v.IsArray()) return Status::data(where + ": not an array of [start, end] pairs");
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    std::string p = where + "[" + std::to_string(i) + "]";
    const auto& w = v[i];
    if (!w.IsArray() || w.Size() != 2 || !w[0].IsString() || !w[1].IsString())
      return Status::data(p + ": not a [start, end] pair of timestamps");
    auto a = parse_ts({w[0].GetString(), w[0].GetStringLength()});
    auto b = parse_ts({w[1].GetString(), w[1].GetStringLength()});
    if (!a) return Status::data(p + "[0]: not a timestamp");
    if (!b) return Status::data(p + "[1]: not a timestamp");
    out.emplace_back(*a, *b);
  }
  return out;
}

Result<CsvColumns> parse_csv(std::string_view text, std::string_view name,
                             std::string_view value_column) {
  CsvColumns out;
  std::size_t pos = 0;
  std::int64_t line_no = 0;
  int ts_col = -1, val_col = -1;
  std::size_t ncols = 0;
  std::string where(name);
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;
    auto cols = split(line, ',');
    std::string at = where + ":" + std::to_string(line_no) + ": ";
    if (ts_col < 0) {
      for (std::size_t c = 0; c < cols.size(); ++c) {
        if (cols[c] == "timestamp") ts_col = static_cast<int>(c);
        if (!value_column.empty() && cols[c] == value_column) val_col = static_cast<int>(c);
      }
      if (ts_col < 0) return Status::data(at + "header has no timestamp column");
      if (!value_column.empty() && val_col < 0)
        return Status::data(at + "header has no " + std::string(value_column) + " column");
      ncols = cols.size();
      continue;
    }
    if (cols.size() != ncols)
      return Status::data(at + "expected " + std::to_string(ncols) + " columns, got " +
                          std::to_string(cols.size()));
    auto ts = parse_ts(cols[ts_col]);
    if (!ts) return Status::data(at + "timestamp: not a timestamp");
    out.ts.push_back(*ts);
    if (val_col >= 0) {
      auto v = parse_double(cols[val_col]);
      if (!v) return Status::data(at + std::string(value_column) + ": not a finite number");
      out.values.push_back(*v);
    }
  }
  if (ts_col < 0) return Status::data(where + ": empty file (no header)");
  return out;
}

Result<CorpusLoad> load_corpus(const CorpusSpec& spec) {
  CorpusLoad load;
  auto wtext = fs::read_file(spec.windows_path);
  if (!wtext) return wtext.status();
  rapidjson::Document wdoc;
  if (Status st = parse_json(*wtext, wdoc); !st.is_ok()) return st.with_context(spec.windows_path);
  if (!wdoc.IsObject())
    return Status::data(spec.windows_path + ": not an object of file -> windows");

  std::vector<std::string> names;
  if (!spec.files_list.empty()) {
    auto list = fs::read_file(spec.files_list);
    if (!list) return list.status();
    std::size_t pos = 0;
    while (pos < list->size()) {
      std::size_t nl = list->find('\n', pos);
      std::string_view l = trim(std::string_view(*list).substr(
          pos, nl == std::string::npos ? std::string::npos : nl - pos));
      pos = nl == std::string::npos ? list->size() : nl + 1;
      if (l.empty() || l.front() == '#') continue;
      if (!wdoc.HasMember(std::string(l).c_str()))
        return Status::data(spec.files_list + ": " + std::string(l) + ": not in " +
                            spec.windows_path);
      names.emplace_back(l);
    }
  } else {
    for (auto it = wdoc.MemberBegin(); it != wdoc.MemberEnd(); ++it)
      names.emplace_back(it->name.GetString(), it->name.GetStringLength());
  }

  std::unordered_map<std::string, std::size_t> index;  // "cat/name" and "cat/name.csv"
  for (const std::string& name : names) {
    File f;
    f.name = name;
    auto windows = parse_window_list(wdoc[name.c_str()], spec.windows_path + ": " + name);
    if (!windows) return windows.status();
    f.windows = std::move(*windows);

    if (!spec.data_dir.empty()) {
      auto path = find_data_file(spec.data_dir, name);
      if (!path) return path.status();
      auto text = fs::read_file(*path);
      if (!text) return text.status();
      auto csv = parse_csv(*text, *path, "");
      if (!csv) return csv.status();
      f.ts = std::move(csv->ts);
    }
    if (!spec.results_dir.empty()) {
      auto path = find_results_file(spec.results_dir, name);
      if (!path) return path.status();
      auto text = fs::read_file(*path);
      if (!text) return text.status();
      auto csv = parse_csv(*text, *path, "anomaly_score");
      if (!csv) return csv.status();
      if (!spec.data_dir.empty() && csv->ts != f.ts)
        return Status::data(*path + ": rows differ from the data file (" +
                            std::to_string(csv->ts.size()) + " rows vs " +
                            std::to_string(f.ts.size()) + ", or other timestamps)");
      f.ts = std::move(csv->ts);
      f.score = std::move(csv->values);
    } else {
      f.score.assign(f.ts.size(), -1.0);  // -1: no record yet
    }
    std::string stem = name.size() > 4 && name.ends_with(".csv") ? name.substr(0, name.size() - 4)
                                                                  : name;
    index[stem] = load.files.size();
    index[stem + ".csv"] = load.files.size();
    load.files.push_back(std::move(f));
  }
  if (!spec.results_dir.empty()) return load;

  struct RowSlot {
    std::vector<std::size_t> rows;
    std::size_t used = 0;
  };
  std::vector<std::unordered_map<TimeNs, RowSlot>> row_index(load.files.size());
  for (std::size_t k = 0; k < load.files.size(); ++k)
    for (std::size_t i = 0; i < load.files[k].ts.size(); ++i)
      row_index[k][load.files[k].ts[i]].rows.push_back(i);
  Score s;
  Status st = read_records(spec.score_inputs, spec.strict, load.input,
                           [&](const rapidjson::Value& obj, Kind kind) -> Status {
                             if (kind != Kind::kScore) return kIgnoredRecord;
                             EP_RETURN_IF_ERROR(parse_record(obj, s));
                             auto it = index.find(s.device + "/" + s.metric);
                             if (it == index.end()) {
                               ++load.foreign_records;
                               return Status::ok();
                             }
                             File& f = load.files[it->second];
                             auto& rows = row_index[it->second];
                             auto r = rows.find(s.end);
                             if (r == rows.end()) {
                               ++load.unmatched_records;
                               return Status::ok();
                             }
                             // The k-th record of a timestamp goes to its k-th row (NAB
                             // files may repeat timestamps); extras fold into the last.
                             RowSlot& slot = r->second;
                             std::size_t row = slot.rows[std::min(slot.used, slot.rows.size() - 1)];
                             ++slot.used;
                             double& v = f.score[row];
                             v = std::max(v, s.score);
                             return Status::ok();
                           });
  if (!st.is_ok()) return st;
  for (File& f : load.files)
    for (double& v : f.score)
      if (v < 0) {
        v = 0;
        ++load.rows_without_score;
      }
  return load;
}

}  // namespace ep::eval::nab
