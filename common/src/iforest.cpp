#include "ep/iforest.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include "ep/crypto.h"

namespace ep::iforest {

namespace {

constexpr double kEulerGamma = 0.5772156649015329;
constexpr std::uint16_t kLeafTag = 0xFFFF;
constexpr int kMaxDecodeDepth = 64;

// Little-endian byte encoding, independent of the host.
void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>(v >> 8));
}
void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_f64(std::string& out, double d) {
  auto v = std::bit_cast<std::uint64_t>(d);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

class ByteReader {
 public:
  explicit ByteReader(std::string_view b) : b_(b) {}
  bool u16(std::uint16_t& v) {
    if (pos_ + 2 > b_.size()) return false;
    v = static_cast<std::uint16_t>(byte(0) | (byte(1) << 8));
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (pos_ + 4 > b_.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(byte(i)) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool f64(double& d) {
    if (pos_ + 8 > b_.size()) return false;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(byte(i)) << (8 * i);
    d = std::bit_cast<double>(v);
    pos_ += 8;
    return true;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  std::uint32_t byte(int i) const { return static_cast<unsigned char>(b_[pos_ + i]); }
  std::string_view b_;
  std::size_t pos_ = 0;
};

// Grows trees. Each tree's sample is first gathered feature-major (the values of one
// feature over the sample are contiguous), so the scans a split needs stay in a few
// cache lines; the tree then works on local sample indices 0..psi-1.
class Builder {
 public:
  Builder(const arma::mat& X, std::size_t psi, int limit, Rng& rng)
      : X_(X), d_(X.n_rows), psi_(psi), limit_(limit), rng_(rng) {
    values_.resize(d_ * psi_);
    local_.resize(psi_);
    scratch_.resize(psi_);
    candidates_.reserve(d_);
  }

  // Grows `tree` over the columns sample[0, psi) of X.
  void grow(const std::uint32_t* sample, Tree& tree) {
    for (std::size_t j = 0; j < psi_; ++j) {
      const double* col = X_.colptr(sample[j]);
      for (std::size_t f = 0; f < d_; ++f) values_[f * psi_ + j] = col[f];
      local_[j] = static_cast<std::uint32_t>(j);
    }
    tree_ = &tree;
    tree.reserve(2 * psi_);
    build(local_.data(), psi_, 0);
  }

 private:
  double value(std::size_t f, std::uint32_t i) const { return values_[f * psi_ + i]; }

  void build(std::uint32_t* idx, std::size_t size, int depth) {
    Tree& tree = *tree_;
    std::size_t me = tree.size();
    tree.add(Node{}, static_cast<std::uint32_t>(size));
    if (depth >= limit_ || size <= 1 || !choose_split(idx, size)) {
      tree.node(me).feature = -1;
      tree.node(me).value = average_path_length(static_cast<double>(size));
      return;
    }
    // choose_split left the split in q_/p_; partition stably so the result does not
    // depend on the standard library's partition algorithm. Branch-free (the side of
    // each sample is a coin toss to a branch predictor): every index is written to both
    // the left run (in place: left <= k) and the right run (scratch), and only the
    // cursor of its side advances.
    std::size_t q = q_;
    double p = p_;
    const double* col = values_.data() + q * psi_;
    std::uint32_t* right = scratch_.data();
    std::size_t left = 0, nright = 0;
    for (std::size_t k = 0; k < size; ++k) {
      const std::uint32_t i = idx[k];
      const bool goes_left = col[i] < p;
      idx[left] = i;
      right[nright] = i;
      left += goes_left;
      nright += !goes_left;
    }
    std::copy_n(right, nright, idx + left);
    tree.node(me).feature = static_cast<std::int32_t>(q);
    tree.node(me).value = p;
    build(idx, left, depth + 1);
    tree.node(me).right = static_cast<std::int32_t>(tree.size());
    build(idx + left, size - left, depth + 1);
  }

  // Picks a feature uniformly among those not constant in this node's sample and a
  // split uniformly in [min, max). False when every feature is constant. A feature is
  // constant when every value equals the first (usually settled by the second value);
  // only the chosen feature is scanned for its min and max.
  bool choose_split(const std::uint32_t* idx, std::size_t size) {
    candidates_.clear();
    for (std::size_t f = 0; f < d_; ++f) {
      const double* col = values_.data() + f * psi_;
      const double first = col[idx[0]];
      for (std::size_t k = 1; k < size; ++k) {
        if (col[idx[k]] != first) {
          candidates_.push_back(f);
          break;
        }
      }
    }
    if (candidates_.empty()) return false;
    q_ = candidates_[rng_.below(candidates_.size())];
    const double* col = values_.data() + q_ * psi_;
    double lo = col[idx[0]], hi = lo;
    for (std::size_t k = 1; k < size; ++k) {
      const double v = col[idx[k]];
      lo = v < lo ? v : lo;  // minsd/maxsd: no branches
      hi = v > hi ? v : hi;
    }
    p_ = lo + rng_.uniform() * (hi - lo);
    // p must exceed min so both children are non-empty (x < p goes left).
    if (!(p_ > lo)) p_ = std::nextafter(lo, hi);
    if (p_ > hi) p_ = hi;
    return true;
  }

  const arma::mat& X_;
  std::size_t d_, psi_;
  int limit_;
  Rng& rng_;
  Tree* tree_ = nullptr;
  std::vector<double> values_;  // d x psi, feature-major
  std::vector<std::uint32_t> local_;
  std::vector<std::size_t> candidates_;
  std::vector<std::uint32_t> scratch_;
  std::size_t q_ = 0;
  double p_ = 0;
};

bool decode_node(ByteReader& in, Tree& t, std::size_t dims, int depth) {
  if (depth > kMaxDecodeDepth) return false;
  std::uint16_t tag;
  if (!in.u16(tag)) return false;
  std::size_t me = t.size();
  if (tag == kLeafTag) {
    std::uint32_t size;
    if (!in.u32(size)) return false;
    t.add(Node{-1, 0, average_path_length(static_cast<double>(size))}, size);
    return true;
  }
  if (tag >= dims) return false;
  double split;
  if (!in.f64(split) || !std::isfinite(split)) return false;
  t.add(Node{tag, 0, split}, 0);
  if (!decode_node(in, t, dims, depth + 1)) return false;
  t.node(me).right = static_cast<std::int32_t>(t.size());
  return decode_node(in, t, dims, depth + 1);
}

// Depth of a well-formed preorder tree (every internal node's left child follows it, its
// right child starts where the left subtree ends, features below dims); -1 otherwise.
int checked_depth(const std::vector<Node>& nodes, std::size_t dims) {
  std::vector<std::pair<std::size_t, int>> pending;  // right children still to come
  int depth = 0, deepest = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    deepest = std::max(deepest, depth);
    if (n.feature >= 0) {
      if (static_cast<std::size_t>(n.feature) >= dims || n.right < 0 ||
          static_cast<std::size_t>(n.right) <= i + 1)
        return -1;
      pending.emplace_back(static_cast<std::size_t>(n.right), depth + 1);
      ++depth;
    } else if (i + 1 == nodes.size()) {
      return pending.empty() ? deepest : -1;
    } else {
      if (pending.empty() || pending.back().first != i + 1) return -1;
      depth = pending.back().second;
      pending.pop_back();
    }
  }
  return -1;  // empty, or ends on an internal node
}

// Copies the subtree at preorder node i (depth d) into slot k of a complete binary tree
// of depth D laid out breadth first (children of k: 2k+1, 2k+2; slots from 2^D - 1 on
// are leaves). A leaf above depth D fills every complete-tree leaf below its slot with
// its path length d + c(size); the padding splits above them keep feature 0, value 0
// and lead to the same value whichever way a sample goes.
void place(const std::vector<Node>& nodes, std::size_t i, std::size_t k, int d, int D,
           double* value, std::uint16_t* feature) {
  const Node& n = nodes[i];
  if (n.feature < 0) {
    const int below = D - d;
    const std::size_t first = ((k + 1) << below) - 1;
    std::fill_n(value + first, std::size_t{1} << below, static_cast<double>(d) + n.value);
    return;
  }
  feature[k] = static_cast<std::uint16_t>(n.feature);
  value[k] = n.value;
  place(nodes, i + 1, 2 * k + 1, d + 1, D, value, feature);
  place(nodes, static_cast<std::size_t>(n.right), 2 * k + 2, d + 1, D, value, feature);
}

void encode_node(const Tree& t, std::size_t i, std::string& out) {
  const Node& n = t.nodes()[i];
  if (n.feature < 0) {
    put_u16(out, kLeafTag);
    put_u32(out, i < t.sizes().size() ? t.sizes()[i] : 0);
    return;
  }
  put_u16(out, static_cast<std::uint16_t>(n.feature));
  put_f64(out, n.value);
  encode_node(t, i + 1, out);
  encode_node(t, static_cast<std::size_t>(n.right), out);
}

}  // namespace

std::uint64_t mix64(std::uint64_t x) {
  std::uint64_t st = x;
  return splitmix64(st);
}

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double average_path_length(double n) {
  if (n <= 1) return 0;
  if (n <= 2) return 1;
  return 2.0 * (std::log(n - 1.0) + kEulerGamma) - 2.0 * (n - 1.0) / n;
}

// ---- Tree
double Tree::path_length(const double* x) const {
  const Node* n = nodes_.data();
  std::size_t i = 0;
  double depth = 0;
  while (n[i].feature >= 0) {
    i = x[n[i].feature] < n[i].value ? i + 1 : static_cast<std::size_t>(n[i].right);
    depth += 1;
  }
  return depth + n[i].value;
}

std::string Tree::encode() const {
  std::string bytes;
  bytes.reserve(nodes_.size() * 8);
  if (!nodes_.empty()) encode_node(*this, 0, bytes);
  return crypto::base64(bytes);
}

Result<Tree> Tree::decode(std::string_view b64, std::size_t dims) {
  auto bytes = crypto::unbase64(b64);
  if (!bytes) return Status::data("tree: not base64");
  Tree t;
  ByteReader in(*bytes);
  if (!decode_node(in, t, dims, 0) || !in.done())
    return Status::data("tree: malformed node encoding");
  return t;
}

// ---- Forest
Result<Forest> Forest::fit(const arma::mat& X, const Params& params) {
  if (X.n_cols == 0 || X.n_rows == 0) return Status::data("no training data");
  if (X.n_rows >= kLeafTag) return Status::usage("too many features (max 65534)");
  if (params.trees < 1) return Status::usage("trees must be at least 1");
  if (params.sample < 2) return Status::usage("sample must be at least 2");
  if (X.n_cols > UINT32_MAX) return Status::usage("too many training rows");
  if (!X.is_finite()) return Status::data("training data contains non-finite values");
  Forest f;
  f.dims_ = X.n_rows;
  const std::size_t n = X.n_cols;
  f.psi_ = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(params.sample), n));
  f.height_limit_ = params.height_limit > 0
                        ? params.height_limit
                        : static_cast<int>(std::ceil(std::log2(static_cast<double>(f.psi_))));
  f.c_psi_ = average_path_length(f.psi_);
  if (f.c_psi_ <= 0) f.c_psi_ = 1;  // psi == 1: every path is 0, score 1
  Rng rng(params.seed);
  std::vector<std::uint32_t> perm(n);
  for (std::size_t i = 0; i < n; ++i) perm[i] = static_cast<std::uint32_t>(i);
  std::vector<std::uint32_t> idx(static_cast<std::size_t>(f.psi_));
  f.trees_.resize(static_cast<std::size_t>(params.trees));
  Builder builder(X, idx.size(), f.height_limit_, rng);
  for (auto& tree : f.trees_) {
    // Partial Fisher-Yates: the first psi entries become a uniform sample without
    // replacement. Reusing the permuted array across trees keeps this O(psi) per tree.
    for (std::size_t i = 0; i < idx.size(); ++i) {
      std::size_t j = i + static_cast<std::size_t>(rng.below(n - i));
      std::swap(perm[i], perm[j]);
      idx[i] = perm[i];
    }
    builder.grow(idx.data(), tree);
  }
  EP_RETURN_IF_ERROR(f.compile());
  return f;
}

