// Cuts a QMP input byte stream into JSON documents, the way QEMU's JSON streamer does
// (qobject/json-streamer.c): a document ends when its outermost brackets balance, so requests may
// span lines, share a line, or arrive one byte at a time. Top-level scalars end at whitespace or
// a structural character (they are then rejected by the protocol layer, "QMP input must be a JSON
// object"). A lone ']' or '}' is its own (invalid) document.
//
// Hostile input is bounded: a document above Json::kMaxDocumentBytes or nested deeper than
// Json::kMaxDepth yields one error and the rest of that document is skipped without being stored
// (the framer keeps counting brackets so it resumes at the next document). Memory use is at most
// one document.
//
// Resynchronisation (qmp-spec.rst, "Forcing the JSON parser into known-good state"): an ASCII
// control character other than tab, CR and LF, or a 0xFE/0xFF byte, is a lexical error anywhere —
// also inside a string — and resets the framer. It yields one "JSON parse error, stray '...'"
// unless the framer was already skipping a failed document.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "qmp/json.hpp"

namespace hvm {

class JsonStreamFramer {
  public:
    struct Message {
        bool ok = false;
        Json value;        // when ok
        std::string error; // when !ok: QEMU's wording, e.g. "JSON parse error, expecting value"
    };

    // Appends every document completed by `bytes` to `out`, in order.
    void feed(std::string_view bytes, std::vector<Message>& out);
    // Forgets any partial document (a new client connected).
    void reset();

  private:
    enum class Mode { Idle, Container, Scalar, Discard, DiscardScalar };
    void byte(char c, std::vector<Message>& out);
    void finish(std::vector<Message>& out);
    void fail(std::string error, std::vector<Message>& out, Mode next);

    Mode mode_ = Mode::Idle;
    std::string buf_;
    size_t depth_ = 0;
    bool in_string_ = false;
    bool escape_ = false;
};

} // namespace hvm
