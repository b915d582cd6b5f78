#include "ep/iforest.h"

#include <gtest/gtest.h>

#include <cmath>
#include <type_traits>

using namespace ep::iforest;

namespace {

// Normal cluster around 0 plus `outliers` points far away, as features x samples.
arma::mat cluster_with_outliers(std::size_t normal, std::size_t outliers, std::uint64_t seed) {
  Rng rng(seed);
  arma::mat X(3, normal + outliers);
  for (std::size_t j = 0; j < X.n_cols; ++j)
    for (std::size_t f = 0; f < 3; ++f) {
      // Sum of uniforms: roughly normal, deterministic.
      double v = rng.uniform() + rng.uniform() + rng.uniform() - 1.5;
      X(f, j) = j < normal ? v : v + 8.0 * (f == j % 3 ? 1 : -1);
    }
  return X;
}

int depth_of(const std::vector<Node>& nodes, std::size_t i) {
  if (nodes[i].feature < 0) return 0;
  return 1 + std::max(depth_of(nodes, i + 1), depth_of(nodes, static_cast<std::size_t>(nodes[i].right)));
}

}  // namespace

TEST(AveragePathLength, MatchesHandComputedValues) {
  EXPECT_EQ(average_path_length(0), 0.0);
  EXPECT_EQ(average_path_length(1), 0.0);
  EXPECT_EQ(average_path_length(2), 1.0);
  // c(3) = 2 (ln 2 + gamma) - 2*2/3
  EXPECT_NEAR(average_path_length(3), 2 * (std::log(2.0) + 0.5772156649015329) - 4.0 / 3, 1e-12);
  // c(256) = 2 (ln 255 + gamma) - 2*255/256 = 10.244770...
  EXPECT_NEAR(average_path_length(256), 10.24477, 1e-5);
}

// One generator for the forest and ep-sim (ep/rng.h), so there is one place to keep
// reproducible.
static_assert(std::is_same_v<Rng, ep::Rng>);

TEST(Rng, SameSeedSameSequenceAndBoundedDraws) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    auto x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
  int hist[7] = {};
  for (int i = 0; i < 70000; ++i) {
    auto v = a.below(7);
    ASSERT_LT(v, 7u);
    ++hist[v];
    double u = a.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  for (int h : hist) EXPECT_NEAR(h, 10000, 500);
}

TEST(Tree, PathLengthCountsEdgesPlusLeafAdjustment) {
  Tree t;
  // root: x0 < 0.5 ? leaf(1) : (x1 < 0 ? leaf(3) : leaf(1))
  t.add({0, 2, 0.5}, 5);
  t.add({-1, 0, average_path_length(1)}, 1);
  t.add({1, 4, 0.0}, 4);
  t.add({-1, 0, average_path_length(3)}, 3);
  t.add({-1, 0, average_path_length(1)}, 1);
  double a[2] = {0.2, 5}, b[2] = {0.7, -1}, c[2] = {0.7, 1};
  EXPECT_DOUBLE_EQ(t.path_length(a), 1.0);
  EXPECT_DOUBLE_EQ(t.path_length(b), 2.0 + average_path_length(3));
  EXPECT_DOUBLE_EQ(t.path_length(c), 2.0);
  // Encoding round trip keeps structure and leaf adjustments.
  auto back = Tree::decode(t.encode(), 2);
  ASSERT_TRUE(back.is_ok());
  EXPECT_DOUBLE_EQ(back->path_length(b), 2.0 + average_path_length(3));
  EXPECT_DOUBLE_EQ(back->path_length(c), 2.0);
}

TEST(Forest, ScoreIsTwoToTheMinusNormalisedPathLength) {
  Tree t;
  t.add({0, 2, 0.5}, 4);
  t.add({-1, 0, average_path_length(1)}, 1);
  t.add({-1, 0, average_path_length(3)}, 3);
  auto f = Forest::assemble(1, 4, 2, {t, t});
  ASSERT_TRUE(f.is_ok());
  double lo = 0.1, hi = 0.9;
  EXPECT_DOUBLE_EQ(f->score(&lo), std::exp2(-1.0 / average_path_length(4)));
  EXPECT_DOUBLE_EQ(f->score(&hi), std::exp2(-(1.0 + average_path_length(3)) / average_path_length(4)));
}

TEST(Forest, TreesRespectHeightLimitCeilLog2Psi) {
  arma::mat X = cluster_with_outliers(2000, 0, 1);
  auto f = Forest::fit(X, Params{.trees = 20, .sample = 256, .seed = 9});
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->psi(), 256);
  EXPECT_EQ(f->height_limit(), 8);
  for (const auto& t : f->trees()) {
    EXPECT_LE(depth_of(t.nodes(), 0), 8);
    EXPECT_EQ(t.sizes()[0], 256u);
  }
  auto small = Forest::fit(X.cols(0, 99), Params{.trees = 5, .sample = 256, .seed = 9});
  ASSERT_TRUE(small.is_ok());
  EXPECT_EQ(small->psi(), 100);  // psi capped at the rows available
  EXPECT_EQ(small->height_limit(), 7);
}

