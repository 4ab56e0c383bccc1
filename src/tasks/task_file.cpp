#include "tasks/task_file.h"

#include "base/error.h"
#include "base/file.h"
#include "tasks/babi.h"
#include "tasks/corpus.h"

namespace mnemo::tasks {

TaskFileReader::TaskFileReader(std::string path, TaskFileOptions opt) : path_(std::move(path)), opt_(std::move(opt)) {
  if (!file_exists(path_)) throw Error(cat(path_, ": task file not found"));
  if (is_directory(path_)) throw Error(cat(path_, ": is a directory, expected a JSON Lines task file"));
  in_.open(path_, std::ios::binary);
  if (!in_) throw Error(cat(path_, ": cannot open"));
}

bool TaskFileReader::next(TaskRecord& rec) {
  std::string text;
  for (;;) {
    if (!std::getline(in_, text)) return false;
    ++line_;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") != std::string::npos) break;
  }
  std::string where = cat(path_, ":", line_);
  check_utf8(text, where);
  Json j;
  try {
    j = Json::parse(text, "record");
  } catch (const Error& e) {
    throw Error(cat(where, ": ", e.what()));
  }
  if (!j.is_object()) throw Error(cat(where, ": expected a JSON object with input, question and target"));
  auto field = [&](const char* key, std::string& dst) {
    const Json* v = j.find(key);
    if (!v) throw Error(cat(where, ": missing field '", key, "'"));
    if (!v->is_string()) throw Error(cat(where, ": field '", key, "' must be a string"));
    dst = v->as_string();
    if (dst.empty()) throw Error(cat(where, ": field '", key, "' is empty"));
  };
  field("input", rec.input);
  field("question", rec.question);
  field("target", rec.target);
  if (!opt_.labels.empty()) {
    bool ok = false;
    for (auto& l : opt_.labels) ok |= l == rec.target;
    if (!ok) {
      std::string all;
      for (auto& l : opt_.labels) all += cat(all.empty() ? "" : ", ", l);
      throw Error(cat(where, ": target '", rec.target, "' is not one of the labels (", all, ")"));
    }
  }
  rec.line = line_;
  // The other fields, without a second copy of a possibly very long input.
  auto& obj = j.as_object();
  for (size_t k = 0; k < obj.size(); ++k)
    if (obj[k].first == "input") {
      obj.erase(obj.begin() + std::ptrdiff_t(k));
      break;
    }
  rec.extra = std::move(j);
  return true;
}

std::vector<TaskRecord> read_task_file(const std::string& path, const TaskFileOptions& opt) {
  TaskFileReader r(path, opt);
  std::vector<TaskRecord> out;
  TaskRecord rec;
  while (r.next(rec)) out.push_back(std::move(rec));
  if (out.empty()) throw Error(cat(path, ": no task records"));
  return out;
}

std::vector<std::string> location_labels() { return std::vector<std::string>(kLocations.begin(), kLocations.end()); }

}  // namespace mnemo::tasks
