#include "ep/model.h"

#include <rapidjson/document.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "ep/crypto.h"
#include "ep/fsutil.h"
#include "ep/json.h"

namespace ep::model {

namespace {

constexpr std::string_view kChecksumKey = "\"checksum\":\"sha256:";
constexpr const char* kTreeEncoding = "preorder-le-v1";

std::string escape_component(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '/') out += "%2F";
    else if (c == '*') out += "%2A";
    else if (c == '%') out += "%25";
    else if (c == '.' && i == 0) out += "%2E";
    else out.push_back(c);
  }
  return out;
}

std::string unescape_component(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      std::string_view hex = s.substr(i + 1, 2);
      if (hex == "2F") out.push_back('/');
      else if (hex == "2A") out.push_back('*');
      else if (hex == "25") out.push_back('%');
      else if (hex == "2E") out.push_back('.');
      else {
        out.push_back('%');
        continue;
      }
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string checksum_of(std::string_view text_with_zeroed_checksum) {
  return crypto::sha256_hex(text_with_zeroed_checksum);
}

void write_doubles(JsonWriter& w, std::string_view key, const std::vector<double>& v) {
  w.key(key);
  w.start_array();
  for (double d : v) w.num(d);
  w.end_array();
}

// Field access with errors naming the path.
Status need(bool ok, std::string_view path, std::string_view what) {
  if (ok) return Status::ok();
  return Status::data(std::string(path) + ": " + std::string(what));
}

const rapidjson::Value* member(const rapidjson::Value& o, const char* k) {
  auto it = o.FindMember(k);
  return it == o.MemberEnd() ? nullptr : &it->value;
}

Status get_obj(const rapidjson::Value& o, const char* k, const rapidjson::Value*& out) {
  out = member(o, k);
  return need(out && out->IsObject(), k, "required object");
}

Status get_num(const rapidjson::Value& o, const char* k, double& out, std::string_view path) {
  const auto* v = member(o, k);
  EP_RETURN_IF_ERROR(need(v && v->IsNumber(), json_path(path, k), "required number"));
  out = v->GetDouble();
  return Status::ok();
}

Status get_int(const rapidjson::Value& o, const char* k, std::int64_t& out,
               std::string_view path) {
  const auto* v = member(o, k);
  EP_RETURN_IF_ERROR(need(v && v->IsInt64(), json_path(path, k), "required integer"));
  out = v->GetInt64();
  return Status::ok();
}

Status get_str(const rapidjson::Value& o, const char* k, std::string& out, std::string_view path) {
  const auto* v = member(o, k);
  EP_RETURN_IF_ERROR(need(v && v->IsString(), json_path(path, k), "required string"));
  out.assign(v->GetString(), v->GetStringLength());
  return Status::ok();
}

Status get_time(const rapidjson::Value& o, const char* k, TimeNs& out, std::string_view path) {
  std::string s;
  EP_RETURN_IF_ERROR(get_str(o, k, s, path));
  auto t = parse_rfc3339(s);
  EP_RETURN_IF_ERROR(need(t.has_value(), json_path(path, k), "not an RFC 3339 time"));
  out = *t;
  return Status::ok();
}

Status get_doubles(const rapidjson::Value& o, const char* k, std::vector<double>& out,
                   std::size_t n, std::string_view path) {
  const auto* v = member(o, k);
  std::string p = json_path(path, k);
  EP_RETURN_IF_ERROR(need(v && v->IsArray(), p, "required array"));
  EP_RETURN_IF_ERROR(need(v->Size() == n, p, "length differs from features"));
  out.clear();
  for (const auto& x : v->GetArray()) {
    EP_RETURN_IF_ERROR(need(x.IsNumber() && std::isfinite(x.GetDouble()), p, "not a number"));
    out.push_back(x.GetDouble());
  }
  return Status::ok();
}

Result<Model> parse_document(const rapidjson::Value& d) {
  Model m;
  std::string fmt;
  EP_RETURN_IF_ERROR(get_str(d, "format", fmt, ""));
  EP_RETURN_IF_ERROR(need(fmt == kFormatName, "format", "not an edgepulse-model"));
  std::int64_t fv = 0;
  EP_RETURN_IF_ERROR(get_int(d, "format_version", fv, ""));
  EP_RETURN_IF_ERROR(need(fv == kFormatVersion, "format_version",
                          "unsupported (this build reads " + std::to_string(kFormatVersion) + ")"));
  EP_RETURN_IF_ERROR(get_str(d, "tenant", m.tenant, ""));
  EP_RETURN_IF_ERROR(get_str(d, "device", m.device, ""));
  EP_RETURN_IF_ERROR(get_str(d, "metric", m.metric, ""));
  std::int64_t version = 0;
  EP_RETURN_IF_ERROR(get_int(d, "version", version, ""));
  EP_RETURN_IF_ERROR(need(version >= 1 && version < INT32_MAX, "version", "out of range"));
  m.version = static_cast<int>(version);
  EP_RETURN_IF_ERROR(get_time(d, "created_at", m.created_at, ""));

  const rapidjson::Value* tr;
  EP_RETURN_IF_ERROR(get_obj(d, "training", tr));
  EP_RETURN_IF_ERROR(get_time(*tr, "from", m.trained_from, "training"));
  EP_RETURN_IF_ERROR(get_time(*tr, "to", m.trained_to, "training"));
  EP_RETURN_IF_ERROR(get_int(*tr, "windows", m.windows, "training"));
  EP_RETURN_IF_ERROR(get_int(*tr, "series", m.series, "training"));

  const auto* fs = member(d, "features");
  EP_RETURN_IF_ERROR(need(fs && fs->IsArray() && fs->Size() > 0, "features", "required non-empty array"));
  for (const auto& f : fs->GetArray()) {
    EP_RETURN_IF_ERROR(need(f.IsString(), "features", "not a string"));
    m.features.emplace_back(f.GetString(), f.GetStringLength());
  }
  const std::size_t dims = m.features.size();

  const rapidjson::Value* sc;
  EP_RETURN_IF_ERROR(get_obj(d, "scaling", sc));
  EP_RETURN_IF_ERROR(get_str(*sc, "method", m.scaling, "scaling"));
  EP_RETURN_IF_ERROR(get_doubles(*sc, "center", m.center, dims, "scaling"));
  EP_RETURN_IF_ERROR(get_doubles(*sc, "scale", m.scale, dims, "scaling"));
  for (double s : m.scale) EP_RETURN_IF_ERROR(need(s > 0, "scaling.scale", "not positive"));

  const rapidjson::Value* pa;
  EP_RETURN_IF_ERROR(get_obj(d, "params", pa));
  std::int64_t trees = 0, sample = 0, psi = 0, height = 0;
  EP_RETURN_IF_ERROR(get_int(*pa, "trees", trees, "params"));
  EP_RETURN_IF_ERROR(get_int(*pa, "sample", sample, "params"));
  EP_RETURN_IF_ERROR(get_int(*pa, "psi", psi, "params"));
  EP_RETURN_IF_ERROR(get_int(*pa, "height_limit", height, "params"));
  std::string seed;
  EP_RETURN_IF_ERROR(get_str(*pa, "seed", seed, "params"));
  EP_RETURN_IF_ERROR(need(trees >= 1 && trees <= 100000, "params.trees", "out of range"));
  EP_RETURN_IF_ERROR(need(psi >= 1 && psi <= sample && sample < 65535, "params.psi", "out of range"));
  EP_RETURN_IF_ERROR(need(height >= 0 && height <= 64, "params.height_limit", "out of range"));
  try {
    m.params.seed = std::stoull(seed);
  } catch (const std::exception&) {
    return Status::data("params.seed: not an unsigned integer");
  }
  m.params.trees = static_cast<int>(trees);
  m.params.sample = static_cast<int>(sample);
  m.params.height_limit = static_cast<int>(height);

  const rapidjson::Value* th;
  EP_RETURN_IF_ERROR(get_obj(d, "threshold", th));
  EP_RETURN_IF_ERROR(get_num(*th, "raw", m.threshold, "threshold"));
  EP_RETURN_IF_ERROR(get_num(*th, "contamination", m.contamination, "threshold"));
  EP_RETURN_IF_ERROR(need(m.threshold > 0 && m.threshold < 1, "threshold.raw", "not in (0,1)"));

  const rapidjson::Value* fo;
  EP_RETURN_IF_ERROR(get_obj(d, "forest", fo));
  std::string enc;
  EP_RETURN_IF_ERROR(get_str(*fo, "encoding", enc, "forest"));
  EP_RETURN_IF_ERROR(need(enc == kTreeEncoding, "forest.encoding", "unsupported"));
  const auto* ts = member(*fo, "trees");
  EP_RETURN_IF_ERROR(need(ts && ts->IsArray() && ts->Size() == static_cast<unsigned>(trees),
                          "forest.trees", "array of params.trees strings required"));
  std::vector<iforest::Tree> forest_trees;
  forest_trees.reserve(ts->Size());
  for (rapidjson::SizeType i = 0; i < ts->Size(); ++i) {
    const auto& t = (*ts)[i];
    std::string path = "forest.trees[" + std::to_string(i) + "]";
    EP_RETURN_IF_ERROR(need(t.IsString(), path, "not a string"));
    auto tree = iforest::Tree::decode({t.GetString(), t.GetStringLength()}, dims);
    if (!tree) return tree.status().with_context(path);
    forest_trees.push_back(std::move(tree).value());
  }
  auto forest = iforest::Forest::assemble(dims, static_cast<int>(psi), static_cast<int>(height),
                                          std::move(forest_trees));
  if (!forest) return forest.status();
  m.forest = std::move(forest).value();
  return m;
}

}  // namespace

