/// @file
/// @brief safetensors_writer: streams planned tensors into one `model.safetensors` or
/// `model-0000k-of-0000N.safetensors` shards plus `model.safetensors.index.json`, atomically.
///
/// The caller lists every output tensor (name, dtype, shape) up front. The writer splits them into
/// shards of at most `max_shard_bytes` (a larger tensor gets a shard of its own), orders each shard by
/// descending element size (so with the header padded to 8 bytes every tensor starts aligned to its
/// element size, as the reference writer does), computes every header and offset, and creates the
/// shard files under hidden temporary names with the header already written, and reserves each shard's
/// full size on disk (posix_fallocate), so a full disk or a file-size limit fails at once, before any
/// work, with an error naming the file. Tensors then arrive in any order, each exactly once, in one of
/// two ways: `write()` copies a finished buffer to its offset (pwrite), or `open_tensor()` hands out a
/// writable window onto the tensor's bytes that the producer fills in place and `commit()`s: a shared
/// memory map of the file range when the space is reserved (no copy), otherwise a staging buffer reused
/// from tensor to tensor and written with one pwrite (writer_options::window chooses for reserved shards):
/// never a buffer beyond the largest tensor. `finish()` checks every tensor arrived, writes the index, and
/// renames: shards and extra files first, and last the file that marks a complete model (the index,
/// or `model.safetensors` for a single file). Destroying an unfinished writer removes its temporary
/// files, so an interrupted or failed run leaves nothing that looks like a finished model.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/io/checkpoint.hpp>
#include <fusekit/io/dtype.hpp>
#include <fusekit/io/safetensors.hpp>

namespace fusekit::io {

/// An output tensor announced before writing starts.
struct planned_tensor {
  std::string name;                ///< tensor name
  dtype type = dtype::bf16;        ///< element type
  std::vector<std::int64_t> shape; ///< extents (empty = scalar)

  /// Bytes of data (numel x element bits / 8).
  [[nodiscard]] std::uint64_t nbytes() const noexcept {
    std::uint64_t n = 1;
    for (auto e : shape)
      n *= static_cast<std::uint64_t>(e);
    return n * bit_size(type) / 8;
  }
};

/// How safetensors_writer::open_tensor() gives out a tensor's bytes on a reserved (preallocated) shard.
/// Unreserved shards always get the staging buffer.
enum class output_window {
  /// A MAP_SHARED map of the tensor's byte range of the shard: no copy; every page faults once (zero fill,
  /// unwritten-extent conversion). The default: its cost is steady.
  map,
  /// One staging buffer, grown to the largest tensor and reused, written with one pwrite at commit(); a
  /// second window open at the same time gets a heap buffer of its own. Measured with `fusekit merge` on
  /// 3 × 2.2 GB (ext4, the development VM, 2026-11-21): TIES 2.1–3.5 s against 2.8–3.3 s mapped, but task
  /// arithmetic 1.2–4.8 s against 1.4–1.7 s: the kernel's copy into new page-cache folios
  /// (copy_folio_from_iter_atomic) turns erratic when the producer is fast.
  staging
};

/// Options of safetensors_writer.
struct writer_options {
  /// Largest shard, in bytes of tensor data (mergekit `--out-shard-size`, default 5B = 5e9 bytes).
  std::uint64_t max_shard_bytes = 5'000'000'000ull;
  /// `__metadata__` of every shard (transformers expects {"format": "pt"}).
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  /// Extra entries of the index's "metadata" object besides total_size (strings).
  std::map<std::string, std::string> index_metadata = {};
  /// fsync every file before the renames in finish() (durable against power loss; slower).
  bool sync = false;
  /// Remove an existing model (model*.safetensors, the index) in the folder when finishing.
  bool replace_existing = false;
  /// Reserve every shard's full size when the writer is created (posix_fallocate): a full disk fails
  /// before any tensor is computed, and open_tensor() can then map the file (no copy, and no SIGBUS
  /// risk since the blocks exist). On file systems without fallocate the writer falls back to
  /// buffered pwrite. Off: the files grow as tensors are written (pwrite only).
  bool preallocate = true;
  /// How open_tensor() hands out windows on reserved shards (see output_window).
  output_window window = output_window::map;
  /// Testing hook: fail with an io_error ("no space left", simulated) once this many bytes of tensor
  /// data have been written. The default never fails.
  std::uint64_t fail_after_bytes = std::numeric_limits<std::uint64_t>::max();
};

/// A writable window onto one planned tensor's bytes, from safetensors_writer::open_tensor(): fill
/// bytes() completely, then hand it back with safetensors_writer::commit(). Move-only; destroying it
/// uncommitted discards it (the tensor stays unwritten, and finish() will say so). It must not outlive
/// its writer (it may hold the writer's staging buffer).
class tensor_out {
public:
  tensor_out() = default;
  tensor_out(tensor_out&& o) noexcept { swap(o); }
  tensor_out& operator=(tensor_out&& o) noexcept {
    tensor_out t(std::move(o));
    swap(t);
    return *this;
  }
  tensor_out(const tensor_out&) = delete;
  tensor_out& operator=(const tensor_out&) = delete;
  ~tensor_out() { release(); }

