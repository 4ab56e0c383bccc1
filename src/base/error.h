#pragma once
// Errors. Two kinds, as ../shared/STYLE.md asks:
//  - input at fault (a file, a flag, a config): throw mnemo::Error with a one-line message that names the input
//    and the problem, e.g. Error(cat(path, ": tensor 'wte' has shape [3,4], expected [50257,768]"));
//  - a broken internal invariant: MNEMO_CHECK(cond, ...) — always on, reports file:line.
// The program catches Error at the top, prints it as one line and exits non-zero.
#include <sstream>
#include <stdexcept>
#include <string>

namespace mnemo {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// cat(a, b, c...) -> string, streaming each piece (no <format> in GCC 12).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);

}  // namespace mnemo

#define MNEMO_CHECK(cond, ...)                                                          \
  do {                                                                                  \
    if (!(cond)) ::mnemo::check_failed(__FILE__, __LINE__, #cond, ::mnemo::cat(__VA_ARGS__)); \
  } while (0)
