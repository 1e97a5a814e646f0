#pragma once
/// @file
/// MS ("mapping statistics", FuseChat's default): the sparse token-alignment count matrix
/// `C[pivot id, source id]` over a corpus of paired tokenizations, and the source -> pivot mapping
/// derived from it (reference §1.4).
///
/// **Counting.** For every text, the two tokenizations are aligned with DTW (§1.3) over their decoded
/// single-token strings (FuseChat's `decode([id])`, cost `cost_rule::fusechat`, FuseChat tie order). For
/// each pivot position `i` the *set* `S_i = { s_j : j in A(i) }` of source ids is formed and every id in it
/// adds 1 to `C[x_i, v]` — duplicates within one position count once (NumPy fancy-index `+= 1`).
///
/// **Mapping.** For each source id `v`, candidates are the pivot ids `p` with `C[p, v] != 0`:
/// * `ms_rule::frequency_first` (default): the candidate with the largest count; ties -> the smaller
///   cost `lev(aa, bb)` (below); ties -> the smaller pivot id. The count decides, the spelling only breaks
///   ties.
/// * `ms_rule::fusechat_score` (compatibility with the released FuseChat code): `score(p) = lev(aa, bb) ×
///   w × sigmoid(C[p, v])`, `w = 0.1` if `aa` is a substring of `bb` or vice versa else 1, the first minimal
///   score in ascending p. Here `aa = strip_S(raw_S(v))`, `bb = strip_P(raw_P(p))`, and if either is empty
///   `aa = subst(raw_S(v))`, `bb = raw_P(p)`. Note the count *multiplies* the distance: an exact match wins
///   whatever its frequency and among equal distances the **rarer** candidate wins.
/// * ids without candidates -> the pivot `unk` id, else the pivot `eos` id (`unmapped_policy::unk_or_eos`,
///   FuseChat), or -1 (`unmapped_policy::minus_one`);
/// * then the overrides source bos -> pivot bos and source eos -> pivot eos, in that order (each only if
///   both ids exist), so eos wins when the two source ids coincide.
///
/// **File format** (`write_count_matrix` / `read_count_matrix`), little-endian:
/// ```
///  0  char[8]   magic "FKALNCSR"
///  8  uint32    version = 1
/// 12  uint32    flags = 0
/// 16  uint64    rows  = pivot vocabulary size
/// 24  uint64    cols  = source vocabulary size
/// 32  uint64    nnz
/// 40  uint64    row_offsets[rows + 1]     (row_offsets[0] = 0, row_offsets[rows] = nnz, non-decreasing)
///     uint32    col_index[nnz]            (source ids, strictly ascending within a row)
///     uint32    count[nnz]                (> 0)
/// ```
/// It is FuseChat's SciPy CSR `.npz` content (shape V_P x V_S) without the NumPy container.

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/vocab/dtw.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/vocab_mapping.hpp>
#include <fusekit/vocab/vocabulary.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace fusekit::vocab {

