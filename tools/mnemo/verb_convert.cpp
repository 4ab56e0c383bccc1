// mnemo convert FILE.gguf --out DIR [--dtype f32|bf16]: a GGUF Llama as a Hugging Face model directory
// (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) that transformers' from_pretrained loads.
// Quantized weights are dequantized exactly (the same fp32 values mnemo computes with); q/k rows are put back in
// HF's rotary order.
#include <cstdio>

#include "base/error.h"
#include "base/json.h"
#include "base/timer.h"
#include "cli.h"
#include "io/llama_loader.h"

namespace {

using namespace mnemo;

constexpr const char* kUsage =
    R"(usage: mnemo convert FILE.gguf --out DIR [--dtype f32|bf16] [--json]
  FILE.gguf             a GGUF Llama
  --out DIR             the HF model directory to write (required)
  --dtype f32|bf16      safetensors weight type (default f32)
  --json                a JSON summary
)";

int run(cli::Args& args) {
  cli::common_flags(args);
  const std::string out = args.require("--out");
  const std::string dtype = args.get_or("--dtype", "f32");
  const bool json = args.flag("--json");
  auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) throw Error("expected one FILE.gguf (mnemo convert --help)");
  if (!is_gguf_path(pos[0])) throw Error(cat(pos[0], ": not a .gguf file"));
  DType dt;
  if (dtype == "f32") dt = DType::F32;
  else if (dtype == "bf16") dt = DType::BF16;
  else throw Error(cat("--dtype: '", dtype, "' is not f32 or bf16"));
  Timer t;
  convert_gguf_to_dir(pos[0], out, dt);
  if (json) {
    Json j = Json::object();
    j["out"] = out;
    j["dtype"] = dtype;
    j["seconds"] = t.seconds();
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("wrote %s (%s) in %.1f s\n", out.c_str(), dtype.c_str(), t.seconds());
  }
  return 0;
}

MNEMO_VERB("convert", "convert a GGUF Llama to a Hugging Face model directory (f32 or bf16 safetensors)", run,
           kUsage);

}  // namespace
