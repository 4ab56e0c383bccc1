#pragma once
// Loading Llama models from the two kinds of file mnemo accepts, and writing one kind from the other.
//
//   - GGUF (llama.cpp): the config comes from the llama.* metadata, the weights stay in the mapped file in their
//     block types (Q4_1, Q8_0, F32, ...) and are read in place by LlamaRunner. llama.cpp's converter stores the
//     rows of attn_q / attn_k permuted per head so that rotary pairs are adjacent (2i, 2i+1) — its "normal" rope —
//     while transformers pairs i with i + hd/2. Rows are whole quantization blocks, so the loader un-permutes them
//     by copying rows (no dequantization); afterwards q and k are in HF's layout and one rotary kernel serves both.
//   - HF directory: config.json + model.safetensors with HF Llama names, loaded into an fp32 Llama.
//
// Every problem is a one-line Error naming the file and the field or tensor: a missing or mistyped metadata key,
// a tensor missing, of a type mnemo cannot read, or of a shape the config does not imply.
#include <memory>
#include <string>

#include "io/safetensors.h"
#include "model/llama.h"

namespace mnemo {

// A Llama ready for inference: its config and weights; `model` is set when the weights are fp32 parameters (an
// HF directory), so it can also be trained.
struct LoadedLlama {
  LlamaConfig config;
  LlamaWeights weights;
  std::shared_ptr<Llama> model;
  std::string source;  // the path it came from
};

bool is_gguf_path(const std::string& path);
// GGUF file or HF directory (by the path: *.gguf, or a directory).
LoadedLlama load_llama(const std::string& path);
LoadedLlama load_llama_gguf(const std::string& path);
// An HF Llama directory as an fp32 Llama (Error when DIR is not a Llama directory).
std::unique_ptr<Llama> load_llama_dir(const std::string& dir);
// Dequantize a GGUF file's weights into an fp32 Llama (for convert and fine-tuning).
std::unique_ptr<Llama> llama_from_gguf(const std::string& path);
// A decoder for generation and perplexity from a GGUF file or an HF directory (Llama or GPT-2), with LlamaRunner's
// scratch sized for max_batch tokens per call and max_context cached entries (0 = the model's context).
std::unique_ptr<Decoder> load_decoder(const std::string& path, int64_t max_batch = 512, int64_t max_context = 0);

// Write DIR/config.json and DIR/model.safetensors (tensors as F32 or BF16; the tied lm_head left out, as
// transformers saves it), each atomically.
void save_llama_dir(const std::string& dir, const Llama& model, DType dtype = DType::F32);

// The tokenizer of a GGUF file as DIR/tokenizer.json + DIR/tokenizer_config.json (what convert writes).
void write_gguf_tokenizer_files(const std::string& gguf_path, const std::string& dir);
// `mnemo convert`: a GGUF Llama as an HF directory that transformers loads — config.json, model.safetensors (F32
// or BF16), and the tokenizer from the tokenizer.ggml.* metadata as tokenizer.json (byte-level BPE; the
// pre-tokenizer chosen by tokenizer.ggml.pre) + tokenizer_config.json (special tokens, chat template).
void convert_gguf_to_dir(const std::string& gguf_path, const std::string& dir, DType dtype);

}  // namespace mnemo