/// Sparse CSR count matrix, rows = pivot ids, columns = source ids.
struct count_matrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> row_offsets{0};
  std::vector<std::int32_t> col_index;
  std::vector<std::uint32_t> counts;

  std::int64_t nnz() const noexcept { return static_cast<std::int64_t>(col_index.size()); }
  /// `C[p, v]` (0 when absent).
  std::uint32_t operator()(std::int64_t p, std::int64_t v) const {
    FUSEKIT_EXPECTS(p >= 0 && p < rows && v >= 0 && v < cols, out_of_range,
                    "count_matrix: (" + std::to_string(p) + ", " + std::to_string(v) + ") outside " +
                        std::to_string(rows) + " x " + std::to_string(cols));
    const auto b = col_index.begin() + row_offsets[static_cast<std::size_t>(p)];
    const auto e = col_index.begin() + row_offsets[static_cast<std::size_t>(p) + 1];
    const auto it = std::lower_bound(b, e, static_cast<std::int32_t>(v));
    return (it != e && *it == v) ? counts[static_cast<std::size_t>(it - col_index.begin())] : 0u;
  }
  /// Sum of all counts.
  std::uint64_t total() const noexcept {
    std::uint64_t s = 0;
    for (auto c : counts) s += c;
    return s;
  }

  /// Builds from packed keys `(p << 32) | v`, one per count unit (order irrelevant).
  static count_matrix from_keys(std::int64_t rows, std::int64_t cols, std::vector<std::uint64_t> keys) {
    std::sort(keys.begin(), keys.end());
    count_matrix c;
    c.rows = rows;
    c.cols = cols;
    c.row_offsets.assign(static_cast<std::size_t>(rows) + 1, 0);
    for (std::size_t k = 0; k < keys.size();) {
      std::size_t e = k;
      while (e < keys.size() && keys[e] == keys[k]) ++e;
      const auto p = static_cast<std::int64_t>(keys[k] >> 32);
      const auto v = static_cast<std::int32_t>(keys[k] & 0xFFFFFFFFu);
      FUSEKIT_EXPECTS(p < rows && v < cols, out_of_range,
                      "count_matrix: entry (" + std::to_string(p) + ", " + std::to_string(v) + ") outside " +
                          std::to_string(rows) + " x " + std::to_string(cols));
      c.col_index.push_back(v);
      c.counts.push_back(static_cast<std::uint32_t>(e - k));
      ++c.row_offsets[static_cast<std::size_t>(p) + 1];
      k = e;
    }
    for (std::int64_t r = 0; r < rows; ++r) c.row_offsets[static_cast<std::size_t>(r) + 1] += c.row_offsets[static_cast<std::size_t>(r)];
    return c;
  }
  /// Builds from (pivot id, source id, count) triplets; repeated cells add up.
  static count_matrix from_triplets(std::int64_t rows, std::int64_t cols,
                                    std::span<const std::tuple<std::int32_t, std::int32_t, std::uint32_t>> t) {
    std::vector<std::uint64_t> keys;
    for (auto [p, v, n] : t) {
      FUSEKIT_EXPECTS(p >= 0 && v >= 0, out_of_range, "count_matrix: negative id in a triplet");
      for (std::uint32_t k = 0; k < n; ++k) keys.push_back((std::uint64_t(std::uint32_t(p)) << 32) | std::uint32_t(v));
    }
    return from_keys(rows, cols, std::move(keys));
  }
};

/// Appends the count keys of one aligned pair (per-position set semantics) to `keys`.
inline void add_alignment_counts(std::vector<std::uint64_t>& keys, std::span<const std::int32_t> pivot_ids,
                                 std::span<const std::int32_t> source_ids, const token_alignment& a) {
  FUSEKIT_EXPECTS(a.pivot_size == static_cast<std::int64_t>(pivot_ids.size()) &&
                      a.source_size == static_cast<std::int64_t>(source_ids.size()),
                  shape_mismatch,
                  "add_alignment_counts: alignment is " + std::to_string(a.source_size) + " x " +
                      std::to_string(a.pivot_size) + " but the id sequences have " + std::to_string(source_ids.size()) +
                      " source and " + std::to_string(pivot_ids.size()) + " pivot ids");
  std::vector<std::int32_t> set;
  for (std::int64_t i = 0; i < a.pivot_size; ++i) {
    set.clear();
    for (std::int32_t j : a[i]) set.push_back(source_ids[static_cast<std::size_t>(j)]);
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
    const auto p = static_cast<std::uint64_t>(static_cast<std::uint32_t>(pivot_ids[static_cast<std::size_t>(i)]));
    for (std::int32_t v : set) keys.push_back((p << 32) | static_cast<std::uint32_t>(v));
  }
}

/// Which strings the DTW of `build_alignment_matrix` compares.
enum class token_string_form {
  decoded,  ///< `decode([id])` (FuseChat, default)
  raw,      ///< raw vocabulary strings (FuseLLM)
};

/// Options of `build_alignment_matrix`.
struct alignment_matrix_options {
  token_string_form form = token_string_form::decoded;
  cost_rule cost = cost_rule::fusechat;
  dtw_options dtw{};
};

namespace detail {
/// Per-id token strings (as code points) for the ids used, computed once.
inline std::unordered_map<std::int32_t, std::u32string> token_strings(const vocabulary& v,
                                                                     std::span<const std::vector<std::int32_t>> seqs,
                                                                     token_string_form form, const char* which) {
  std::unordered_map<std::int32_t, std::u32string> out;
  for (std::size_t t = 0; t < seqs.size(); ++t)
    for (std::int32_t id : seqs[t]) {
      if (out.count(id)) continue;
      FUSEKIT_EXPECTS(v.contains(id), out_of_range,
                      std::string(which) + " text " + std::to_string(t) + ": token id " + std::to_string(id) +
                          " is not in the vocabulary (size " + std::to_string(v.size()) + ")");
      out.emplace(id, utf8_decode(form == token_string_form::decoded ? v.decode_token(id) : v.raw(id)));
    }
  return out;
}
}  // namespace detail

