#pragma once
// Running the built mnemo program from a test: its exit status, stdout and stderr.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "scratch.h"

namespace mnemo_test {

struct Result {
  int status = -1;
  std::string out, err;
};

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The running test's scratch directory, as a path.
inline std::filesystem::path scratch() { return scratch_dir(); }

// `mnemo ARGS` (ARGS as a shell would split them).
inline Result mnemo(const std::string& args) {
  const std::filesystem::path errf = scratch() / "stderr";
  const std::string cmd = std::string(MNEMO_BINARY_DIR) + "/mnemo " + args + " 2>" + errf.string();
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = read_text(errf);
  return r;
}

}  // namespace mnemo_test
