// QEMU's isa-debug-exit (hw/misc/debugexit.c): writing value v ends hvm with exit status
// (v << 1) | 1, so a test guest can report success or failure and never be mistaken for a clean
// exit 0. The value is the whole access the guest made (1 to 4 bytes; QEMU's valid sizes), taken
// as little-endian; the process status keeps only its low 8 bits, as exit() does. Reads return 0.
// Defaults: iobase 0x501, iosize 2. Register with AccessSizes{1,4}.
#pragma once
#include "devmodel/device.hpp"
#include "devmodel/platform.hpp"

namespace hvm {

class DebugExit : public IoHandler, public Device {
  public:
    static constexpr uint16_t kDefaultPort = 0x501;
    static constexpr uint16_t kDefaultSize = 2;

    explicit DebugExit(PlatformControl& platform) : platform_(platform) {}

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "isa-debug-exit"; }
    void reset(ResetKind) override {}
    void save(StateWriter& out) const override { out.begin("isa-debug-exit", 1); }
    void load(StateReader& in) override { in.begin("isa-debug-exit", 1, 1); }

    // The status a write of `value` requests.
    static int exit_status(uint64_t value) { return int(uint32_t((value << 1) | 1)); }

  private:
    PlatformControl& platform_;
};

} // namespace hvm
