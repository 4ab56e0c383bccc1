#include "cli.h"

#include <cstdlib>

#include "base/error.h"
#include "base/progress.h"
#include "base/thread_pool.h"

namespace mnemo::cli {

Args::Args(std::string verb, std::vector<std::string> argv, std::string form)
    : verb_(std::move(verb)), form_(std::move(form)), argv_(std::move(argv)), used_(argv_.size(), false) {}

std::optional<std::string> Args::get(const std::string& name, const std::string& alias) {
  std::optional<std::string> out;
  for (size_t i = 0; i < argv_.size(); ++i) {
    const std::string& a = argv_[i];
    if (a == name || (!alias.empty() && a == alias)) {
      if (i + 1 >= argv_.size()) throw Error(cat(a, " needs a value"));  // as typed (maybe the alias)
      used_[i] = used_[i + 1] = true;
      out = argv_[i + 1];
      ++i;
    } else if (a.rfind(name + "=", 0) == 0 || (alias.rfind("--", 0) == 0 && a.rfind(alias + "=", 0) == 0)) {
      used_[i] = true;  // a long alias (a flag's former name) takes "=VALUE" too
      out = a.substr(a.find('=') + 1);
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
  if (!v) throw Error(cat(name, " is required (mnemo ", verb_, form_.empty() ? "" : " ", form_, " --help)"));
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

bool Args::leading(const std::string& word) {
  if (argv_.empty() || used_[0] || argv_[0] != word) return false;
  used_[0] = true;
  return true;
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

RegisterVerb::RegisterVerb(std::string name, std::string summary, std::function<int(Args&)> run,
                           std::vector<Form> forms) {
  MNEMO_CHECK(!forms.empty(), "verb ", name, " registered without a usage text");
  verbs()[name] = Verb{name, std::move(summary), std::move(run), std::move(forms)};
}

bool wants_help(const std::vector<std::string>& argv) {
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") return true;
  return false;
}

std::string form_word(const Verb& verb, const std::vector<std::string>& argv) {
  if (!argv.empty())
    for (const auto& f : verb.forms)
      if (!f.word.empty() && argv[0] == f.word) return f.word;
  return "";
}

namespace {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
}  // namespace

std::string help_text(const Verb& verb, const std::vector<std::string>& argv) {
  const std::string word = form_word(verb, argv);
  const Form* shown = nullptr;
  for (const auto& f : verb.forms)
    if (f.word == word) shown = &f;
  if (!shown && verb.forms.size() == 1) shown = &verb.forms[0];
  std::string out;
  if (shown) {
    out = shown->usage;
  } else {  // no form named and none without a word: every form's synopsis, git-style
    for (const auto& f : verb.forms) {
      std::string line = first_line(f.usage);
      if (!out.empty() && line.rfind("usage: ", 0) == 0) line.replace(0, 7, "   or: ");
      out += line + "\n";
    }
  }
  if (!out.empty() && out.back() != '\n') out += '\n';
  // Read by common_flags below, in every verb; listed with a form's flags.
  if (shown)
    out += "  -t, --threads N       worker threads (default: all cores)\n"
           "  -q, --quiet           no progress on stderr\n";
  // The other forms, each by one of its words (the wordless form by the bare verb), each text once.
  std::string others;
  std::vector<const std::string*> listed;
  if (shown) listed.push_back(&shown->usage);
  for (const auto& f : verb.forms) {
    bool seen = false;
    for (const std::string* t : listed) seen = seen || *t == f.usage;
    if (seen) continue;
    listed.push_back(&f.usage);
    std::string w = f.word;
    for (const auto& g : verb.forms)
      if (w.empty() && g.usage == f.usage) w = g.word;
    others += cat(others.empty() ? "" : ", ", "mnemo ", verb.name, w.empty() ? "" : " ", w, " --help");
  }
  if (!others.empty()) out += "see also: " + others + "\n";
  return out;
}

void common_flags(Args& args) {
  int64_t t = args.get_int("--threads", 0, "-t");
  if (t < 0 || t > 1024) throw Error(cat("--threads must be between 1 and 1024 (0: all cores), got ", t));
  if (t > 0) set_num_threads(int(t));
  if (args.flag("--quiet", "-q")) Progress::set_quiet(true);
}

}  // namespace mnemo::cli
