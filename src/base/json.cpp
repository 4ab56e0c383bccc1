#include "base/json.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "base/error.h"

namespace mnemo {

namespace {

const char* type_name(const Json& j) {
  if (j.is_null()) return "null";
  if (j.is_bool()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void type_error(std::string_view what, const Json& j, const char* want) {
  throw Error(cat(what, ": expected ", want, ", found ", type_name(j)));
}

struct Parser {
  std::string_view s;
  std::string_view source;
  size_t i = 0;

  [[noreturn]] void fail(const std::string& msg) const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < i && k < s.size(); ++k) {
      if (s[k] == '\n') { ++line; col = 1; } else { ++col; }
    }
    throw Error(cat(source, ":", line, ":", col, ": invalid JSON: ", msg));
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) { ++i; return true; }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(cat("expected '", c, "'"));
  }
  Json value(int depth) {
    if (depth > 512) fail("nesting deeper than 512");
    ws();
    if (i >= s.size()) fail("unexpected end of input");
    char c = s[i];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json(string());
    if (c == 't' && s.substr(i, 4) == "true") { i += 4; return Json(true); }
    if (c == 'f' && s.substr(i, 5) == "false") { i += 5; return Json(false); }
    if (c == 'n' && s.substr(i, 4) == "null") { i += 4; return Json(); }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    // Python's json writes these; accept them so configs written by it load.
    if (s.substr(i, 3) == "NaN") { i += 3; return Json(std::nan("")); }
    if (s.substr(i, 8) == "Infinity") { i += 8; return Json(HUGE_VAL); }
    if (s.substr(i, 9) == "-Infinity") { i += 9; return Json(-HUGE_VAL); }
    fail(cat("unexpected character '", c, "'"));
  }
  Json number() {
    size_t start = i;
    if (s[i] == '-') {
      if (s.substr(i, 9) == "-Infinity") { i += 9; return Json(-HUGE_VAL); }
      ++i;
    }
    while (i < s.size() && (isdigit((unsigned char)s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                            s[i] == '+' || s[i] == '-'))
      ++i;
    std::string tok(s.substr(start, i - start));
    char* end = nullptr;
    double d = std::strtod(tok.c_str(), &end);
    if (end != tok.c_str() + tok.size() || tok.empty() || tok == "-") { i = start; fail("bad number"); }
    return Json(d);
  }
  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }
  uint32_t hex4() {
    if (i + 4 > s.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s[i++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++i;  // opening quote
    std::string out;
    while (true) {
      if (i >= s.size()) fail("unterminated string");
      char c = s[i++];
      if (c == '"') break;
      if (c != '\\') { out += c; continue; }
      if (i >= s.size()) fail("unterminated string");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s.substr(i, 2) == "\\u") {
            size_t save = i;
            i += 2;
            uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else i = save;
          }
          put_utf8(out, cp);
          break;
        }
        default: fail(cat("bad escape '\\", e, "'"));
      }
    }
    return out;
  }
  Json array(int depth) {
    ++i;
    Json::Array a;
    if (eat(']')) return Json(std::move(a));
    while (true) {
      a.push_back(value(depth + 1));
      if (eat(']')) break;
      expect(',');
    }
    return Json(std::move(a));
  }
  Json object(int depth) {
    ++i;
    Json::Object o;
    if (eat('}')) return Json(std::move(o));
    while (true) {
      ws();
      if (i >= s.size() || s[i] != '"') fail("expected a string key");
      std::string k = string();
      expect(':');
      o.emplace_back(std::move(k), value(depth + 1));
      if (eat('}')) break;
      expect(',');
    }
    return Json(std::move(o));
  }
};

}  // namespace

