#pragma once
// How a question-answering record ({"input", "question", "target"}, tasks/task_file.h) becomes a decoder's prompt
// and answer — one place, so that `mnemo eval qa` asks exactly what `mnemo train qa` taught.
//
//   chatml  SmolLM2's chat template with its default system message, user content = input + "\n" + question:
//             context  = <|im_start|>system\nSYSTEM<|im_end|>\n<|im_start|>user\nINPUT
//             question = \nQUESTION<|im_end|>\n<|im_start|>assistant\n
//             answer   = TARGET<|im_end|>
//   plain   context = INPUT, question = "\nQUESTION\nAnswer:", answer = " TARGET" + EOS
// The context and the question are tokenized separately (what NVIDIA kvpress's pipeline does), so a memory
// policy can compress the context alone.
#include <cstdint>
#include <string>
#include <vector>

#include "tasks/task_file.h"
#include "text/tokenizer.h"

namespace mnemo::tasks {

enum class QaTemplate { ChatMl, Plain };

// "chatml" or "plain"; Error naming `flag` otherwise.
QaTemplate parse_qa_template(const std::string& name, const std::string& flag = "--template");

struct QaPrompt {
  std::vector<int32_t> context, question;
};

// Error when the template needs <|im_start|>/<|im_end|> and the tokenizer has no such token.
QaPrompt qa_prompt(const Tokenizer& tok, const TaskRecord& rec, QaTemplate templ);
// The tokens a correct reply consists of, ending with the stop token (<|im_end|> for chatml, `eos` for plain).
std::vector<int32_t> qa_answer(const Tokenizer& tok, const std::string& target, QaTemplate templ, int32_t eos);
// The token that ends a reply besides EOS: <|im_end|> for chatml, -1 for plain.
int32_t qa_stop_token(const Tokenizer& tok, QaTemplate templ);
// The answer is right when the target occurs in it, case-folded (what kvpress's and BABILong's scorers do).
bool qa_correct(const std::string& answer, const std::string& target);

}  // namespace mnemo::tasks