double calibrate(double raw, double t) {
  if (!(t > 0 && t < 1)) t = 0.5;
  double s = raw <= t ? 0.5 * raw / t : 0.5 + 0.5 * (raw - t) / (1 - t);
  return std::clamp(s, 0.0, 1.0);
}

std::string serialize(const Model& m) {
  JsonWriter w;
  w.start_object();
  w.kv("format", kFormatName);
  w.kv("format_version", kFormatVersion);
  w.kv("checksum", "sha256:" + std::string(64, '0'));
  w.kv("id", m.id());
  w.kv("tenant", m.tenant);
  w.kv("device", m.device);
  w.kv("metric", m.metric);
  w.kv("version", m.version);
  w.kv_time("created_at", m.created_at);
  w.key("training");
  w.start_object();
  w.kv_time("from", m.trained_from);
  w.kv_time("to", m.trained_to);
  w.kv("windows", m.windows);
  w.kv("series", m.series);
  w.end_object();
  w.key("features");
  w.start_array();
  for (const auto& f : m.features) w.str(f);
  w.end_array();
  w.key("scaling");
  w.start_object();
  w.kv("method", m.scaling);
  write_doubles(w, "center", m.center);
  write_doubles(w, "scale", m.scale);
  w.end_object();
  w.key("params");
  w.start_object();
  w.kv("trees", m.params.trees);
  w.kv("sample", m.params.sample);
  w.kv("psi", m.forest.psi());
  w.kv("height_limit", m.forest.height_limit());
  w.kv("seed", std::to_string(m.params.seed));
  w.end_object();
  w.key("threshold");
  w.start_object();
  w.kv("raw", m.threshold);
  w.kv("contamination", m.contamination);
  w.kv("calibrated", 0.5);
  w.end_object();
  w.key("forest");
  w.start_object();
  w.kv("algorithm", "isolation-forest");
  w.kv("encoding", kTreeEncoding);
  w.kv("dims", static_cast<std::int64_t>(m.forest.dims()));
  w.key("trees");
  w.start_array();
  for (const auto& t : m.forest.trees()) w.str(t.encode());
  w.end_array();
  w.end_object();
  w.end_object();
  std::string text = w.take();
  text.push_back('\n');
  auto pos = text.find(kChecksumKey);
  std::string sum = checksum_of(text);
  text.replace(pos + kChecksumKey.size(), 64, sum);
  return text;
}

