// What port 0x61 reaches of the 8254: counter 2's GATE input and OUT output (the speaker timer,
// which firmware and OSes also gate and poll to calibrate delay loops, TSC and LAPIC timer).
// An interface so that under KVM's in-kernel PIT the machine can back port 0x61 with
// KVM_GET_PIT2/KVM_SET_PIT2 instead of hvm's own Pit8254.
#pragma once

namespace hvm {

class PitChannel2 {
  public:
    virtual ~PitChannel2() = default;
    virtual bool gate2() = 0;
    virtual void set_gate2(bool level) = 0;
    virtual bool out2() = 0;
};

} // namespace hvm
