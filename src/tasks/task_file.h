#pragma once
// Reading task files: JSON Lines in BABILong's field names, {"input": text, "question": text, "target": answer},
// extra fields allowed (the generator adds "task", "length_tokens", "fact_positions", ...). Every evaluation verb
// reads its --data FILE.jsonl through this. Records are read one at a time, so a file of long inputs is never
// held whole. A bad record is a one-line Error naming the file and line: "FILE:LINE: missing field 'target'".
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "base/json.h"

namespace mnemo::tasks {

struct TaskRecord {
  std::string input, question, target;
  Json extra;        // the record's fields except "input" (question and target included), for optional fields
  int64_t line = 0;  // 1-based line in the file
};

struct TaskFileOptions {
  // When not empty, every target must be one of these (e.g. kLocations for a 6-way head).
  std::vector<std::string> labels;
};

class TaskFileReader {
 public:
  explicit TaskFileReader(std::string path, TaskFileOptions opt = {});
  // Next record; false at the end of the file. Blank lines are skipped.
  bool next(TaskRecord& rec);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  TaskFileOptions opt_;
  std::ifstream in_;
  int64_t line_ = 0;
};

// All records of a file; Error if it has none.
std::vector<TaskRecord> read_task_file(const std::string& path, const TaskFileOptions& opt = {});

// The labels of the location tasks' 6-way head, in head order.
std::vector<std::string> location_labels();

}  // namespace mnemo::tasks