Result<Forest> Forest::assemble(std::size_t dims, int psi, int height_limit,
                                std::vector<Tree> trees) {
  if (dims == 0 || psi < 1 || trees.empty() || height_limit < 0)
    return Status::data("forest: bad dimensions");
  Forest f;
  f.dims_ = dims;
  f.psi_ = psi;
  f.height_limit_ = height_limit;
  f.c_psi_ = average_path_length(psi);
  if (f.c_psi_ <= 0) f.c_psi_ = 1;
  f.trees_ = std::move(trees);
  EP_RETURN_IF_ERROR(f.compile());
  return f;
}

Status Forest::compile() {
  flat_depth_ = -1;
  flat_value_.clear();
  flat_feature_.clear();
  int deepest = 0;
  for (const auto& t : trees_) {
    int d = checked_depth(t.nodes(), dims_);
    if (d < 0) return Status::data("forest: malformed tree");
    deepest = std::max(deepest, d);
  }
  if (deepest > kMaxFlatDepth) return Status::ok();  // scored by the preorder walk
  feature_stride_ = std::size_t{1} << deepest;     // 2^D - 1 internal slots, one pad
  value_stride_ = std::size_t{2} << deepest;       // 2^(D+1) - 1 slots, one pad
  flat_value_.assign(trees_.size() * value_stride_, 0.0);
  flat_feature_.assign(trees_.size() * feature_stride_, 0);
  for (std::size_t t = 0; t < trees_.size(); ++t)
    place(trees_[t].nodes(), 0, 0, 0, deepest, flat_value_.data() + t * value_stride_,
          flat_feature_.data() + t * feature_stride_);
  flat_depth_ = deepest;
  return Status::ok();
}

