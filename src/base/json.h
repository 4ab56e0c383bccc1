#pragma once
// A small JSON value, parser and writer: config.json, tokenizer.json, JSON Lines task files, --json output.
// Objects keep their keys in insertion order so written files read like their sources.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mnemo {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : v_(b) {}
  Json(int x) : v_(double(x)) {}
  Json(int64_t x) : v_(double(x)) {}
  Json(size_t x) : v_(double(x)) {}
  Json(double x) : v_(x) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(Array a) : v_(std::move(a)) {}
  Json(Object o) : v_(std::move(o)) {}
  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  bool is_null() const { return v_.index() == 0; }
  bool is_bool() const { return v_.index() == 1; }
  bool is_number() const { return v_.index() == 2; }
  bool is_string() const { return v_.index() == 3; }
  bool is_array() const { return v_.index() == 4; }
  bool is_object() const { return v_.index() == 5; }

  // Typed access; throws Error naming `what` (e.g. "config.json: n_layer") on a type mismatch.
  bool as_bool(std::string_view what = "value") const;
  double as_number(std::string_view what = "value") const;
  int64_t as_int(std::string_view what = "value") const;  // must be integral
  const std::string& as_string(std::string_view what = "value") const;
  const Array& as_array(std::string_view what = "value") const;
  Array& as_array(std::string_view what = "value");
  const Object& as_object(std::string_view what = "value") const;
  Object& as_object(std::string_view what = "value");

  // Object access. find() returns nullptr when absent; operator[] inserts (objects only).
  const Json* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  Json& operator[](std::string_view key);
  void push_back(Json v) { as_array().push_back(std::move(v)); }
  size_t size() const;

  // Convenience with defaults: value of `key` or `fallback` when absent or null.
  double number_or(std::string_view key, double fallback) const;
  int64_t int_or(std::string_view key, int64_t fallback) const;
  std::string string_or(std::string_view key, std::string fallback) const;
  bool bool_or(std::string_view key, bool fallback) const;

  // Parse a whole document. `source` names it in errors ("config.json:3:14: expected ':'").
  static Json parse(std::string_view text, std::string_view source = "json");
  // Compact by default; indent > 0 pretty-prints.
  std::string dump(int indent = 0) const;

 private:
  void dump_to(std::string& out, int indent, int depth) const;
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> v_;
};

// Escape a string as a JSON string literal (with quotes).
std::string json_quote(std::string_view s);

}  // namespace mnemo
