/// @file
/// @brief Internal: the large per-call scratch arrays of the merge methods (keep bits), mapped so that
/// touching them costs no page fault per page.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fusekit::detail {

/// An array of n trivially copyable T, every element equal to one value, owned for one merge call. From
/// 1 MiB on, on Linux, it is a fresh anonymous mapping with MAP_POPULATE: the kernel hands over all its
/// (zeroed) pages in the one call, instead of one page fault per 4 KiB page on first touch. In the VM these
/// figures come from a fault cost ~9 µs: 17 ms of dare_ties 14336×4096×8 went to faulting in its 7.3 MB of
/// keep bits. (Transparent huge pages, tried first, were faster in one run and 45% slower in another, when
/// the faults had to compact memory.) Elsewhere, or when the mapping fails, it is malloc'd and filled.
template <class T> class large_buffer {
  static_assert(std::is_trivially_copyable_v<T>);
  T* p_ = nullptr;
  std::size_t n_ = 0;
  bool mapped_ = false;

  void release() noexcept {
#if defined(__linux__)
    if (mapped_) {
      (void)::munmap(p_, n_ * sizeof(T));
      p_ = nullptr;
    }
#endif
    std::free(p_);
    p_ = nullptr;
    n_ = 0;
    mapped_ = false;
  }

public:
  large_buffer() = default;
  large_buffer(const large_buffer&) = delete;
  large_buffer& operator=(const large_buffer&) = delete;
  ~large_buffer() { release(); }

  /// n elements, every one equal to `value`; the previous contents are released. Throws std::bad_alloc.
  void assign(std::size_t n, T value) {
    release();
    if (n == 0)
      return;
    const std::size_t bytes = n * sizeof(T);
    bool zeroed = false;
#if defined(__linux__) && defined(MAP_POPULATE)
    if (bytes >= (std::size_t{1} << 20)) {
      void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (m != MAP_FAILED) {
        p_ = static_cast<T*>(m);
        mapped_ = true;
        zeroed = true;
      }
    }
#endif
    if (p_ == nullptr) {
      p_ = static_cast<T*>(std::malloc(bytes));
      if (p_ == nullptr)
        throw std::bad_alloc();
    }
    n_ = n;
    T zero;
    std::fill_n(reinterpret_cast<unsigned char*>(&zero), sizeof(T), static_cast<unsigned char>(0));
    const bool value_is_zero = std::equal(reinterpret_cast<const unsigned char*>(&value),
                                          reinterpret_cast<const unsigned char*>(&value) + sizeof(T),
                                          reinterpret_cast<const unsigned char*>(&zero));
    if (!(zeroed && value_is_zero))
      std::fill(p_, p_ + n, value);
  }
  [[nodiscard]] T* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
};

} // namespace fusekit::detail