// The kernel: n samples (at x, dims_ apart) walk each tree together, level by level, so
// their independent loads overlap; the additions per sample happen in tree order, as
// in the preorder walk, so sums are bit-identical to it.
namespace {

// Walks N samples through `count` flat trees of depth D (compile-time), adding each
// sample's path length to sum[r] tree after tree.
template <int D, std::size_t N>
void walk_block(const double* value, std::size_t vs, const std::uint16_t* feature, std::size_t fs,
                std::size_t count, const double* x, std::size_t dims, double* sum) {
  for (std::size_t t = 0; t < count; ++t, value += vs, feature += fs) {
    std::uint32_t k[N] = {};
#pragma GCC unroll 16
    for (int d = 0; d < D; ++d) {
#pragma GCC unroll 16
      for (std::size_t r = 0; r < N; ++r) {
        const std::uint32_t i = k[r];
        // NaN goes right, like x < value being false in the preorder walk.
        k[r] = 2 * i + 1 + static_cast<std::uint32_t>(!(x[r * dims + feature[i]] < value[i]));
      }
    }
#pragma GCC unroll 16
    for (std::size_t r = 0; r < N; ++r) sum[r] += value[k[r]];
  }
}

}  // namespace

void Forest::accumulate(const double* x, std::size_t n, double* sum) const {
  const int depth = flat_depth_;
  const std::size_t dims = dims_;
  if (n == kBlock) {
    const double* v = flat_value_.data();
    const std::uint16_t* f = flat_feature_.data();
    const std::size_t vs = value_stride_, fs = feature_stride_, c = trees_.size();
    switch (depth) {
      case 8: return walk_block<8, kBlock>(v, vs, f, fs, c, x, dims, sum);
      case 7: return walk_block<7, kBlock>(v, vs, f, fs, c, x, dims, sum);
      case 6: return walk_block<6, kBlock>(v, vs, f, fs, c, x, dims, sum);
      case 9: return walk_block<9, kBlock>(v, vs, f, fs, c, x, dims, sum);
      case 10: return walk_block<10, kBlock>(v, vs, f, fs, c, x, dims, sum);
      default: break;
    }
  }
  std::uint32_t k[kBlock];
  for (std::size_t t = 0; t < trees_.size(); ++t) {
    const double* value = flat_value_.data() + t * value_stride_;
    const std::uint16_t* feature = flat_feature_.data() + t * feature_stride_;
    for (std::size_t r = 0; r < n; ++r) k[r] = 0;
    for (int d = 0; d < depth; ++d) {
      for (std::size_t r = 0; r < n; ++r) {
        const std::uint32_t i = k[r];
        // NaN goes right, like x < value being false in the preorder walk.
        k[r] = 2 * i + 1 + static_cast<std::uint32_t>(!(x[r * dims + feature[i]] < value[i]));
      }
    }
    for (std::size_t r = 0; r < n; ++r) sum[r] += value[k[r]];
  }
}

