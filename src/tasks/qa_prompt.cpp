#include "tasks/qa_prompt.h"

#include <cctype>

#include "base/error.h"

namespace mnemo::tasks {
namespace {

constexpr const char* kSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

void append(std::vector<int32_t>& ids, const std::vector<int32_t>& more) { ids.insert(ids.end(), more.begin(), more.end()); }

int32_t special(const Tokenizer& tok, const char* name) {
  const int32_t id = tok.special_id(name);
  if (id < 0) throw Error(cat("--template chatml: the tokenizer has no ", name, " token (use --template plain)"));
  return id;
}

std::string fold(const std::string& s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

QaTemplate parse_qa_template(const std::string& name, const std::string& flag) {
  if (name == "chatml") return QaTemplate::ChatMl;
  if (name == "plain") return QaTemplate::Plain;
  throw Error(cat(flag, " must be chatml or plain, got '", name, "'"));
}

QaPrompt qa_prompt(const Tokenizer& tok, const TaskRecord& rec, QaTemplate templ) {
  QaPrompt p;
  if (templ == QaTemplate::Plain) {
    p.context = tok.encode(rec.input);
    p.question = tok.encode("\n" + rec.question + "\nAnswer:");
    return p;
  }
  const int32_t start = special(tok, "<|im_start|>"), end = special(tok, "<|im_end|>");
  p.context.push_back(start);
  append(p.context, tok.encode(cat("system\n", kSystem)));
  p.context.push_back(end);
  append(p.context, tok.encode("\n"));
  p.context.push_back(start);
  append(p.context, tok.encode("user\n" + rec.input));
  append(p.question, tok.encode("\n" + rec.question));
  p.question.push_back(end);
  append(p.question, tok.encode("\n"));
  p.question.push_back(start);
  append(p.question, tok.encode("assistant\n"));
  return p;
}

std::vector<int32_t> qa_answer(const Tokenizer& tok, const std::string& target, QaTemplate templ, int32_t eos) {
  if (templ == QaTemplate::Plain) {
    std::vector<int32_t> a = tok.encode(" " + target);
    a.push_back(eos);
    return a;
  }
  std::vector<int32_t> a = tok.encode(target);
  a.push_back(special(tok, "<|im_end|>"));
  return a;
}

int32_t qa_stop_token(const Tokenizer& tok, QaTemplate templ) {
  return templ == QaTemplate::ChatMl ? special(tok, "<|im_end|>") : -1;
}

bool qa_correct(const std::string& answer, const std::string& target) {
  return !target.empty() && fold(answer).find(fold(target)) != std::string::npos;
}

}  // namespace mnemo::tasks
