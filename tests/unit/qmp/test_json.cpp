#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "qmp/json.hpp"

using namespace hvm;

namespace {
std::string parse_error(std::string_view text) {
    try {
        Json::parse(text);
    } catch (const JsonError& e) {
        return e.what();
    }
    return "(parsed)";
}
} // namespace

TEST_CASE("JSON: scalars, containers and whitespace") {
    CHECK(Json::parse("null").is_null());
    CHECK(Json::parse(" true ").as_bool());
    CHECK_FALSE(Json::parse("\tfalse\r\n").as_bool());
    CHECK(Json::parse("0").as_int() == 0);
    CHECK(Json::parse("-0").as_int() == 0);
    CHECK(Json::parse("42").as_int() == 42);
    CHECK(Json::parse("-9223372036854775808").as_int() == INT64_MIN);
    CHECK(Json::parse("9223372036854775807").as_int() == INT64_MAX);
    Json a = Json::parse(R"([1, "two", [], {}, {"k": [null]}])");
    REQUIRE(a.is_array());
    REQUIRE(a.as_array().size() == 5);
    CHECK(a.as_array()[1].as_string() == "two");
    CHECK(a.as_array()[2].as_array().empty());
    CHECK(a.as_array()[3].as_object().empty());
    CHECK(a.as_array()[4].find("k")->as_array()[0].is_null());
    Json o = Json::parse(R"({"b": 1, "a": 2})");
    CHECK(o.as_object()[0].first == "b"); // order kept
    CHECK(o.find("a")->as_int() == 2);
    CHECK(o.find("c") == nullptr);
}

TEST_CASE("JSON: numbers follow RFC 8259 exactly") {
    CHECK(Json::parse("1.5").as_double() == 1.5);
    CHECK(Json::parse("-2.5e3").as_double() == -2500.0);
    CHECK(Json::parse("1E2").as_double() == 100.0);
    CHECK(Json::parse("1e+2").is_double());
    CHECK(Json::parse("0.000001e-1").as_double() == doctest::Approx(1e-7));
    // Beyond int64 becomes a double (QEMU does the same).
    Json big = Json::parse("18446744073709551616");
    CHECK(big.is_double());
    CHECK(big.as_double() == doctest::Approx(1.8446744073709552e19));
    CHECK(Json::parse("1e-400").as_double() == 0.0); // underflow is fine
    CHECK(parse_error("1e400") == "JSON parse error, number '1e400' out of range");
    CHECK(parse_error("01") == "JSON parse error, invalid number '01'");
    CHECK(parse_error("-") == "JSON parse error, invalid number '-'");
    CHECK(parse_error("1.") == "JSON parse error, invalid number '1.'");
    CHECK(parse_error(".5") == "JSON parse error, stray '.'");
    CHECK(parse_error("1e") == "JSON parse error, invalid number '1e'");
    CHECK(parse_error("+1") == "JSON parse error, stray '+'");
    CHECK(parse_error("0x10") == "JSON parse error, invalid number '0x10'");
    CHECK(parse_error("NaN") == "JSON parse error, stray 'N'");
    CHECK(parse_error("Infinity") == "JSON parse error, stray 'I'");
    CHECK(parse_error("1.5.2") == "JSON parse error, invalid number '1.5.2'");
}

