#include "chardev/stdio_backend.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "base/error.hpp"
#include "base/log.hpp"

namespace hvm {

namespace {

// The terminal is one per process and a signal handler can only reach state with static storage,
// so this is the one place the character devices keep process-wide state.
std::atomic<bool> g_stdio_in_use{false};
struct termios g_saved_termios;
volatile sig_atomic_t g_termios_saved = 0;

// Asynchronous signals get our handler only if nobody else handles them (a machine that catches
// SIGINT for an orderly shutdown restores the terminal through the destructor instead). Faults
// always do, chained to whatever was there (ASan's reports included).
constexpr int kAsyncSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
struct sigaction g_previous[65];

void restore_terminal() {
    if (g_termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
        g_termios_saved = 0;
    }
}

void on_signal(int sig) {
    int saved_errno = errno;
    restore_terminal();
    sigaction(sig, &g_previous[sig], nullptr);
    bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
    // A fault re-executes the faulting instruction on return and meets the previous handler with
    // its real siginfo; anything else is raised again (blocked until we return).
    if (!fault) raise(sig);
    errno = saved_errno;
}

void install_handlers_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        atexit(restore_terminal);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (int sig : kAsyncSignals) {
            struct sigaction cur;
            if (sigaction(sig, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL &&
                !(cur.sa_flags & SA_SIGINFO)) {
                g_previous[sig] = cur;
                sigaction(sig, &sa, nullptr);
            }
        }
        for (int sig : kFaultSignals) sigaction(sig, &sa, &g_previous[sig]);
    });
}

} // namespace

StdioCharBackend::StdioCharBackend(CharContext& context, bool allow_signals)
    : StreamCharBackend(context.device_lock, PeerLoss::Close), context_(context) {
    if (g_stdio_in_use.exchange(true))
        fail("stdio: only one character device can use hvm's terminal (use chardev:ID to share "
             "it)");
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &g_saved_termios) == 0) {
        // QEMU's qemu_chr_set_echo_stdio(false) settings.
        struct termios tty = g_saved_termios;
        tty.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
        tty.c_oflag |= OPOST;
        tty.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | IEXTEN);
        tty.c_cflag &= ~tcflag_t(CSIZE | PARENB);
        tty.c_cflag |= CS8;
        tty.c_cc[VMIN] = 1;
        tty.c_cc[VTIME] = 0;
        if (!allow_signals) tty.c_lflag &= ~tcflag_t(ISIG);
        install_handlers_once();
        g_termios_saved = 1;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &tty) != 0) {
            g_termios_saved = 0;
            LOG_WARN("stdio: cannot put the terminal in raw mode: %s", strerror(errno));
        } else {
            raw_mode_ = true;
        }
    }
    {
        std::lock_guard g(device_lock());
        set_stream_locked(STDIN_FILENO, STDOUT_FILENO, false, false);
        if (fcntl(STDIN_FILENO, F_GETFD) < 0) end_input_locked(); // stdin closed
    }
    start();
}

StdioCharBackend::~StdioCharBackend() {
    stop();
    if (raw_mode_) restore_terminal();
    g_stdio_in_use.store(false);
}

void StdioCharBackend::print_help_locked() {
    static const char kHelp[] = "\r\n"
                                "C-a h    print this help\r\n"
                                "C-a x    exit hvm\r\n"
                                "C-a b    send break\r\n"
                                "C-a C-a  send C-a\r\n";
    write_host_locked(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kHelp), sizeof kHelp - 1));
}

void StdioCharBackend::process_input_locked(std::span<const uint8_t> raw) {
    for (uint8_t b : raw) {
        if (!escape_) {
            if (b == kEscape)
                escape_ = true;
            else
                queue_input_locked(b);
            continue;
        }
        escape_ = false;
        switch (b) {
        case kEscape: queue_input_locked(kEscape); break;
        case 'b': queue_input_locked(kBreak); break;
        case 'h':
        case '?': print_help_locked(); break;
        case 'x': {
            static const char kBye[] = "hvm: Terminated\r\n";
            write_host_locked(
                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kBye), sizeof kBye - 1));
            if (context_.quit)
                context_.quit();
            else
                LOG_WARN("stdio: Ctrl-A x: this machine has no quit handler");
            break;
        }
        default: break; // QEMU's mux swallows unknown escapes too
        }
    }
}

} // namespace hvm
