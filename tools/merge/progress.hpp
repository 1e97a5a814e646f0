// Byte-based progress for long tool runs: a redrawn bar with throughput and ETA on a terminal, plain log
// lines (every 10% or 10 s) otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace fusekit_tool {

/// "1.23 GB" (decimal units, as the shard-size option).
inline std::string human_bytes(double b) {
  const char* unit[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000.0 && u < 4) {
    b /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, unit[u]);
  return buf;
}

/// Progress over a known number of bytes.
class progress {
public:
  /// `label` prefixes every line; `tty` selects the redrawn bar (default: stderr is a terminal).
  progress(std::string label, std::uint64_t total, bool quiet, int tty = -1)
      : label_(std::move(label)), total_(total), quiet_(quiet), tty_(tty < 0 ? ::isatty(2) != 0 : tty != 0),
        start_(clock::now()), last_(start_) {}

  /// Adds `bytes` done.
  void advance(std::uint64_t bytes) {
    done_ += bytes;
    if (quiet_)
      return;
    const auto now = clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (tty_) {
      if (since < 0.1 && done_ < total_)
        return;
      last_ = now;
      draw(now, false);
    } else {
      const int decile = total_ ? static_cast<int>(10 * done_ / total_) : 10;
      if (decile == last_decile_ && since < 10.0 && done_ < total_)
        return;
      last_decile_ = decile;
      last_ = now;
      draw(now, false);
    }
  }
  /// Ends the bar line.
  void finish() {
    if (!quiet_ && tty_) {
      draw(clock::now(), true);
      std::fputc('\n', stderr);
    }
  }
  /// Seconds since construction.
  [[nodiscard]] double elapsed() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

private:
  using clock = std::chrono::steady_clock;
  void draw(clock::time_point now, bool) {
    const double t = std::chrono::duration<double>(now - start_).count();
    const double rate = t > 0 ? done_ / t : 0.0;
    const double frac = total_ ? static_cast<double>(done_) / total_ : 1.0;
    const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
    char tail[160];
    std::snprintf(tail, sizeof tail, "%5.1f%% %s / %s  %s/s  ETA %.0fs", 100.0 * frac, human_bytes(done_).c_str(),
                  human_bytes(total_).c_str(), human_bytes(rate).c_str(), eta);
    if (tty_) {
      constexpr int width = 30;
      const int fill = static_cast<int>(frac * width);
      std::string bar(static_cast<std::size_t>(fill), '#');
      bar.append(static_cast<std::size_t>(width - fill), '.');
      std::fprintf(stderr, "\r%s [%s] %s\x1b[K", label_.c_str(), bar.c_str(), tail);
    } else {
      std::fprintf(stderr, "%s: %s\n", label_.c_str(), tail);
    }
    std::fflush(stderr);
  }

  std::string label_;
  std::uint64_t total_ = 0, done_ = 0;
  bool quiet_ = false, tty_ = false;
  int last_decile_ = -1;
  clock::time_point start_, last_;
};

} // namespace fusekit_tool
