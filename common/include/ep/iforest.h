#pragma once
// Isolation Forest (Liu, Ting, Zhou, "Isolation Forest", ICDM 2008), shared by ep-train
// (fit) and ep-score (score). Random axis-aligned splits drawn uniformly between the
// node sample's min and max, trees grown to the height limit ceil(log2 psi), path
// lengths normalised by c(psi), anomaly score s = 2^(-E[h(x)] / c(psi)).
//
// Bit-reproducible: the only randomness is ep::iforest::Rng (xoshiro256** seeded by
// splitmix64, no std:: distributions), so the same data, parameters and seed give the
// same trees on every platform with IEEE doubles.
//
// Data layout: an arma::mat with one COLUMN per sample (features x samples), so a
// sample is contiguous in memory (Armadillo is column-major).
//
// Scoring layout: besides its trees (preorder nodes, the form that is serialised), a
// forest keeps a copy made for scoring: each tree padded to a complete binary tree of the
// forest's depth, breadth first, in flat arrays (split values and leaf path lengths;
// feature indices). A walk is then a fixed number of branch-free steps
// (k = 2k + 1 + (x[f] >= v)), and Forest::score(matrix) walks a block of samples through
// one tree before moving to the next so the tree stays in L1. Scores are bit-identical to
// the preorder walk (same additions in the same order). Forests deeper than
// kMaxFlatDepth (only with an explicit large height limit) use the preorder walk.
#include <armadillo>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ep/rng.h"
#include "ep/status.h"

namespace ep::iforest {

// xoshiro256** seeded through splitmix64 (ep/rng.h); the forest draws with uniform()
// and below() only.
using Rng = ep::Rng;

// splitmix64 finaliser: mixes a 64-bit value (used to derive per-series seeds).
std::uint64_t mix64(std::uint64_t x);
// FNV-1a 64 of a string (stable across platforms and runs, unlike std::hash).
std::uint64_t fnv1a64(std::string_view s);

// c(n): average path length of an unsuccessful search in a binary search tree of n
// points, 2 H(n-1) - 2 (n-1) / n with H(i) ~ ln(i) + Euler's constant; c(1) = 0, c(2) = 1.
double average_path_length(double n);

struct Params {
  int trees = 100;
  int sample = 256;         // psi; capped at the number of training rows
  std::uint64_t seed = 1;
  int height_limit = 0;     // 0 = ceil(log2 psi)
};

// One node of a tree, stored in preorder: the left child of node i is node i + 1.
// 16 bytes, so four share a cache line on the scoring path.
struct Node {
  std::int32_t feature = -1;  // -1 for a leaf
  std::int32_t right = 0;     // index of the right child (internal nodes)
  double value = 0;           // split value (go left when x < value), or for a leaf c(size)
};

class Tree {
 public:
  // Path length of x: edges to the leaf plus c(leaf size).
  double path_length(const double* x) const;
  const std::vector<Node>& nodes() const { return nodes_; }
  // Training samples that reached each node (parallel to nodes(); kept for the artefact).
  const std::vector<std::uint32_t>& sizes() const { return sizes_; }
  // Appends a node in preorder (for builders, decoders and tests).
  void add(const Node& n, std::uint32_t size) {
    nodes_.push_back(n);
    sizes_.push_back(size);
  }
  Node& node(std::size_t i) { return nodes_[i]; }
  std::size_t size() const { return nodes_.size(); }
  void reserve(std::size_t n) {
    nodes_.reserve(n);
    sizes_.reserve(n);
  }
  // Compact binary encoding (preorder; see docs/model-format.md), base64.
  std::string encode() const;
  static Result<Tree> decode(std::string_view base64, std::size_t dims);

 private:
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> sizes_;
};

class Forest {
 public:
  // X: features x samples, all values finite. Fails on empty or non-finite input.
  static Result<Forest> fit(const arma::mat& X, const Params& params);

  // Mean path length over the trees.
  double mean_path_length(const double* x) const;
  // 2^(-E[h(x)] / c(psi)), in (0, 1]; 0.5 is "no distinct anomaly".
  double score(const double* x) const;
  // Scores every column of X.
  arma::vec score(const arma::mat& X) const;

  // Scores n samples stored contiguously, sample j at x + j * dims(), into out[0, n).
  void score(const double* x, std::size_t n, double* out) const;

  std::size_t dims() const { return dims_; }
  int psi() const { return psi_; }
  int height_limit() const { return height_limit_; }
  const std::vector<Tree>& trees() const { return trees_; }

  // Rebuilds a forest from its parts (model loading). Fails on an empty or malformed tree.
  static Result<Forest> assemble(std::size_t dims, int psi, int height_limit,
                                 std::vector<Tree> trees);

  // Depth of the scoring layout; -1 when the forest is too deep for it.
  int flat_depth() const { return flat_depth_; }
  static constexpr int kMaxFlatDepth = 10;

 private:
  static constexpr std::size_t kBlock = 16;  // samples walked through a tree together

  // Builds the scoring layout from trees_ (fails on a malformed tree).
  Status compile();
  // Adds each of the n (<= kBlock) samples' path lengths over all trees to sum[0, n).
  void accumulate(const double* x, std::size_t n, double* sum) const;
  // The same for one sample; returns the sum.
  double accumulate_one(const double* x) const;

  std::size_t dims_ = 0;
  int psi_ = 0;
  int height_limit_ = 0;
  double c_psi_ = 1;
  std::vector<Tree> trees_;
  int flat_depth_ = -1;
  std::size_t value_stride_ = 0, feature_stride_ = 0;  // per tree
  std::vector<double> flat_value_;           // splits (internal), path lengths (leaves)
  std::vector<std::uint16_t> flat_feature_;  // feature of each internal node
};

}  // namespace ep::iforest