TEST(Forest, SameSeedIsBitReproducibleOtherSeedDiffers) {
  arma::mat X = cluster_with_outliers(1000, 5, 3);
  auto a = Forest::fit(X, Params{.trees = 50, .sample = 128, .seed = 77});
  auto b = Forest::fit(X, Params{.trees = 50, .sample = 128, .seed = 77});
  auto c = Forest::fit(X, Params{.trees = 50, .sample = 128, .seed = 78});
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  bool any_diff = false;
  for (std::size_t i = 0; i < a->trees().size(); ++i) {
    EXPECT_EQ(a->trees()[i].encode(), b->trees()[i].encode());
    any_diff |= a->trees()[i].encode() != c->trees()[i].encode();
  }
  EXPECT_TRUE(any_diff);
  arma::vec sa = a->score(X), sb = b->score(X);
  for (std::size_t j = 0; j < X.n_cols; ++j) EXPECT_EQ(sa[j], sb[j]);  // bit-identical
}

TEST(Forest, OutliersScoreHigherThanNormalPoints) {
  arma::mat X = cluster_with_outliers(1000, 10, 5);
  auto f = Forest::fit(X, Params{});
  ASSERT_TRUE(f.is_ok());
  arma::vec s = f->score(X);
  double max_normal = s.head(1000).max(), min_outlier = s.tail(10).min();
  EXPECT_GT(min_outlier, max_normal);
  EXPECT_GT(min_outlier, 0.6);
  EXPECT_LT(arma::median(s.head(1000)), 0.5);
}

TEST(Forest, RejectsEmptyAndNonFiniteTrainingData) {
  EXPECT_EQ(Forest::fit(arma::mat(3, 0), Params{}).status().code(), ep::Code::kData);
  arma::mat X(2, 10, arma::fill::ones);
  X(1, 3) = std::nan("");
  EXPECT_EQ(Forest::fit(X, Params{}).status().code(), ep::Code::kData);
}

TEST(Tree, DecodeRejectsTruncatedOrWrongDimensions) {
  arma::mat X = cluster_with_outliers(300, 0, 2);
  auto f = Forest::fit(X, Params{.trees = 1, .sample = 64, .seed = 1});
  ASSERT_TRUE(f.is_ok());
  std::string enc = f->trees()[0].encode();
  EXPECT_TRUE(Tree::decode(enc, 3).is_ok());
  EXPECT_FALSE(Tree::decode(enc, 1).is_ok());  // feature index out of range
  EXPECT_FALSE(Tree::decode(enc.substr(0, enc.size() / 2), 3).is_ok());
}

namespace {

// Reference score: the preorder walk of every tree, summed in tree order.
double preorder_score(const Forest& f, const double* x) {
  double sum = 0;
  for (const auto& t : f.trees()) sum += t.path_length(x);
  return std::exp2(-(sum / static_cast<double>(f.trees().size())) /
                   average_path_length(f.psi()));
}

// A chain tree: node k splits feature 0 at k; the left child is a leaf, the right the
// next split; `depth` splits in all.
Tree chain(int depth) {
  Tree t;
  for (int k = 0; k < depth; ++k) {
    t.add({0, static_cast<std::int32_t>(t.size() + 2), static_cast<double>(k)}, 2);
    t.add({-1, 0, average_path_length(1)}, 1);
  }
  t.add({-1, 0, average_path_length(2)}, 2);
  return t;
}

}  // namespace

TEST(Forest, FlatLayoutScoresBitIdenticalToPreorderWalk) {
  arma::mat X = cluster_with_outliers(3000, 30, 8);
  auto f = Forest::fit(X, Params{.trees = 37, .sample = 200, .seed = 5});
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->flat_depth(), 8);
  // Also odd inputs: NaN and infinities go right, as x < v is false in the walk.
  arma::mat Y = X.cols(0, 99);
  Y(0, 1) = std::nan("");
  Y(1, 2) = INFINITY;
  Y(2, 3) = -INFINITY;
  Y.col(4).fill(std::nan(""));
  for (const arma::mat* m : {&X, &Y}) {
    arma::vec batch = f->score(*m);
    for (arma::uword j = 0; j < m->n_cols; ++j) {
      const double ref = preorder_score(*f, m->colptr(j));
      ASSERT_EQ(f->score(m->colptr(j)), ref) << "column " << j;
      ASSERT_EQ(batch[j], ref) << "column " << j;
    }
  }
  // The raw batch entry point, with a count that is not a multiple of the block.
  std::vector<double> out(21);
  f->score(X.memptr(), out.size(), out.data());
  for (std::size_t j = 0; j < out.size(); ++j) EXPECT_EQ(out[j], preorder_score(*f, X.colptr(j)));
}

