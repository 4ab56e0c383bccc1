#include "tensor/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace mnemo::prof {

namespace {

struct Entry {
  double seconds = 0;
  int64_t calls = 0;
};

struct Table {
  std::mutex mu;
  std::map<std::tuple<std::string, int64_t, int64_t, int64_t>, Entry> rows;
  ~Table() {  // printed at exit, biggest first
    std::vector<std::pair<double, std::string>> lines;
    double total = 0;
    for (auto& [k, e] : rows) {
      auto& [name, a, b, c] = k;
      char buf[256];
      std::snprintf(buf, sizeof buf, "%10.3f s %8lld calls %9.3f ms/call  %s", e.seconds, (long long)e.calls,
                    1e3 * e.seconds / double(std::max<int64_t>(1, e.calls)), name.c_str());
      std::string line = buf;
      for (int64_t v : {a, b, c})
        if (v >= 0) line += " " + std::to_string(v);
      lines.emplace_back(e.seconds, line);
      if (name.rfind("gemm", 0) != 0) total += e.seconds;  // gemm is nested inside linear/attention
    }
    std::sort(lines.rbegin(), lines.rend());
    std::fprintf(stderr, "kernel profile (wall seconds, inclusive; gemm rows are inside linear rows):\n");
    for (auto& [s, l] : lines) std::fprintf(stderr, "%s\n", l.c_str());
    std::fprintf(stderr, "%10.3f s total outside gemm rows\n", total);
  }
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MNEMO_PROFILE");
    bool v = e && *e && std::string(e) != "0";
    if (v) table();  // constructed before first use so it is destroyed (and printed) after the last
    return v;
  }();
  return on;
}

void add(const char* name, int64_t a, int64_t b, int64_t c, double seconds) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  Entry& e = t.rows[{name, a, b, c}];
  e.seconds += seconds;
  ++e.calls;
}

}  // namespace mnemo::prof
