#pragma once
// RMT model directories (the layout is described at the top of memory/rmt.h).
//
// Two forms:
//  - full: model.safetensors holds every tensor ("bert.*", "classifier.*", "rmt.memory"); transformers'
//    BertForSequenceClassification.from_pretrained loads it (ignoring rmt.memory).
//  - delta (for checked-in checkpoints that must stay small): config.json's "rmt" object has "delta_of": the path of
//    the pretrained directory the model was fine-tuned from (relative to this directory, or absolute), and
//    "delta_of_bytes": the size of its model.safetensors (checked at load, so a different base is an Error).
//    model.safetensors holds "delta/NAME" = fine-tuned - pretrained (BF16) for each changed backbone tensor, and
//    the new tensors (classifier.*, rmt.memory) in full. Backbone tensors without a delta are the pretrained
//    values (the word embeddings, frozen in training, are the large part left out). With 1-bit deltas a changed
//    matrix is "delta_sign/NAME" (U8, its signs packed 8 to a byte, row-major, bit i%8 of byte i/8 set for >= 0)
//    and a rank-1 magnitude |delta[i][j]| ~ row[i] * col[j] ("delta_row/NAME", "delta_col/NAME", F32: the
//    least-squares fit); vectors stay BF16. That is lossy — it is
//    how a full fine-tune of a 135M-parameter decoder fits in 25 MB; docs/rmt.md measures what it costs.
#include <memory>
#include <string>

#include "memory/rmt.h"
#include "memory/rmt_decoder.h"

namespace mnemo {

// Load a full or delta RMT directory. Errors name the file and the tensor.
std::unique_ptr<RmtEncoder> load_rmt(const std::string& dir);

// A fresh RMT on a pretrained BERT directory (BertModel or BertFor*; its encoder and pooler are used; the
// classifier and the initial memory are initialised from `seed`). A trained RMT directory works too, full or a
// delta: its classifier and rmt.memory are kept (continue a finished run with a new curriculum, fresh optimizer);
// its memory size, segment length and labels must be the run's.
std::unique_ptr<RmtEncoder> rmt_from_pretrained(const std::string& bert_dir, const RmtConfig& rmt, uint64_t seed);

// Write the full form (config.json + model.safetensors) into DIR, each file atomically.
void save_rmt(const std::string& dir, const RmtEncoder& model);
// Write the delta form against `base_dir` (a BERT directory); `base_ref` is what goes into "delta_of" (a path
// relative to DIR or absolute). Tensors equal to the base are left out. `bits`: 16 (BF16 deltas) or 1 (matrices as
// signs and a rank-1 magnitude, above).
void save_rmt_delta(const std::string& dir, const RmtEncoder& model, const std::string& base_dir,
                    const std::string& base_ref, int bits = 16);

// Copy the tokenizer files found in `from` (a model directory, or a vocab.txt / tokenizer.json file) into DIR,
// so DIR is a model directory that tokenizes on its own. Copies nothing when there are none.
void copy_tokenizer_files(const std::string& from, const std::string& dir);

// Backbone parameter name -> the names it may have in a file (HF's with and without the "bert." prefix).
std::string strip_bert_prefix(const std::string& name);

// ---- the decoder variant (memory/rmt_decoder.h) ----
// Full form: an HF LlamaForCausalLM directory + "rmt.memory" + config.json "rmt": {"variant": "decoder", ...}.
// Delta form: "rmt": {"delta_of": BASE, "delta_of_bytes": N} where BASE is the Llama the model was fine-tuned
// from — a GGUF file (dequantized to fp32 at load) or an HF Llama directory; model.safetensors holds "delta/NAME"
// (BF16, or 1-bit as above) for each changed backbone tensor and "rmt.memory". A directory without tokenizer
// files names its tokenizer in "rmt": {"tokenizer": PATH} (relative to the directory, or absolute), else uses the
// delta base's.

// "encoder" or "decoder": config.json's rmt.variant ("encoder" when absent, the encoder's directories predate it).
std::string rmt_variant(const std::string& dir);
std::unique_ptr<RmtDecoder> load_rmt_decoder(const std::string& dir);
// A fresh RMT decoder on a pretrained Llama: a GGUF file or an HF Llama directory (a full RMT decoder directory
// keeps its memory). `rmt`'s eos_id becomes the backbone's eos_token_id, and its sink_id the backbone's
// bos_token_id with `sink_token` (else none); the memory is initialised from seed.
std::unique_ptr<RmtDecoder> rmt_decoder_from_pretrained(const std::string& init, RmtDecoderConfig rmt,
                                                        bool sink_token, uint64_t seed);
// Full form into DIR; `extra_rmt` keys go into the "rmt" object (e.g. "tokenizer").
void save_rmt_decoder(const std::string& dir, const RmtDecoder& model, const Json& extra_rmt = Json::object());
// Delta form against `base` (GGUF file or HF Llama directory); `base_ref` is what goes into "delta_of"; `bits` as
// for save_rmt_delta.
void save_rmt_decoder_delta(const std::string& dir, const RmtDecoder& model, const std::string& base,
                            const std::string& base_ref, int bits = 16);
// The tokenizer path of an RMT directory (either variant): DIR itself when it holds tokenizer files, else
// rmt.tokenizer, else rmt.delta_of, else DIR (so the loader's error names it).
std::string rmt_tokenizer_path(const std::string& dir);

}  // namespace mnemo
