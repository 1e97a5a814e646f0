/// @file
/// @brief Preference-data construction for implicit model fusion (FuseChat-3.0 §5.1, WRPO §5.2):
/// SFT records (best response by reward), same-source DPO pairs with a reward-gap band, WRPO
/// quadruples, and a deterministic SFT:DPO prompt split. Pure C++ (no I/O); the JSONL layer is
/// <fusekit/prefs/jsonl.hpp> and the `fusekit prefs build` command sits on top of both.
///
/// Rules (docs/preference-data.md has the full text):
/// * Eligibility: a sample with `correct == false` may never be chosen / an SFT target; a sample with
///   `correct == true` may never be rejected; a sample without `correct` may be either.
/// * Target samples (WRPO's y_wt / y_l) are those whose `source` equals `target_source`; they never
///   enter SFT records or DPO pairs. Every other sample is a *source* sample.
/// * SFT record: the eligible source sample with the highest reward; ties → the first in input order.
/// * DPO pair, per source: chosen = its highest-reward eligible sample (ties → first), rejected = its
///   lowest-reward rejectable sample (ties → first), distinct samples; kept when
///   gap_min ≤ chosen − rejected ≤ gap_max (inclusive, with a 1e−9 absolute slack so 0.25 − 0.15 counts
///   as 0.1). When several sources qualify, the pair with the highest chosen reward wins, then the larger
///   gap, then the source seen first in the prompt (or all qualifying pairs with `all_pairs`).
/// * WRPO quadruple (needs `target_source`): y_ws = the SFT choice among source samples, y_wt / y_l =
///   the highest / lowest-reward target samples (eligibility as above, ties → first); kept when
///   r(y_wt) > r(y_l) strictly. No gap band (the WRPO paper uses none).
/// * Split: prompts are ordered by a 64-bit hash of (seed, prompt_id) (independent of input order);
///   the first round(n · sft_fraction) go to SFT, the rest to DPO/WRPO. By default the split is taken
///   over the prompts that can produce both an SFT record and a DPO pair (or WRPO quadruple), which is
///   what FuseChat-3.0's exact 4:6 counts imply; `split_before_filter` splits every prompt first and
///   then drops, per side, those that cannot produce their record.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fusekit/core/error.hpp>

namespace fusekit::prefs {

/// One sampled response.
struct sample {
  std::string source; ///< model that produced it
  std::string response;
  double reward = 0;             ///< reward-model score
  std::optional<bool> correct{}; ///< verified correctness (math/code), if known
};

/// One prompt with its samples.
struct prompt_samples {
  std::string prompt_id;
  std::string prompt;
  std::vector<sample> samples;
};

struct sft_record {
  std::string prompt_id, prompt, response, source;
  double reward = 0;
};
struct dpo_record {
  std::string prompt_id, prompt, chosen, rejected, source;
  double chosen_reward = 0, rejected_reward = 0;
};
struct wrpo_record {
  std::string prompt_id, prompt;
  std::string source_chosen, source_chosen_source; ///< y_ws and the model it came from
  double source_chosen_reward = 0;
  std::string target_chosen, rejected; ///< y_wt, y_l (from the target model)
  double target_chosen_reward = 0, rejected_reward = 0;
};

/// Options (CLI flags in parentheses).
struct build_options {
  double gap_min = 0.01;                      ///< (--gap-min) inclusive lower bound of chosen − rejected reward
  double gap_max = 0.1;                       ///< (--gap-max) inclusive upper bound
  double sft_fraction = 0.4;                  ///< (--sft-fraction) share of prompts for SFT; the rest for DPO/WRPO
  std::uint64_t seed = 0;                     ///< (--seed) split seed
  std::optional<std::string> target_source{}; ///< (--target-source) WRPO target model name
  bool all_pairs = false;                     ///< (--all-pairs) one DPO pair per qualifying source
  bool split_before_filter = false;           ///< (--split-before-filter)

