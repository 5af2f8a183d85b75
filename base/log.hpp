// Logging: one sink (stderr by default), levels, and a rate limiter for guest-triggered noise.
#pragma once
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <string>

namespace hvm {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3, Trace = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);
void log_message(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define HVM_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if (::hvm::log_enabled(level)) ::hvm::log_message(level, __VA_ARGS__);                     \
    } while (0)
#define LOG_ERROR(...) HVM_LOG(::hvm::LogLevel::Error, __VA_ARGS__)
#define LOG_WARN(...) HVM_LOG(::hvm::LogLevel::Warn, __VA_ARGS__)
#define LOG_INFO(...) HVM_LOG(::hvm::LogLevel::Info, __VA_ARGS__)
#define LOG_DEBUG(...) HVM_LOG(::hvm::LogLevel::Debug, __VA_ARGS__)

// Lets the first `burst` events through, then one in every `every` (guest-triggered messages such
// as unclaimed port accesses must never flood the log).
class RateLimiter {
  public:
    explicit RateLimiter(uint32_t burst = 16, uint32_t every = 4096)
        : burst_(burst), every_(every) {}
    bool allow() {
        uint64_t n = count_.fetch_add(1, std::memory_order_relaxed);
        return n < burst_ || (n - burst_) % every_ == 0;
    }
    uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> count_{0};
    uint32_t burst_, every_;
};

} // namespace hvm