Status verify_checksum(std::string_view text) {
  auto pos = text.find(kChecksumKey);
  if (pos == std::string_view::npos || pos + kChecksumKey.size() + 64 > text.size())
    return Status::data("checksum: missing");
  std::string copy(text);
  std::string stored = copy.substr(pos + kChecksumKey.size(), 64);
  copy.replace(pos + kChecksumKey.size(), 64, std::string(64, '0'));
  if (!crypto::equal_ct(stored, checksum_of(copy)))
    return Status::data("checksum: mismatch (artefact corrupted or edited)");
  return Status::ok();
}

Result<Model> parse(std::string_view text, std::string_view where) {
  rapidjson::Document doc;
  if (Status s = parse_json(text, doc); !s) return s.with_context(where);
  if (!doc.IsObject()) return Status::data(std::string(where) + ": not a JSON object");
  if (Status s = verify_checksum(text); !s) return s.with_context(where);
  auto m = parse_document(doc);
  if (!m) return m.status().with_context(where);
  return m;
}

Result<Model> parse_as(std::string_view text, std::string_view where, const SeriesKey& k,
                       int version) {
  auto m = parse(text, where);
  if (!m) return m.status();
  if (!(m->key() == k) || m->version != version)
    return Status::data(std::string(where) + ": artefact names " + m->id() + ", not " +
                        k.to_string() + "@" + std::to_string(version));
  return m;
}