  /// The tensor's bytes (its planned size), to be filled by the caller.
  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, len_}; }
  /// The planned-tensor index.
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  /// True when bytes() is a map of the output file (commit() copies nothing).
  [[nodiscard]] bool mapped() const noexcept { return map_ != nullptr; }

private:
  friend class safetensors_writer;
  void swap(tensor_out& o) noexcept {
    std::swap(index_, o.index_);
    std::swap(map_, o.map_);
    std::swap(map_len_, o.map_len_);
    std::swap(data_, o.data_);
    std::swap(len_, o.len_);
    std::swap(heap_, o.heap_);
    std::swap(staging_busy_, o.staging_busy_);
  }
  void release() noexcept {
    if (map_ != nullptr)
      ::munmap(map_, map_len_);
    std::free(heap_);
    if (staging_busy_ != nullptr)
      *staging_busy_ = false; // the writer's staging buffer is free again
    staging_busy_ = nullptr;
    map_ = nullptr;
    heap_ = nullptr;
    data_ = nullptr;
    len_ = 0;
  }
  std::size_t index_ = 0;
  void* map_ = nullptr;      // page-aligned mapping (mapped mode)
  std::size_t map_len_ = 0;
  std::byte* data_ = nullptr; // first byte of the tensor
  std::size_t len_ = 0;
  void* heap_ = nullptr;     // buffer of its own (unmapped mode)
  bool* staging_busy_ = nullptr; // set when the window is the writer's staging buffer
};

/// Where one planned tensor goes.
struct tensor_slot {
  std::size_t shard = 0;     ///< shard position
  std::uint64_t begin = 0;   ///< offset in that shard's data buffer
  std::uint64_t end = 0;     ///< end offset
  bool written = false;      ///< set by write()
};

/// One output file.
struct shard_layout {
  std::string file_name;               ///< final name (model.safetensors or model-0000k-of-0000N.safetensors)
  std::vector<std::size_t> tensors;    ///< planned-tensor indices in data order
  std::uint64_t data_bytes = 0;        ///< bytes of tensor data
  std::string header;                  ///< JSON header, padded with spaces to a multiple of 8
};

/// Splits `tensors` (in the given order) into shards of at most `max_shard_bytes` of data and lays
/// out each shard. `slots` receives each tensor's placement.
inline std::vector<shard_layout> layout_shards(const std::vector<planned_tensor>& tensors, std::uint64_t max_shard_bytes,
                                               const std::map<std::string, std::string>& metadata,
                                               std::vector<tensor_slot>& slots) {
  std::vector<shard_layout> shards;
  std::uint64_t cur = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::uint64_t b = tensors[i].nbytes();
    if (shards.empty() || (cur > 0 && cur + b > max_shard_bytes)) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().tensors.push_back(i);
    cur += b;
  }
  if (shards.empty())
    shards.emplace_back(); // a model with no tensor still gets a (valid, empty) file
  slots.assign(tensors.size(), tensor_slot{});
  const std::size_t n = shards.size();
  for (std::size_t s = 0; s < n; ++s) {
    auto& sh = shards[s];
    std::stable_sort(sh.tensors.begin(), sh.tensors.end(), [&](std::size_t a, std::size_t b) {
      return element_size(tensors[a].type) > element_size(tensors[b].type);
    });
    nlohmann::json h = nlohmann::json::object();
    if (!metadata.empty())
      h["__metadata__"] = metadata;
    std::uint64_t off = 0;
    for (std::size_t i : sh.tensors) {
      const auto& t = tensors[i];
      const std::uint64_t b = t.nbytes();
      h[t.name] = {{"dtype", to_string(t.type)}, {"shape", t.shape}, {"data_offsets", {off, off + b}}};
      slots[i] = tensor_slot{s, off, off + b, false};
      off += b;
    }
    sh.data_bytes = off;
    sh.header = h.dump();
    sh.header.append((8 - sh.header.size() % 8) % 8, ' ');
    if (n == 1) {
      sh.file_name = std::string(single_file_name);
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", s + 1, n);
      sh.file_name = buf;
    }
  }
  return shards;
}

