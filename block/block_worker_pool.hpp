// Asynchronous block I/O: requests are queued by the caller (a vCPU thread inside an IDE register
// handler) and run on a small pool of worker threads, which then call the completion. The
// completion runs on the worker WITHOUT the device-model lock: it must take that lock itself
// before touching device state or raising an IRQ.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "block/block_device.hpp"

namespace hvm::block {

class BlockWorkerPool {
  public:
    using Completion = std::function<void(IoStatus)>;

    explicit BlockWorkerPool(unsigned threads = 2);
    // Completes every queued request (callbacks included), then joins the workers.
    ~BlockWorkerPool();
    BlockWorkerPool(const BlockWorkerPool&) = delete;
    BlockWorkerPool& operator=(const BlockWorkerPool&) = delete;

    // The buffer and the device must stay alive until `done` has been called. Requests are not
    // ordered against each other: submit a flush only after the writes it covers completed.
    void submit_read(BlockDevice& dev, uint64_t offset, std::span<uint8_t> buf, Completion done);
    void submit_write(BlockDevice& dev, uint64_t offset, std::span<const uint8_t> buf,
                      Completion done);
    void submit_flush(BlockDevice& dev, Completion done);
    void submit_discard(BlockDevice& dev, uint64_t offset, uint64_t length, Completion done);

    // Blocks until every request submitted so far has completed and its callback returned
    // (device reset, state save, shutdown). Must not be called from a completion callback or
    // with a lock the callbacks take.
    void drain();
    size_t in_flight() const;

  private:
    void submit(std::function<IoStatus()> work, Completion done);
    void run();

    struct Job {
        std::function<IoStatus()> work;
        Completion done;
    };
    mutable std::mutex mutex_;
    std::condition_variable work_cv_, idle_cv_;
    std::deque<Job> queue_;
    size_t in_flight_ = 0; // queued + running
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

} // namespace hvm::block
