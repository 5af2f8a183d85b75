// `stdio`: the guest's serial line on hvm's own terminal.
//  - When stdin is a tty it is put in raw mode (QEMU's settings: no echo, no line editing, 8 bits,
//    output post-processing kept; ISIG kept unless signal=off, so Ctrl-C still stops hvm by
//    default). The original mode comes back when the backend is destroyed, at exit(), and on a
//    fatal signal (SIGSEGV, SIGABRT, SIGTERM, SIGINT, ...), after which the signal does what it
//    did before.
//  - Escape keys after Ctrl-A, like QEMU's `-serial mon:stdio` / -nographic mux (hvm has no
//    monitor, so hvm always interprets them on stdio): `x` quits, Ctrl-A sends a Ctrl-A, `b`
//    sends a break, `h` or `?` prints the list. Any other key after Ctrl-A is swallowed, as
//    in QEMU.
//  - Only one stdio backend can exist at a time (there is one terminal), as in QEMU.
#pragma once
#include <termios.h>

#include "chardev/stream_backend.hpp"

namespace hvm {

class StdioCharBackend : public StreamCharBackend {
  public:
    static constexpr uint8_t kEscape = 0x01; // Ctrl-A

    // Throws UserError if another stdio backend exists.
    StdioCharBackend(CharContext& context, bool allow_signals);
    ~StdioCharBackend() override;

  protected:
    void process_input_locked(std::span<const uint8_t> raw) override;
    void on_input_eof_locked() override { end_input_locked(); }

  private:
    void print_help_locked();
    CharContext& context_;
    bool escape_ = false;
    bool raw_mode_ = false;
};

} // namespace hvm
