#pragma once
// `mnemo eval <subcommand>`: verb_eval.cpp is only a dispatcher. CONVENTION: each subcommand is one function
// `int run_eval_<name>(cli::Args&)` and its usage text kEval<Name>Usage in its own file tools/mnemo/eval_<name>.cpp,
// declared here and listed in the table in verb_eval.cpp (one line each). A subcommand reads its own flags and
// calls args.finish().
#include "cli.h"

namespace mnemo::cli {
int run_eval_rmt(Args& args);  // eval_rmt.cpp: accuracy of an RMT encoder on a task file or generated samples
int run_eval_qa(Args& args);   // eval_qa.cpp: answer accuracy of a decoder with a KV-cache policy at a budget
int run_eval_stream(Args& args);  // eval_stream.cpp: a long stream with a KV-cache policy: ppl curve, memory, kept tokens
extern const char kEvalRmtUsage[], kEvalQaUsage[], kEvalStreamUsage[];
}
