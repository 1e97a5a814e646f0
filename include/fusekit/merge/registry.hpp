/// @file
/// @brief Name-based selection of merge methods for configuration files and the command line: a closed,
/// compile-time list of methods (no static initializers), their parameter specifications (so a loader can
/// reject unknown or missing parameters before touching any tensor), and merge_by_name().
///
/// @code
/// fusekit::merge_params params{{"lambda", 1.0}, {"normalize", true}};
/// fusekit::merge_by_name(fusekit::exec::par, "ties", params, out, base, inputs, {"model.layers.0.mlp.up_proj.weight", 42});
/// const fusekit::method_spec* spec = fusekit::method_info("ties"); // base policy, input counts, parameters
/// @endcode
///
/// Extending: specialize fusekit::method_traits<M> for your method type (a `spec()` and a `make(params)`) and
/// use fusekit::merge_registry<fusekit::builtin_methods..., M> — see docs/extending.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/merge/arcee_fusion.hpp>
#include <fusekit/merge/breadcrumbs.hpp>
#include <fusekit/merge/dare.hpp>
#include <fusekit/merge/della.hpp>
#include <fusekit/merge/karcher.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/merge.hpp>
#include <fusekit/merge/model_stock.hpp>
#include <fusekit/merge/multislerp.hpp>
#include <fusekit/merge/nearswap.hpp>
#include <fusekit/merge/nuslerp.hpp>
#include <fusekit/merge/passthrough.hpp>
#include <fusekit/merge/ram.hpp>
#include <fusekit/merge/sce.hpp>
#include <fusekit/merge/slerp.hpp>
#include <fusekit/merge/task_arithmetic.hpp>
#include <fusekit/merge/ties.hpp>
#include <fusekit/merge/varm.hpp>

