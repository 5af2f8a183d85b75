#include "block/block_worker_pool.hpp"

namespace hvm::block {

BlockWorkerPool::BlockWorkerPool(unsigned threads) {
    if (threads == 0) threads = 1;
    for (unsigned i = 0; i < threads; i++) workers_.emplace_back([this] { run(); });
}

BlockWorkerPool::~BlockWorkerPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void BlockWorkerPool::submit(std::function<IoStatus()> work, Completion done) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(Job{std::move(work), std::move(done)});
        in_flight_++;
    }
    work_cv_.notify_one();
}

void BlockWorkerPool::submit_read(BlockDevice& dev, uint64_t offset, std::span<uint8_t> buf,
                                  Completion done) {
    submit([&dev, offset, buf] { return dev.read(offset, buf); }, std::move(done));
}

void BlockWorkerPool::submit_write(BlockDevice& dev, uint64_t offset, std::span<const uint8_t> buf,
                                   Completion done) {
    submit([&dev, offset, buf] { return dev.write(offset, buf); }, std::move(done));
}

void BlockWorkerPool::submit_flush(BlockDevice& dev, Completion done) {
    submit([&dev] { return dev.flush(); }, std::move(done));
}

void BlockWorkerPool::submit_discard(BlockDevice& dev, uint64_t offset, uint64_t length,
                                     Completion done) {
    submit([&dev, offset, length] { return dev.discard(offset, length); }, std::move(done));
}

void BlockWorkerPool::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            // Workers leave only once the queue is empty, so the destructor completes every job.
            work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        IoStatus status = job.work();
        if (job.done) job.done(status);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            in_flight_--;
        }
        idle_cv_.notify_all();
    }
}

void BlockWorkerPool::drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_cv_.wait(lock, [this] { return in_flight_ == 0; });
}

size_t BlockWorkerPool::in_flight() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_flight_;
}

} // namespace hvm::block
