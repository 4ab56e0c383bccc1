#include "base/json.h"

#include <gtest/gtest.h>

#include "base/error.h"

using mnemo::Json;

TEST(Json, RoundTripsNestedValues) {
  Json j = Json::parse(R"({"a": [1, 2.5, -3e2], "b": {"c": "x\ny\u00e9"}, "d": true, "e": null})");
  EXPECT_EQ(j["a"].as_array().size(), 3u);
  EXPECT_DOUBLE_EQ(j["a"].as_array()[2].as_number(), -300);
  EXPECT_EQ(j["b"]["c"].as_string(), "x\ny\xc3\xa9");
  EXPECT_TRUE(j["d"].as_bool());
  EXPECT_TRUE(j["e"].is_null());
  EXPECT_EQ(Json::parse(j.dump()).dump(), j.dump());
}

TEST(Json, SurrogatePairsDecodeToOneCodePoint) {
  EXPECT_EQ(Json::parse(R"("\ud83d\ude00")").as_string(), "\xf0\x9f\x98\x80");
}

TEST(Json, ErrorsNameSourceLineAndColumn) {
  try {
    Json::parse("{\n  \"a\": 1,\n  \"b\" 2\n}", "config.json");
    FAIL();
  } catch (const mnemo::Error& e) {
    EXPECT_STREQ(e.what(), "config.json:3:7: invalid JSON: expected ':'");
  }
  EXPECT_THROW(Json::parse("[1, 2"), mnemo::Error);
  EXPECT_THROW(Json::parse("{} x"), mnemo::Error);
  EXPECT_THROW(Json::parse(""), mnemo::Error);
}

TEST(Json, TypedAccessNamesTheField) {
  Json j = Json::parse(R"({"n_layer": "two"})");
  try {
    j["n_layer"].as_int("config.json: n_layer");
    FAIL();
  } catch (const mnemo::Error& e) {
    EXPECT_STREQ(e.what(), "config.json: n_layer: expected a number, found a string");
  }
  EXPECT_THROW(Json(1.5).as_int(), mnemo::Error);
  EXPECT_EQ(Json::parse("{}").int_or("x", 7), 7);
}
