// What a chip may ask of the platform as a whole: a reset line (KBC pulse, port 0x92, 0xCF9), a
// power-off (ACPI S5), an exit with a status (isa-debug-exit) and the A20 gate. The Machine
// implements it; tests use a fake that records the calls.
#pragma once

namespace hvm {

class PlatformControl {
  public:
    virtual ~PlatformControl() = default;
    virtual void request_reset() = 0;
    virtual void request_poweroff() = 0;
    virtual void request_exit(int status) = 0;
    virtual void set_a20(bool enabled) = 0;
    virtual bool a20() const = 0;
};

} // namespace hvm
