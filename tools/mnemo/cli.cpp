#include "cli.h"

#include <cstdlib>

#include "base/error.h"
#include "base/progress.h"
#include "base/thread_pool.h"

namespace mnemo::cli {

Args::Args(std::string verb, std::vector<std::string> argv)
    : verb_(std::move(verb)), argv_(std::move(argv)), used_(argv_.size(), false) {}

std::optional<std::string> Args::get(const std::string& name, const std::string& alias) {
  std::optional<std::string> out;
  for (size_t i = 0; i < argv_.size(); ++i) {
    const std::string& a = argv_[i];
    if (a == name || (!alias.empty() && a == alias)) {
      if (i + 1 >= argv_.size()) throw Error(cat(name, " needs a value"));
      used_[i] = used_[i + 1] = true;
      out = argv_[i + 1];
      ++i;
    } else if (a.rfind(name + "=", 0) == 0) {
      used_[i] = true;
      out = a.substr(name.size() + 1);
    }
  }
  return out;  // the last occurrence wins, as in most tools
}

std::string Args::get_or(const std::string& name, const std::string& fallback, const std::string& alias) {
  auto v = get(name, alias);
  return v ? *v : fallback;
}

std::string Args::require(const std::string& name, const std::string& alias) {
  auto v = get(name, alias);
  if (!v) throw Error(cat(name, " is required"));
  return *v;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, const std::string& alias) {
  auto v = get(name, alias);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno == ERANGE)
    throw Error(cat(name, " expects an integer, got '", *v, "'"));
  return x;
}

double Args::get_double(const std::string& name, double fallback, const std::string& alias) {
  auto v = get(name, alias);
  if (!v) return fallback;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0') throw Error(cat(name, " expects a number, got '", *v, "'"));
  return x;
}

bool Args::flag(const std::string& name, const std::string& alias) {
  bool found = false;
  for (size_t i = 0; i < argv_.size(); ++i)
    if (argv_[i] == name || (!alias.empty() && argv_[i] == alias)) used_[i] = found = true;
  return found;
}

std::vector<std::string> Args::positionals() {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv_.size(); ++i)
    if (!used_[i] && (argv_[i].empty() || argv_[i][0] != '-')) {
      used_[i] = true;
      out.push_back(argv_[i]);
    }
  return out;
}

void Args::finish() {
  for (size_t i = 0; i < argv_.size(); ++i)
    if (!used_[i]) {
      if (!argv_[i].empty() && argv_[i][0] == '-')
        throw Error(cat("unknown flag ", argv_[i]));
      throw Error(cat("unexpected argument '", argv_[i], "'"));
    }
}

std::map<std::string, Verb>& verbs() {
  static std::map<std::string, Verb> v;
  return v;
}

void common_flags(Args& args) {
  int64_t t = args.get_int("--threads", 0, "-t");
  if (t < 0 || t > 1024) throw Error(cat("--threads must be between 1 and 1024"));
  if (t > 0) set_num_threads(int(t));
  if (args.flag("--quiet", "-q")) Progress::set_quiet(true);
}

}  // namespace mnemo::cli
