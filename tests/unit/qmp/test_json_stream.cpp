#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "qmp/json_stream.hpp"

using namespace hvm;

namespace {
using Messages = std::vector<JsonStreamFramer::Message>;

Messages feed_all(JsonStreamFramer& f, std::string_view bytes) {
    Messages out;
    f.feed(bytes, out);
    return out;
}

Messages feed_bytewise(JsonStreamFramer& f, std::string_view bytes) {
    Messages out;
    for (char c : bytes) f.feed(std::string_view(&c, 1), out);
    return out;
}
} // namespace

TEST_CASE("Framer: documents split across reads, lines and shared lines") {
    JsonStreamFramer f;
    std::string input = "{\"execute\": \"stop\"}\n{\"execute\":\n \"cont\",\n \"id\": \"}{\"}"
                        "[1,[2]]  \"str}\" ";
    for (auto mode : {0, 1}) {
        Messages m = mode == 0 ? feed_all(f, input) : feed_bytewise(f, input);
        REQUIRE(m.size() == 4);
        CHECK(m[0].ok);
        CHECK(m[0].value.find("execute")->as_string() == "stop");
        CHECK(m[1].value.find("id")->as_string() == "}{"); // braces in strings do not count
        CHECK(m[2].value.as_array().size() == 2);
        CHECK(m[3].value.as_string() == "str}");
    }
}

TEST_CASE("Framer: escaped quotes and backslashes inside strings") {
    JsonStreamFramer f;
    Messages m = feed_bytewise(f, R"({"a": "x\"}\\"} {"b": "\\\""})");
    REQUIRE(m.size() == 2);
    CHECK(m[0].value.find("a")->as_string() == "x\"}\\");
    CHECK(m[1].value.find("b")->as_string() == "\\\"");
}

TEST_CASE("Framer: a partial document waits for the rest") {
    JsonStreamFramer f;
    CHECK(feed_all(f, "{\"execute\": \"qu").empty());
    CHECK(feed_all(f, "it\"").empty());
    Messages m = feed_all(f, "}\r\n");
    REQUIRE(m.size() == 1);
    CHECK(m[0].value.find("execute")->as_string() == "quit");
}

TEST_CASE("Framer: top-level scalars and stray closers are documents of their own") {
    JsonStreamFramer f;
    Messages m = feed_all(f, "123 true\nfoo}{}");
    REQUIRE(m.size() == 5);
    CHECK(m[0].value.as_int() == 123);
    CHECK(m[1].value.as_bool());
    CHECK_FALSE(m[2].ok);
    CHECK(m[2].error == "JSON parse error, invalid keyword 'foo'");
    CHECK_FALSE(m[3].ok);
    CHECK(m[3].error == "JSON parse error, expecting value");
    CHECK(m[4].ok);
    CHECK(m[4].value.is_object());
}

TEST_CASE("Framer: an invalid document yields one error and the next one parses") {
    JsonStreamFramer f;
    Messages m = feed_all(f, "{ \"execute\": }{\"execute\": \"stop\"}");
    REQUIRE(m.size() == 2);
    CHECK(m[0].error == "JSON parse error, expecting value");
    CHECK(m[1].ok);
}

TEST_CASE("Framer: a control character or 0xFF resynchronises, even inside a string") {
    JsonStreamFramer f;
    Messages m = feed_all(f, "{\"execute\": \"st");
    CHECK(m.empty());
    m = feed_all(f, std::string("\x01", 1));
    REQUIRE(m.size() == 1);
    CHECK_FALSE(m[0].ok);
    CHECK(m[0].error.rfind("JSON parse error, stray '", 0) == 0);
    m = feed_all(f, "{\"execute\": \"stop\"}");
    REQUIRE(m.size() == 1);
    CHECK(m[0].ok);

    m = feed_all(f, "[[[[\xff{\"a\":1}");
    REQUIRE(m.size() == 2);
    CHECK_FALSE(m[0].ok);
    CHECK(m[1].ok);
}

TEST_CASE("Framer: depth limit, one error, then the rest of that document is skipped") {
    JsonStreamFramer f;
    std::string deep(Json::kMaxDepth + 1, '[');
    deep += "\"]]]]\"" + std::string(Json::kMaxDepth + 1, ']');
    Messages m = feed_bytewise(f, deep + "{\"ok\": 1}");
    REQUIRE(m.size() == 2);
    CHECK(m[0].error == "JSON nesting depth limit exceeded");
    CHECK(m[1].ok);
    CHECK(m[1].value.find("ok")->as_int() == 1);
}

TEST_CASE("Framer: size limit, without buffering the oversized document") {
    JsonStreamFramer f;
    Messages m;
    f.feed("{\"execute\": \"", m);
    std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 40; ++i) f.feed(chunk, m); // 2.5 MiB inside one string
    REQUIRE(m.size() == 1);
    CHECK(m[0].error == "JSON token size limit exceeded");
    f.feed("\"}{\"execute\": \"cont\"}", m);
    REQUIRE(m.size() == 2);
    CHECK(m[1].ok);
    CHECK(m[1].value.find("execute")->as_string() == "cont");

    // A huge bare token at top level too.
    Messages s;
    for (int i = 0; i < 20; ++i) f.feed(chunk, s);
    f.feed(" {}", s);
    REQUIRE(s.size() == 2);
    CHECK(s[0].error == "JSON token size limit exceeded");
    CHECK(s[1].ok);
}

TEST_CASE("Framer: reset forgets a partial document") {
    JsonStreamFramer f;
    Messages m;
    f.feed("{\"execute\": [", m);
    f.reset();
    f.feed("{\"id\": 1}", m);
    REQUIRE(m.size() == 1);
    CHECK(m[0].ok);
}