TEST(Forest, TreesOfDifferentDepthsArePaddedToTheDeepest) {
  Tree leaf;
  leaf.add({-1, 0, average_path_length(5)}, 5);
  auto f = Forest::assemble(1, 8, 3, {leaf, chain(3), chain(1)});
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->flat_depth(), 3);
  for (double x : {-1.0, 0.0, 0.5, 1.0, 1.5, 2.5, 9.0, std::nan("")})
    EXPECT_EQ(f->score(&x), preorder_score(*f, &x)) << x;
  // x = 1.5: the leaf tree gives c(5); chain(3) goes right, right, left to a leaf of
  // one sample at depth 3 (3 + c(1) = 3); chain(1) goes right to c(2) at depth 1 (2).
  double x = 1.5;
  double expect = (average_path_length(5) + 3.0 + (1.0 + 1.0)) / 3;
  EXPECT_DOUBLE_EQ(f->mean_path_length(&x), expect);
}

TEST(Forest, DeeperThanTheFlatLimitUsesThePreorderWalk) {
  auto f = Forest::assemble(1, 64, 16, {chain(Forest::kMaxFlatDepth + 2), chain(2)});
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->flat_depth(), -1);
  std::vector<double> xs;
  for (int k = -1; k < Forest::kMaxFlatDepth + 4; ++k) xs.push_back(k + 0.5);
  std::vector<double> batch(xs.size());
  f->score(xs.data(), xs.size(), batch.data());
  for (std::size_t j = 0; j < xs.size(); ++j) {
    EXPECT_EQ(f->score(&xs[j]), preorder_score(*f, &xs[j]));
    EXPECT_EQ(batch[j], preorder_score(*f, &xs[j]));
  }
}

TEST(Forest, AssembleRejectsMalformedTrees) {
  Tree empty;
  EXPECT_EQ(Forest::assemble(1, 4, 2, {empty}).status().code(), ep::Code::kData);
  Tree bad_right;  // right child index pointing into the left subtree
  bad_right.add({0, 1, 0.5}, 2);
  bad_right.add({-1, 0, 0}, 1);
  bad_right.add({-1, 0, 0}, 1);
  EXPECT_EQ(Forest::assemble(1, 4, 2, {bad_right}).status().code(), ep::Code::kData);
  Tree past_end;  // right child beyond the nodes
  past_end.add({0, 5, 0.5}, 2);
  past_end.add({-1, 0, 0}, 1);
  past_end.add({-1, 0, 0}, 1);
  EXPECT_EQ(Forest::assemble(1, 4, 2, {past_end}).status().code(), ep::Code::kData);
  Tree open;  // an internal node without its children
  open.add({0, 1, 0.5}, 2);
  EXPECT_EQ(Forest::assemble(1, 4, 2, {open}).status().code(), ep::Code::kData);
  Tree trailing = chain(1);  // a node after the tree ends
  trailing.add({-1, 0, 0}, 1);
  EXPECT_EQ(Forest::assemble(1, 4, 2, {trailing}).status().code(), ep::Code::kData);
  // Feature index out of range for the forest's dimensions.
  EXPECT_EQ(Forest::assemble(1, 4, 2, {chain(1), [] {
                               Tree t;
                               t.add({1, 2, 0.5}, 2);
                               t.add({-1, 0, 0}, 1);
                               t.add({-1, 0, 0}, 1);
                               return t;
                             }()}).status().code(),
            ep::Code::kData);
  EXPECT_TRUE(Forest::assemble(1, 4, 2, {chain(1)}).is_ok());
}

TEST(Forest, EveryFlatDepthScoresLikeThePreorderWalk) {
  // psi = 2^d gives height limit d: every depth the scoring layout handles, with full
  // blocks of samples and a partial one.
  arma::mat X = cluster_with_outliers(1500, 15, 21);
  for (int d = 1; d <= Forest::kMaxFlatDepth; ++d) {
    auto f = Forest::fit(X, Params{.trees = 13, .sample = 1 << d, .seed = 100u + d});
    ASSERT_TRUE(f.is_ok());
    ASSERT_EQ(f->flat_depth(), d);
    arma::vec s = f->score(X.cols(0, 36));
    for (arma::uword j = 0; j < s.n_elem; ++j) {
      ASSERT_EQ(s[j], preorder_score(*f, X.colptr(j))) << "depth " << d << " column " << j;
      ASSERT_EQ(f->score(X.colptr(j)), s[j]) << "depth " << d << " column " << j;
    }
  }
}