// One sample (ep-score's case): four trees walked together, indices in registers, so
// four independent load chains are in flight; additions still in tree order.
double Forest::accumulate_one(const double* x) const {
  const int depth = flat_depth_;
  const std::size_t count = trees_.size();
  const double* value = flat_value_.data();
  const std::uint16_t* feature = flat_feature_.data();
  const std::size_t vs = value_stride_, fs = feature_stride_;
  double sum = 0;
  std::size_t t = 0;
  for (; t + 4 <= count; t += 4) {
    const double *v0 = value + t * vs, *v1 = v0 + vs, *v2 = v1 + vs, *v3 = v2 + vs;
    const std::uint16_t *f0 = feature + t * fs, *f1 = f0 + fs, *f2 = f1 + fs, *f3 = f2 + fs;
    std::uint32_t k0 = 0, k1 = 0, k2 = 0, k3 = 0;
    for (int d = 0; d < depth; ++d) {
      k0 = 2 * k0 + 1 + static_cast<std::uint32_t>(!(x[f0[k0]] < v0[k0]));
      k1 = 2 * k1 + 1 + static_cast<std::uint32_t>(!(x[f1[k1]] < v1[k1]));
      k2 = 2 * k2 + 1 + static_cast<std::uint32_t>(!(x[f2[k2]] < v2[k2]));
      k3 = 2 * k3 + 1 + static_cast<std::uint32_t>(!(x[f3[k3]] < v3[k3]));
    }
    sum += v0[k0];
    sum += v1[k1];
    sum += v2[k2];
    sum += v3[k3];
  }
  for (; t < count; ++t) {
    const double* v = value + t * vs;
    const std::uint16_t* f = feature + t * fs;
    std::uint32_t k = 0;
    for (int d = 0; d < depth; ++d) k = 2 * k + 1 + static_cast<std::uint32_t>(!(x[f[k]] < v[k]));
    sum += v[k];
  }
  return sum;
}

