#pragma once
/// @file
/// Sparse target distributions: a `[rows × vocab_size]` matrix of probabilities stored CSR-like.
///
/// This is the hand-over format between explicit fusion (fusekit::dist, which builds the fused
/// per-position targets) and the training loss (fusekit::loss, which consumes them without densifying).
///
/// Layout (`sparse_target_view`, all views rank 1, any memory space):
/// * `offsets` — `rows + 1` int64, `offsets[0] = 0`, non-decreasing, `offsets[rows] = nnz`;
/// * `ids`     — `nnz` vocabulary ids (`0 <= id < vocab_size`), unique within a row, any order (the
///   builders in fusekit::dist emit a top-k row in descending-logit order);
/// * `probs`   — `nnz` probabilities, `probs[k]` belongs to `ids[k]`; a non-empty row sums to 1 up to
///   rounding; ids not listed have probability 0.
///
/// Row `r` covers `[offsets[r], offsets[r+1])`. A row is one (sequence, position) pair; the caller
/// decides the row order (usually `row = b * L + t`). An **empty row carries no target**: the loss gives
/// that position weight 0 (the fusion builders never emit one unless every teacher row is empty).
///
/// `sparse_target<T>` owns host storage for the same layout and hands out views; `to_dense` expands a
/// view into a dense row-major matrix; `validate` checks every invariant above.

#include <fusekit/core/error.hpp>
#include <fusekit/view/strided_view.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace fusekit::dist {

/// Non-owning CSR view of sparse target rows (see the file comment).
template <class T = float, class Index = std::int32_t, class Space = host_space>
struct sparse_target_view {
  using value_type = T;
  using index_type = Index;
  using space_type = Space;

  vector_view<const std::int64_t, Space> offsets{};  ///< rows + 1 entries
  vector_view<const Index, Space> ids{};             ///< nnz vocabulary ids
  vector_view<const T, Space> probs{};               ///< nnz probabilities
  std::int64_t vocab_size = 0;                       ///< width of the dense equivalent

  /// Number of rows.
  FUSEKIT_HOST_DEVICE constexpr std::int64_t rows() const noexcept {
    return offsets.extent(0) > 0 ? offsets.extent(0) - 1 : 0;
  }
  /// Number of stored entries.
  FUSEKIT_HOST_DEVICE constexpr std::int64_t nnz() const noexcept { return ids.extent(0); }
  /// First entry of row r.
  FUSEKIT_HOST_DEVICE constexpr std::int64_t row_begin(std::int64_t r) const noexcept { return offsets[r]; }
  /// One past the last entry of row r.
  FUSEKIT_HOST_DEVICE constexpr std::int64_t row_end(std::int64_t r) const noexcept { return offsets[r + 1]; }
};

/// Owning host storage of sparse target rows.
template <class T = float, class Index = std::int32_t>
struct sparse_target {
  std::vector<std::int64_t> offsets{0};
  std::vector<Index> ids;
  std::vector<T> probs;
  std::int64_t vocab_size = 0;

  sparse_target() = default;
  explicit sparse_target(std::int64_t vocab) : vocab_size(vocab) {}

  std::int64_t rows() const noexcept { return static_cast<std::int64_t>(offsets.size()) - 1; }
  std::int64_t nnz() const noexcept { return static_cast<std::int64_t>(ids.size()); }
  /// Appends one row.
  void push_row(std::span<const Index> row_ids, std::span<const T> row_probs) {
    FUSEKIT_EXPECTS(row_ids.size() == row_probs.size(), shape_mismatch,
                    "sparse_target::push_row: " + std::to_string(row_ids.size()) + " ids but " +
                        std::to_string(row_probs.size()) + " probabilities");
    ids.insert(ids.end(), row_ids.begin(), row_ids.end());
    probs.insert(probs.end(), row_probs.begin(), row_probs.end());
    offsets.push_back(static_cast<std::int64_t>(ids.size()));
  }
  /// Appends an empty row (no target).
  void push_empty_row() { offsets.push_back(static_cast<std::int64_t>(ids.size())); }
  /// Appends every row of another target of the same vocabulary.
  void append(const sparse_target& other) {
    FUSEKIT_EXPECTS(other.vocab_size == vocab_size, shape_mismatch,
                    "sparse_target::append: vocabulary sizes differ (" + std::to_string(vocab_size) + " vs " +
                        std::to_string(other.vocab_size) + ")");
    const std::int64_t base = nnz();
    ids.insert(ids.end(), other.ids.begin(), other.ids.end());
    probs.insert(probs.end(), other.probs.begin(), other.probs.end());
    for (std::size_t r = 1; r < other.offsets.size(); ++r) offsets.push_back(base + other.offsets[r]);
  }
  /// Ids of row r.
  std::span<const Index> row_ids(std::int64_t r) const {
    return std::span<const Index>(ids).subspan(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                                               static_cast<std::size_t>(offsets[static_cast<std::size_t>(r) + 1] -
                                                                        offsets[static_cast<std::size_t>(r)]));
  }
  /// Probabilities of row r.
  std::span<const T> row_probs(std::int64_t r) const {
    return std::span<const T>(probs).subspan(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                                             static_cast<std::size_t>(offsets[static_cast<std::size_t>(r) + 1] -
                                                                      offsets[static_cast<std::size_t>(r)]));
  }
  /// A view of the storage (valid until the next modification).
  sparse_target_view<T, Index, host_space> view() const noexcept {
    return {host_view(offsets.data(), static_cast<std::int64_t>(offsets.size())),
            host_view(ids.data(), static_cast<std::int64_t>(ids.size())),
            host_view(probs.data(), static_cast<std::int64_t>(probs.size())), vocab_size};
  }
};

