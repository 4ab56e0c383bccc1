#pragma once
// Human progress on stderr: a live bar on a terminal, plain lines (at most one every few seconds) otherwise.
// Results never go here; they go to stdout.
#include <cstdint>
#include <string>

namespace mnemo {

class Progress {
 public:
  // total <= 0: unknown length (no bar, no ETA). `label` starts every line.
  Progress(std::string label, int64_t total);
  ~Progress();
  // Set the position and a short status ("loss 3.21 | 4.1k tok/s"); redraws when due.
  void update(int64_t done, const std::string& status = "");
  // Print a line above the bar (e.g. a validation result).
  void note(const std::string& line);
  void finish(const std::string& status = "");
  // Silence all progress output (tests, --quiet).
  static void set_quiet(bool quiet);

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_, done_ = 0;
  std::string status_;
  double t0_, last_draw_ = -1e9;
  bool tty_, finished_ = false;
};

}  // namespace mnemo