/// Builds `C` over paired tokenizations (`pivot_texts[t]` and `source_texts[t]` tokenize the same text).
/// Empty texts (in either tokenization) are skipped. Parallel over texts with `policy`; the result does
/// not depend on the policy.
template <class Policy>
count_matrix build_alignment_matrix(const Policy& policy, const vocabulary& pivot, const vocabulary& source,
                                    std::span<const std::vector<std::int32_t>> pivot_texts,
                                    std::span<const std::vector<std::int32_t>> source_texts,
                                    const alignment_matrix_options& options = {}) {
  exec::check_runs_on<Policy>();
  FUSEKIT_EXPECTS(pivot_texts.size() == source_texts.size(), shape_mismatch,
                  "build_alignment_matrix: " + std::to_string(pivot_texts.size()) + " pivot texts but " +
                      std::to_string(source_texts.size()) + " source texts");
  const auto ps = detail::token_strings(pivot, pivot_texts, options.form, "pivot");
  const auto ss = detail::token_strings(source, source_texts, options.form, "source");
  token_cost cost{options.cost, utf8_decode(source.marker()), utf8_decode(pivot.marker())};
  const std::int64_t n = static_cast<std::int64_t>(pivot_texts.size());
  std::vector<std::vector<std::uint64_t>> keys(static_cast<std::size_t>(n));
  exec::for_each_n(policy, n, [&](std::int64_t t) {
    const auto& pid = pivot_texts[static_cast<std::size_t>(t)];
    const auto& sid = source_texts[static_cast<std::size_t>(t)];
    if (pid.empty() || sid.empty()) return;
    std::vector<std::u32string> pstr, sstr;
    pstr.reserve(pid.size());
    sstr.reserve(sid.size());
    for (auto id : pid) pstr.push_back(ps.at(id));
    for (auto id : sid) sstr.push_back(ss.at(id));
    const token_alignment a = dtw_align(sstr, pstr, cost, options.dtw);
    add_alignment_counts(keys[static_cast<std::size_t>(t)], pid, sid, a);
  });
  std::vector<std::uint64_t> all;
  for (auto& k : keys) all.insert(all.end(), k.begin(), k.end());
  return count_matrix::from_keys(pivot.size(), source.size(), std::move(all));
}

/// How MS picks among the co-aligned candidates.
enum class ms_rule {
  frequency_first,  ///< largest count, then smallest edit distance, then smallest id (default)
  fusechat_score,   ///< FuseChat's released `lev × 0.1-if-substring × sigmoid(count)` (compatibility)
};

/// What unmapped source ids become.
enum class unmapped_policy {
  unk_or_eos,  ///< pivot unk, else pivot eos (FuseChat), else -1
  minus_one,   ///< -1
};

/// Options of `ms_mapping`.
struct ms_options {
  ms_rule rule = ms_rule::frequency_first;
  unmapped_policy unmapped = unmapped_policy::unk_or_eos;
  /// Apply the bos -> bos, eos -> eos overrides.
  bool special_overrides = true;
};

