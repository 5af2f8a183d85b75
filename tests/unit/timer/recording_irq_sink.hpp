// Test double for an interrupt controller: records every level change with the fake clock's time.
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "base/clock.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm::test {

struct IrqEvent {
    uint64_t ns;
    unsigned line;
    bool level;
    bool operator==(const IrqEvent&) const = default;
};

class RecordingIrqSink : public IrqSink {
  public:
    explicit RecordingIrqSink(const Clock& clock) : clock_(clock) {}
    void set_irq(unsigned line, bool level) override {
        events.push_back({clock_.now_ns(), line, level});
        levels_[line] = level;
    }
    bool level(unsigned line) const {
        auto it = levels_.find(line);
        return it != levels_.end() && it->second;
    }
    // Times of low-to-high transitions on `line` (the line starts low).
    std::vector<uint64_t> rising_edges(unsigned line) const {
        std::vector<uint64_t> out;
        bool prev = false;
        for (const IrqEvent& e : events) {
            if (e.line != line) continue;
            if (e.level && !prev) out.push_back(e.ns);
            prev = e.level;
        }
        return out;
    }
    std::vector<IrqEvent> events;

  private:
    const Clock& clock_;
    std::map<unsigned, bool> levels_;
};

} // namespace hvm::test
