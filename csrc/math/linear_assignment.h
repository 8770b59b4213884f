#pragma once
// The rectangular linear assignment problem by shortest augmenting paths (Crouse, "On implementing 2D
// rectangular assignment algorithms", IEEE TAES 52(4), 2016), step for step as scipy's
// linear_sum_assignment solves it, so that the solution — ties included — is scipy's:
//   * float64 throughout; a problem with fewer columns than rows is solved transposed;
//   * each row in turn grows a shortest-path tree from the dual-reduced costs
//     r = minVal + c(i, j) − u(i) − v(j); the columns not yet in the tree are listed in reverse order and
//     the one taken leaves the list by swapping in the last;
//   * the next column is the one of least path cost, and among equals the last one still unassigned
//     (`r < lowest || (r == lowest && column unassigned)`);
//   * duals updated along the tree, then the path augmented back to the row.
// Here: the per-column pieces (relax, the pick's order, the dual updates, the augmentation) for the
// CPU's sequential solve and CUDA's warp-wide one (cuda/linear_assignment.cu), over a workspace the
// caller provides.
#include <cmath>
#include <cstdint>
#include "common/host_device.h"

namespace fastloss::linear_assignment {

enum Status : int32_t { kSolved = 0, kInvalid = 1, kInfeasible = 2 };

// The per-problem scratch: nr ≤ nc after the transpose.
struct Workspace {
  double* u;                // (nr) row duals
  double* v;                // (nc) column duals
  double* shortest;         // (nc) path costs
  int64_t* path;            // (nc) the row before each column on its path
  int64_t* col4row;         // (nr)
  int64_t* row4col;         // (nc)
  int64_t* remaining;       // (nc) the columns not yet in the tree
  bool* row_in_tree;        // (nr) SR
  bool* col_in_tree;        // (nc) SC
  double* dense = nullptr;  // (nr·nc) or none: a transposed problem's costs, copied
};
// Its size in units of max(nr, nc): doubles, int64s and bools.
constexpr int64_t kWorkspaceDoubles = 3, kWorkspaceInts = 4, kWorkspaceFlags = 2;

// The pieces of one augmentation, shared by the sequential solve below and CUDA's warp-wide one
// (cuda/linear_assignment.cu), so that both compute scipy's numbers.

// Column j's path cost through row i (scipy: r = minVal + cost[i][j] − u[i] − v[j], kept when
// shorter, with its path); returns the column's path cost. A mask, not a branch, for the path: random
// costs mispredict it.
template <typename Cost>
FASTLOSS_HD double relax(const Cost& cost, const Workspace& w, int64_t i, int64_t j, double min_value, double u_i) {
  const double r = min_value + cost(i, j) - u_i - w.v[j];
  const bool shorter = r < w.shortest[j];
  const int64_t keep = int64_t{shorter} - 1;
  w.path[j] = (w.path[j] & keep) | (i & ~keep);
  const double s = shorter ? r : w.shortest[j];
  w.shortest[j] = s;
  return s;
}

// A column of the scan: its path cost, its place in the list, whether it is unassigned. scipy's scan
// takes the least path cost and, among equals, the last one in the list still unassigned, else the
// first: as an order, a total one (places differ), so any split of the scan reduces to scipy's pick.
struct Candidate {
  double value;
  int64_t index;
  bool free;
};

FASTLOSS_HD bool precedes(const Candidate& a, const Candidate& b) {
  if (a.value != b.value) return a.value < b.value;
  if (a.free != b.free) return a.free;
  return a.free ? a.index > b.index : a.index < b.index;
}

// After the path to `sink` is found from `row` (min_val its cost): the duals of the tree's rows other
// than `row` and of its columns (scipy's updates), then the assignment along the path.
FASTLOSS_HD void update_row_dual(const Workspace& w, int64_t r, int64_t row, double min_val) {
  if (w.row_in_tree[r] && r != row) w.u[r] += min_val - w.shortest[w.col4row[r]];
}

FASTLOSS_HD void update_column_dual(const Workspace& w, int64_t c, double min_val) {
  w.v[c] -= w.col_in_tree[c] ? min_val - w.shortest[c] : 0.0;  // (a select, which vectorises; v − 0 is v)
}

FASTLOSS_HD void augment(const Workspace& w, int64_t sink, int64_t row) {
  for (int64_t j = sink;;) {
    const int64_t r = w.path[j];
    w.row4col[j] = r;
    const int64_t previous = w.col4row[r];
    w.col4row[r] = j;
    j = previous;
    if (r == row) break;
  }
}

// The column the sequential scan takes, found after the scan from the least path cost (a chain of
// comparisons within the scan would serialise its every step).
FASTLOSS_HD int64_t next_column(const Workspace& w, int64_t num_remaining, double lowest) {
  int64_t index = -1;
  for (int64_t it = num_remaining - 1; it >= 0; --it) {
    const int64_t j = w.remaining[it];
    if (w.shortest[j] == lowest) {
      index = it;
      if (w.row4col[j] == -1) break;
    }
  }
  return index;
}

// cost(i, j) of the (possibly transposed, possibly negated) problem, nr × nc with nr ≤ nc.
template <typename Cost>
FASTLOSS_HD int64_t augmenting_path(const Cost& cost, int64_t nr, int64_t nc, const Workspace& w, int64_t i,
                                    double& min_val) {
  double min_value = 0;
  int64_t num_remaining = nc;
  for (int64_t it = 0; it < nc; ++it) {
    w.remaining[it] = nc - it - 1;  // (reverse order: the tie rule's order)
    w.col_in_tree[it] = false;
    w.shortest[it] = INFINITY;
  }
  for (int64_t r = 0; r < nr; ++r) w.row_in_tree[r] = false;
  int64_t sink = -1;
  while (sink == -1) {
    w.row_in_tree[i] = true;
    const double u_i = w.u[i];
    // the path costs through row i, and their least (two running minima: exact, as min is)
    double lowest0 = INFINITY, lowest1 = INFINITY;
    int64_t it = 0;
    for (; it + 1 < num_remaining; it += 2) {
      const double s0 = relax(cost, w, i, w.remaining[it], min_value, u_i);
      const double s1 = relax(cost, w, i, w.remaining[it + 1], min_value, u_i);
      lowest0 = s0 < lowest0 ? s0 : lowest0;
      lowest1 = s1 < lowest1 ? s1 : lowest1;
    }
    if (it < num_remaining) {
      const double s0 = relax(cost, w, i, w.remaining[it], min_value, u_i);
      lowest0 = s0 < lowest0 ? s0 : lowest0;
    }
    min_value = lowest1 < lowest0 ? lowest1 : lowest0;
    if (min_value == INFINITY) return -1;  // infeasible
    const int64_t index = next_column(w, num_remaining, min_value);
    const int64_t j = w.remaining[index];
    if (w.row4col[j] == -1) {
      sink = j;
    } else {
      i = w.row4col[j];
    }
    w.col_in_tree[j] = true;
    w.remaining[index] = w.remaining[--num_remaining];
  }
  min_val = min_value;
  return sink;
}

// Solves an nr × nc problem (nr ≤ nc) into col4row; kSolved or kInfeasible. The caller has checked
// the entries (no NaN, no −inf).
template <typename Cost>
FASTLOSS_HD Status solve(const Cost& cost, int64_t nr, int64_t nc, const Workspace& w) {
  for (int64_t r = 0; r < nr; ++r) w.u[r] = 0, w.col4row[r] = -1;
  for (int64_t c = 0; c < nc; ++c) w.v[c] = 0, w.path[c] = -1, w.row4col[c] = -1;
  for (int64_t row = 0; row < nr; ++row) {
    double min_val = 0;
    const int64_t sink = augmenting_path(cost, nr, nc, w, row, min_val);
    if (sink < 0) return kInfeasible;
    w.u[row] += min_val;
    for (int64_t r = 0; r < nr; ++r) update_row_dual(w, r, row, min_val);
    for (int64_t c = 0; c < nc; ++c) update_column_dual(w, c, min_val);
    augment(w, sink, row);
  }
  return kSolved;
}

// A problem's costs: entry (i, j) of the caller's rows × cols block (row stride ld), transposed when
// it has fewer columns than rows, negated to maximise, in float64.
template <typename scalar_t>
struct BlockCost {
  const scalar_t* data;
  int64_t ld;
  bool transpose, maximize;
  FASTLOSS_HD double operator()(int64_t i, int64_t j) const {
    const double c = static_cast<double>(transpose ? data[j * ld + i] : data[i * ld + j]);
    return maximize ? -c : c;
  }
};

FASTLOSS_HD bool valid_entry(double c) { return !(c != c || c == -INFINITY); }

// Whether every entry is a number other than −inf (after the sign of maximize): scipy's check.
template <typename scalar_t>
FASTLOSS_HD bool valid_entries(const BlockCost<scalar_t>& cost, int64_t nr, int64_t nc) {
  bool valid = true;
  for (int64_t i = 0; i < nr; ++i)
    for (int64_t j = 0; j < nc; ++j) valid &= valid_entry(cost(i, j));
  return valid;
}

// A transposed problem's costs copied once into a dense nr × nc float64 array, as scipy copies them:
// the solver's scan then reads a row's consecutive doubles rather than one cache line per entry. The
// caller's block is read 8 of its rows at a time, for the same reason. Also scipy's check.
struct DenseCost {
  const double* data;
  int64_t nc;
  FASTLOSS_HD double operator()(int64_t i, int64_t j) const { return data[i * nc + j]; }
};

template <typename scalar_t>
FASTLOSS_HD bool copy_valid_entries(const BlockCost<scalar_t>& cost, int64_t nr, int64_t nc, double* dense) {
  constexpr int64_t kTile = 8;
  for (int64_t j0 = 0; j0 < nc; j0 += kTile) {
    const int64_t j1 = j0 + kTile < nc ? j0 + kTile : nc;
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = j0; j < j1; ++j) dense[i * nc + j] = cost(i, j);
  }
  bool valid = true;  // (a pass of its own, over consecutive doubles: it vectorises)
  for (int64_t k = 0; k < nr * nc; ++k) valid &= valid_entry(dense[k]);
  return valid;
}

