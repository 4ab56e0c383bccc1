#include <gtest/gtest.h>

#include <set>

#include "base/error.h"
#include "helpers.h"
#include "tasks/babi.h"
#include "tasks/long_context.h"

namespace mnemo::tasks::testing {
namespace {

// Every story kind, many seeds: the answer the generator gives is the one an independent solver reads from the
// facts; it is also what the supporting facts alone give; location answers are one of the six places.
TEST(Babi, AnswersAreRightByConstruction) {
  const TaskKind kinds[] = {TaskKind::memorize, TaskKind::reasoning, TaskKind::qa1, TaskKind::qa2,
                            TaskKind::qa3,      TaskKind::qa4,       TaskKind::passkey};
  for (TaskKind k : kinds) {
    std::set<std::string> answers;
    for (uint64_t seed = 0; seed < 400; ++seed) {
      Rng rng(seed);
      Story s = make_story(k, rng);
      SCOPED_TRACE(cat(task_name(k), " seed ", seed, ": ", s.question));
      ASSERT_FALSE(s.facts.empty());
      EXPECT_EQ(solve(s.facts, s.question), s.answer);
      std::vector<std::string> sup;
      for (int i : s.supporting) {
        ASSERT_GE(i, 0);
        ASSERT_LT(i, int(s.facts.size()));
        sup.push_back(s.facts[i]);
      }
      EXPECT_EQ(solve(sup, s.question), s.answer) << "supporting facts alone";
      if (k != TaskKind::passkey) {
        EXPECT_GE(location_index(s.answer), 0);
      }
      for (auto& f : s.facts) EXPECT_EQ(f.back(), '.');
      answers.insert(s.answer);
    }
    if (k != TaskKind::passkey) {
      EXPECT_EQ(answers.size(), 6u) << task_name(k) << ": all six places occur";
    }
  }
}

TEST(Babi, SupportingFactCounts) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng a(seed), b(seed), c(seed), d(seed);
    EXPECT_EQ(make_qa1(a).supporting.size(), 1u);
    EXPECT_LE(make_qa2(b).supporting.size(), 2u);
    EXPECT_LE(make_qa3(c).supporting.size(), 4u);
    EXPECT_EQ(make_qa4(d).supporting.size(), 1u);
  }
}

// Reasoning needs both facts: either one alone leaves the question open.
TEST(Babi, ReasoningNeedsBothFacts) {
  for (uint64_t seed = 0; seed < 300; ++seed) {
    Rng rng(seed);
    Story s = make_reasoning(rng);
    ASSERT_EQ(s.facts.size(), 2u);
    EXPECT_EQ(solve({s.facts[0]}, s.question), "") << s.facts[0] << " / " << s.question;
    EXPECT_EQ(solve({s.facts[1]}, s.question), "") << s.facts[1] << " / " << s.question;
  }
}

TEST(Babi, SameSeedSameStory) {
  for (uint64_t seed : {1u, 7u, 1234u}) {
    Rng a(seed), b(seed);
    Story x = make_qa3(a), y = make_qa3(b);
    EXPECT_EQ(x.facts, y.facts);
    EXPECT_EQ(x.question, y.question);
  }
  Rng a(1), b(2);
  EXPECT_NE(make_qa2(a).facts, make_qa2(b).facts);
}

TEST(Babi, PasskeyIsFiveDigits) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Rng rng(seed);
    Story s = make_passkey(rng);
    EXPECT_EQ(s.answer.size(), 5u);
    EXPECT_NE(s.facts[0].find("The pass key is " + s.answer + ". Remember it."), std::string::npos);
  }
}

}  // namespace
}  // namespace mnemo::tasks::testing