bool Json::as_bool(std::string_view what) const {
  if (!is_bool()) type_error(what, *this, "a boolean");
  return std::get<bool>(v_);
}
double Json::as_number(std::string_view what) const {
  if (!is_number()) type_error(what, *this, "a number");
  return std::get<double>(v_);
}
int64_t Json::as_int(std::string_view what) const {
  double d = as_number(what);
  if (d != std::floor(d) || std::fabs(d) > 9.007199254740992e15) throw Error(cat(what, ": expected an integer, found ", d));
  return int64_t(d);
}
const std::string& Json::as_string(std::string_view what) const {
  if (!is_string()) type_error(what, *this, "a string");
  return std::get<std::string>(v_);
}
const Json::Array& Json::as_array(std::string_view what) const {
  if (!is_array()) type_error(what, *this, "an array");
  return std::get<Array>(v_);
}
Json::Array& Json::as_array(std::string_view what) {
  if (!is_array()) type_error(what, *this, "an array");
  return std::get<Array>(v_);
}
const Json::Object& Json::as_object(std::string_view what) const {
  if (!is_object()) type_error(what, *this, "an object");
  return std::get<Object>(v_);
}
Json::Object& Json::as_object(std::string_view what) {
  if (!is_object()) type_error(what, *this, "an object");
  return std::get<Object>(v_);
}

const Json* Json::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (auto& [k, v] : std::get<Object>(v_))
    if (k == key) return &v;
  return nullptr;
}

Json& Json::operator[](std::string_view key) {
  if (is_null()) v_ = Object{};
  auto& o = as_object();
  for (auto& [k, v] : o)
    if (k == key) return v;
  o.emplace_back(std::string(key), Json());
  return o.back().second;
}

size_t Json::size() const {
  if (is_array()) return std::get<Array>(v_).size();
  if (is_object()) return std::get<Object>(v_).size();
  return 0;
}

double Json::number_or(std::string_view key, double fallback) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_number(key) : fallback;
}
int64_t Json::int_or(std::string_view key, int64_t fallback) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_int(key) : fallback;
}
std::string Json::string_or(std::string_view key, std::string fallback) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_string(key) : fallback;
}
bool Json::bool_or(std::string_view key, bool fallback) const {
  const Json* j = find(key);
  return (j && !j->is_null()) ? j->as_bool(key) : fallback;
}

Json Json::parse(std::string_view text, std::string_view source) {
  Parser p{text, source};
  Json v = p.value(0);
  p.ws();
  if (p.i != text.size()) p.fail("trailing characters after the value");
  return v;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
  return out;
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  auto newline = [&](int d) {
    if (indent <= 0) return;
    out += '\n';
    out.append(size_t(indent) * d, ' ');
  };
  switch (v_.index()) {
    case 0: out += "null"; break;
    case 1: out += std::get<bool>(v_) ? "true" : "false"; break;
    case 2: {
      double d = std::get<double>(v_);
      if (std::isnan(d)) { out += "NaN"; break; }
      if (std::isinf(d)) { out += d > 0 ? "Infinity" : "-Infinity"; break; }
      char buf[32];
      if (d == std::floor(d) && std::fabs(d) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", d);
      else std::snprintf(buf, sizeof buf, "%.12g", d);
      out += buf;
      break;
    }
    case 3: out += json_quote(std::get<std::string>(v_)); break;
    case 4: {
      auto& a = std::get<Array>(v_);
      out += '[';
      for (size_t k = 0; k < a.size(); ++k) {
        if (k) out += indent > 0 ? "," : ", ";
        if (indent > 0 && (a[k].is_array() || a[k].is_object())) newline(depth + 1);
        a[k].dump_to(out, indent, depth + 1);
      }
      out += ']';
      break;
    }
    case 5: {
      auto& o = std::get<Object>(v_);
      out += '{';
      for (size_t k = 0; k < o.size(); ++k) {
        if (k) out += indent > 0 ? "," : ", ";
        newline(depth + 1);
        out += json_quote(o[k].first);
        out += ": ";
        o[k].second.dump_to(out, indent, depth + 1);
      }
      if (!o.empty()) newline(depth);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

}  // namespace mnemo
