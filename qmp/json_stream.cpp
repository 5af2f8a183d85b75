#include "qmp/json_stream.hpp"

namespace hvm {

namespace {

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_structural(char c) {
    return c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':' || c == '"';
}
// QEMU's lexer treats these as lexical errors in every state (json-lexer.c), which is what lets a
// client force the parser back into a known state.
bool is_resync(char c) {
    auto b = static_cast<unsigned char>(c);
    return (b < 0x20 && c != '\t' && c != '\r' && c != '\n') || b == 0xFE || b == 0xFF;
}

} // namespace

void JsonStreamFramer::reset() {
    mode_ = Mode::Idle;
    buf_.clear();
    buf_.shrink_to_fit();
    depth_ = 0;
    in_string_ = escape_ = false;
}

void JsonStreamFramer::feed(std::string_view bytes, std::vector<Message>& out) {
    for (char c : bytes) byte(c, out);
}

void JsonStreamFramer::finish(std::vector<Message>& out) {
    Message m;
    try {
        m.value = Json::parse(buf_);
        m.ok = true;
    } catch (const JsonError& e) {
        m.error = e.what();
    }
    out.push_back(std::move(m));
    buf_.clear();
    mode_ = Mode::Idle;
    depth_ = 0;
    in_string_ = escape_ = false;
}

void JsonStreamFramer::fail(std::string error, std::vector<Message>& out, Mode next) {
    Message m;
    m.error = std::move(error);
    out.push_back(std::move(m));
    buf_.clear();
    buf_.shrink_to_fit(); // a rejected 1 MiB document must not stay allocated
    mode_ = next;
}

void JsonStreamFramer::byte(char c, std::vector<Message>& out) {
    if (is_resync(c)) {
        bool skipping = mode_ == Mode::Discard || mode_ == Mode::DiscardScalar;
        if (!skipping) fail("JSON parse error, stray '" + std::string(1, c) + "'", out, Mode::Idle);
        reset();
        return;
    }
    switch (mode_) {
    case Mode::Idle:
        if (is_ws(c)) return;
        buf_.assign(1, c);
        if (c == '{' || c == '[') {
            mode_ = Mode::Container;
            depth_ = 1;
        } else if (c == '"') {
            mode_ = Mode::Container; // a top-level string: done when it closes at depth 0
            depth_ = 0;
            in_string_ = true;
        } else if (c == '}' || c == ']' || c == ',' || c == ':') {
            finish(out); // unbalanced: QEMU hands it to the parser, which expects a value
        } else {
            mode_ = Mode::Scalar;
        }
        return;

    case Mode::Scalar:
    case Mode::DiscardScalar:
        if (is_ws(c) || is_structural(c)) {
            if (mode_ == Mode::Scalar) {
                finish(out);
            } else {
                mode_ = Mode::Idle;
            }
            byte(c, out); // the delimiter starts the next document
            return;
        }
        if (mode_ == Mode::DiscardScalar) return;
        buf_ += c;
        if (buf_.size() > Json::kMaxDocumentBytes)
            fail("JSON token size limit exceeded", out, Mode::DiscardScalar);
        return;

    case Mode::Container:
    case Mode::Discard: {
        bool keep = mode_ == Mode::Container;
        if (keep) buf_ += c;
        bool done = false;
        if (in_string_) {
            if (escape_) {
                escape_ = false;
            } else if (c == '\\') {
                escape_ = true;
            } else if (c == '"') {
                in_string_ = false;
                done = depth_ == 0;
            }
        } else if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
            if (keep && depth_ > Json::kMaxDepth) {
                fail("JSON nesting depth limit exceeded", out, Mode::Discard);
                return;
            }
        } else if (c == '}' || c == ']') {
            --depth_;
            done = depth_ == 0;
        }
        if (done) {
            if (keep) {
                finish(out);
            } else {
                reset();
            }
            return;
        }
        if (keep && buf_.size() > Json::kMaxDocumentBytes)
            fail("JSON token size limit exceeded", out, Mode::Discard);
        return;
    }
    }
}

} // namespace hvm
