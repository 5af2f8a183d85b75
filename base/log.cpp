#include "base/log.hpp"

#include <cstdio>
#include <mutex>

namespace hvm {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Warn)};
std::mutex g_mutex;
const char* const kNames[] = {"error", "warning", "info", "debug", "trace"};
} // namespace

void set_log_level(LogLevel level) {
    g_level.store(static_cast<int>(level));
}
LogLevel log_level() {
    return static_cast<LogLevel>(g_level.load());
}
bool log_enabled(LogLevel level) {
    return static_cast<int>(level) <= g_level.load();
}

void log_message(LogLevel level, const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    std::lock_guard lock(g_mutex);
    fprintf(stderr, "hvm: %s: %s\n", kNames[static_cast<int>(level)], buf);
}

} // namespace hvm