/// Streaming, atomic safetensors output. See the file comment.
class safetensors_writer {
public:
  /// Plans the output in `out_dir` (created if missing) and creates the temporary shard files.
  safetensors_writer(std::filesystem::path out_dir, std::vector<planned_tensor> tensors, writer_options options = {})
      : dir_(std::move(out_dir)), tensors_(std::move(tensors)), opt_(std::move(options)) {
    for (std::size_t i = 0; i < tensors_.size(); ++i)
      if (!by_name_.emplace(tensors_[i].name, i).second)
        throw_error(errc::invalid_argument, "safetensors_writer: tensor '" + tensors_[i].name + "' is planned twice");
    shards_ = layout_shards(tensors_, opt_.max_shard_bytes, opt_.metadata, slots_);
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec)
      throw_error(errc::io_error, dir_.string() + ": cannot create folder: " + ec.message());
    fds_.assign(shards_.size(), -1);
    reserved_.assign(shards_.size(), false);
    try {
      for (std::size_t s = 0; s < shards_.size(); ++s) {
        const auto tmp = temp_path(shards_[s].file_name);
        fds_[s] = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fds_[s] < 0)
          throw_error(errc::io_error, tmp.string() + ": cannot create: " + std::strerror(errno));
        temps_.push_back(tmp);
        const std::string& h = shards_[s].header;
        unsigned char len[8];
        std::uint64_t n = h.size();
        for (int k = 0; k < 8; ++k)
          len[k] = static_cast<unsigned char>(n >> (8 * k));
        pwrite_all(s, len, 8, 0);
        pwrite_all(s, h.data(), h.size(), 8);
        if (opt_.preallocate)
          reserve(s, 8 + h.size() + shards_[s].data_bytes);
      }
    } catch (...) {
      abort();
      throw;
    }
  }

  safetensors_writer(const safetensors_writer&) = delete;
  safetensors_writer& operator=(const safetensors_writer&) = delete;
  ~safetensors_writer() {
    if (!finished_)
      abort();
  }

  /// The shard layout (names, tensor order, headers).
  [[nodiscard]] const std::vector<shard_layout>& shards() const noexcept { return shards_; }
  /// The planned tensors.
  [[nodiscard]] const std::vector<planned_tensor>& tensors() const noexcept { return tensors_; }
  /// Planned tensor indices in on-disk order (shard by shard): writing in this order is sequential.
  [[nodiscard]] std::vector<std::size_t> write_order() const {
    std::vector<std::size_t> o;
    for (const auto& s : shards_)
      o.insert(o.end(), s.tensors.begin(), s.tensors.end());
    return o;
  }
  /// Tensor data bytes written so far.
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return written_bytes_; }
  /// Sum of all planned tensor bytes.
  [[nodiscard]] std::uint64_t total_bytes() const noexcept {
    std::uint64_t s = 0;
    for (const auto& sh : shards_)
      s += sh.data_bytes;
    return s;
  }

  /// Writes the whole data of planned tensor `name` (exactly its planned byte size).
  void write(std::string_view name, std::span<const std::byte> data) {
    auto it = by_name_.find(std::string(name));
    if (it == by_name_.end())
      throw_error(errc::invalid_argument, "safetensors_writer: tensor '" + std::string(name) + "' was not planned");
    write(it->second, data);
  }
  /// Writes the whole data of planned tensor number `i`.
  void write(std::size_t i, std::span<const std::byte> data) {
    FUSEKIT_EXPECTS(!finished_, invalid_argument, "safetensors_writer: write after finish");
    FUSEKIT_EXPECTS(i < tensors_.size(), out_of_range, "safetensors_writer: tensor index out of range");
    auto& slot = slots_[i];
    const auto& t = tensors_[i];
    FUSEKIT_EXPECTS(!slot.written, invalid_argument, "safetensors_writer: tensor '" + t.name + "' written twice");
    FUSEKIT_EXPECTS(data.size() == slot.end - slot.begin, invalid_argument,
                    "safetensors_writer: tensor '" + t.name + "' got " + std::to_string(data.size()) +
                        " bytes, planned " + std::to_string(slot.end - slot.begin) + " (shape " +
                        shape_to_string(t.shape) + ", " + std::string(to_string(t.type)) + ")");
    const std::uint64_t base = 8 + shards_[slot.shard].header.size();
    std::size_t len = data.size();
    if (written_bytes_ + len > opt_.fail_after_bytes) {
      const std::size_t part = static_cast<std::size_t>(opt_.fail_after_bytes - written_bytes_);
      pwrite_all(slot.shard, data.data(), part, base + slot.begin);
      throw_error(errc::io_error, temps_[slot.shard].string() + ": write of tensor '" + t.name +
                                      "' failed: No space left on device (simulated: fail_after_bytes)");
    }
    pwrite_all(slot.shard, data.data(), len, base + slot.begin, &t.name);
    written_bytes_ += len;
    slot.written = true;
  }

  /// A writable window onto planned tensor `i`'s bytes, to be filled and passed to commit(). When the
  /// shard's space was reserved this maps the tensor's byte range of the file (MAP_SHARED), so the caller's stores land in the page cache directly; otherwise it is a heap
  /// buffer that commit() writes with pwrite.
  [[nodiscard]] tensor_out open_tensor(std::size_t i) {
    FUSEKIT_EXPECTS(!finished_, invalid_argument, "safetensors_writer: open_tensor after finish");
    FUSEKIT_EXPECTS(i < tensors_.size(), out_of_range, "safetensors_writer: tensor index out of range");
    const auto& slot = slots_[i];
    FUSEKIT_EXPECTS(!slot.written, invalid_argument,
                    "safetensors_writer: tensor '" + tensors_[i].name + "' written twice");
    tensor_out t;
    t.index_ = i;
    t.len_ = static_cast<std::size_t>(slot.end - slot.begin);
    if (t.len_ == 0)
      return t;
    if (reserved_[slot.shard] && opt_.window == output_window::map) {
      const std::uint64_t off = 8 + shards_[slot.shard].header.size() + slot.begin;
      const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
      const std::uint64_t start = off / page * page;
      t.map_len_ = static_cast<std::size_t>(off - start) + t.len_;
      void* m = ::mmap(nullptr, t.map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, fds_[slot.shard],
                       static_cast<off_t>(start));
      if (m != MAP_FAILED) {
        t.map_ = m;
        t.data_ = static_cast<std::byte*>(m) + (off - start);
        return t;
      }
      t.map_len_ = 0; // could not map (address space?): fall back to a buffer
    }
    if (!staging_busy_) { // the reused buffer (faulted in once)
      if (staging_cap_ < t.len_) {
        staging_.reset(static_cast<std::byte*>(allocate(4096, t.len_, i)));
        staging_cap_ = (t.len_ + 4095) / 4096 * 4096;
      }
      staging_busy_ = true;
      t.staging_busy_ = &staging_busy_;
      t.data_ = staging_.get();
      return t;
    }
    t.heap_ = allocate(64, t.len_, i);
    t.data_ = static_cast<std::byte*>(t.heap_);
    return t;
  }

  /// Marks the tensor filled through `t` as written (copying it with pwrite when it is a buffer).
  void commit(tensor_out&& t) {
    FUSEKIT_EXPECTS(!finished_, invalid_argument, "safetensors_writer: commit after finish");
    FUSEKIT_EXPECTS(t.index_ < tensors_.size(), out_of_range, "safetensors_writer: tensor index out of range");
    auto& slot = slots_[t.index_];
    const auto& name = tensors_[t.index_].name;
    FUSEKIT_EXPECTS(!slot.written, invalid_argument, "safetensors_writer: tensor '" + name + "' written twice");
    FUSEKIT_EXPECTS(t.len_ == slot.end - slot.begin, invalid_argument,
                    "safetensors_writer: tensor '" + name + "' committed with the wrong size");
    if (written_bytes_ + t.len_ > opt_.fail_after_bytes) {
      t.release();
      throw_error(errc::io_error, temps_[slot.shard].string() + ": write of tensor '" + name +
                                      "' failed: No space left on device (simulated: fail_after_bytes)");
    }
    if (!t.mapped() && t.len_ > 0)
      pwrite_all(slot.shard, t.data_, t.len_, 8 + shards_[slot.shard].header.size() + slot.begin, &name);
    t.release(); // munmap: the dirty pages stay in the page cache, written back by the kernel
    written_bytes_ += slot.end - slot.begin;
    slot.written = true;
  }

  /// Stages an extra file (config.json, tokenizer files) to be renamed into place by finish(), before
  /// the model-marker file.
  void stage_file(const std::string& file_name, std::string_view contents) {
    const auto tmp = temp_path(file_name);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      throw_error(errc::io_error, tmp.string() + ": cannot create: " + std::strerror(errno));
    temps_.push_back(tmp);
    std::size_t off = 0;
    while (off < contents.size()) {
      const ssize_t r = ::write(fd, contents.data() + off, contents.size() - off);
      if (r < 0) {
        if (errno == EINTR)
          continue;
        const int e = errno;
        ::close(fd);
        throw_error(errc::io_error, tmp.string() + ": write failed: " + std::strerror(e));
      }
      off += static_cast<std::size_t>(r);
    }
    if ((opt_.sync && ::fsync(fd) != 0) || ::close(fd) != 0)
      throw_error(errc::io_error, tmp.string() + ": write failed: " + std::strerror(errno));
    staged_.push_back(file_name);
  }

  /// Checks every tensor was written, writes the index (when sharded), and renames everything into
  /// place, the marker file last. Returns the final paths of the weight files (and index).
  std::vector<std::filesystem::path> finish() {
    namespace fs = std::filesystem;
    FUSEKIT_EXPECTS(!finished_, invalid_argument, "safetensors_writer: finish called twice");
    try {
      for (std::size_t i = 0; i < tensors_.size(); ++i)
        if (!slots_[i].written)
          throw_error(errc::internal, dir_.string() + ": tensor '" + tensors_[i].name + "' was planned but never written");
      for (std::size_t s = 0; s < fds_.size(); ++s) {
        if (opt_.sync && ::fsync(fds_[s]) != 0)
          throw_error(errc::io_error, temps_[s].string() + ": fsync failed: " + std::strerror(errno));
        if (::close(fds_[s]) != 0) {
          fds_[s] = -1;
          throw_error(errc::io_error, temps_[s].string() + ": close failed: " + std::strerror(errno));
        }
        fds_[s] = -1;
        const auto expect = 8 + shards_[s].header.size() + shards_[s].data_bytes;
        std::error_code ec;
        const auto got = fs::file_size(temps_[s], ec);
        if (ec || got != expect)
          throw_error(errc::io_error, temps_[s].string() + ": has " + std::to_string(got) + " bytes, expected " +
                                          std::to_string(expect));
      }
      const bool sharded = shards_.size() > 1;
      if (sharded) {
        nlohmann::json idx;
        idx["metadata"] = nlohmann::json::object();
        for (const auto& [k, v] : opt_.index_metadata)
          idx["metadata"][k] = v;
        idx["metadata"]["total_size"] = total_bytes();
        idx["weight_map"] = nlohmann::json::object();
        for (const auto& sh : shards_)
          for (std::size_t i : sh.tensors)
            idx["weight_map"][tensors_[i].name] = sh.file_name;
        stage_file(std::string(index_file_name), idx.dump(2) + "\n");
        staged_.pop_back(); // the index is the marker: renamed last, below
      }
      if (opt_.replace_existing)
        remove_existing_model();
      // Rename order: shards (except a single-file marker), staged extras, then the marker.
      std::vector<std::pair<fs::path, fs::path>> renames;
      for (std::size_t s = 0; s < shards_.size(); ++s)
        if (sharded)
          renames.emplace_back(temps_[s], dir_ / shards_[s].file_name);
      for (const auto& f : staged_)
        renames.emplace_back(temp_path(f), dir_ / f);
      if (sharded)
        renames.emplace_back(temp_path(std::string(index_file_name)), dir_ / index_file_name);
      else
        renames.emplace_back(temps_[0], dir_ / shards_[0].file_name);
      std::vector<fs::path> done;
      for (const auto& [from, to] : renames) {
        if (::rename(from.c_str(), to.c_str()) != 0)
          throw_error(errc::io_error, to.string() + ": cannot rename into place: " + std::strerror(errno));
        done.push_back(to);
      }
      if (opt_.sync) {
        const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
          ::fsync(dfd);
          ::close(dfd);
        }
      }
      finished_ = true;
      temps_.clear();
      std::vector<fs::path> out;
      for (const auto& sh : shards_)
        out.push_back(dir_ / sh.file_name);
      if (sharded)
        out.push_back(dir_ / index_file_name);
      return out;
    } catch (...) {
      abort();
      throw;
    }
  }

  /// Closes and removes every temporary file (idempotent). Called by the destructor when unfinished.
  void abort() noexcept {
    for (int& fd : fds_)
      if (fd >= 0) {
        ::close(fd);
        fd = -1;
      }
    for (const auto& t : temps_)
      ::unlink(t.c_str());
    temps_.clear();
    finished_ = true;
  }

  /// The hidden temporary name used for final file `name` in `dir`.
  [[nodiscard]] static std::filesystem::path temp_path(const std::filesystem::path& dir, const std::string& name) {
    return dir / ("." + name + ".fusekit-partial");
  }