Result<SeriesRef> parse_series_ref(std::string_view s) {
  SeriesRef ref;
  auto at = s.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view v = s.substr(at + 1);
    int n = 0;
    if (v.empty() || v.size() > 9) return Status::usage(std::string(s) + ": bad version after '@'");
    for (char c : v) {
      if (c < '0' || c > '9') return Status::usage(std::string(s) + ": bad version after '@'");
      n = n * 10 + (c - '0');
    }
    if (n < 1) return Status::usage(std::string(s) + ": versions start at 1");
    ref.version = n;
    s = s.substr(0, at);
  }
  auto first = s.find('/');
  auto last = s.rfind('/');
  if (first == std::string_view::npos || first == last)
    return Status::usage(std::string(s) + ": expected tenant/device/metric");
  ref.key.tenant = std::string(s.substr(0, first));
  ref.key.device = std::string(s.substr(first + 1, last - first - 1));
  ref.key.metric = std::string(s.substr(last + 1));
  if (ref.key.tenant.empty() || ref.key.device.empty() || ref.key.metric.empty())
    return Status::usage(std::string(s) + ": expected tenant/device/metric");
  return ref;
}

double quantile_in_place(std::vector<double>& v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }),
          v.end());
  if (v.empty()) return std::nan("");
  q = std::clamp(q, 0.0, 1.0);
  double pos = q * static_cast<double>(v.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (pos - static_cast<double>(lo)) * (b - a);
}

double median_in_place(std::vector<double>& v) { return quantile_in_place(v, 0.5); }

double scale_floor(double center) { return std::max(0.01, 0.01 * std::fabs(center)); }

double min_feature_scale(std::string_view name) { return name == "flat_surprise" ? 1.0 : 0.0; }

Robust robust_stats(std::vector<double> v) {
  Robust r;
  double med = median_in_place(v);  // also drops non-finite values
  r.count = v.size();
  if (v.empty()) return r;
  r.center = med;
  double q1 = quantile_in_place(v, 0.25), q3 = quantile_in_place(v, 0.75);
  double scale = (q3 - q1) / 1.349;
  if (!(scale > 0)) {
    std::vector<double> dev(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) dev[i] = std::fabs(v[i] - med);
    scale = 1.4826 * median_in_place(dev);
  }
  if (!(scale > 0)) {
    double sum = 0, sq = 0;
    for (double x : v) sum += x;
    double mean = sum / static_cast<double>(v.size());
    for (double x : v) sq += (x - mean) * (x - mean);
    scale = std::sqrt(sq / static_cast<double>(v.size()));
  }
  double floor = scale_floor(med);
  if (!(scale > 0)) scale = floor;
  r.scale = scale;
  return r;
}

std::string Store::series_dir(const SeriesKey& k) const {
  return dir_ + "/" + escape_component(k.tenant) + "/" + escape_component(k.device) + "/" +
         escape_component(k.metric);
}

namespace {
// "<N>.json" -> N, else 0.
int version_of(const std::string& name) {
  if (name.size() < 6 || name.size() > 14 || name.compare(name.size() - 5, 5, ".json") != 0)
    return 0;
  int n = 0;
  for (std::size_t i = 0; i + 5 < name.size(); ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}
}  // namespace

Result<int> Store::latest_version(const SeriesKey& k) const {
  std::error_code ec;
  std::filesystem::directory_iterator it(series_dir(k), ec), end;
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return 0;
    return Status::io(series_dir(k) + ": " + ec.message());
  }
  int best = 0;
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::io(series_dir(k) + ": " + ec.message());
    best = std::max(best, version_of(it->path().filename().string()));
  }
  return best;
}

