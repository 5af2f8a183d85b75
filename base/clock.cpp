#include "base/clock.hpp"

#include <cassert>
#include <cstdint>

namespace hvm {

Timer::Timer(Clock& clock, std::function<void()> callback)
    : clock_(clock), callback_(std::move(callback)) {}

Timer::~Timer() {
    cancel();
}

void Timer::arm(uint64_t deadline_ns) {
    if (armed_) clock_.unschedule(this);
    deadline_ = deadline_ns;
    clock_.schedule(this);
}

void Timer::cancel() {
    if (armed_) clock_.unschedule(this);
}

void Clock::schedule(Timer* t) {
    t->armed_ = true;
    t->seq_ = next_seq_++;
    queue_.emplace(t->deadline_, t);
    timers_changed();
}

void Clock::unschedule(Timer* t) {
    auto [lo, hi] = queue_.equal_range(t->deadline_);
    for (auto it = lo; it != hi; ++it) {
        if (it->second == t) {
            queue_.erase(it);
            break;
        }
    }
    t->armed_ = false;
}

uint64_t Clock::earliest_deadline() const {
    return queue_.empty() ? UINT64_MAX : queue_.begin()->first;
}

bool Clock::run_one_expired(uint64_t now) {
    if (queue_.empty() || queue_.begin()->first > now) return false;
    Timer* t = queue_.begin()->second;
    queue_.erase(queue_.begin());
    t->armed_ = false;
    t->callback_();
    return true;
}

void FakeClock::advance_to(uint64_t t) {
    for (;;) {
        uint64_t next = earliest_deadline();
        if (next > t) break;
        if (next > now_) now_ = next;
        run_one_expired(now_);
    }
    if (t > now_) now_ = t;
}

void FakeClock::advance(uint64_t ns) {
    advance_to(now_ + ns);
}

} // namespace hvm

#include <chrono>
#include <ctime>

namespace hvm {

MonotonicClock::MonotonicClock(std::mutex& lock) : lock_(lock) {}

MonotonicClock::~MonotonicClock() {
    stop();
}

uint64_t MonotonicClock::now_ns() const {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void MonotonicClock::start() {
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { thread_main(); });
}

void MonotonicClock::stop() {
    {
        std::lock_guard g(lock_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void MonotonicClock::thread_main() {
    std::unique_lock g(lock_);
    while (!stop_) {
        uint64_t now = now_ns();
        while (run_one_expired(now)) now = now_ns();
        uint64_t next = earliest_deadline();
        if (next == UINT64_MAX) {
            cv_.wait(g);
        } else {
            // steady_clock is CLOCK_MONOTONIC on Linux, the same time base as now_ns(). A
            // deadline beyond the signed range would wrap into the past: clamp it.
            const uint64_t kMax = uint64_t(INT64_MAX) / 2;
            auto when = std::chrono::steady_clock::time_point(
                std::chrono::nanoseconds(int64_t(next < kMax ? next : kMax)));
            cv_.wait_until(g, when);
        }
    }
}

} // namespace hvm