private:
  [[nodiscard]] std::filesystem::path temp_path(const std::string& name) const { return temp_path(dir_, name); }

  void pwrite_all(std::size_t shard, const void* data, std::size_t len, std::uint64_t off,
                  const std::string* tensor = nullptr) {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
      const std::size_t chunk = std::min<std::size_t>(len, std::size_t(1) << 30);
      const ssize_t r = ::pwrite(fds_[shard], p, chunk, static_cast<off_t>(off));
      if (r < 0) {
        if (errno == EINTR)
          continue;
        throw_error(errc::io_error, temps_[shard].string() + ": write" +
                                        (tensor ? " of tensor '" + *tensor + "'" : std::string()) +
                                        " failed: " + std::strerror(errno));
      }
      if (r == 0)
        throw_error(errc::io_error, temps_[shard].string() + ": write returned 0 bytes");
      p += r;
      len -= static_cast<std::size_t>(r);
      off += static_cast<std::uint64_t>(r);
    }
  }

  /// aligned_alloc(align, round_up(len, align)) for the window of planned tensor i (len bytes); throws
  /// io_error naming the tensor when out of memory.
  void* allocate(std::size_t align, std::size_t len, std::size_t i) const {
    void* p = std::aligned_alloc(align, (len + align - 1) / align * align);
    if (p == nullptr)
      throw_error(errc::io_error, "safetensors_writer: out of memory for tensor '" + tensors_[i].name + "' (" +
                                      std::to_string(len) + " bytes)");
    return p;
  }

  /// Reserves `bytes` for shard `s`; marks it mappable. No support in the file system: stay unreserved.
  void reserve(std::size_t s, std::uint64_t bytes) {
    const int r = ::posix_fallocate(fds_[s], 0, static_cast<off_t>(bytes));
    if (r == 0) {
      reserved_[s] = true;
      return;
    }
    if (r == EOPNOTSUPP || r == EINVAL || r == ENOSYS)
      return;
    throw_error(errc::io_error, temps_[s].string() + ": cannot reserve " + std::to_string(bytes) +
                                    " bytes for the output: " + std::strerror(r));
  }

  void remove_existing_model() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string n = e.path().filename().string();
      const bool weights = n.rfind("model", 0) == 0 && n.size() > 12 && n.ends_with(".safetensors");
      if (weights || n == index_file_name)
        fs::remove(e.path(), ec);
    }
  }

  std::filesystem::path dir_;
  std::vector<planned_tensor> tensors_;
  writer_options opt_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::vector<shard_layout> shards_;
  std::vector<tensor_slot> slots_;
  std::vector<int> fds_;
  std::vector<bool> reserved_; // per shard: fallocate succeeded, tensors are mapped
  std::vector<std::filesystem::path> temps_; // shard temps first (same positions as shards_), then staged files
  std::vector<std::string> staged_;
  std::uint64_t written_bytes_ = 0;
  bool finished_ = false;
  struct free_deleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<std::byte, free_deleter> staging_; // output_window::staging: the reused window
  std::size_t staging_cap_ = 0;
  bool staging_busy_ = false;
};

} // namespace fusekit::io
