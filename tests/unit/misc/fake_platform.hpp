// Test doubles shared by the misc device tests.
#pragma once
#include <string>
#include <vector>

#include "chardev/char_backend.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/platform.hpp"

namespace hvm::test {

struct FakePlatform : PlatformControl {
    int resets = 0, poweroffs = 0;
    std::vector<int> exits;
    std::vector<bool> a20_writes;
    bool a20_line = true;
    void request_reset() override { resets++; }
    void request_poweroff() override { poweroffs++; }
    void request_exit(int status) override { exits.push_back(status); }
    void set_a20(bool enabled) override {
        a20_writes.push_back(enabled);
        a20_line = enabled;
    }
    bool a20() const override { return a20_line; }
};

// Records each line's level and its rising edges.
struct RecordingIrqs : IrqSink {
    bool level[16] = {};
    int raises[16] = {};
    void set_irq(unsigned line, bool l) override {
        if (line >= 16) return;
        if (l && !level[line]) raises[line]++;
        level[line] = l;
    }
};

struct RecordingBackend : CharBackend {
    std::string out;
    void write(std::span<const uint8_t> b) override { out.append(b.begin(), b.end()); }
    void attach(CharFrontend*) override {}
    void accept_input() override {}
};

} // namespace hvm::test