namespace fusekit {

/// A parameter value from a configuration: a boolean, a number, or a word (for choice parameters).
using merge_param = std::variant<bool, double, std::string>;
/// Parameters by name (global ones for a method, or one model's per-model ones).
using merge_params = std::map<std::string, merge_param, std::less<>>;

/// Type of a parameter.
enum class param_kind { boolean, number, integer, choice };

/// One parameter of a method.
struct param_spec {
  std::string_view name;              ///< the mergekit (or fusekit) name
  param_kind kind = param_kind::number;
  bool required = false;              ///< must be given (no default)
  double default_number = 0.0;        ///< default of boolean (0/1), number and integer parameters
  std::string_view default_choice{};  ///< default of a choice parameter
  std::span<const std::string_view> choices{}; ///< allowed words of a choice parameter
  bool ignored = false;               ///< accepted for mergekit compatibility, changes nothing (int8_mask)
  std::string_view doc{};             ///< one line
};

/// Whether a method uses a base model.
enum class base_policy { required, optional, unused };

/// Everything a loader needs to validate a configuration for one method.
struct method_spec {
  std::string_view name;
  base_policy base = base_policy::required;
  std::size_t min_inputs = 0;                             ///< non-base models, at least
  std::size_t max_inputs = static_cast<std::size_t>(-1);  ///< non-base models, at most
  std::span<const param_spec> global{};                   ///< method-level parameters
  std::span<const param_spec> per_model{};                ///< parameters of each model (merge_input fields)
  std::string_view reference{};                           ///< paper or tool it matches
};

/// Customization point: specialize for a method type M with
///   `static constexpr method_spec spec()` and `static M make(const merge_params& validated_globals)`.
template <class M> struct method_traits;

namespace detail {

inline constexpr std::string_view election_choices[] = {"weighted", "unweighted"};
inline constexpr std::string_view divisor_choices[] = {"weight_sum", "count"};
inline constexpr std::string_view rescale_choices[] = {"l1_norm", "inverse_density"};
inline constexpr std::string_view sce_choices[] = {"mergekit", "fusechat"};
inline constexpr std::string_view varm_stat_choices[] = {"square", "abs", "mean"};
inline constexpr std::string_view varm_gran_choices[] = {"per_matrix", "per_element"};

constexpr param_spec p_bool(std::string_view n, bool d, std::string_view doc) {
  return {n, param_kind::boolean, false, d ? 1.0 : 0.0, {}, {}, false, doc};
}
constexpr param_spec p_num(std::string_view n, double d, std::string_view doc) {
  return {n, param_kind::number, false, d, {}, {}, false, doc};
}
constexpr param_spec p_req(std::string_view n, std::string_view doc) {
  return {n, param_kind::number, true, 0.0, {}, {}, false, doc};
}
constexpr param_spec p_int(std::string_view n, double d, std::string_view doc) {
  return {n, param_kind::integer, false, d, {}, {}, false, doc};
}
constexpr param_spec p_choice(std::string_view n, std::string_view d, std::span<const std::string_view> c,
                              std::string_view doc) {
  return {n, param_kind::choice, false, 0.0, d, c, false, doc};
}
constexpr param_spec p_ignored_bool(std::string_view n, std::string_view doc) {
  return {n, param_kind::boolean, false, 0.0, {}, {}, true, doc};
}

// Per-model parameter sets (they map to merge_input fields).
inline constexpr param_spec pm_weight[] = {p_req("weight", "model weight")};
inline constexpr param_spec pm_weight_opt[] = {p_num("weight", 1.0, "model weight (fusekit extension; mergekit ignores it)")};
inline constexpr param_spec pm_weight_density[] = {p_req("weight", "model weight"),
                                                   p_num("density", 1.0, "fraction of the task vector kept")};
inline constexpr param_spec pm_breadcrumbs[] = {p_req("weight", "model weight"),
                                                p_num("density", 1.0, "fraction of the task vector kept"),
                                                p_num("gamma", 0.01, "fraction of largest magnitudes removed")};
inline constexpr param_spec pm_della[] = {p_req("weight", "model weight"),
                                          p_num("density", 1.0, "mean keep probability"),
                                          p_num("epsilon", 0.15, "keep-probability spread over the ranks")};
inline constexpr param_spec pm_scale[] = {p_num("scale", 1.0, "multiplies the tensor")};

#define FUSEKIT_GTA_GLOBALS(norm, resc)                                                                            \
  p_ignored_bool("int8_mask", "mergekit memory option; no effect"),                                               \
      p_bool("normalize", norm, "divide by the (agreeing) weight sum"),                                           \
      p_bool("rescale", resc, "rescale kept entries after sparsification"),                                       \
      p_num("lambda", 1.0, "scale of the merged task vector"),                                                     \
      p_choice("sign_election", "weighted", election_choices, "fusekit: election on weighted (mergekit) or unweighted deltas"), \
      p_choice("consensus_divisor", "weight_sum", divisor_choices, "fusekit: disjoint-mean divisor"),             \
      p_choice("rescale_mode", "l1_norm", rescale_choices, "fusekit: L1-norm match (mergekit) or 1/density")
inline constexpr param_spec g_ta[] = {FUSEKIT_GTA_GLOBALS(false, false)};
inline constexpr param_spec g_ties[] = {FUSEKIT_GTA_GLOBALS(true, false)};
inline constexpr param_spec g_dare_ties[] = {FUSEKIT_GTA_GLOBALS(false, true)};
inline constexpr param_spec g_dare_linear[] = {FUSEKIT_GTA_GLOBALS(false, true)};
inline constexpr param_spec g_breadcrumbs[] = {FUSEKIT_GTA_GLOBALS(false, false)};
inline constexpr param_spec g_della[] = {FUSEKIT_GTA_GLOBALS(true, true)};
inline constexpr param_spec g_della_linear[] = {FUSEKIT_GTA_GLOBALS(false, true)};
#undef FUSEKIT_GTA_GLOBALS
inline constexpr param_spec g_linear[] = {p_bool("normalize", true, "divide by the sum of weights")};
inline constexpr param_spec g_slerp[] = {p_req("t", "interpolation factor (0 = base)")};
inline constexpr param_spec g_nuslerp[] = {p_bool("nuslerp_flatten", true, "one vector per tensor"),
                                           p_bool("nuslerp_row_wise", false, "vectors along dimension 0")};
inline constexpr param_spec g_multislerp[] = {p_bool("normalize_weights", true, "weights divided by their sum"),
                                              p_num("eps", 1e-8, "norm stabiliser")};
inline constexpr param_spec g_karcher[] = {p_int("max_iter", 10, "iteration cap"), p_num("tol", 1e-5, "tolerance")};
inline constexpr param_spec g_sce[] = {p_ignored_bool("int8_mask", "mergekit memory option; no effect"),
                                       p_num("select_topk", 1.0, "fraction of high-variance elements selected"),
                                       p_choice("sce_variant", "mergekit", sce_choices, "fusekit: mergekit or FuseChat-repository SCE")};
inline constexpr param_spec g_varm[] = {
    p_choice("varm_statistic", "square", varm_stat_choices, "variation statistic"),
    p_choice("varm_granularity", "per_matrix", varm_gran_choices, "one weight per tensor or per element")};
inline constexpr param_spec g_model_stock[] = {p_bool("filter_wise", false, "one interpolation ratio per row")};
inline constexpr param_spec g_nearswap[] = {p_req("t", "similarity threshold")};
inline constexpr param_spec g_ram[] = {p_num("epsilon", 1e-5, "touch threshold")};
inline constexpr param_spec g_ramplus[] = {p_num("r", 0.1, "rescaling strength"), p_num("alpha", 0.2, "overlap-ratio clip"),
                                           p_num("epsilon", 1e-5, "touch threshold")};

/// Reads a validated global parameter (defaults already filled in).
inline double num(const merge_params& p, std::string_view n) {
  const auto it = p.find(n);
  if (const double* d = std::get_if<double>(&it->second))
    return *d;
  return std::get<bool>(it->second) ? 1.0 : 0.0;
}
inline bool flag(const merge_params& p, std::string_view n) { return num(p, n) != 0.0; }
inline const std::string& word(const merge_params& p, std::string_view n) { return std::get<std::string>(p.find(n)->second); }

template <class M> void gta_options_from(M& m, const merge_params& p) {
  m.lambda = static_cast<float>(num(p, "lambda"));
  m.normalize = flag(p, "normalize");
  m.rescale = flag(p, "rescale");
  m.election = word(p, "sign_election") == "weighted" ? sign_election::weighted : sign_election::unweighted;
  m.divisor = word(p, "consensus_divisor") == "weight_sum" ? consensus_divisor::weight_sum : consensus_divisor::count;
  m.rescale_by = word(p, "rescale_mode") == "l1_norm" ? rescale_mode::l1_norm : rescale_mode::inverse_density;
}

} // namespace detail

// ---- the built-in methods' traits ------------------------------------------------------------------------
#define FUSEKIT_METHOD_SPEC(T, BASE, MIN, MAX, G, PM, REF)                                                         \
  static constexpr method_spec spec() { return {T::name, base_policy::BASE, MIN, MAX, G, PM, REF}; }
#define FUSEKIT_GTA_TRAITS(T, G, PM, REF)                                                                          \
  template <> struct method_traits<T> {                                                                            \
    FUSEKIT_METHOD_SPEC(T, required, 0, static_cast<std::size_t>(-1), detail::G, detail::PM, REF)                   \
    static T make(const merge_params& p) {                                                                         \
      T m;                                                                                                         \
      detail::gta_options_from(m, p);                                                                              \
      return m;                                                                                                    \
    }                                                                                                              \
  };
template <> struct method_traits<task_arithmetic> {
  FUSEKIT_METHOD_SPEC(task_arithmetic, required, 0, static_cast<std::size_t>(-1), detail::g_ta,
                      detail::pm_weight_density, "arXiv 2212.04089; mergekit task_arithmetic")
  static task_arithmetic make(const merge_params& p) {
    return task_arithmetic{.lambda = static_cast<float>(detail::num(p, "lambda")), .normalize = detail::flag(p, "normalize")};
  }
};
FUSEKIT_GTA_TRAITS(ties, g_ties, pm_weight_density, "arXiv 2306.01708; mergekit ties")
FUSEKIT_GTA_TRAITS(dare_ties, g_dare_ties, pm_weight_density, "arXiv 2311.03099; mergekit dare_ties")
FUSEKIT_GTA_TRAITS(dare_linear, g_dare_linear, pm_weight_density, "arXiv 2311.03099; mergekit dare_linear")
FUSEKIT_GTA_TRAITS(breadcrumbs, g_breadcrumbs, pm_breadcrumbs, "arXiv 2312.06795; mergekit breadcrumbs")
FUSEKIT_GTA_TRAITS(breadcrumbs_ties, g_breadcrumbs, pm_breadcrumbs, "arXiv 2312.06795; mergekit breadcrumbs_ties")
FUSEKIT_GTA_TRAITS(della, g_della, pm_della, "arXiv 2406.11617; mergekit della")
FUSEKIT_GTA_TRAITS(della_linear, g_della_linear, pm_della, "arXiv 2406.11617; mergekit della_linear")
#undef FUSEKIT_GTA_TRAITS
template <> struct method_traits<linear> {
  FUSEKIT_METHOD_SPEC(linear, unused, 1, static_cast<std::size_t>(-1), detail::g_linear, detail::pm_weight,
                      "arXiv 2203.05482; mergekit linear")
  static linear make(const merge_params& p) { return linear{.normalize = detail::flag(p, "normalize")}; }
};
template <> struct method_traits<slerp> {
  FUSEKIT_METHOD_SPEC(slerp, required, 1, 1, detail::g_slerp, {}, "mergekit slerp")
  static slerp make(const merge_params& p) { return slerp{.t = detail::num(p, "t")}; }
};
template <> struct method_traits<nuslerp> {
  FUSEKIT_METHOD_SPEC(nuslerp, optional, 2, 2, detail::g_nuslerp, detail::pm_weight, "mergekit nuslerp")
  static nuslerp make(const merge_params& p) {
    return nuslerp{.flatten = detail::flag(p, "nuslerp_flatten"), .row_wise = detail::flag(p, "nuslerp_row_wise")};
  }
};
template <> struct method_traits<multislerp> {
  FUSEKIT_METHOD_SPEC(multislerp, optional, 1, static_cast<std::size_t>(-1), detail::g_multislerp, detail::pm_weight,
                      "goddard.blog multislerp; mergekit multislerp")
  static multislerp make(const merge_params& p) {
    return multislerp{.normalize_weights = detail::flag(p, "normalize_weights"), .eps = detail::num(p, "eps")};
  }
};
template <> struct method_traits<karcher> {
  FUSEKIT_METHOD_SPEC(karcher, unused, 1, static_cast<std::size_t>(-1), detail::g_karcher, detail::pm_weight_opt,
                      "arXiv 2603.04972; mergekit karcher (weights honoured)")
  static karcher make(const merge_params& p) {
    return karcher{.max_iter = static_cast<int>(detail::num(p, "max_iter")), .tol = detail::num(p, "tol")};
  }
};
template <> struct method_traits<sce> {
  FUSEKIT_METHOD_SPEC(sce, required, 0, static_cast<std::size_t>(-1), detail::g_sce, {}, "arXiv 2408.07990; mergekit sce")
  static sce make(const merge_params& p) {
    return sce{.select_topk = detail::num(p, "select_topk"),
               .variant = detail::word(p, "sce_variant") == "mergekit" ? sce_variant::mergekit : sce_variant::fusechat};
  }
};
template <> struct method_traits<varm> {
  FUSEKIT_METHOD_SPEC(varm, required, 0, static_cast<std::size_t>(-1), detail::g_varm, {}, "arXiv 2402.16107 (FuseChat VaRM)")
  static varm make(const merge_params& p) {
    const auto& s = detail::word(p, "varm_statistic");
    varm m;
    m.statistic = s == "square" ? varm_statistic::square : s == "abs" ? varm_statistic::abs : varm_statistic::mean;
    m.granularity = detail::word(p, "varm_granularity") == "per_matrix" ? varm_granularity::per_matrix
                                                                         : varm_granularity::per_element;
    return m;
  }
};
template <> struct method_traits<model_stock> {
  FUSEKIT_METHOD_SPEC(model_stock, required, 2, static_cast<std::size_t>(-1), detail::g_model_stock, {},
                      "arXiv 2403.19522; mergekit model_stock")
  static model_stock make(const merge_params& p) { return model_stock{.filter_wise = detail::flag(p, "filter_wise")}; }
};
template <> struct method_traits<nearswap> {
  FUSEKIT_METHOD_SPEC(nearswap, required, 1, 1, detail::g_nearswap, {}, "mergekit nearswap")
  static nearswap make(const merge_params& p) { return nearswap{.t = detail::num(p, "t")}; }
};
template <> struct method_traits<arcee_fusion> {
  FUSEKIT_METHOD_SPEC(arcee_fusion, required, 1, 1, {}, {}, "mergekit arcee_fusion")
  static arcee_fusion make(const merge_params&) { return {}; }
};
template <> struct method_traits<ram> {
  FUSEKIT_METHOD_SPEC(ram, required, 0, static_cast<std::size_t>(-1), detail::g_ram, {}, "arXiv 2601.13572; mergekit ram")
  static ram make(const merge_params& p) { return ram{.epsilon = detail::num(p, "epsilon")}; }
};
template <> struct method_traits<ramplus_tl> {
  FUSEKIT_METHOD_SPEC(ramplus_tl, required, 0, static_cast<std::size_t>(-1), detail::g_ramplus, {},
                      "arXiv 2601.13572; mergekit ramplus_tl")
  static ramplus_tl make(const merge_params& p) {
    return ramplus_tl{.r = detail::num(p, "r"), .alpha = detail::num(p, "alpha"), .epsilon = detail::num(p, "epsilon")};
  }
};
template <> struct method_traits<passthrough> {
  FUSEKIT_METHOD_SPEC(passthrough, unused, 1, 1, {}, detail::pm_scale, "mergekit passthrough")
  static passthrough make(const merge_params&) { return {}; }
};
#undef FUSEKIT_METHOD_SPEC

/// Validates `given` against a parameter list: rejects unknown names, wrong types, values outside a choice or
/// non-integral integers, and missing required ones; returns the parameters with defaults filled in.
/// `what` names the method (and model) in messages.
[[nodiscard]] inline merge_params resolve_params(std::span<const param_spec> specs, const merge_params& given,
                                                 const std::string& what) {
  merge_params out;
  for (const auto& [key, value] : given) {
    const auto it = std::find_if(specs.begin(), specs.end(), [&k = key](const param_spec& s) { return s.name == k; });
    if (it == specs.end()) {
      std::string allowed;
      for (const auto& s : specs)
        allowed += (allowed.empty() ? "" : ", ") + std::string(s.name);
      throw_error(errc::invalid_argument, what + ": unknown parameter '" + key + "' (allowed: " +
                                              (allowed.empty() ? std::string("none") : allowed) + ")");
    }
    const param_spec& s = *it;
    switch (s.kind) {
    case param_kind::boolean:
      if (const double* d = std::get_if<double>(&value); d && (*d == 0.0 || *d == 1.0))
        out[key] = *d != 0.0;
      else if (std::holds_alternative<bool>(value))
        out[key] = value;
      else
        throw_error(errc::invalid_argument, what + ": parameter '" + key + "' must be true or false");
      break;
    case param_kind::number:
    case param_kind::integer: {
      const double* d = std::get_if<double>(&value);
      FUSEKIT_EXPECTS(d && std::isfinite(*d), invalid_argument, what + ": parameter '" + key + "' must be a finite number");
      FUSEKIT_EXPECTS(s.kind != param_kind::integer || *d == std::floor(*d), invalid_argument,
                      what + ": parameter '" + key + "' must be an integer");
      out[key] = *d;
      break;
    }
    case param_kind::choice: {
      const std::string* w = std::get_if<std::string>(&value);
      const bool ok = w && std::find(s.choices.begin(), s.choices.end(), std::string_view(*w)) != s.choices.end();
      if (!ok) {
        std::string allowed;
        for (auto c : s.choices)
          allowed += (allowed.empty() ? "" : ", ") + std::string(c);
        throw_error(errc::invalid_argument, what + ": parameter '" + key + "' must be one of: " + allowed);
      }
      out[key] = *w;
      break;
    }
    }
  }
  for (const auto& s : specs) {
    if (out.find(s.name) != out.end())
      continue;
    FUSEKIT_EXPECTS(!s.required, invalid_argument, what + ": missing required parameter '" + std::string(s.name) + "'");
    if (s.kind == param_kind::choice)
      out[std::string(s.name)] = std::string(s.default_choice);
    else if (s.kind == param_kind::boolean)
      out[std::string(s.name)] = s.default_number != 0.0;
    else
      out[std::string(s.name)] = s.default_number;
  }
  return out;
}

/// Fills one model's merge_input fields (weight, density, gamma, epsilon, scale) from its per-model parameters,
/// validated against the method's spec (unknown or missing ones throw, naming the method and model index).
template <class View>
void apply_model_params(const method_spec& spec, const merge_params& given, merge_input<View>& in, std::size_t model) {
  const auto p = resolve_params(spec.per_model, given, std::string(spec.name) + ": model " + std::to_string(model));
  for (const auto& [k, v] : p) {
    const double d = detail::num(p, k);
    if (k == "weight")
      in.weight = static_cast<float>(d);
    else if (k == "density")
      in.density = d;
    else if (k == "gamma")
      in.gamma = d;
    else if (k == "epsilon")
      in.epsilon = d;
    else if (k == "scale")
      in.scale = static_cast<float>(d);
  }
}

/// A closed list of methods selectable by name.
template <class... Methods> struct merge_registry {
  /// Any of the methods, constructed.
  using method_variant = std::variant<Methods...>;

  /// The specs of every method, in list order.
  [[nodiscard]] static std::span<const method_spec> methods() {
    static constexpr method_spec all[] = {method_traits<Methods>::spec()...};
    return all;
  }
  /// The spec of `name`, or nullptr if no method has that name.
  [[nodiscard]] static const method_spec* find(std::string_view name) {
    for (const auto& s : methods())
      if (s.name == name)
        return &s;
    return nullptr;
  }
  /// The spec of `name`; throws invalid_argument listing the known names otherwise.
  [[nodiscard]] static const method_spec& info(std::string_view name) {
    if (const auto* s = find(name))
      return *s;
    std::string known;
    for (const auto& s : methods())
      known += (known.empty() ? "" : ", ") + std::string(s.name);
    throw_error(errc::invalid_argument, "unknown merge method '" + std::string(name) + "' (known: " + known + ")");
  }
  /// Constructs method `name` from its global parameters (validated; defaults filled in).
  [[nodiscard]] static method_variant make(std::string_view name, const merge_params& params) {
    const method_spec& spec = info(name);
    const merge_params p = resolve_params(spec.global, params, std::string(name));
    std::optional<method_variant> m;
    ((Methods::name == name && !m ? (void)m.emplace(std::in_place_type<Methods>, method_traits<Methods>::make(p)) : void()), ...);
    return *m;
  }

  /// Constructs method `name` and merges one tensor with it. A base-requiring method called with no_base, or a
  /// base given to a method that does not use it, is reported as an error naming the method and tensor.
  template <class P, class Out, class Base, class In>
  static void run(const P& policy, std::string_view name, const merge_params& params, Out&& out, Base&& base,
                  std::span<const merge_input<In>> inputs, const merge_context& ctx = {}) {
    const method_spec& spec = info(name);
    constexpr bool has_base = !std::is_same_v<std::remove_cvref_t<Base>, no_base_t>;
    FUSEKIT_EXPECTS(has_base || spec.base != base_policy::required, invalid_argument,
                    detail::merge_where(name, ctx) + ": a base model is required");
    FUSEKIT_EXPECTS(inputs.size() >= spec.min_inputs && inputs.size() <= spec.max_inputs, invalid_argument,
                    detail::merge_where(name, ctx) + ": got " + std::to_string(inputs.size()) +
                        " input model(s) besides the base; the method takes " + std::to_string(spec.min_inputs) +
                        (spec.max_inputs == static_cast<std::size_t>(-1) ? std::string(" or more")
                                                                         : " to " + std::to_string(spec.max_inputs)));
    const method_variant m = make(name, params);
    std::visit(
        [&](const auto& method) {
          using M = std::remove_cvref_t<decltype(method)>;
          if constexpr (!has_base && method_traits<M>::spec().base == base_policy::required) {
            throw_error(errc::internal, "unreachable: base checked above");
          } else {
            fusekit::merge(policy, method, std::forward<Out>(out), std::forward<Base>(base), inputs, ctx);
          }
        },
        m);
  }
};

/// Every method fusekit registers under its mergekit name, plus varm.
using builtin_merge_registry =
    merge_registry<linear, task_arithmetic, ties, dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della,
                   della_linear, sce, varm, slerp, nuslerp, multislerp, karcher, model_stock, nearswap, arcee_fusion, ram,
                   ramplus_tl, passthrough>;

namespace detail {
template <class Registry, class... Extra> struct extend_registry;
template <class... M, class... Extra> struct extend_registry<merge_registry<M...>, Extra...> {
  using type = merge_registry<M..., Extra...>;
};
} // namespace detail

/// The built-in registry plus user methods (each with a method_traits specialization), e.g.
/// `using my_registry = fusekit::merge_registry_with<lab::median_merge>; my_registry::run(policy, "median", ...)`.
template <class... Extra>
using merge_registry_with = typename detail::extend_registry<builtin_merge_registry, Extra...>::type;

/// Spec of built-in method `name`, or nullptr if unknown.
[[nodiscard]] inline const method_spec* method_info(std::string_view name) { return builtin_merge_registry::find(name); }

/// Every built-in method's spec.
[[nodiscard]] inline std::span<const method_spec> merge_method_list() { return builtin_merge_registry::methods(); }

/// Merges one tensor with the built-in method called `name` (mergekit names), its global parameters given as
/// `params` (unknown, missing or ill-typed ones throw fusekit::error naming the method) and per-model
/// parameters already in `inputs` (see apply_model_params()).
template <class P, class Out, class Base, class In>
void merge_by_name(const P& policy, std::string_view name, const merge_params& params, Out&& out, Base&& base,
                   std::span<const merge_input<In>> inputs, const merge_context& ctx = {}) {
  builtin_merge_registry::run(policy, name, params, std::forward<Out>(out), std::forward<Base>(base), inputs, ctx);
}
/// Convenience overload taking any contiguous range of merge_input.
template <class P, class Out, class Base, class Range>
  requires requires(const Range& r) { std::span(r); }
void merge_by_name(const P& policy, std::string_view name, const merge_params& params, Out&& out, Base&& base,
                   const Range& inputs, const merge_context& ctx = {}) {
  merge_by_name(policy, name, params, std::forward<Out>(out), std::forward<Base>(base), std::span(inputs), ctx);
}

} // namespace fusekit
