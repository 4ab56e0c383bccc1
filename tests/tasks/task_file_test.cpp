#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "helpers.h"
#include "tasks/long_context.h"
#include "tasks/task_file.h"

namespace mnemo::tasks::testing {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TaskFile, ReadsWhatTheGeneratorWrites) {
  std::string d = temp_dir("task_file");
  GenerateOptions g;
  g.task.task = TaskKind::qa1;
  g.task.length_tokens = 700;
  g.count = 5;
  g.seed = 9;
  g.corpus_dir = corpus_dir();
  g.tokenizer_name = "gpt2";
  write_task_file(d + "/qa1.jsonl", gpt2(), g);
  auto recs = read_task_file(d + "/qa1.jsonl", {location_labels()});
  ASSERT_EQ(recs.size(), 5u);
  for (size_t i = 0; i < recs.size(); ++i) {
    const TaskRecord& r = recs[i];
    EXPECT_EQ(r.line, int64_t(i + 1));
    EXPECT_EQ(int64_t(gpt2().encode(r.input).size()), 700);
    EXPECT_EQ(r.extra.find("task")->as_string(), "qa1");
    EXPECT_EQ(r.extra.find("index")->as_int(), int64_t(i));
    EXPECT_EQ(r.extra.find("target_index")->as_int(), location_index(r.target));
    std::vector<std::string> facts;
    for (auto& f : r.extra.find("facts")->as_array()) facts.push_back(f.as_string());
    EXPECT_EQ(solve(facts, r.question), r.target);
  }
}

// Evaluation verbs that generate their own data get exactly what the file would hold.
TEST(TaskFile, InMemorySamplesEqualTheFile) {
  std::string d = temp_dir("in_memory");
  GenerateOptions g;
  g.task.task = TaskKind::reasoning;
  g.task.length_tokens = 900;
  g.count = 3;
  g.seed = 21;
  g.corpus_dir = corpus_dir();
  write_task_file(d + "/r.jsonl", gpt2(), g);
  auto file = read_task_file(d + "/r.jsonl");
  auto mem = generate_samples(gpt2(), g);
  ASSERT_EQ(file.size(), mem.size());
  for (size_t i = 0; i < mem.size(); ++i) {
    EXPECT_EQ(file[i].input, mem[i].input);
    EXPECT_EQ(file[i].question, mem[i].question);
    EXPECT_EQ(file[i].target, mem[i].target);
    EXPECT_EQ(file[i].extra.dump(), mem[i].extra.dump());
    EXPECT_EQ(file[i].extra.find("input"), nullptr);
  }
}

TEST(TaskFile, BadRecordsNameFileAndLine) {
  std::string d = temp_dir("bad_task_file");
  std::string f = d + "/t.jsonl";
  const std::string good = R"({"input": "Mary went to the office.", "question": "Where is Mary?", "target": "office"})";
  auto err = [&](const std::string& second_line, TaskFileOptions opt = {}) {
    atomic_write(f, good + "\n" + second_line + "\n");
    return error_of([&] { read_task_file(f, opt); });
  };
  EXPECT_EQ(err(R"({"input": "x", "question": "q?"})"), f + ":2: missing field 'target'");
  EXPECT_EQ(err(R"({"input": "", "question": "q?", "target": "office"})"), f + ":2: field 'input' is empty");
  EXPECT_EQ(err(R"({"input": "x", "question": "q?", "target": 3})"), f + ":2: field 'target' must be a string");
  EXPECT_EQ(err(R"(["input"])"), f + ":2: expected a JSON object with input, question and target");
  EXPECT_EQ(err("{\"input\": \"bad \xC3\", \"question\": \"q?\", \"target\": \"office\"}"),
            f + ":2: invalid UTF-8 at byte 15");
  EXPECT_EQ(err(R"({"input": "x", "question": "q?", "target": "attic"})", {location_labels()}),
            f + ":2: target 'attic' is not one of the labels (bathroom, hallway, garden, office, bedroom, kitchen)");
  std::string e = err(R"({"input": "x", )");
  EXPECT_EQ(e.rfind(f + ":2: ", 0), 0u) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  // Blank lines are skipped; a file with no records, and a missing file, are errors.
  atomic_write(f, "\n" + good + "\n\n");
  EXPECT_EQ(read_task_file(f).size(), 1u);
  EXPECT_EQ(read_task_file(f)[0].line, 2);
  atomic_write(f, std::string("\n"));
  EXPECT_EQ(error_of([&] { read_task_file(f); }), f + ": no task records");
  EXPECT_EQ(error_of([&] { read_task_file(d + "/none.jsonl"); }), d + "/none.jsonl: task file not found");
}

// The command line: one-line errors and exit status 1 for bad input, identical files for identical seeds.
struct CliRun {
  int status;
  std::string err;
};
CliRun mnemo(const std::string& args) {
  static std::string errf = temp_dir("cli_stderr") + "/stderr.txt";
  std::string cmd = cat(MNEMO_BINARY_DIR, "/mnemo ", args, " >/dev/null 2>", errf);
  int st = std::system(cmd.c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, file_exists(errf) ? read_file(errf) : ""};
}

TEST(TaskCli, GenerateAndErrors) {
  ASSERT_TRUE(file_exists(std::string(MNEMO_BINARY_DIR) + "/mnemo")) << "build the mnemo program first";
  std::string d = temp_dir("cli");
  std::string common = cat("--tokenizer ", gpt2_path(), " --corpus ", corpus_dir(), " --count 2 --seed 4");
  CliRun a = mnemo(cat("tasks generate --task qa2 --length 600 ", common, " --out ", d, "/a.jsonl -q"));
  ASSERT_EQ(a.status, 0) << a.err;
  CliRun b = mnemo(cat("tasks generate --task qa2 --length 600 ", common, " --out ", d, "/b.jsonl -q"));
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(read_file(d + "/a.jsonl"), read_file(d + "/b.jsonl"));
  CliRun s = mnemo(cat("tasks generate --task memorize --segments 3 --segment-tokens 100 ", common, " --out ", d,
                    "/s.jsonl -q"));
  ASSERT_EQ(s.status, 0) << s.err;
  for (auto& r : read_task_file(d + "/s.jsonl"))
    EXPECT_EQ(int64_t(gpt2().encode(r.input + " " + r.question).size()), 300);

  CliRun bad = mnemo(cat("tasks generate --task nope --length 600 ", common, " --out ", d, "/x.jsonl"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(bad.err, "mnemo tasks: error: unknown task 'nope' (known: memorize, detect, reasoning, qa1, qa2, qa3, "
                     "qa4, passkey)\n");
  CliRun nocorpus = mnemo(cat("tasks generate --task qa1 --length 600 --tokenizer ", gpt2_path(), " --corpus ", d,
                           "/nothing --out ", d, "/x.jsonl"));
  EXPECT_EQ(nocorpus.status, 1);
  EXPECT_EQ(nocorpus.err, cat("mnemo tasks: error: ", d, "/nothing/test.jsonl: corpus not found; run `mnemo data "
                                                         "fetch` (or give --corpus DIR)\n"));
  EXPECT_FALSE(file_exists(d + "/x.jsonl"));
  CliRun nonpm = mnemo(cat("data fetch --npm ", d, "/nowhere --out ", d, "/corpus"));
  EXPECT_EQ(nonpm.status, 1);
  EXPECT_NE(nonpm.err.find("is not installed; run scripts/setup"), std::string::npos) << nonpm.err;
  EXPECT_EQ(std::count(nonpm.err.begin(), nonpm.err.end(), '\n'), 1);
}

}  // namespace
}  // namespace mnemo::tasks::testing
