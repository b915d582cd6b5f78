// ep_bench_iforest: times the Isolation Forest kernels alone, single-threaded, on an
// in-memory matrix — no JSON, no scaling, no artefacts. scripts/bench/detect runs it on
// the same matrix it gives scikit-learn and ep-train/ep-score.
//
//   ep_bench_iforest --input X.f64 --dims 8 [--trees 100] [--sample 256] [--runs 3]
//                    [--seed 1] [--dump SCORES.f64]
//
// X.f64: rows x dims little-endian doubles, row-major (numpy's X.astype('<f8').tofile()).
// Prints one JSON object: medians of the runs for fit, batch scoring
// (Forest::score(matrix)) and row-at-a-time scoring (Forest::score(row), the call
// ep-score makes per window), in CPU seconds of this thread and rows per CPU second.
// --dump writes the batch scores (rows doubles), for bit-identity checks between builds.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ep/iforest.h"
#include "ep/json.h"

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "ep_bench_iforest: %s\nusage: ep_bench_iforest --input X.f64 --dims D [--trees N] "
               "[--sample PSI] [--runs R] [--seed S] [--dump FILE]\n",
               why);
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  std::string input, dump;
  long dims = 0, runs = 3;
  ep::iforest::Params params;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    bool numeric = end && *end == '\0' && !v.empty();
    if (a == "--input") input = v;
    else if (a == "--dump") dump = v;
    else if (!numeric) return usage((a + ": not a number: " + v).c_str());
    else if (a == "--dims") dims = n;
    else if (a == "--runs") runs = n;
    else if (a == "--trees") params.trees = static_cast<int>(n);
    else if (a == "--sample") params.sample = static_cast<int>(n);
    else if (a == "--seed") params.seed = static_cast<std::uint64_t>(n);
    else return usage(("unknown option " + a).c_str());
  }
  if (input.empty() || dims < 1 || runs < 1) return usage("--input and --dims are required");

  std::ifstream f(input, std::ios::binary);
  if (!f) return usage(("cannot open " + input).c_str());
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::size_t row_bytes = static_cast<std::size_t>(dims) * sizeof(double);
  if (bytes.empty() || bytes.size() % row_bytes != 0)
    return usage((input + ": size is not a multiple of dims doubles").c_str());
  const std::size_t rows = bytes.size() / row_bytes;
  // Column-major features x samples: each sample (a row of the file) is one column.
  arma::mat X(static_cast<arma::uword>(dims), rows);
  std::memcpy(X.memptr(), bytes.data(), bytes.size());
  bytes.clear();
  bytes.shrink_to_fit();

  std::vector<double> fit_s, batch_s, row_s;
  ep::iforest::Forest forest;
  arma::vec scores;
  double checksum = 0;
  for (long r = 0; r < runs; ++r) {
    double t = thread_cpu_seconds();
    auto fitted = ep::iforest::Forest::fit(X, params);
    fit_s.push_back(thread_cpu_seconds() - t);
    if (!fitted) return usage(fitted.status().message().c_str());
    forest = std::move(fitted).value();

    t = thread_cpu_seconds();
    scores = forest.score(X);
    batch_s.push_back(thread_cpu_seconds() - t);

    t = thread_cpu_seconds();
    double sum = 0;
    for (std::size_t j = 0; j < rows; ++j) sum += forest.score(X.colptr(j));
    row_s.push_back(thread_cpu_seconds() - t);
    checksum = sum;
  }
  // The two scoring paths must agree exactly.
  double batch_sum = 0;
  for (double s : scores) batch_sum += s;
  if (batch_sum != checksum) {
    std::fprintf(stderr, "ep_bench_iforest: batch and row scores differ (%.17g vs %.17g)\n",
                 batch_sum, checksum);
    return 70;
  }
  if (!dump.empty()) {
    std::ofstream out(dump, std::ios::binary);
    out.write(reinterpret_cast<const char*>(scores.memptr()),
              static_cast<std::streamsize>(rows * sizeof(double)));
    if (!out) return usage(("cannot write " + dump).c_str());
  }

  const double n = static_cast<double>(rows);
  ep::JsonWriter w;
  w.start_object();
  w.kv("rows", static_cast<std::int64_t>(rows));
  w.kv("dims", static_cast<std::int64_t>(dims));
  w.kv("trees", static_cast<std::int64_t>(params.trees));
  w.kv("sample", static_cast<std::int64_t>(forest.psi()));
  w.kv("runs", static_cast<std::int64_t>(runs));
  w.kv("fit_cpu_s", median(fit_s));
  w.kv("score_batch_cpu_s", median(batch_s));
  w.kv("score_batch_rows_per_s", n / median(batch_s));
  w.kv("score_row_cpu_s", median(row_s));
  w.kv("score_row_rows_per_s", n / median(row_s));
  w.kv("score_sum", batch_sum);
  w.end_object();
  std::cout << w.take() << "\n";
  return 0;
}