  void validate() const {
    FUSEKIT_EXPECTS(
        std::isfinite(gap_min) && std::isfinite(gap_max) && gap_min >= 0 && gap_min <= gap_max, invalid_argument,
        "prefs: need 0 <= gap-min <= gap-max, got " + std::to_string(gap_min) + " and " + std::to_string(gap_max));
    FUSEKIT_EXPECTS(sft_fraction >= 0 && sft_fraction <= 1, invalid_argument,
                    "prefs: sft-fraction must be in [0, 1], got " + std::to_string(sft_fraction));
    FUSEKIT_EXPECTS(!target_source || !target_source->empty(), invalid_argument,
                    "prefs: target-source must not be empty");
  }
};

/// Why a prompt produced no record on its side.
enum class drop_reason : int {
  no_samples = 0,     ///< the prompt has no samples
  no_eligible_chosen, ///< no sample may be chosen (all incorrect)
  no_pair,            ///< no source has two distinct samples that can form a pair
  gap_below_min,      ///< best same-source gap is below gap_min
  gap_above_max,      ///< every same-source gap with a pair is above gap_max
  no_target_pair,     ///< WRPO: fewer than two usable target samples, or r(y_wt) <= r(y_l)
  count_
};
inline constexpr std::array<std::string_view, static_cast<int>(drop_reason::count_)> drop_reason_names{
    "no_samples", "no_eligible_chosen", "no_pair", "gap_below_min", "gap_above_max", "no_target_pair"};

/// Counts written beside the records.
struct build_summary {
  std::int64_t prompts = 0;  ///< prompts read
  std::int64_t sft_side = 0; ///< prompts assigned to SFT by the split
  std::int64_t dpo_side = 0; ///< prompts assigned to DPO/WRPO
  std::int64_t sft_records = 0;
  std::int64_t dpo_records = 0;
  std::int64_t wrpo_records = 0;
  std::int64_t dropped = 0;                                                  ///< prompts that produced no record at all
  std::array<std::int64_t, static_cast<int>(drop_reason::count_)> reasons{}; ///< per first failing rule
};

/// Everything build() produces.
struct build_result {
  std::vector<sft_record> sft;
  std::vector<dpo_record> dpo;
  std::vector<wrpo_record> wrpo;
  build_summary summary;
};

namespace detail {

inline constexpr double gap_slack = 1e-9;

inline bool may_choose(const sample& s) { return !s.correct.has_value() || *s.correct; }
inline bool may_reject(const sample& s) { return !s.correct.has_value() || !*s.correct; }

/// Index of the best (max reward) sample passing `keep`, ties → first; -1 if none.
template <class Keep> std::int64_t best_of(const std::vector<sample>& v, Keep keep) {
  std::int64_t b = -1;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (keep(v[i]) && (b < 0 || v[i].reward > v[static_cast<std::size_t>(b)].reward))
      b = static_cast<std::int64_t>(i);
  return b;
}
/// Index of the worst (min reward) sample passing `keep`, ties → first; -1 if none.
template <class Keep> std::int64_t worst_of(const std::vector<sample>& v, Keep keep) {
  std::int64_t w = -1;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (keep(v[i]) && (w < 0 || v[i].reward < v[static_cast<std::size_t>(w)].reward))
      w = static_cast<std::int64_t>(i);
  return w;
}

/// splitmix64 finalizer.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
/// FNV-1a 64 of the prompt id, mixed with the seed.
constexpr std::uint64_t split_key(std::string_view id, std::uint64_t seed) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h ^ mix64(seed));
}

} // namespace detail

/// Result of choosing the SFT record / DPO pairs / WRPO quadruple of one prompt.
struct prompt_choice {
  std::optional<sft_record> sft;
  std::vector<dpo_record> dpo;
  std::optional<wrpo_record> wrpo;
  std::optional<drop_reason> sft_drop, dpo_drop, wrpo_drop;
};

