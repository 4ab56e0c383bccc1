#pragma once
// The command line's small toolkit: flag parsing with one-line errors, and verb registration. Each verb lives in
// its own verb_<name>.cpp and registers itself with MNEMO_VERB; main.cpp only dispatches.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mnemo::cli {

// Flags of one verb. Read each flag once with a getter; finish() then rejects any flag nobody read.
class Args {
 public:
  Args(std::string verb, std::vector<std::string> argv);

  const std::string& verb() const { return verb_; }
  // "--name VALUE" or "--name=VALUE"; `alias` is an optional short form such as "-t".
  std::optional<std::string> get(const std::string& name, const std::string& alias = "");
  std::string get_or(const std::string& name, const std::string& fallback, const std::string& alias = "");
  std::string require(const std::string& name, const std::string& alias = "");
  int64_t get_int(const std::string& name, int64_t fallback, const std::string& alias = "");
  double get_double(const std::string& name, double fallback, const std::string& alias = "");
  bool flag(const std::string& name, const std::string& alias = "");  // present / absent
  // Words that are not flags, in order (e.g. "rmt" in "mnemo train rmt").
  std::vector<std::string> positionals();
  // Throws Error for any unread flag or leftover positional.
  void finish();

 private:
  std::string verb_;
  std::vector<std::string> argv_;
  std::vector<bool> used_;
};

struct Verb {
  std::string name, summary;
  std::function<int(Args&)> run;
};
std::map<std::string, Verb>& verbs();

struct RegisterVerb {
  RegisterVerb(std::string name, std::string summary, std::function<int(Args&)> run) {
    verbs()[name] = Verb{name, std::move(summary), std::move(run)};
  }
};

// Common flags every verb takes: -t/--threads N, --quiet. Call first in each verb.
void common_flags(Args& args);

}  // namespace mnemo::cli

#define MNEMO_VERB_CAT2(a, b) a##b
#define MNEMO_VERB_CAT(a, b) MNEMO_VERB_CAT2(a, b)
#define MNEMO_VERB(name, summary, fn) \
  static ::mnemo::cli::RegisterVerb MNEMO_VERB_CAT(mnemo_verb_, __LINE__)(name, summary, fn)
