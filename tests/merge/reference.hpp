// Independent float64 brute-force references of the merge methods, written plainly (whole-tensor vectors,
// std::sort for every ranking). Inputs are the fp32 values the library sees; the only shared definitions are
// the documented ones: selection ranks fp32 deltas |float(x) - float(b)| (descending, ties by lower index),
// DARE keeps rng::bernoulli(seed, model_stream(tensor, model), element, density) and DELLA draws
// rng::uniform01(seed, model_stream(tensor, model), element) < p.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/rng/philox.hpp>

namespace ref {

using vec = std::vector<double>;

struct model {
  std::vector<float> x; // fp32 values as the library loads them
  double weight = 1.0, density = 1.0, gamma = 0.01, epsilon = 0.15;
};

enum class sparsify { none, magnitude, random, outliers, della };
enum class consensus { none, sum, count };

struct gta_cfg {
  sparsify sp = sparsify::none;
  consensus cons = consensus::none;
  double lambda = 1.0;
  bool normalize = false, rescale = false;
  bool weighted_election = true, weight_divisor = true, l1 = true;
  std::string tensor = "t";
  std::uint64_t seed = 0;
  std::int64_t cols = 0; // row length for della (0 = one row)
};

// Order of elements by fp32 |delta| descending, ties by lower index first.
inline std::vector<std::int64_t> order_desc(const std::vector<float>& d) {
  std::vector<std::int64_t> idx(d.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) {
    const float ma = std::abs(d[a]), mb = std::abs(d[b]);
    return ma != mb ? ma > mb : a < b;
  });
  return idx;
}

// Keep mask (0/1) of one model's delta.
inline vec keep_mask(const std::vector<float>& d32, const model& m, const gta_cfg& c, std::size_t i) {
  const auto n = static_cast<std::int64_t>(d32.size());
  vec keep(d32.size(), 1.0);
  if (c.sp == sparsify::none || m.density >= 1.0)
    return keep;
  if (m.density <= 0) {
    std::fill(keep.begin(), keep.end(), 0.0);
    return keep;
  }
  const auto k = static_cast<std::int64_t>(std::floor(m.density * static_cast<double>(n)));
  if (c.sp == sparsify::magnitude || c.sp == sparsify::outliers) {
    std::int64_t top = 0, bottom = n - k;
    if (c.sp == sparsify::outliers) {
      top = static_cast<std::int64_t>(std::floor(m.gamma * static_cast<double>(n)));
      bottom = n - k - top;
      if (bottom < 0) {
        top += bottom;
        bottom = 0;
      }
    }
    const auto ord = order_desc(d32);
    std::fill(keep.begin(), keep.end(), 0.0);
    for (std::int64_t r = top; r < n - bottom; ++r)
      keep[static_cast<std::size_t>(ord[static_cast<std::size_t>(r)])] = 1.0;
    return keep;
  }
  const std::uint64_t stream = fusekit::detail::model_stream(c.tensor, i);
  if (c.sp == sparsify::random) {
    for (std::int64_t e = 0; e < n; ++e)
      keep[static_cast<std::size_t>(e)] =
          fusekit::rng::bernoulli(c.seed, stream, static_cast<std::uint64_t>(e), static_cast<float>(m.density)) ? 1.0 : 0.0;
    return keep;
  }
  // della: per row ranks by ascending |delta| (ties by column), p linear in rank
  const std::int64_t C = c.cols > 0 ? c.cols : n;
  for (std::int64_t r0 = 0; r0 < n; r0 += C) {
    std::vector<std::int64_t> cols(static_cast<std::size_t>(C));
    std::iota(cols.begin(), cols.end(), 0);
    std::stable_sort(cols.begin(), cols.end(), [&](std::int64_t a, std::int64_t b) {
      return std::abs(d32[static_cast<std::size_t>(r0 + a)]) < std::abs(d32[static_cast<std::size_t>(r0 + b)]);
    });
    for (std::int64_t rank = 0; rank < C; ++rank) {
      const std::int64_t e = r0 + cols[static_cast<std::size_t>(rank)];
      const double rn = C > 1 ? static_cast<double>(rank) / static_cast<double>(C - 1) : 0.5;
      const auto p = static_cast<float>((m.density - m.epsilon) + rn * (2.0 * m.epsilon));
      keep[static_cast<std::size_t>(e)] = fusekit::rng::uniform01(c.seed, stream, static_cast<std::uint64_t>(e)) < p ? 1.0 : 0.0;
    }
  }
  return keep;
}

