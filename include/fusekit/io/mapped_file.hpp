/// @file
/// @brief mapped_file: a read-only memory map of a whole file (POSIX), with page-range hints to
/// prefetch a tensor before use and to drop it from the process's resident set after use.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fusekit/core/error.hpp>

namespace fusekit::io {

/// A read-only, shared memory map of an entire file. Move-only; unmaps on destruction. An empty file
/// maps to an empty span. Failures throw fusekit::error(io_error) naming the file and the OS reason.
class mapped_file {
public:
  mapped_file() = default;

  /// Maps `path` read-only.
  explicit mapped_file(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw_error(errc::io_error, path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      throw_error(errc::io_error, path.string() + ": cannot stat: " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw_error(errc::io_error, path.string() + ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw_error(errc::io_error, path.string() + ": cannot map: " + std::strerror(e));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }

  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept
      : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      unmap();
      path_ = std::move(o.path_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~mapped_file() { unmap(); }

  /// The mapped bytes.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  /// File size in bytes.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// The path it was opened with.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// Asks the kernel to read [offset, offset+len) ahead (MADV_WILLNEED). A hint: never fails.
  void prefetch(std::size_t offset, std::size_t len) const noexcept { advise(offset, len, MADV_WILLNEED); }
  /// Drops the pages of [offset, offset+len) from this process's resident set (MADV_DONTNEED). The data
  /// stays in the page cache and is faulted in again on the next access, so this only bounds peak RSS.
  void release(std::size_t offset, std::size_t len) const noexcept { advise(offset, len, MADV_DONTNEED); }

private:
  void advise(std::size_t offset, std::size_t len, int advice) const noexcept {
    if (data_ == nullptr || len == 0 || offset >= size_)
      return;
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t b = offset / page * page;
    const std::size_t e = std::min(size_, offset + len);
    ::madvise(const_cast<std::byte*>(data_) + b, e - b, advice);
  }
  void unmap() noexcept {
    if (data_ != nullptr)
      ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace fusekit::io