/// Applies the selection rules (file comment) to one prompt, independent of the split.
inline prompt_choice choose(const prompt_samples& p, const build_options& opt) {
  prompt_choice c;
  const auto& v = p.samples;
  auto is_target = [&](const sample& s) { return opt.target_source && s.source == *opt.target_source; };
  if (v.empty()) {
    c.sft_drop = c.dpo_drop = c.wrpo_drop = drop_reason::no_samples;
    return c;
  }
  // SFT: best eligible source sample
  const std::int64_t best = detail::best_of(v, [&](const sample& s) { return !is_target(s) && detail::may_choose(s); });
  if (best >= 0) {
    const sample& s = v[static_cast<std::size_t>(best)];
    c.sft = sft_record{p.prompt_id, p.prompt, s.response, s.source, s.reward};
  } else {
    c.sft_drop = drop_reason::no_eligible_chosen;
  }
  // DPO: per source in order of first appearance
  std::vector<std::string> order;
  for (const auto& s : v)
    if (!is_target(s) && std::find(order.begin(), order.end(), s.source) == order.end())
      order.push_back(s.source);
  struct cand {
    std::int64_t ci, ri;
    double gap;
    std::size_t rank;
  };
  std::vector<cand> ok;
  bool any_pair = false, any_below = false;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::string& src = order[k];
    const std::int64_t ci =
        detail::best_of(v, [&](const sample& s) { return s.source == src && detail::may_choose(s); });
    if (ci < 0)
      continue;
    // rejected: lowest reward among rejectable samples other than the chosen one
    std::int64_t ri = -1;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (static_cast<std::int64_t>(i) != ci && v[i].source == src && detail::may_reject(v[i]) &&
          (ri < 0 || v[i].reward < v[static_cast<std::size_t>(ri)].reward))
        ri = static_cast<std::int64_t>(i);
    if (ri < 0)
      continue;
    any_pair = true;
    const double gap = v[static_cast<std::size_t>(ci)].reward - v[static_cast<std::size_t>(ri)].reward;
    if (gap < opt.gap_min - detail::gap_slack)
      any_below = true;
    else if (gap <= opt.gap_max + detail::gap_slack)
      ok.push_back({ci, ri, gap, k});
  }
  if (ok.empty()) {
    c.dpo_drop = !any_pair ? (best < 0 ? drop_reason::no_eligible_chosen : drop_reason::no_pair)
                           : (any_below ? drop_reason::gap_below_min : drop_reason::gap_above_max);
  } else {
    std::stable_sort(ok.begin(), ok.end(), [&](const cand& a, const cand& b) {
      const double ra = v[static_cast<std::size_t>(a.ci)].reward, rb = v[static_cast<std::size_t>(b.ci)].reward;
      if (ra != rb)
        return ra > rb;
      if (a.gap != b.gap)
        return a.gap > b.gap;
      return a.rank < b.rank;
    });
    const std::size_t n = opt.all_pairs ? ok.size() : 1;
    for (std::size_t i = 0; i < n; ++i) {
      const sample& ch = v[static_cast<std::size_t>(ok[i].ci)];
      const sample& rj = v[static_cast<std::size_t>(ok[i].ri)];
      c.dpo.push_back(dpo_record{p.prompt_id, p.prompt, ch.response, rj.response, ch.source, ch.reward, rj.reward});
    }
  }
  // WRPO
  if (opt.target_source) {
    const std::int64_t tc = detail::best_of(v, [&](const sample& s) { return is_target(s) && detail::may_choose(s); });
    std::int64_t tl = -1;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (static_cast<std::int64_t>(i) != tc && is_target(v[i]) && detail::may_reject(v[i]) &&
          (tl < 0 || v[i].reward < v[static_cast<std::size_t>(tl)].reward))
        tl = static_cast<std::int64_t>(i);
    if (best < 0) {
      c.wrpo_drop = drop_reason::no_eligible_chosen;
    } else if (tc < 0 || tl < 0 || !(v[static_cast<std::size_t>(tc)].reward > v[static_cast<std::size_t>(tl)].reward)) {
      c.wrpo_drop = drop_reason::no_target_pair;
    } else {
      const sample& ws = v[static_cast<std::size_t>(best)];
      const sample& wt = v[static_cast<std::size_t>(tc)];
      const sample& l = v[static_cast<std::size_t>(tl)];
      c.wrpo = wrpo_record{p.prompt_id, p.prompt,   ws.response, ws.source, ws.reward,
                           wt.response, l.response, wt.reward,   l.reward};
    }
  }
  return c;
}