double Forest::mean_path_length(const double* x) const {
  double sum = 0;
  if (flat_depth_ >= 0) {
    sum = accumulate_one(x);
  } else {
    for (const auto& t : trees_) sum += t.path_length(x);
  }
  return sum / static_cast<double>(trees_.size());
}

double Forest::score(const double* x) const {
  return std::exp2(-mean_path_length(x) / c_psi_);
}

void Forest::score(const double* x, std::size_t n, double* out) const {
  const double trees = static_cast<double>(trees_.size());
  double sum[kBlock];
  for (std::size_t j = 0; j < n; j += kBlock) {
    const std::size_t m = std::min(kBlock, n - j);
    const double* block = x + j * dims_;
    if (flat_depth_ >= 0) {
      std::fill_n(sum, m, 0.0);
      accumulate(block, m, sum);
    } else {
      for (std::size_t r = 0; r < m; ++r) {
        sum[r] = 0;
        for (const auto& t : trees_) sum[r] += t.path_length(block + r * dims_);
      }
    }
    for (std::size_t r = 0; r < m; ++r) out[j + r] = std::exp2(-(sum[r] / trees) / c_psi_);
  }
}

arma::vec Forest::score(const arma::mat& X) const {
  arma::vec out(X.n_cols);
  if (X.n_rows == dims_) {
    if (X.n_cols > 0) score(X.memptr(), X.n_cols, out.memptr());
  } else {
    for (arma::uword j = 0; j < X.n_cols; ++j) out[j] = score(X.colptr(j));
  }
  return out;
}

}  // namespace ep::iforest
