#pragma once
// The one interface every tokenizer implements (GPT-2 byte-level BPE, HF tokenizer.json BPE, WordPiece), so the
// tasks and eval layers measure lengths and encode text without knowing which kind they hold.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text to ids, no special tokens added (callers add [CLS]/[SEP]/BOS where their format asks).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  // Id of a special token such as "[CLS]", "<|endoftext|>", "<|im_start|>"; -1 when the vocabulary has none.
  virtual int32_t special_id(std::string_view token) const = 0;
};

// A tokenizer from a model directory (tokenizer.json, else vocab.txt, else encoder.json + vocab.bpe) or a tokenizer
// file (tokenizer.json, vocab.txt, encoder.json or vocab.bpe with its partner beside it). A vocab.txt is uncased
// unless tokenizer_config.json beside it says "do_lower_case": false. GGUF files load through the io layer
// (io/gguf_tokenizer.h). Missing or foreign files: a one-line Error naming the path.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace mnemo