Status Store::save(Model& m) const {
  const std::string dir = series_dir(m.key());
  EP_RETURN_IF_ERROR(fs::make_dirs(dir));
  auto latest = latest_version(m.key());
  if (!latest) return latest.status();
  int v = *latest + 1;
  for (int attempt = 0; attempt < 1000; ++attempt, ++v) {
    m.version = v;
    Status s = fs::write_file_atomic(dir + "/" + std::to_string(v) + ".json", serialize(m),
                                     /*no_clobber=*/true);
    if (s.code() == Code::kConflict) continue;  // a concurrent trainer took v
    return s;
  }
  return Status::temporary(dir + ": could not claim a new version number");
}

Result<Store::Staged> Store::stage(Model& m, int at_least) const {
  const std::string dir = series_dir(m.key());
  EP_RETURN_IF_ERROR(fs::make_dirs(dir));
  auto latest = latest_version(m.key());
  if (!latest) return latest.status();
  m.version = std::max(*latest + 1, at_least);
  Staged st;
  st.key = m.key();
  st.version = m.version;
  st.path = dir + "/" + std::to_string(m.version) + ".json";
  st.tmp = st.path + ".tmp." + crypto::random_base62(8);
  EP_RETURN_IF_ERROR(fs::write_new_file(st.tmp, serialize(m)));
  return st;
}

Status Store::commit(std::vector<Staged>& staged) const {
  if (staged.empty()) return Status::ok();
  Status first;
  auto fail = [&](Staged& st, Status s) {
    st.status = s;
    if (first.is_ok()) first = s;
  };
  Status synced = fs::sync_filesystem(dir_);
  for (auto& st : staged) {
    if (!synced) {
      ::unlink(st.tmp.c_str());
      fail(st, synced);
      continue;
    }
    if (::link(st.tmp.c_str(), st.path.c_str()) == 0) {
      ::unlink(st.tmp.c_str());
      st.status = Status::ok();
      continue;
    }
    const int err = errno;
    if (err != EEXIST) {
      ::unlink(st.tmp.c_str());
      fail(st, Status::io(st.path + ": " + std::strerror(err)));
      continue;
    }
    // Another writer took this version: store the artefact as the next free one.
    auto text = fs::read_file(st.tmp);
    ::unlink(st.tmp.c_str());
    auto m = text ? parse(*text, st.tmp) : Result<Model>(text.status());
    Status s = m ? save(*m) : m.status();
    if (!s) {
      fail(st, s);
      continue;
    }
    st.version = m->version;
    st.path = series_dir(st.key) + "/" + std::to_string(st.version) + ".json";
    st.status = Status::ok();
  }
  // The links and any new directories.
  if (synced) {
    if (Status s = fs::sync_filesystem(dir_); !s) {
      for (auto& st : staged)
        if (st.status.is_ok()) fail(st, s);
    }
  }
  return first;
}

Result<Model> Store::load(const SeriesKey& k, int version) const {
  if (version == 0) {
    auto latest = latest_version(k);
    if (!latest) return latest.status();
    if (*latest == 0) return Status::not_found(k.to_string() + ": no model");
    version = *latest;
  }
  std::string path = series_dir(k) + "/" + std::to_string(version) + ".json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return Status::not_found(k.to_string() + "@" + std::to_string(version) + ": no such model");
  auto text = fs::read_file(path);
  if (!text) return text.status();
  return parse_as(*text, path, k, version);
}

Result<std::vector<Entry>> Store::list() const {
  std::vector<Entry> out;
  std::error_code ec;
  namespace sfs = std::filesystem;
  if (!sfs::exists(dir_, ec)) return out;
  auto subdirs = [&](const sfs::path& p) {
    std::vector<sfs::path> v;
    for (sfs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory()) v.push_back(it->path());
    return v;
  };
  for (const auto& t : subdirs(dir_))
    for (const auto& d : subdirs(t))
      for (const auto& m : subdirs(d)) {
        for (sfs::directory_iterator it(m, ec), end; !ec && it != end; it.increment(ec)) {
          int v = version_of(it->path().filename().string());
          if (v == 0) continue;
          out.push_back({{unescape_component(t.filename().string()),
                          unescape_component(d.filename().string()),
                          unescape_component(m.filename().string())},
                         v, it->path().string()});
        }
      }
  if (ec) return Status::io(dir_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    auto ka = a.key.to_string(), kb = b.key.to_string();
    return ka != kb ? ka < kb : a.version < b.version;
  });
  return out;
}

}  // namespace ep::model