TEST_CASE("JSON: strings with every escape, \\u and surrogate pairs") {
    CHECK(Json::parse(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string() == "a\"b\\c/d\be\ff\ng\rh\ti");
    CHECK(Json::parse(R"("\u0041\u00e9\u20AC")").as_string() == "A\xC3\xA9\xE2\x82\xAC");
    CHECK(Json::parse(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80"); // U+1F600
    CHECK(Json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));
    CHECK(Json::parse("\"\xC3\xA9\"").as_string() == "\xC3\xA9"); // raw UTF-8
    CHECK(parse_error(R"("\ud83d")") ==
          "JSON parse error, \\ud83d is not a valid Unicode character");
    CHECK(parse_error(R"("\ud83dx")") ==
          "JSON parse error, \\ud83d is not a valid Unicode character");
    CHECK(parse_error(R"("\ude00")") ==
          "JSON parse error, \\ude00 is not a valid Unicode character");
    CHECK(parse_error(R"("\ud83d\u0041")") ==
          "JSON parse error, \\ud83d\\u0041 is not a valid Unicode character");
    CHECK(parse_error(R"("\u12")") == "JSON parse error, invalid hex escape sequence in string");
    CHECK(parse_error(R"("\u12g4")") == "JSON parse error, invalid hex escape sequence in string");
    CHECK(parse_error(R"("\x")") == "JSON parse error, invalid escape sequence in string");
    CHECK(parse_error(R"("\')") == "JSON parse error, invalid escape sequence in string");
    CHECK(parse_error("\"a\nb\"") == "JSON parse error, control character in string");
    CHECK(parse_error("\"\xC3\"") == "JSON parse error, invalid UTF-8 sequence in string");
    CHECK(parse_error("\"\xC0\x80\"") == "JSON parse error, invalid UTF-8 sequence in string");
    CHECK(parse_error("\"\xED\xA0\x80\"") == "JSON parse error, invalid UTF-8 sequence in string");
    CHECK(parse_error("\"\xF4\x90\x80\x80\"") ==
          "JSON parse error, invalid UTF-8 sequence in string");
    CHECK(parse_error("\"abc") == "JSON parse error, premature EOI");
    CHECK(parse_error("'single'") == "JSON parse error, stray '''");
}

TEST_CASE("JSON: structural errors use QEMU's wording") {
    // The qmp-spec.rst example.
    CHECK(parse_error(R"({ "execute": })") == "JSON parse error, expecting value");
    CHECK(parse_error("") == "JSON parse error, premature EOI");
    CHECK(parse_error("[1,]") == "JSON parse error, expecting value");
    CHECK(parse_error("[1 2]") == "JSON parse error, expected separator in list");
    CHECK(parse_error(R"({"a":1,})") == "JSON parse error, expecting value");
    CHECK(parse_error(R"({"a" 1})") == "JSON parse error, missing : in object pair");
    CHECK(parse_error(R"({"a":1 "b":2})") == "JSON parse error, expected separator in dict");
    CHECK(parse_error(R"({1: 2})") == "JSON parse error, key is not a string in object");
    CHECK(parse_error(R"({"a": 1, "a": 2})") == "JSON parse error, duplicate key 'a' in object");
    CHECK(parse_error("[") == "JSON parse error, premature EOI");
    CHECK(parse_error("{") == "JSON parse error, premature EOI");
    CHECK(parse_error("tru") == "JSON parse error, invalid keyword 'tru'");
    CHECK(parse_error("nul") == "JSON parse error, invalid keyword 'nul'");
    CHECK(parse_error("1 2") == "JSON parse error, unexpected '2' after value");
    CHECK(parse_error("{} x") == "JSON parse error, unexpected 'x' after value");
    CHECK(parse_error("]") == "JSON parse error, expecting value");
    CHECK(parse_error("/* c */ 1") == "JSON parse error, stray '/'");
}

TEST_CASE("JSON: depth and size limits") {
    std::string ok(Json::kMaxDepth, '[');
    ok += std::string(Json::kMaxDepth, ']');
    CHECK(Json::parse(ok).is_array());
    std::string deep(Json::kMaxDepth + 1, '[');
    deep += std::string(Json::kMaxDepth + 1, ']');
    CHECK(parse_error(deep) == "JSON nesting depth limit exceeded");
    // Far deeper than the limit: rejected at depth 65, no stack exhaustion.
    CHECK(parse_error(std::string(1000000, '[')) == "JSON nesting depth limit exceeded");
    std::string objs;
    for (size_t i = 0; i <= Json::kMaxDepth; ++i) objs += "{\"a\":";
    objs += "1";
    objs += std::string(Json::kMaxDepth + 1, '}');
    CHECK(parse_error(objs) == "JSON nesting depth limit exceeded");

    std::string big = "\"" + std::string(Json::kMaxDocumentBytes - 2, 'x') + "\"";
    CHECK(Json::parse(big).as_string().size() == Json::kMaxDocumentBytes - 2);
    std::string too_big = "\"" + std::string(Json::kMaxDocumentBytes - 1, 'x') + "\"";
    CHECK(parse_error(too_big) == "JSON token size limit exceeded");

    // Many keys: the duplicate check stays fast (hash set), and a late duplicate is found.
    std::string many = "{";
    for (int i = 0; i < 50000; ++i) many += "\"k" + std::to_string(i) + "\":0,";
    std::string dup = many + "\"k123\":1}";
    many += "\"last\":1}";
    CHECK(Json::parse(many).as_object().size() == 50001);
    CHECK(parse_error(dup) == "JSON parse error, duplicate key 'k123' in object");
}

TEST_CASE("JSON writer: QEMU's compact and pretty layouts") {
    Json v = Json::object({{"return", Json::object()},
                           {"list", Json::array({1, "a", nullptr, true, false})},
                           {"n", Json::object({{"x", -5}})}});
    CHECK(v.dump() == R"({"return": {}, "list": [1, "a", null, true, false], "n": {"x": -5}})");
    CHECK(v.dump(true) == "{\n"
                          "    \"return\": {\n"
                          "    },\n"
                          "    \"list\": [\n"
                          "        1,\n"
                          "        \"a\",\n"
                          "        null,\n"
                          "        true,\n"
                          "        false\n"
                          "    ],\n"
                          "    \"n\": {\n"
                          "        \"x\": -5\n"
                          "    }\n"
                          "}");
    CHECK(Json::array().dump() == "[]");
    CHECK(Json::array().dump(true) == "[\n]");
    CHECK(Json(0.5).dump() == "0.5");
    CHECK(Json(0.1).dump() == "0.10000000000000001"); // %.17g, as QEMU
    CHECK(Json(std::nan("")).dump() == "null");
    CHECK(Json(int64_t{INT64_MIN}).dump() == "-9223372036854775808");
}

TEST_CASE("JSON writer: ASCII-only string output") {
    CHECK(Json("a\"b\\c/d").dump() == R"("a\"b\\c/d")");
    CHECK(Json("\b\f\n\r\t").dump() == R"("\b\f\n\r\t")");
    CHECK(Json(std::string("\x01\x1f\x7f", 3)).dump() == R"("\u0001\u001F\u007F")");
    CHECK(Json(std::string(1, '\0')).dump() == R"("\u0000")");
    CHECK(Json("\xC3\xA9\xE2\x82\xAC").dump() == R"("\u00E9\u20AC")");
    CHECK(Json("\xF0\x9F\x98\x80").dump() == R"("\uD83D\uDE00")");
    CHECK(Json("a\xFF"
               "b")
              .dump() == R"("a\uFFFDb")"); // invalid UTF-8
    CHECK(Json("\xE2\x82").dump() == R"("\uFFFD\uFFFD")");
}

TEST_CASE("JSON: round trip and equality") {
    const char* docs[] = {
        R"({"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "a"}]}, "id": [1, {"x": null}]})",
        R"([-1, 0.25, "\u00e9\ud83d\ude00\n", {}, []])",
        R"("just a string")",
    };
    for (const char* d : docs) {
        Json v = Json::parse(d);
        CHECK(Json::parse(v.dump()) == v);
        CHECK(Json::parse(v.dump(true)) == v);
    }
    CHECK(Json::parse(R"({"a":1,"b":2})") == Json::parse(R"({"b":2,"a":1})"));
    CHECK_FALSE(Json::parse("1") == Json::parse("1.0"));
    CHECK_FALSE(Json::parse("[1,2]") == Json::parse("[2,1]"));
    Json o = Json::object({{"a", 1}});
    o.set("a", 2);
    o.set("b", 3);
    CHECK(o.dump() == R"({"a": 2, "b": 3})");
}
