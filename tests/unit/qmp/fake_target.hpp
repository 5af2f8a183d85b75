// A QmpTarget for tests: records calls, answers with configurable outcomes, and emits the events
// QEMU emits for each command through `emit` when set.
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "qmp/json.hpp"
#include "qmp/qmp_target.hpp"

namespace hvm::test {

class FakeTarget : public QmpTarget {
  public:
    QmpStatus status{true, RunState::Running};
    std::map<std::string, QmpError> failures; // method name -> error to answer
    std::vector<std::string> calls;
    std::function<void(std::string_view, Json)> emit;
    std::mutex* device_lock = nullptr; // when set, every call checks that it is held
    bool lock_was_held = true;
    uint32_t cpus = 2;

    struct Screendump {
        std::string filename;
        std::optional<std::string> device;
        int64_t head = 0;
        ImageFormat format = ImageFormat::Ppm;
    };
    std::optional<Screendump> screendump_args;
    std::vector<QmpKey> keys;
    uint32_t hold_time_ms = 0;
    std::optional<std::string> input_device;
    int64_t input_head = -1;
    std::vector<QmpInputEvent> input_events;

    QmpStatus query_status() override {
        record("query_status");
        return status;
    }
    QmpOutcome stop() override {
        auto r = record("stop");
        if (!r) {
            status = {false, RunState::Paused};
            if (emit) emit("STOP", Json());
        }
        return r;
    }
    QmpOutcome cont() override {
        auto r = record("cont");
        if (!r) {
            status = {true, RunState::Running};
            if (emit) emit("RESUME", Json());
        }
        return r;
    }
    QmpOutcome system_reset() override {
        auto r = record("system_reset");
        if (!r && emit)
            emit("RESET", Json::object({{"guest", false}, {"reason", "host-qmp-system-reset"}}));
        return r;
    }
    QmpOutcome system_powerdown() override {
        auto r = record("system_powerdown");
        if (!r && emit) emit("POWERDOWN", Json());
        return r;
    }
    QmpOutcome quit() override {
        auto r = record("quit");
        if (!r && emit)
            emit("SHUTDOWN", Json::object({{"guest", false}, {"reason", "host-qmp-quit"}}));
        return r;
    }
    QmpOutcome screendump(const std::string& filename, const std::optional<std::string>& device,
                          int64_t head, ImageFormat format) override {
        screendump_args = Screendump{filename, device, head, format};
        return record("screendump");
    }
    QmpOutcome send_key(const std::vector<QmpKey>& k, uint32_t hold) override {
        keys = k;
        hold_time_ms = hold;
        return record("send_key");
    }
    QmpOutcome input_send_event(const std::optional<std::string>& device, int64_t head,
                                const std::vector<QmpInputEvent>& events) override {
        input_device = device;
        input_head = head;
        input_events = events;
        return record("input_send_event");
    }
    uint32_t cpu_count() override {
        record("cpu_count");
        return cpus;
    }

  private:
    QmpOutcome record(const std::string& name) {
        calls.push_back(name);
        if (device_lock) {
            // Another thread must not be able to take the lock while a target method runs.
            bool free = false;
            std::thread t([&] {
                if (device_lock->try_lock()) {
                    free = true;
                    device_lock->unlock();
                }
            });
            t.join();
            if (free) lock_was_held = false;
        }
        auto it = failures.find(name);
        if (it != failures.end()) return it->second;
        return std::nullopt;
    }
};

} // namespace hvm::test
