// load_tokenizer(): decides which kind of tokenizer a path holds (declared in tokenizer.h).
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "text/bpe.h"
#include "text/tokenizer.h"
#include "text/wordpiece.h"

namespace mnemo {
namespace {

std::string dir_of(const std::string& path) {
  size_t s = path.find_last_of('/');
  return s == std::string::npos ? "." : path.substr(0, s == 0 ? 1 : s);
}
std::string base_of(const std::string& path) {
  size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool vocab_txt_lowercase(const std::string& dir) {
  std::string cfg = join_path(dir, "tokenizer_config.json");
  if (!file_exists(cfg)) return true;
  return Json::parse(read_file(cfg), cfg).bool_or("do_lower_case", true);
}

std::unique_ptr<Tokenizer> from_json_file(const std::string& path) {
  std::string text = read_file(path);
  Json j = Json::parse(text, path);
  if (!j.is_object()) throw Error(cat(path, ": not a tokenizer file (a JSON object was expected)"));
  // A tokenizer.json's "model" is an object; in a GPT-2 encoder.json "model" is just a token (id 19849).
  if (const Json* model = j.find("model"); model && model->is_object()) {
    std::string type = model->string_or("type", model->contains("merges") ? "BPE" : "");
    if (type == "BPE") return BpeTokenizer::from_tokenizer_json(j, path);
    if (type == "WordPiece") return WordPieceTokenizer::from_tokenizer_json(j, path);
    throw Error(cat(path, ": tokenizer model type '", type, "' is not supported (BPE or WordPiece)"));
  }
  // A GPT-2 encoder.json: token -> id, with vocab.bpe beside it.
  std::string bpe = join_path(dir_of(path), "vocab.bpe");
  if (!file_exists(bpe)) throw Error(cat(path, ": not a tokenizer.json (no 'model'), and no vocab.bpe beside it for an encoder.json"));
  return BpeTokenizer::from_gpt2_files(path, bpe);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (is_directory(path)) {
    std::string tj = join_path(path, "tokenizer.json");
    if (file_exists(tj)) return from_json_file(tj);
    std::string vt = join_path(path, "vocab.txt");
    if (file_exists(vt)) return WordPieceTokenizer::from_vocab_txt(vt, vocab_txt_lowercase(path));
    std::string ej = join_path(path, "encoder.json"), vb = join_path(path, "vocab.bpe");
    if (file_exists(ej) && file_exists(vb)) return BpeTokenizer::from_gpt2_files(ej, vb);
    throw Error(cat(path, ": no tokenizer in this directory (tokenizer.json, vocab.txt or encoder.json + vocab.bpe)"));
  }
  if (!file_exists(path)) throw Error(cat(path, ": cannot open: No such file or directory"));
  std::string name = base_of(path);
  if (ends_with(name, ".gguf"))
    throw Error(cat(path, ": GGUF tokenizers load through the io layer (mnemo tokenize accepts them)"));
  if (ends_with(name, ".bpe")) {
    std::string ej = join_path(dir_of(path), "encoder.json");
    if (!file_exists(ej)) throw Error(cat(path, ": no encoder.json beside this vocab.bpe"));
    return BpeTokenizer::from_gpt2_files(ej, path);
  }
  if (ends_with(name, ".txt")) return WordPieceTokenizer::from_vocab_txt(path, vocab_txt_lowercase(dir_of(path)));
  if (ends_with(name, ".json")) return from_json_file(path);
  // Unknown extension: sniff the first byte.
  std::string head = read_file(path).substr(0, 1);
  if (head == "{") return from_json_file(path);
  throw Error(cat(path, ": not a tokenizer file (expected tokenizer.json, vocab.txt, encoder.json, vocab.bpe or .gguf)"));
}

}  // namespace mnemo