/// Builds SFT records, DPO pairs and WRPO quadruples from per-prompt samples with the deterministic
/// split. Output order follows the input order of the prompts. Throws on invalid options or
/// duplicate prompt ids (the split is keyed on them).
inline build_result build(const std::vector<prompt_samples>& prompts, const build_options& opt) {
  opt.validate();
  build_result out;
  auto& sm = out.summary;
  sm.prompts = static_cast<std::int64_t>(prompts.size());
  {
    std::map<std::string_view, std::size_t> seen;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto [it, fresh] = seen.emplace(prompts[i].prompt_id, i);
      FUSEKIT_EXPECTS(fresh, invalid_argument,
                      "prefs: prompt_id \"" + prompts[i].prompt_id + "\" appears twice (prompts " +
                          std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
  }
  std::vector<prompt_choice> ch;
  ch.reserve(prompts.size());
  for (const auto& p : prompts)
    ch.push_back(choose(p, opt));
  const bool want_wrpo = opt.target_source.has_value();
  auto pref_ok = [&](const prompt_choice& c) { return want_wrpo ? c.wrpo.has_value() : !c.dpo.empty(); };
  auto pref_drop = [&](const prompt_choice& c) { return want_wrpo ? *c.wrpo_drop : *c.dpo_drop; };

  // the population that is split
  std::vector<std::size_t> pop;
  for (std::size_t i = 0; i < prompts.size(); ++i)
    if (opt.split_before_filter || (ch[i].sft && pref_ok(ch[i])))
      pop.push_back(i);
  std::vector<std::pair<std::uint64_t, std::size_t>> keyed;
  keyed.reserve(pop.size());
  for (std::size_t i : pop)
    keyed.emplace_back(detail::split_key(prompts[i].prompt_id, opt.seed), i);
  std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : prompts[a.second].prompt_id < prompts[b.second].prompt_id;
  });
  const auto n_sft = static_cast<std::size_t>(std::llround(static_cast<double>(pop.size()) * opt.sft_fraction));
  std::vector<int> side(prompts.size(), -1); // 0 = SFT, 1 = DPO, -1 = not in the population
  for (std::size_t k = 0; k < keyed.size(); ++k)
    side[keyed[k].second] = k < n_sft ? 0 : 1;

  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const prompt_choice& c = ch[i];
    bool produced = false;
    std::optional<drop_reason> why;
    if (side[i] == 0) {
      ++sm.sft_side;
      if (c.sft) {
        out.sft.push_back(*c.sft);
        produced = true;
      } else {
        why = c.sft_drop;
      }
    } else if (side[i] == 1) {
      ++sm.dpo_side;
      if (!c.dpo.empty()) {
        out.dpo.insert(out.dpo.end(), c.dpo.begin(), c.dpo.end());
        produced = true;
      }
      if (c.wrpo) {
        out.wrpo.push_back(*c.wrpo);
        produced = true;
      }
      if (!pref_ok(c))
        why = pref_drop(c);
    } else {
      why = !c.sft ? c.sft_drop : pref_drop(c);
    }
    if (!produced) {
      ++sm.dropped;
      if (why)
        ++sm.reasons[static_cast<std::size_t>(*why)];
    }
  }
  sm.sft_records = static_cast<std::int64_t>(out.sft.size());
  sm.dpo_records = static_cast<std::int64_t>(out.dpo.size());
  sm.wrpo_records = static_cast<std::int64_t>(out.wrpo.size());
  return out;
}

} // namespace fusekit::prefs
