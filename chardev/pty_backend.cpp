#include "chardev/pty_backend.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"

namespace hvm {

PtyCharBackend::PtyCharBackend(std::mutex& device_lock, const std::string& label)
    : StreamCharBackend(device_lock, PeerLoss::Wait) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) fail(std::string("pty: cannot allocate a pseudo-terminal: ") + strerror(errno));
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name)) {
        int err = errno;
        close(master);
        fail(std::string("pty: cannot set up the pseudo-terminal: ") + strerror(err));
    }
    // A serial line is 8-bit clean: no echo, no line discipline (QEMU does cfmakeraw too).
    struct termios tty;
    if (tcgetattr(master, &tty) == 0) {
        cfmakeraw(&tty);
        tcsetattr(master, TCSAFLUSH, &tty);
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    path_ = name;
    fprintf(stderr, "char device redirected to %s (label %s)\n", path_.c_str(), label.c_str());
    {
        std::lock_guard g(device_lock);
        set_stream_locked(master, master, true, false);
    }
    start();
}

PtyCharBackend::~PtyCharBackend() {
    stop();
}

} // namespace hvm