inline vec gta(const std::vector<float>& base, const std::vector<model>& ms, const gta_cfg& c) {
  const std::size_t n = base.size(), N = ms.size();
  std::vector<vec> t(N, vec(n));
  for (std::size_t i = 0; i < N; ++i) {
    std::vector<float> d32(n);
    for (std::size_t e = 0; e < n; ++e)
      d32[e] = ms[i].x[e] - base[e];
    const vec keep = keep_mask(d32, ms[i], c, i);
    double scale = 1.0;
    const bool sparsified = c.sp != sparsify::none && ms[i].density < 1.0 && ms[i].density > 0.0;
    if (c.rescale && sparsified) {
      if (!c.l1) {
        scale = 1.0 / ms[i].density;
      } else {
        double a = 0, k = 0;
        for (std::size_t e = 0; e < n; ++e) {
          a += std::abs(static_cast<double>(d32[e]));
          k += keep[e] * std::abs(static_cast<double>(d32[e]));
        }
        if (a >= 1e-7 && k >= 1e-7)
          scale = a / k;
      }
    }
    for (std::size_t e = 0; e < n; ++e)
      t[i][e] = keep[e] * static_cast<double>(d32[e]) * scale;
  }
  vec out(n);
  double wsum = 0;
  for (const auto& m : ms)
    wsum += m.weight;
  for (std::size_t e = 0; e < n; ++e) {
    double M = 0, D = 0;
    if (c.cons == consensus::none) {
      for (std::size_t i = 0; i < N; ++i)
        M += ms[i].weight * t[i][e];
      D = std::abs(wsum) < 1e-8 ? 1.0 : wsum;
    } else {
      double S = 0;
      for (std::size_t i = 0; i < N; ++i) {
        const double v = (c.weighted_election ? ms[i].weight : 1.0) * t[i][e];
        S += c.cons == consensus::sum ? v : (v > 0) - (v < 0);
      }
      for (std::size_t i = 0; i < N; ++i) {
        const double v = (c.weighted_election ? ms[i].weight : 1.0) * t[i][e];
        if ((v > 0 && S >= 0) || (v < 0 && S < 0)) {
          M += ms[i].weight * t[i][e];
          D += c.weight_divisor ? ms[i].weight : 1.0;
        }
      }
      if (D == 0)
        D = 1;
    }
    if (c.normalize)
      M /= D;
    out[e] = base[e] + c.lambda * M;
  }
  return out;
}

inline vec sce(const std::vector<float>& base, const std::vector<model>& ms, double q, bool mergekit_variant) {
  const std::size_t n = base.size(), J = ms.size();
  std::vector<vec> d(J, vec(n));
  for (std::size_t j = 0; j < J; ++j)
    for (std::size_t e = 0; e < n; ++e)
      d[j][e] = static_cast<double>(ms[j].x[e] - base[e]);
  vec mask(n, 1.0);
  if (q < 1) {
    std::vector<float> var(n); // fp32 variance, the documented selection key
    for (std::size_t e = 0; e < n; ++e) {
      float mean = 0;
      for (std::size_t j = 0; j < J; ++j)
        mean += ms[j].x[e] - base[e];
      mean *= 1.0f / static_cast<float>(J);
      float acc = 0;
      for (std::size_t j = 0; j < J; ++j) {
        const float c = (ms[j].x[e] - base[e]) - mean;
        acc += c * c;
      }
      var[e] = acc * (1.0f / static_cast<float>(J));
    }
    const auto nz = std::count_if(var.begin(), var.end(), [](float v) { return v != 0; });
    const auto k = q <= 0 ? 0 : static_cast<std::int64_t>(std::floor(q * static_cast<double>(nz)));
    const auto ord = order_desc(var);
    std::fill(mask.begin(), mask.end(), 0.0);
    for (std::int64_t r = 0; r < k; ++r)
      mask[static_cast<std::size_t>(ord[static_cast<std::size_t>(r)])] = 1.0;
  }
  vec c(J, 0.0);
  double cs = 0;
  for (std::size_t j = 0; j < J; ++j) {
    for (std::size_t e = 0; e < n; ++e)
      c[j] += std::pow(mask[e] * d[j][e], 2);
    c[j] /= static_cast<double>(n);
    cs += c[j];
  }
  vec out(n);
  for (std::size_t e = 0; e < n; ++e) {
    double S = 0;
    for (std::size_t j = 0; j < J; ++j)
      S += (mergekit_variant ? mask[e] : 1.0) * d[j][e];
    double num = 0, den = 0;
    for (std::size_t j = 0; j < J; ++j) {
      const double v = (mergekit_variant ? mask[e] : 1.0) * d[j][e];
      const double w = std::abs(cs) < 1e-6 ? 1.0 / static_cast<double>(J) : c[j] / cs;
      if ((v > 0 && S >= 0) || (v < 0 && S < 0)) {
        num += w * v;
        den += w;
      }
    }
    out[e] = base[e] + num / std::max(den, 1e-6);
  }
  return out;
}

inline double dot(const vec& a, const vec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}
inline vec to_vec(const std::vector<float>& x) { return vec(x.begin(), x.end()); }

// Random fp32 data rounded through type T (so every storage type sees representable values).
template <class T> std::vector<float> random_values(std::size_t n, std::uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v)
    x = static_cast<float>(T(offset + nd(rng)));
  return v;
}

} // namespace ref
