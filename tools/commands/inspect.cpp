// `fusekit inspect MODEL [--base BASE --models A,B,...] [--tensors]`
// Report on a safetensors model (folder, file or index): files, tensors, dtypes, parameters, bytes; with
// --base, how the model's task vector (MODEL − BASE) relates to each model's (A − BASE): cosine
// similarity, sign agreement where both changed, and the share of changed elements. Everything is
// validated by the strict reader first; inputs are streamed tensor by tensor.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/io/checkpoint.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

#include "merge/progress.hpp"

namespace fusekit_tool {

namespace {

using namespace fusekit;
using namespace fusekit::io;

struct inspect_args {
  std::string model;
  std::string base;
  std::string models;
  bool tensors = false;
};

double element(const tensor_ref& r, std::int64_t i) {
  const std::byte* p = r.bytes().data();
  switch (r.info->type) {
  case dtype::bf16: { bf16 v; std::memcpy(&v, p + 2 * i, 2); return static_cast<float>(v); }
  case dtype::f16: { fp16 v; std::memcpy(&v, p + 2 * i, 2); return static_cast<float>(v); }
  case dtype::f32: { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
  case dtype::f64: { double v; std::memcpy(&v, p + 8 * i, 8); return v; }
  default: return 0.0;
  }
}

tensor_ref find_tied(const checkpoint& c, const std::string& name) {
  auto r = c.find(name);
  if (!r && name == "lm_head.weight")
    r = c.find("model.embed_tokens.weight");
  return r;
}

struct stats {
  double dot = 0, nm = 0, nx = 0;
  std::uint64_t both = 0, agree = 0, changed_x = 0;
};

int run_inspect(const inspect_args& a) {
  const checkpoint m = checkpoint::open(a.model);
  std::map<std::string, std::pair<std::size_t, std::uint64_t>> by_type;
  std::uint64_t params = 0;
  for (const auto& t : m.tensors()) {
    auto& e = by_type[std::string(to_string(t.info->type))];
    ++e.first;
    e.second += t.info->nbytes();
    params += static_cast<std::uint64_t>(t.info->numel());
  }
  std::cout << "model " << a.model << ": " << m.tensors().size() << " tensors in " << m.shards().size() << " file(s)"
            << (m.sharded() ? " + index" : "") << ", " << params << " parameters, " << human_bytes(m.total_bytes()) << "\n";
  for (const auto& [t, e] : by_type)
    std::cout << "  " << t << ": " << e.first << " tensors, " << human_bytes(e.second) << "\n";
  std::cout << "  lm_head.weight: " << (m.contains("lm_head.weight") ? "stored" : "absent (tied embeddings)") << "\n";
  if (a.tensors)
    for (const auto& t : m.tensors())
      std::cout << "  " << t.info->name << " " << to_string(t.info->type) << " " << shape_to_string(t.info->shape) << "\n";
  if (a.base.empty())
    return 0;

  const checkpoint b = checkpoint::open(a.base);
  std::vector<std::string> names;
  std::stringstream ss(a.models);
  for (std::string s; std::getline(ss, s, ',');)
    if (!s.empty())
      names.push_back(s);
  std::vector<checkpoint> others;
  for (const auto& n : names)
    others.push_back(checkpoint::open(n));
  std::vector<stats> st(others.size());
  std::uint64_t changed = 0, total = 0;
  for (const auto& t : m.tensors()) {
    if (!is_mergeable_float(t.info->type))
      continue;
    const auto br = find_tied(b, t.info->name);
    if (!br || br.info->shape.empty() || t.info->shape.empty())
      continue;
    const std::int64_t cols = t.info->numel() / t.info->shape[0];
    if (br.info->numel() / br.info->shape[0] != cols)
      continue;
    const std::int64_t rows = std::min(t.info->shape[0], br.info->shape[0]);
    std::vector<tensor_ref> xr(others.size());
    for (std::size_t k = 0; k < others.size(); ++k)
      xr[k] = find_tied(others[k], t.info->name);
    for (std::int64_t i = 0; i < rows * cols; ++i) {
      const double bv = element(br, i);
      const double dm = element(t, i) - bv;
      changed += dm != 0.0;
      ++total;
      for (std::size_t k = 0; k < others.size(); ++k) {
        if (!xr[k] || xr[k].info->numel() / xr[k].info->shape[0] != cols || i >= xr[k].info->numel())
          continue;
        const double dx = element(xr[k], i) - bv;
        auto& s = st[k];
        s.dot += dm * dx;
        s.nm += dm * dm;
        s.nx += dx * dx;
        s.changed_x += dx != 0.0;
        if (dm != 0.0 && dx != 0.0) {
          ++s.both;
          s.agree += (dm > 0) == (dx > 0);
        }
      }
    }
    t.file->release(*t.info);
  }
  std::printf("task vector vs base %s: %.2f%% of %llu elements changed\n", a.base.c_str(),
              total ? 100.0 * static_cast<double>(changed) / static_cast<double>(total) : 0.0,
              static_cast<unsigned long long>(total));
  std::printf("  %-28s %12s %14s %16s %14s\n", "model", "cos(dM, dX)", "|dM|/|dX|", "sign agreement", "X changed");
  for (std::size_t k = 0; k < others.size(); ++k) {
    const auto& s = st[k];
    const double cosv = s.nm > 0 && s.nx > 0 ? s.dot / std::sqrt(s.nm * s.nx) : 0.0;
    std::printf("  %-28s %12.4f %14.4f %15.2f%% %13.2f%%\n", names[k].c_str(), cosv,
                s.nx > 0 ? std::sqrt(s.nm / s.nx) : 0.0, s.both ? 100.0 * s.agree / s.both : 0.0,
                total ? 100.0 * static_cast<double>(s.changed_x) / static_cast<double>(total) : 0.0);
  }
  return 0;
}

} // namespace

/// Registers `fusekit inspect`.
void register_inspect(CLI::App& app) {
  auto a = std::make_shared<inspect_args>();
  auto* c = app.add_subcommand("inspect", "report on a safetensors model; with --base, compare its task vector to other models'");
  c->add_option("model", a->model, "model folder, .safetensors file or index")->required();
  c->add_option("--base", a->base, "base model: report the model's change from it");
  c->add_option("--models", a->models, "comma-separated models whose changes from the base are compared");
  c->add_flag("--tensors", a->tensors, "list every tensor");
  c->callback([a]() {
    const int rc = run_inspect(*a);
    if (rc != 0)
      throw CLI::RuntimeError(rc);
  });
}

} // namespace fusekit_tool
