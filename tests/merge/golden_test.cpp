// Golden files produced by mergekit itself (tests/merge/golden/make_mergekit_golden.py; the manifest records the
// mergekit version). Every case runs through the name registry (merge_by_name + apply_model_params), the way the
// `fusekit merge` tool calls the library. DARE/DELLA cases were generated with fusekit's counter-based masks
// substituted for torch.bernoulli, so they compare element by element too.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/merge.hpp>

using namespace fusekit;
using json = nlohmann::json;

namespace {

struct golden {
  json manifest;
  std::vector<char> blob;
  golden() {
    const std::string dir = std::string(FUSEKIT_TEST_DATA_DIR) + "/merge/";
    std::ifstream j(dir + "golden.json");
    BOOST_REQUIRE_MESSAGE(j, "missing " << dir << "golden.json");
    manifest = json::parse(j);
    std::ifstream b(dir + "golden.bin", std::ios::binary);
    blob.assign(std::istreambuf_iterator<char>(b), std::istreambuf_iterator<char>());
  }
  [[nodiscard]] std::vector<float> array(std::size_t offset, std::size_t n) const {
    BOOST_REQUIRE(offset + n * 4 <= blob.size());
    std::vector<float> v(n);
    std::memcpy(v.data(), blob.data() + offset, n * 4);
    return v;
  }
};

const golden& data() {
  static const golden g;
  return g;
}

merge_params to_params(const json& j) {
  merge_params p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_boolean())
      p[it.key()] = it->get<bool>();
    else if (it->is_number())
      p[it.key()] = it->get<double>();
    else
      p[it.key()] = it->get<std::string>();
  }
  return p;
}

// Runs one case with storage type T; returns the output as floats.
template <class T> std::vector<float> run_case(const json& c, std::size_t n, std::int64_t rows, std::int64_t cols) {
  const golden& g = data();
  auto to_t = [&](const std::vector<float>& v) {
    std::vector<T> t(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      t[i] = T(v[i]);
    return t;
  };
  std::vector<std::vector<T>> xs;
  for (const auto& off : c["inputs"])
    xs.push_back(to_t(g.array(off.get<std::size_t>(), n)));
  using V = matrix_view<const T>;
  const std::string method = c["method"];
  const method_spec* spec = method_info(method);
  BOOST_REQUIRE_MESSAGE(spec, method);
  std::vector<merge_input<V>> in;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    merge_input<V> mi{host_view(static_cast<const T*>(xs[i].data()), std::array<std::int64_t, 2>{rows, cols})};
    const json pm = i < c["per_model"].size() ? c["per_model"][i] : json::object();
    apply_model_params(*spec, to_params(pm), mi, i);
    in.push_back(mi);
  }
  std::vector<T> out(n);
  auto ov = host_view(out.data(), std::array<std::int64_t, 2>{rows, cols});
  const std::string tensor = c["tensor"];
  const merge_context ctx{tensor, c["seed"].get<std::uint64_t>()};
  if (!c["base"].is_null()) {
    const auto b = to_t(g.array(c["base"].get<std::size_t>(), n));
    merge_by_name(exec::par, method, to_params(c["params"]), ov,
                  host_view(b.data(), std::array<std::int64_t, 2>{rows, cols}), in, ctx);
  } else {
    merge_by_name(exec::par, method, to_params(c["params"]), ov, no_base, in, ctx);
  }
  std::vector<float> r(n);
  for (std::size_t i = 0; i < n; ++i)
    r[i] = static_cast<float>(out[i]);
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_mergekit_golden)

BOOST_AUTO_TEST_CASE(every_case_matches_mergekit) {
  const golden& g = data();
  BOOST_TEST_MESSAGE("golden files from mergekit " << g.manifest["mergekit_version"].get<std::string>());
  BOOST_CHECK_GE(g.manifest["cases"].size(), 30u);
  std::set<std::string> methods;
  for (const auto& c : g.manifest["cases"]) {
    const std::string id = c["id"];
    methods.insert(c["method"].get<std::string>());
    const auto shape = c["shape"].get<std::vector<std::int64_t>>();
    const std::int64_t rows = shape.size() == 2 ? shape[0] : 1, cols = shape.back();
    const auto n = static_cast<std::size_t>(rows * cols);
    const auto want = g.array(c["output"].get<std::size_t>(), n);
    const std::vector<float> got =
        c["dtype"] == "bfloat16" ? run_case<bf16>(c, n, rows, cols) : run_case<float>(c, n, rows, cols);
    const double rtol = c["rtol"], atol = c["atol"];
    if (c["compare"] == "mask") {
      // element taken from the model or kept from the base: count disagreements
      std::size_t differ = 0;
      for (std::size_t i = 0; i < n; ++i)
        differ += std::abs(got[i] - want[i]) > atol + rtol * std::abs(want[i]);
      BOOST_CHECK_MESSAGE(differ <= 2, id << ": " << differ << " of " << n << " elements differ from mergekit");
      continue;
    }
    std::size_t bad = 0;
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double err = std::abs(static_cast<double>(got[i]) - want[i]);
      const double tol = atol + rtol * std::abs(want[i]);
      worst = std::max(worst, err / tol);
      if (!(err <= tol) && bad++ < 3)
        BOOST_ERROR(id << ": element " << i << " fusekit " << got[i] << " mergekit " << want[i]);
    }
    BOOST_TEST_MESSAGE(id << ": worst error/tolerance " << worst);
    BOOST_CHECK_MESSAGE(bad == 0, id << ": " << bad << " of " << n << " elements differ from mergekit");
  }
  // every mergekit method has at least one golden case
  for (const auto& s : merge_method_list())
    if (s.name != "varm")
      BOOST_CHECK_MESSAGE(methods.count(std::string(s.name)) == 1, "no golden case for " << s.name);
}

BOOST_AUTO_TEST_SUITE_END()
