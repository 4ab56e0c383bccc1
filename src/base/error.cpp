#include "base/error.h"

namespace mnemo {

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  throw Error(cat(file, ":", line, ": internal check failed: ", cond, msg.empty() ? "" : ": ", msg));
}

}  // namespace mnemo