// A problem as it is solved: its costs, transposed when it has fewer columns than rows (nr ≤ nc).
template <typename scalar_t>
struct Problem {
  BlockCost<scalar_t> cost;
  int64_t nr, nc;
  FASTLOSS_HD Problem(const scalar_t* data, int64_t ld, int64_t rows, int64_t cols, bool maximize)
      : cost{data, ld, cols < rows, maximize}, nr(cols < rows ? cols : rows), nc(cols < rows ? rows : cols) {}
  FASTLOSS_HD bool transposed() const { return cost.transpose; }

  // The solved problem's pairs into row_ind / col_ind, by original row. Transposed: the pairs
  // (col4row[r], r) sorted by their original row col4row[r] (distinct), by marking each original row's
  // column in row4col's place, then reading the rows in order.
  FASTLOSS_HD void write_pairs(const Workspace& w, int64_t* row_ind, int64_t* col_ind) const {
    if (!transposed()) {
      for (int64_t r = 0; r < nr; ++r) row_ind[r] = r, col_ind[r] = w.col4row[r];
      return;
    }
    for (int64_t c = 0; c < nc; ++c) w.row4col[c] = -1;
    for (int64_t r = 0; r < nr; ++r) w.row4col[w.col4row[r]] = r;
    int64_t k = 0;
    for (int64_t c = 0; c < nc; ++c)
      if (w.row4col[c] >= 0) row_ind[k] = c, col_ind[k] = w.row4col[c], ++k;
  }
};

