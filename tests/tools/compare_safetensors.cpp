// compare_safetensors ACTUAL GOLDEN [REL_TOL ABS_TOL]
// Element-wise check of a merged model (folder or file, any float dtype) against a golden F32
// safetensors file: same tensor names, same shapes, |a - g| <= abs_tol + rel_tol * |g| everywhere.
// Prints the worst tensor and exits 1 on the first violation.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <fusekit/io/checkpoint.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

using namespace fusekit::io;

static std::vector<double> values(const tensor_ref& r) {
  const auto n = static_cast<std::size_t>(r.info->numel());
  std::vector<double> v(n);
  const std::byte* p = r.bytes().data();
  for (std::size_t i = 0; i < n; ++i) {
    switch (r.info->type) {
    case dtype::f32: { float x; std::memcpy(&x, p + 4 * i, 4); v[i] = x; break; }
    case dtype::bf16: { fusekit::bf16 x; std::memcpy(&x, p + 2 * i, 2); v[i] = static_cast<float>(x); break; }
    case dtype::f16: { fusekit::fp16 x; std::memcpy(&x, p + 2 * i, 2); v[i] = static_cast<float>(x); break; }
    case dtype::f64: { double x; std::memcpy(&x, p + 8 * i, 8); v[i] = x; break; }
    default: throw std::runtime_error("unsupported dtype in " + r.info->name);
    }
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: compare_safetensors ACTUAL GOLDEN [REL_TOL ABS_TOL]\n");
    return 2;
  }
  const double rel = argc > 3 ? std::atof(argv[3]) : 1e-5, abs_tol = argc > 4 ? std::atof(argv[4]) : 1e-7;
  try {
    const auto a = checkpoint::open(argv[1]);
    const auto g = checkpoint::open(argv[2]);
    int bad = 0;
    if (a.tensors().size() != g.tensors().size()) {
      std::fprintf(stderr, "tensor count: actual %zu, golden %zu\n", a.tensors().size(), g.tensors().size());
      ++bad;
    }
    double worst = 0;
    std::string worst_name;
    std::size_t elements = 0;
    for (const auto& gt : g.tensors()) {
      const auto at = a.find(gt.info->name);
      if (!at) {
        std::fprintf(stderr, "missing tensor '%s'\n", gt.info->name.c_str());
        ++bad;
        continue;
      }
      if (at.info->shape != gt.info->shape) {
        std::fprintf(stderr, "tensor '%s': shape %s, golden %s\n", gt.info->name.c_str(),
                     shape_to_string(at.info->shape).c_str(), shape_to_string(gt.info->shape).c_str());
        ++bad;
        continue;
      }
      const auto av = values(at), gv = values(gt);
      for (std::size_t i = 0; i < gv.size(); ++i) {
        const double err = std::abs(av[i] - gv[i]);
        const double lim = abs_tol + rel * std::abs(gv[i]);
        if (err / lim > worst) {
          worst = err / lim;
          worst_name = gt.info->name + "[" + std::to_string(i) + "]";
        }
        if (err > lim) {
          std::fprintf(stderr, "tensor '%s' element %zu: actual %.9g, golden %.9g (|diff| %.3g > %.3g)\n",
                       gt.info->name.c_str(), i, av[i], gv[i], err, lim);
          return 1;
        }
      }
      elements += gv.size();
    }
    std::printf("%zu tensors, %zu elements; worst |diff| / tolerance = %.3f at %s\n", g.tensors().size(), elements,
                worst, worst_name.c_str());
    return bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "compare_safetensors: %s\n", e.what());
    return 1;
  }
}