/// The MS mapping from a count matrix (see the file comment). `distance[v]` holds `lev(aa, bb)` of the
/// chosen candidate, -1 for fallbacks and overrides.
inline vocab_mapping ms_mapping(const count_matrix& c, const vocabulary& pivot, const vocabulary& source,
                                const ms_options& options = {}) {
  FUSEKIT_EXPECTS(c.rows == pivot.size() && c.cols == source.size(), shape_mismatch,
                  "ms_mapping: count matrix is " + std::to_string(c.rows) + " x " + std::to_string(c.cols) +
                      " but the vocabularies have " + std::to_string(pivot.size()) + " pivot and " +
                      std::to_string(source.size()) + " source ids");
  // transpose: candidates per source id, ascending pivot id
  std::vector<std::int64_t> col_off(static_cast<std::size_t>(c.cols) + 1, 0);
  for (auto v : c.col_index) ++col_off[static_cast<std::size_t>(v) + 1];
  for (std::int64_t v = 0; v < c.cols; ++v) col_off[static_cast<std::size_t>(v) + 1] += col_off[static_cast<std::size_t>(v)];
  std::vector<std::int32_t> cand(c.col_index.size());
  std::vector<std::uint32_t> cnt(c.col_index.size());
  {
    std::vector<std::int64_t> fill(col_off.begin(), col_off.end() - 1);
    for (std::int64_t p = 0; p < c.rows; ++p)
      for (std::int64_t k = c.row_offsets[static_cast<std::size_t>(p)]; k < c.row_offsets[static_cast<std::size_t>(p) + 1]; ++k) {
        const auto v = static_cast<std::size_t>(c.col_index[static_cast<std::size_t>(k)]);
        cand[static_cast<std::size_t>(fill[v])] = static_cast<std::int32_t>(p);
        cnt[static_cast<std::size_t>(fill[v]++)] = c.counts[static_cast<std::size_t>(k)];
      }
  }
  const std::u32string sm = utf8_decode(source.marker()), pm = utf8_decode(pivot.marker());
  const std::int32_t fallback = options.unmapped == unmapped_policy::minus_one ? -1
                                : pivot.unk_id() >= 0                          ? pivot.unk_id()
                                                                               : pivot.eos_id();
  vocab_mapping m;
  m.pivot_of.assign(static_cast<std::size_t>(source.size()), -1);
  m.distance.assign(static_cast<std::size_t>(source.size()), -1);
  for (std::int64_t v = 0; v < source.size(); ++v) {
    const auto b = col_off[static_cast<std::size_t>(v)], e = col_off[static_cast<std::size_t>(v) + 1];
    if (b == e || !source.contains(v)) {
      if (source.contains(v)) m.pivot_of[static_cast<std::size_t>(v)] = fallback;
      continue;
    }
    const std::u32string a = utf8_decode(source.raw(v));
    const std::u32string a_stripped = strip_marker(a, sm);
    const std::u32string a_subst = substitute_marker(a, sm, pm);
    std::int32_t best_p = -1, best_d = 0;
    double best_score = 0;
    std::uint32_t best_cnt = 0;
    for (auto k = b; k < e; ++k) {
      const std::int32_t p = cand[static_cast<std::size_t>(k)];
      const std::uint32_t n = cnt[static_cast<std::size_t>(k)];
      const std::u32string bb_raw = utf8_decode(pivot.raw(p));
      std::u32string bb = strip_marker(bb_raw, pm);
      const std::u32string* aa = &a_stripped;
      if (a_stripped.empty() || bb.empty()) {
        aa = &a_subst;
        bb = bb_raw;
      }
      const std::int32_t d = levenshtein(*aa, bb);
      if (options.rule == ms_rule::fusechat_score) {
        const bool sub = aa->find(bb) != std::u32string::npos || bb.find(*aa) != std::u32string::npos;
        const double w = sub ? 0.1 : 1.0;
        const double score = static_cast<double>(d) * w * (1.0 / (1.0 + std::exp(-static_cast<double>(n))));
        if (best_p < 0 || score < best_score) {
          best_p = p;
          best_score = score;
          best_d = d;
        }
      } else {
        if (best_p < 0 || n > best_cnt || (n == best_cnt && d < best_d)) {
          best_p = p;
          best_cnt = n;
          best_d = d;
        }
      }
    }
    m.pivot_of[static_cast<std::size_t>(v)] = best_p;
    m.distance[static_cast<std::size_t>(v)] = best_d;
  }
  if (options.special_overrides) {
    if (source.bos_id() >= 0 && pivot.bos_id() >= 0) {
      m.pivot_of[static_cast<std::size_t>(source.bos_id())] = pivot.bos_id();
      m.distance[static_cast<std::size_t>(source.bos_id())] = -1;
    }
    if (source.eos_id() >= 0 && pivot.eos_id() >= 0) {
      m.pivot_of[static_cast<std::size_t>(source.eos_id())] = pivot.eos_id();
      m.distance[static_cast<std::size_t>(source.eos_id())] = -1;
    }
  }
  return m;
}

namespace detail {
inline constexpr char count_matrix_magic[8] = {'F', 'K', 'A', 'L', 'N', 'C', 'S', 'R'};
template <class T>
void write_le(std::ostream& out, T value) {
  static_assert(std::endian::native == std::endian::little, "fusekit: big-endian hosts are not supported");
  out.write(reinterpret_cast<const char*>(&value), sizeof(T));
}
template <class T>
void write_le_array(std::ostream& out, const T* data, std::size_t n) {
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
}
template <class T>
void read_le(std::istream& in, T* data, std::size_t n, const std::string& name, const char* field) {
  in.read(reinterpret_cast<char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
  FUSEKIT_EXPECTS(static_cast<std::size_t>(in.gcount()) == n * sizeof(T), parse_error,
                  "'" + name + "': truncated count matrix (reading " + field + ")");
}
/// Reads `n` elements in bounded chunks, so that a corrupt header announcing a huge array fails at the
/// end of the data instead of allocating the announced size up front.
template <class T>
std::vector<T> read_le_vector(std::istream& in, std::uint64_t n, const std::string& name, const char* field) {
  std::vector<T> out;
  constexpr std::uint64_t chunk = std::uint64_t{1} << 16;
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t k = std::min(chunk, n - done);
    out.resize(static_cast<std::size_t>(done + k));
    read_le(in, out.data() + done, static_cast<std::size_t>(k), name, field);
    done += k;
  }
  return out;
}
}  // namespace detail

