/// @file
/// @brief checkpoint: a Hugging Face model's weights, one `model.safetensors` or several shards listed by
/// `model.safetensors.index.json`, memory-mapped and validated, with one name -> tensor look-up.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/io/safetensors.hpp>

namespace fusekit::io {

/// Name of the single-file weights in a model folder.
inline constexpr std::string_view single_file_name = "model.safetensors";
/// Name of the shard index in a model folder.
inline constexpr std::string_view index_file_name = "model.safetensors.index.json";

/// A tensor located in a checkpoint: the shard that holds it and its header entry.
struct tensor_ref {
  const safetensors_file* file = nullptr; ///< the shard
  const tensor_info* info = nullptr;      ///< its entry in that shard's header
  std::size_t shard = 0;                  ///< shard position in checkpoint::shards()

  explicit operator bool() const noexcept { return info != nullptr; }
  /// The raw bytes.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return file->bytes(*info); }
};

/// The weights of one model. Opening validates every shard (headers and offsets) and the index.
class checkpoint {
public:
  /// Opens `path`: a model folder (holding model.safetensors or model.safetensors.index.json), a
  /// `.safetensors` file, or an index `.json` file. Throws fusekit::error naming the file on any problem.
  static checkpoint open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    checkpoint c;
    c.path_ = path;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (fs::exists(path / index_file_name))
        c.load_index(path / index_file_name);
      else if (fs::exists(path / single_file_name))
        c.add_shard(path / single_file_name);
      else
        throw_error(errc::io_error, path.string() + ": no " + std::string(single_file_name) + " or " +
                                        std::string(index_file_name) + " in this folder");
    } else if (fs::is_regular_file(path, ec)) {
      if (path.extension() == ".json")
        c.load_index(path);
      else
        c.add_shard(path);
    } else {
      throw_error(errc::io_error, path.string() + ": no such model folder or file");
    }
    c.build_order();
    return c;
  }

  /// What it was opened from.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// True when the weights come from an index with shards.
  [[nodiscard]] bool sharded() const noexcept { return sharded_; }
  /// The shard files, in index order (sorted by file name).
  [[nodiscard]] std::span<const std::unique_ptr<safetensors_file>> shards() const noexcept { return shards_; }
  /// Every tensor, in file order (shard by shard, by offset).
  [[nodiscard]] const std::vector<tensor_ref>& tensors() const noexcept { return order_; }
  /// The tensor called `name` (empty ref if absent).
  [[nodiscard]] tensor_ref find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? tensor_ref{} : order_[it->second];
  }
  /// True when the checkpoint has tensor `name`.
  [[nodiscard]] bool contains(std::string_view name) const { return by_name_.count(std::string(name)) != 0; }
  /// Total bytes of tensor data.
  [[nodiscard]] std::uint64_t total_bytes() const noexcept {
    std::uint64_t s = 0;
    for (const auto& t : order_)
      s += t.info->nbytes();
    return s;
  }

private:
  void add_shard(const std::filesystem::path& p) { shards_.push_back(std::make_unique<safetensors_file>(p)); }

  void load_index(const std::filesystem::path& index) {
    namespace fs = std::filesystem;
    sharded_ = true;
    std::ifstream in(index, std::ios::binary);
    if (!in)
      throw_error(errc::io_error, index.string() + ": cannot open");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const nlohmann::json j = detail::parse_json_strict(text, index.string(), "index");
    if (!j.is_object())
      throw_error(errc::parse_error, index.string() + ": the index must be a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object())
      throw_error(errc::parse_error, index.string() + ": missing object 'weight_map'");
    std::map<std::string, std::size_t> shard_pos; // file name -> position (sorted by name)
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string())
        throw_error(errc::parse_error, index.string() + ": weight_map entry for tensor '" + it.key() +
                                           "' must be a file name string, got " + it.value().dump());
      const std::string& f = it.value().get_ref<const std::string&>();
      const fs::path fp(f);
      if (f.empty() || fp.is_absolute() || fp.has_parent_path() || f == "." || f == "..")
        throw_error(errc::parse_error, index.string() + ": weight_map entry for tensor '" + it.key() +
                                           "' names '" + f + "', which is not a plain file name in the model folder");
      shard_pos.emplace(f, 0);
    }
    if (shard_pos.empty())
      throw_error(errc::parse_error, index.string() + ": weight_map lists no tensor");
    const fs::path dir = index.parent_path();
    std::size_t k = 0;
    for (auto& [f, pos] : shard_pos) {
      pos = k++;
      add_shard(dir / f);
    }
    // Cross-check: every listed tensor is in its shard, and every shard tensor is listed there.
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      const auto& f = it.value().get_ref<const std::string&>();
      const auto& shard = *shards_[shard_pos.at(f)];
      if (shard.find(it.key()) == nullptr)
        throw_error(errc::parse_error, index.string() + ": tensor '" + it.key() + "' is mapped to " + f +
                                           ", which does not contain it");
    }
    for (const auto& [f, pos] : shard_pos)
      for (const auto& t : shards_[pos]->tensors()) {
        auto e = wm->find(t.name);
        if (e == wm->end())
          throw_error(errc::parse_error, (dir / f).string() + ": tensor '" + t.name + "' is not listed in " +
                                             index.filename().string());
        if (e->get_ref<const std::string&>() != f)
          throw_error(errc::parse_error, (dir / f).string() + ": tensor '" + t.name + "' is also stored here, but " +
                                             index.filename().string() + " maps it to " + e->get<std::string>());
      }
  }

  void build_order() {
    for (std::size_t s = 0; s < shards_.size(); ++s)
      for (const auto& t : shards_[s]->tensors()) {
        if (!by_name_.emplace(t.name, order_.size()).second)
          throw_error(errc::parse_error, shards_[s]->path().string() + ": tensor '" + t.name +
                                             "' appears in more than one shard");
        order_.push_back(tensor_ref{shards_[s].get(), &t, s});
      }
  }

  std::filesystem::path path_;
  bool sharded_ = false;
  std::vector<std::unique_ptr<safetensors_file>> shards_;
  std::vector<tensor_ref> order_;
  std::unordered_map<std::string, std::size_t> by_name_;
};

} // namespace fusekit::io
