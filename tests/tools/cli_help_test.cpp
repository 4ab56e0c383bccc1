// The mnemo program's help: every registered verb, and every form of it, answers --help (and -h) on stdout with
// exit 0 and a "usage: mnemo <verb>" first line, before checking any other flag; and each verb's help names exactly
// the flags its code reads. The verbs come from the program's own list (`mnemo --help`), the forms from the
// "see also:" line its help ends with, so a verb or form added later is covered without editing this file.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "run_mnemo.h"

namespace {

namespace fs = std::filesystem;
using namespace mnemo_test;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }


// Flag names in a help text: "--name" or "-n" at the start of a word ("qa1-qa3" and "GPT-2" are not flags).
std::set<std::string> help_flags(const std::string& text) {
  static const std::regex re(R"((?:^|[^A-Za-z0-9_-])(--?[a-z][a-z0-9-]*))");
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) out.insert((*it)[1]);
  out.erase("--help");  // the pointer to other forms' help, not a flag of the verb
  return out;
}

// Flags a source file reads: string literals that are a flag name and nothing else (args.get("--out"), ...);
// flags inside messages, comments and the usage texts themselves do not count.
std::set<std::string> code_flags(const fs::path& file) {
  static const std::regex re(R"re("(--?[a-z][a-z0-9-]*)")re");
  const std::string text = read_text(file);
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) out.insert((*it)[1]);
  return out;
}

const fs::path kTools = fs::path(MNEMO_SOURCE_DIR) / "tools" / "mnemo";

// The files that are a verb's own (tools/mnemo conventions): verb_<v>.cpp, verb_<v>_*.cpp and <v>_*.cpp.
std::vector<fs::path> own_files(const std::string& verb) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kTools)) {
    const std::string n = e.path().filename().string();
    if (e.path().extension() != ".cpp") continue;
    if (n == "verb_" + verb + ".cpp" || n.rfind("verb_" + verb + "_", 0) == 0 || n.rfind(verb + "_", 0) == 0)
      out.push_back(e.path());
  }
  return out;
}

// Own files plus the .cpp of each tools/mnemo header they include (lm_common.cpp reads --ids for generate, cli.cpp
// the common flags): where a flag named in the help may be read.
std::vector<fs::path> reachable_files(const std::vector<fs::path>& own) {
  static const std::regex inc(R"re(#include "(\w+)\.h")re");
  std::set<fs::path> out(own.begin(), own.end());
  for (const auto& f : own) {
    const std::string text = read_text(f);
    for (std::sregex_iterator it(text.begin(), text.end(), inc), end; it != end; ++it) {
      const fs::path cpp = kTools / (std::string((*it)[1]) + ".cpp");
      if (fs::exists(cpp)) out.insert(cpp);
    }
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> registered_verbs() {
  Result r = mnemo("--help");
  EXPECT_EQ(r.status, 0);
  std::vector<std::string> verbs;
  const size_t at = r.out.find("\nverbs:\n");
  if (at == std::string::npos) return verbs;
  std::istringstream in(r.out.substr(at + 8));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("  ", 0) == 0) {
      std::istringstream words(line);
      std::string v;
      words >> v;
      verbs.push_back(v);
    }
  return verbs;
}

// The form words a help text points at on its "see also:" line ("" for the bare verb).
std::vector<std::string> see_also(const std::string& verb, const std::string& help) {
  std::vector<std::string> words;
  const size_t at = help.find("\nsee also: ");
  if (at == std::string::npos) return words;
  const std::string line = first_line(help.substr(at + 1));
  static const std::regex re(R"(mnemo (\S+)( \S+)? --help)");
  for (std::sregex_iterator it(line.begin(), line.end(), re), end; it != end; ++it) {
    EXPECT_EQ((*it)[1], verb) << line;
    words.push_back((*it)[2].matched ? std::string((*it)[2]).substr(1) : "");
  }
  return words;
}

TEST(CliHelp, EveryVerbAndForm) {
  ASSERT_TRUE(fs::exists(std::string(MNEMO_BINARY_DIR) + "/mnemo")) << "build the mnemo program first";
  const std::vector<std::string> verbs = registered_verbs();
  ASSERT_GE(verbs.size(), 10u) << "could not read the verb list of `mnemo --help`";
  for (const std::string& verb : verbs) {
    SCOPED_TRACE("mnemo " + verb);
    // Every form reached from the bare verb's help, each checked once.
    std::vector<std::string> forms{""};
    std::set<std::string> seen{""};
    std::string all_help;
    for (size_t i = 0; i < forms.size(); ++i) {
      const std::string cmd = verb + (forms[i].empty() ? "" : " " + forms[i]);
      SCOPED_TRACE("mnemo " + cmd + " --help");
      const Result r = mnemo(cmd + " --help");
      EXPECT_EQ(r.status, 0);
      const std::string head = first_line(r.out);
      EXPECT_TRUE(head.rfind("usage: mnemo " + verb + " ", 0) == 0 || head == "usage: mnemo " + verb) << head;
      if (!forms[i].empty()) {
        EXPECT_NE(head.find(forms[i]), std::string::npos) << head;
      }
      // -h is the same, and help comes before any flag checking (an unknown flag, a missing required one).
      EXPECT_EQ(mnemo(cmd + " -h").out, r.out);
      const Result bad = mnemo(cmd + " --no-such-flag --help");
      EXPECT_EQ(bad.status, 0);
      EXPECT_EQ(bad.out, r.out);
      for (const std::string& w : see_also(verb, r.out))
        if (seen.insert(w).second) forms.push_back(w);
      all_help += r.out;
    }

    // Accuracy: each flag the verb's code reads is in its help, and each flag its help names is read somewhere the
    // verb reaches.
    const std::set<std::string> documented = help_flags(all_help);
    const std::vector<fs::path> own = own_files(verb);
    ASSERT_FALSE(own.empty()) << "no tools/mnemo/verb_" << verb << ".cpp";
    std::set<std::string> read;
    for (const auto& f : own)
      for (const std::string& flag : code_flags(f)) {
        read.insert(flag);
        EXPECT_TRUE(documented.count(flag)) << f.filename().string() << " reads " << flag << ", not in the help";
      }
    for (const auto& f : reachable_files(own))
      for (const std::string& flag : code_flags(f)) read.insert(flag);
    for (const std::string& flag : documented)
      EXPECT_TRUE(read.count(flag)) << "the help names " << flag << ", which no file of the verb reads";
  }
}

// Errors about a missing required flag point at the help of the form in use.
TEST(CliHelp, MissingFlagPointsAtHelp) {
  ASSERT_TRUE(fs::exists(std::string(MNEMO_BINARY_DIR) + "/mnemo")) << "build the mnemo program first";
  const Result r = mnemo("train qa --resume");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "mnemo train: error: --out is required (mnemo train qa --help)\n");
}

// The sub-command is the first word only: a flag's value that spells one ("--data rmt") never switches the form.
TEST(CliHelp, SubcommandIsTheFirstWord) {
  const Result r = mnemo("eval --data rmt");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("name a subcommand"), std::string::npos) << r.err;
  EXPECT_EQ(first_line(mnemo("train --out rmt --help").out), first_line(mnemo("train lm --help").out));
}

}  // namespace