/// Writes `c` in the binary format of the file comment.
inline void write_count_matrix(std::ostream& out, const count_matrix& c) {
  out.write(detail::count_matrix_magic, 8);
  detail::write_le<std::uint32_t>(out, 1);
  detail::write_le<std::uint32_t>(out, 0);
  detail::write_le<std::uint64_t>(out, static_cast<std::uint64_t>(c.rows));
  detail::write_le<std::uint64_t>(out, static_cast<std::uint64_t>(c.cols));
  detail::write_le<std::uint64_t>(out, static_cast<std::uint64_t>(c.nnz()));
  for (auto o : c.row_offsets) detail::write_le<std::uint64_t>(out, static_cast<std::uint64_t>(o));
  detail::write_le_array(out, c.col_index.data(), c.col_index.size());
  detail::write_le_array(out, c.counts.data(), c.counts.size());
}

/// Writes `c` to a file.
inline void write_count_matrix(const std::filesystem::path& path, const count_matrix& c) {
  std::ofstream out(path, std::ios::binary);
  FUSEKIT_EXPECTS(out.good(), io_error, "cannot open '" + path.string() + "' for writing");
  write_count_matrix(out, c);
  out.flush();
  FUSEKIT_EXPECTS(out.good(), io_error, "cannot write '" + path.string() + "'");
}

/// Reads and validates a count matrix; `name` is used in error messages.
inline count_matrix read_count_matrix(std::istream& in, const std::string& name = "count matrix") {
  char magic[8];
  detail::read_le(in, magic, 8, name, "magic");
  FUSEKIT_EXPECTS(std::memcmp(magic, detail::count_matrix_magic, 8) == 0, parse_error,
                  "'" + name + "': not a fusekit count matrix (bad magic)");
  std::uint32_t version = 0, flags = 0;
  detail::read_le(in, &version, 1, name, "version");
  detail::read_le(in, &flags, 1, name, "flags");
  FUSEKIT_EXPECTS(version == 1, unsupported, "'" + name + "': count matrix version " + std::to_string(version) + " (expected 1)");
  std::uint64_t rows = 0, cols = 0, nnz = 0;
  detail::read_le(in, &rows, 1, name, "rows");
  detail::read_le(in, &cols, 1, name, "cols");
  detail::read_le(in, &nnz, 1, name, "nnz");
  FUSEKIT_EXPECTS(rows < (1ull << 31) && cols < (1ull << 31) && nnz < (1ull << 40), parse_error,
                  "'" + name + "': implausible count matrix shape");
  count_matrix c;
  c.rows = static_cast<std::int64_t>(rows);
  c.cols = static_cast<std::int64_t>(cols);
  const std::vector<std::uint64_t> off = detail::read_le_vector<std::uint64_t>(in, rows + 1, name, "row_offsets");
  FUSEKIT_EXPECTS(off.front() == 0 && off.back() == nnz, parse_error, "'" + name + "': row_offsets do not span [0, nnz]");
  c.row_offsets.assign(off.begin(), off.end());
  c.col_index = detail::read_le_vector<std::int32_t>(in, nnz, name, "col_index");
  c.counts = detail::read_le_vector<std::uint32_t>(in, nnz, name, "count");
  for (std::uint64_t r = 0; r < rows; ++r) {
    FUSEKIT_EXPECTS(off[r] <= off[r + 1] && off[r + 1] <= nnz, parse_error,
                    "'" + name + "': row_offsets decrease or exceed nnz at row " + std::to_string(r));
    for (std::uint64_t k = off[r]; k < off[r + 1]; ++k) {
      const auto v = c.col_index[k];
      FUSEKIT_EXPECTS(v >= 0 && static_cast<std::uint64_t>(v) < cols, parse_error,
                      "'" + name + "': column " + std::to_string(v) + " out of range in row " + std::to_string(r));
      FUSEKIT_EXPECTS(k == off[r] || c.col_index[k - 1] < v, parse_error,
                      "'" + name + "': columns not strictly ascending in row " + std::to_string(r));
      FUSEKIT_EXPECTS(c.counts[k] > 0, parse_error, "'" + name + "': zero count stored in row " + std::to_string(r));
    }
  }
  return c;
}

/// Reads a count matrix file.
inline count_matrix read_count_matrix(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  FUSEKIT_EXPECTS(in.good(), io_error, "cannot open '" + path.string() + "'");
  return read_count_matrix(in, path.string());
}

}  // namespace fusekit::vocab
