// Time is injected. Every timer of every chip (PIT, RTC, LAPIC timer, UART timeouts, PM timer)
// reads a Clock and arms Timers on it, so unit tests step a FakeClock (as QEMU's qtest does with
// clock_step) and production uses CLOCK_MONOTONIC with a timer thread.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

namespace hvm {

class Clock;

// A one-shot timer. Callbacks run with the device-model lock held (production) or inside
// FakeClock::advance (tests). A callback may re-arm its own timer.
class Timer {
  public:
    Timer(Clock& clock, std::function<void()> callback);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    void arm(uint64_t deadline_ns); // absolute time on the clock
    void cancel();
    bool armed() const { return armed_; }
    uint64_t deadline() const { return deadline_; }

  private:
    friend class Clock;
    Clock& clock_;
    std::function<void()> callback_;
    uint64_t deadline_ = 0;
    uint64_t seq_ = 0;
    bool armed_ = false;
};

class Clock {
  public:
    virtual ~Clock() = default;
    virtual uint64_t now_ns() const = 0;

  protected:
    // Timers due at or before `now`, earliest first. Used by implementations.
    bool run_one_expired(uint64_t now);
    uint64_t earliest_deadline() const; // UINT64_MAX if none
    virtual void timers_changed() {}

  private:
    friend class Timer;
    void schedule(Timer* t);
    void unschedule(Timer* t);
    std::multimap<uint64_t, Timer*> queue_;
    uint64_t next_seq_ = 0;
};

// Test clock: time moves only when the test says so.
class FakeClock : public Clock {
  public:
    explicit FakeClock(uint64_t start_ns = 0) : now_(start_ns) {}
    uint64_t now_ns() const override { return now_; }
    // Moves time forward by `ns`, firing every timer due in between at its own deadline.
    void advance(uint64_t ns);
    void advance_to(uint64_t t);

  private:
    uint64_t now_;
};

} // namespace hvm

#include <condition_variable>
#include <mutex>
#include <thread>

namespace hvm {

// Production clock: CLOCK_MONOTONIC, with a thread that fires timers. Timers are armed and
// cancelled only with `lock` held (the device-model lock every device handler runs under); the
// thread takes the same lock to fire them.
class MonotonicClock : public Clock {
  public:
    explicit MonotonicClock(std::mutex& lock);
    ~MonotonicClock() override;
    uint64_t now_ns() const override;
    void start(); // starts the timer thread
    void stop();

  protected:
    void timers_changed() override { cv_.notify_one(); }

  private:
    void thread_main();
    std::mutex& lock_;
    std::condition_variable cv_;
    std::thread thread_;
    bool stop_ = false;
};

} // namespace hvm
