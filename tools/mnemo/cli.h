#pragma once
// The command line's small toolkit: flag parsing with one-line errors, and verb registration. Each verb lives in
// its own verb_<name>.cpp and registers itself with MNEMO_VERB, with its usage text; main.cpp only dispatches, and
// answers `mnemo <verb> [<form>] --help` from the registered texts before the verb reads any flag.
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
  // `form`: the sub-command word the line names ("" if none), so a missing flag's error points at the right help.
  Args(std::string verb, std::vector<std::string> argv, std::string form = "");

  const std::string& verb() const { return verb_; }
  // "--name VALUE" or "--name=VALUE"; `alias` is an optional short form such as "-t".
  std::optional<std::string> get(const std::string& name, const std::string& alias = "");
  std::string get_or(const std::string& name, const std::string& fallback, const std::string& alias = "");
  std::string require(const std::string& name, const std::string& alias = "");
  int64_t get_int(const std::string& name, int64_t fallback, const std::string& alias = "");
  double get_double(const std::string& name, double fallback, const std::string& alias = "");
  bool flag(const std::string& name, const std::string& alias = "");  // present / absent
  // True when the first argument is `word` (the sub-command in "mnemo train rmt ..."), which it then consumes.
  // Only the first: a flag's value that happens to be "rmt" never switches the form.
  bool leading(const std::string& word);
  // Words that are not flags, in order (e.g. "rmt" in "mnemo train rmt").
  std::vector<std::string> positionals();
  // Throws Error for any unread flag or leftover positional.
  void finish();

 private:
  std::string verb_, form_;
  std::vector<std::string> argv_;
  std::vector<bool> used_;
};

// One form of a verb and its usage text. `word` selects the form ("" = the form run without a sub-command word);
// two words may share a text (`train` and `train lm`). A text's first line is "usage: mnemo <verb> ...", then one
// line per flag the form reads: name, meaning in a few words, default. The common flags are added by help_text.
struct Form {
  std::string word, usage;
};

struct Verb {
  std::string name, summary;
  std::function<int(Args&)> run;
  std::vector<Form> forms;  // at least one
};
std::map<std::string, Verb>& verbs();

struct RegisterVerb {
  RegisterVerb(std::string name, std::string summary, std::function<int(Args&)> run, std::vector<Form> forms);
  RegisterVerb(std::string name, std::string summary, std::function<int(Args&)> run, const char* usage)
      : RegisterVerb(std::move(name), std::move(summary), std::move(run), std::vector<Form>{{"", usage}}) {}
};

// --help or -h anywhere on the line.
bool wants_help(const std::vector<std::string>& argv);
// The word of the form argv names: the first argument, when it is one of the verb's words ("" otherwise).
std::string form_word(const Verb& verb, const std::vector<std::string>& argv);
// What `mnemo <verb> ... --help` prints: the named form's text, else the wordless form's, else the only one's,
// else every form's first line; then the common flags and the other forms' help commands ("see also: ...").
std::string help_text(const Verb& verb, const std::vector<std::string>& argv);

// Common flags every verb takes: -t/--threads N, --quiet. Call first in each verb.
void common_flags(Args& args);

}  // namespace mnemo::cli

#define MNEMO_VERB_CAT2(a, b) a##b
#define MNEMO_VERB_CAT(a, b) MNEMO_VERB_CAT2(a, b)
// MNEMO_VERB(name, summary, fn, usage) or MNEMO_VERB(name, summary, fn, {{"word", usage}, ...}) for a verb with forms.
#define MNEMO_VERB(name, summary, ...) \
  static ::mnemo::cli::RegisterVerb MNEMO_VERB_CAT(mnemo_verb_, __LINE__)(name, summary, __VA_ARGS__)
