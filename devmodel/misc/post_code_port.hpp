// Port 0x80, the POST diagnostic port. Firmware writes progress codes here and operating
// systems write anything as an I/O delay (Linux's outb_p), so a write only stores the code and
// its time and logs it at debug level. Reads return all-ones, as QEMU's ioport80 does. The last
// codes are kept (with their times on the machine's clock) so tests and crash reports can show
// how far a boot got. Register one byte with AccessSizes{1,1}.
#pragma once
#include <array>
#include <vector>

#include "base/clock.hpp"
#include "devmodel/device.hpp"

namespace hvm {

class PostCodePort : public IoHandler, public Device {
  public:
    static constexpr uint16_t kPort = 0x80;
    static constexpr unsigned kHistory = 64;

    struct Entry {
        uint8_t code;
        uint64_t time_ns;
    };

    explicit PostCodePort(Clock& clock) : clock_(clock) {}

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "post-code-port"; }
    void reset(ResetKind) override {} // the codes of the previous boot stay visible
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    uint8_t last_code() const { return last_; }
    uint64_t write_count() const { return writes_; }
    // The most recent writes, oldest first (at most kHistory).
    std::vector<Entry> recent() const;

  private:
    Clock& clock_;
    uint8_t last_ = 0;
    uint64_t writes_ = 0;
    std::array<Entry, kHistory> ring_{};
};

} // namespace hvm
