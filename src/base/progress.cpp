#include "base/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace mnemo {

namespace {
bool g_quiet = false;
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string hms(double s) {
  if (s < 0 || s > 1e7) return "?";
  char buf[32];
  int h = int(s / 3600), m = int(s / 60) % 60, sec = int(s) % 60;
  if (h) std::snprintf(buf, sizeof buf, "%dh%02dm", h, m);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", m, sec);
  return buf;
}
}  // namespace

void Progress::set_quiet(bool quiet) { g_quiet = quiet; }

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), t0_(now()), tty_(isatty(STDERR_FILENO)) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::update(int64_t done, const std::string& status) {
  done_ = done;
  status_ = status;
  draw(false);
}

void Progress::note(const std::string& line) {
  if (g_quiet) return;
  if (tty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s: %s\n", label_.c_str(), line.c_str());
  if (tty_) draw(true);
}

void Progress::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  draw(true);
  if (!g_quiet && tty_) std::fprintf(stderr, "\n");
  finished_ = true;
}

void Progress::draw(bool force) {
  if (g_quiet) return;
  double t = now();
  if (!force && t - last_draw_ < (tty_ ? 0.2 : 5.0)) return;
  last_draw_ = t;
  double el = t - t0_;
  std::string line = label_;
  if (total_ > 0) {
    double f = double(done_) / double(total_);
    int w = 24, fill = int(f * w + 0.5);
    if (tty_) line += " [" + std::string(size_t(fill), '#') + std::string(size_t(w - fill), '.') + "]";
    char buf[96];
    std::snprintf(buf, sizeof buf, " %lld/%lld %3.0f%% %s ETA %s", (long long)done_, (long long)total_, 100 * f,
                  hms(el).c_str(), done_ > 0 ? hms(el * (1 - f) / f).c_str() : "?");
    line += buf;
  } else {
    line += " " + std::to_string(done_) + " " + hms(el);
  }
  if (!status_.empty()) line += " | " + status_;
  if (tty_) std::fprintf(stderr, "\r\033[K%s", line.c_str());
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace mnemo
