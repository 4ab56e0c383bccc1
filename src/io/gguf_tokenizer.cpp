#include "io/gguf_tokenizer.h"

#include "base/error.h"

namespace mnemo {

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path) {
  // Hook: built on io/gguf.h's metadata reader once it lands.
  throw Error(cat(path, ": GGUF tokenizers are not readable yet (the GGUF reader is not in this build)"));
}

std::unique_ptr<Tokenizer> load_any_tokenizer(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) return load_gguf_tokenizer(path);
  return load_tokenizer(path);
}

}  // namespace mnemo
