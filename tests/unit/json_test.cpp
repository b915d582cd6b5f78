// The bounded JSON parse every tool uses: depth kMaxJsonDepth parses, one more level is
// rejected with an error naming the limit, and no depth reaches the call stack.
#include "ep/json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace ep;

namespace {

// `depth` nested arrays around a number: [[[1]]] is depth 3.
std::string arrays(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') + "1" +
         std::string(static_cast<std::size_t>(depth), ']');
}

// `depth` nested objects: {"a":{"a":0}} is depth 2.
std::string objects(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += "0";
  s += std::string(static_cast<std::size_t>(depth), '}');
  return s;
}

const std::string kTooDeep = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";

Status parse_copy(const std::string& text, rapidjson::Document& doc) { return parse_json(text, doc); }
Status parse_in_place(const std::string& text, rapidjson::Document& doc) {
  static std::vector<char> buf;  // must outlive doc's strings for the assertions
  buf.assign(text.begin(), text.end());
  buf.push_back('\0');
  return parse_json_insitu(buf.data(), doc);
}

using ParseFn = Status (*)(const std::string&, rapidjson::Document&);

class JsonDepthLimit : public ::testing::TestWithParam<ParseFn> {};

TEST_P(JsonDepthLimit, DepthAtTheLimitParses) {
  rapidjson::Document doc;
  ASSERT_TRUE(GetParam()(arrays(kMaxJsonDepth), doc).is_ok());
  const rapidjson::Value* v = &doc;
  for (int i = 0; i < kMaxJsonDepth; ++i) {
    ASSERT_TRUE(v->IsArray() && v->Size() == 1) << "level " << i;
    v = &(*v)[0];
  }
  EXPECT_EQ(v->GetInt(), 1);
  ASSERT_TRUE(GetParam()(objects(kMaxJsonDepth), doc).is_ok());
  EXPECT_TRUE(doc.IsObject());
}

TEST_P(JsonDepthLimit, OneLevelMoreIsRejectedNamingTheLimitAndTheByte) {
  rapidjson::Document doc;
  Status s = GetParam()(arrays(kMaxJsonDepth + 1), doc);
  EXPECT_EQ(s.code(), Code::kData);
  // The 65th '[' is byte 64.
  EXPECT_EQ(s.message(), "invalid JSON at byte " + std::to_string(kMaxJsonDepth) + ": " + kTooDeep);
  EXPECT_TRUE(doc.IsNull()) << "a rejected parse leaves no partial document";
  s = GetParam()(objects(kMaxJsonDepth + 1), doc);
  EXPECT_EQ(s.message(), "invalid JSON at byte " + std::to_string(5 * kMaxJsonDepth) + ": " + kTooDeep);
}

TEST_P(JsonDepthLimit, HostileDepthsAreRejectedWithoutRecursion) {
  rapidjson::Document doc;
  for (int depth : {100, 20'000, 200'000}) {
    std::string open(static_cast<std::size_t>(depth), '[');  // unterminated, as attackers send it
    Status s = GetParam()(open, doc);
    EXPECT_NE(s.message().find(kTooDeep), std::string::npos) << depth << ": " << s.message();
    s = GetParam()(arrays(depth), doc);
    EXPECT_NE(s.message().find(kTooDeep), std::string::npos) << depth << ": " << s.message();
  }
  std::string keys;
  for (int i = 0; i < 50'000; ++i) keys += "{\"a\":";
  EXPECT_NE(GetParam()(keys, doc).message().find(kTooDeep), std::string::npos);
}

TEST_P(JsonDepthLimit, TheDocumentIsReusableAfterARejection) {
  rapidjson::Document doc;
  ASSERT_FALSE(GetParam()(arrays(kMaxJsonDepth + 1), doc).is_ok());
  ASSERT_TRUE(GetParam()(R"({"kind":"point","v":[1,2]})", doc).is_ok());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["v"].Size(), 2u);
  EXPECT_EQ(to_json(doc), R"({"kind":"point","v":[1,2]})");
}

TEST_P(JsonDepthLimit, SyntaxErrorsKeepRapidJsonsReason) {
  rapidjson::Document doc;
  EXPECT_EQ(GetParam()(R"({"a":1,})", doc).message(),
            "invalid JSON at byte 7: Missing a name for object member.");
  EXPECT_EQ(GetParam()("[1,2", doc).message(),
            "invalid JSON at byte 4: Missing a comma or ']' after an array element.");
}

INSTANTIATE_TEST_SUITE_P(CopyAndInsitu, JsonDepthLimit, ::testing::Values(&parse_copy, &parse_in_place));

TEST(JsonParse, EveryNumberReadsBackExactlyOnEveryPath) {
  // RapidJSON's own fast path misreads this 17-digit number by an ulp; parse_json converts
  // numbers itself (std::from_chars), so every path reads back exactly the double that was
  // written (what model and state files need), with or without the full-precision flag.
  const std::string text = "[474.59380568556355]";
  const double exact = 474.59380568556355;
  rapidjson::Document doc;
  ASSERT_TRUE(parse_json(text, doc).is_ok());
  EXPECT_EQ(doc[0].GetDouble(), exact);
  ASSERT_TRUE(parse_json<rapidjson::kParseFullPrecisionFlag>(text, doc).is_ok());
  EXPECT_EQ(doc[0].GetDouble(), exact);
  std::vector<char> buf(text.begin(), text.end());
  buf.push_back('\0');
  ASSERT_TRUE(parse_json_insitu(buf.data(), doc).is_ok());
  EXPECT_EQ(doc[0].GetDouble(), exact);
}

TEST(JsonParse, NumbersBeyondDoubleRangeAreRejected) {
  rapidjson::Document doc;
  Status s = parse_json("[1, 5e308]", doc);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("Number too big"), std::string::npos) << s.message();
  ASSERT_TRUE(parse_json("[1e-400, -9223372036854775808, 18446744073709551615]", doc).is_ok());
  EXPECT_EQ(doc[0].GetDouble(), 0.0);
  EXPECT_TRUE(doc[1].IsInt64());
  EXPECT_TRUE(doc[2].IsUint64());
}

TEST(JsonParse, ScalarsAndEmptyContainersAreShallow) {
  rapidjson::Document doc;
  EXPECT_TRUE(parse_json("1", doc).is_ok());
  EXPECT_TRUE(parse_json("[]", doc).is_ok());
  EXPECT_TRUE(parse_json(R"({"a":[],"b":{},"c":[[],[]]})", doc).is_ok());
  EXPECT_EQ(parse_json("", doc).message(), "invalid JSON at byte 0: The document is empty.");
}

TEST(JsonDepthCounter, SiblingsDoNotAccumulate) {
  JsonDepth d;
  for (int i = 0; i < 10 * kMaxJsonDepth; ++i) {
    ASSERT_TRUE(d.enter());
    d.leave();
  }
  for (int i = 0; i < kMaxJsonDepth; ++i) ASSERT_TRUE(d.enter());
  EXPECT_FALSE(d.exceeded());
  EXPECT_FALSE(d.enter());
  EXPECT_TRUE(d.exceeded());
}

}  // namespace