// One problem of `rows` × `cols` (the unpadded block, row stride ld) into row_ind / col_ind (min(rows,
// cols) pairs, by row; −1 past them up to `width`): scipy's solution, or its status.
template <typename scalar_t>
FASTLOSS_HD Status assign(const scalar_t* data, int64_t ld, int64_t rows, int64_t cols, bool maximize,
                          const Workspace& w, int64_t width, int64_t* row_ind, int64_t* col_ind) {
  for (int64_t k = 0; k < width; ++k) row_ind[k] = -1, col_ind[k] = -1;
  if (rows == 0 || cols == 0) return kSolved;
  const Problem<scalar_t> problem(data, ld, rows, cols, maximize);
  const int64_t nr = problem.nr, nc = problem.nc;
  Status status;
  if (problem.transposed() && w.dense != nullptr) {
    if (!copy_valid_entries(problem.cost, nr, nc, w.dense)) return kInvalid;
    status = solve(DenseCost{w.dense, nc}, nr, nc, w);
  } else {
    if (!valid_entries(problem.cost, nr, nc)) return kInvalid;
    status = solve(problem.cost, nr, nc, w);
  }
  if (status == kSolved) problem.write_pairs(w, row_ind, col_ind);
  return status;
}

}  // namespace fastloss::linear_assignment