/// Checks the invariants of the file comment (host views); `sum_tolerance < 0` skips the row-sum check.
template <class T, class Index>
void validate(const sparse_target_view<T, Index, host_space>& t, double sum_tolerance = 1e-3) {
  FUSEKIT_EXPECTS(t.offsets.extent(0) >= 1, shape_mismatch, "sparse_target: offsets must have rows + 1 >= 1 entries");
  FUSEKIT_EXPECTS(t.ids.extent(0) == t.probs.extent(0), shape_mismatch,
                  "sparse_target: " + std::to_string(t.ids.extent(0)) + " ids but " +
                      std::to_string(t.probs.extent(0)) + " probabilities");
  FUSEKIT_EXPECTS(t.offsets[0] == 0 && t.offsets[t.rows()] == t.nnz(), shape_mismatch,
                  "sparse_target: offsets must start at 0 and end at nnz = " + std::to_string(t.nnz()));
  std::vector<std::int64_t> seen(static_cast<std::size_t>(std::max<std::int64_t>(t.vocab_size, 0)), -1);
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    FUSEKIT_EXPECTS(t.offsets[r] <= t.offsets[r + 1], shape_mismatch,
                    "sparse_target: offsets decrease at row " + std::to_string(r));
    double sum = 0;
    for (std::int64_t k = t.offsets[r]; k < t.offsets[r + 1]; ++k) {
      const auto id = static_cast<std::int64_t>(t.ids[k]);
      FUSEKIT_EXPECTS(id >= 0 && id < t.vocab_size, out_of_range,
                      "sparse_target: row " + std::to_string(r) + " has id " + std::to_string(id) +
                          " outside [0, " + std::to_string(t.vocab_size) + ")");
      FUSEKIT_EXPECTS(seen[static_cast<std::size_t>(id)] != r, invalid_argument,
                      "sparse_target: row " + std::to_string(r) + " lists id " + std::to_string(id) + " twice");
      seen[static_cast<std::size_t>(id)] = r;
      const double p = static_cast<double>(t.probs[k]);
      FUSEKIT_EXPECTS(p >= 0 && std::isfinite(p), invalid_argument,
                      "sparse_target: row " + std::to_string(r) + " has probability " + std::to_string(p));
      sum += p;
    }
    if (sum_tolerance >= 0 && t.offsets[r + 1] > t.offsets[r])
      FUSEKIT_EXPECTS(std::abs(sum - 1.0) <= sum_tolerance, invalid_argument,
                      "sparse_target: row " + std::to_string(r) + " sums to " + std::to_string(sum));
  }
}

/// Expands `t` into the dense `[rows × vocab_size]` matrix `out` (zeros elsewhere).
template <class T, class Index, class U>
void to_dense(const sparse_target_view<T, Index, host_space>& t, matrix_view<U, host_space> out) {
  FUSEKIT_EXPECTS(out.extent(0) == t.rows() && out.extent(1) == t.vocab_size, shape_mismatch,
                  "to_dense: output is " + std::to_string(out.extent(0)) + " x " + std::to_string(out.extent(1)) +
                      " but the target is " + std::to_string(t.rows()) + " x " + std::to_string(t.vocab_size));
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    for (std::int64_t v = 0; v < t.vocab_size; ++v) out(r, v) = U(0.0f);
    for (std::int64_t k = t.offsets[r]; k < t.offsets[r + 1]; ++k) {
      const auto id = static_cast<std::int64_t>(t.ids[k]);
      FUSEKIT_EXPECTS(id >= 0 && id < t.vocab_size, out_of_range,
                      "to_dense: id " + std::to_string(id) + " outside [0, " + std::to_string(t.vocab_size) + ")");
      out(r, id) = static_cast<U>(t.probs[k]);
    }
  }
}

}  // namespace fusekit::dist
