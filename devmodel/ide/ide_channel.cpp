#include "devmodel/ide/ide_channel.hpp"

#include <algorithm>
#include <cassert>

#include "base/log.hpp"
#include "devmodel/ide/ata.hpp"

namespace hvm {

using namespace ata;

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr uint64_t k4G = 1ull << 32;
} // namespace

IdeChannel::IdeChannel(unsigned index, IrqPin irq, GuestMemory& memory,
                       block::BlockWorkerPool* pool, std::mutex& device_lock, IdeDmaHost& host)
    : index_(index), irq_(irq), memory_(memory), pool_(pool), device_lock_(device_lock),
      host_(host), anchor_(std::make_shared<Anchor>()) {
    anchor_->channel = this;
    anchor_->device_lock = &device_lock_;
    drives_[0] = std::make_unique<IdeDrive>(*this, 0);
    drives_[1] = std::make_unique<IdeDrive>(*this, 1);
}

IdeChannel::~IdeChannel() {
    // A completion still queued on the pool finds the anchor empty and does nothing; its job
    // keeps the bounce buffer and the medium alive until then.
    std::lock_guard g(anchor_->mutex);
    anchor_->channel = nullptr;
}

// ---- interrupt ------------------------------------------------------------------------------

void IdeChannel::raise_irq() {
    if (control_ & kControlNien) return;
    bm_status_ |= kBmStatusInterrupt; // QEMU bmdma_irq: follows INTRQ, PIO commands included
    irq_level_ = true;
    irq_.raise();
}

void IdeChannel::lower_irq() {
    if (!irq_level_) return;
    irq_level_ = false;
    irq_.lower();
}

// ---- command and control blocks -------------------------------------------------------------

uint8_t IdeChannel::read_register(unsigned reg) {
    IdeDrive& s = selected();
    const bool hob = control_ & kControlHob;
    switch (reg) {
    case kRegData: return 0xFF; // byte reads of the data port (QEMU)
    case kRegError: return (no_devices() || selected_absent()) ? 0 : s.read_taskfile(reg, hob);
    case kRegSectorCount:
    case kRegLbaLow:
    case kRegLbaMid:
    case kRegLbaHigh:
    case kRegDevice: return no_devices() ? 0 : s.read_taskfile(reg, hob);
    default: {
        uint8_t v = (no_devices() || selected_absent()) ? 0 : s.status();
        lower_irq(); // reading Status acknowledges the interrupt
        return v;
    }
    }
}

void IdeChannel::write_register(unsigned reg, uint8_t value) {
    // Task-file writes are ignored while the selected device is busy with a command.
    if (reg != kRegStatus && (selected().status() & (kStatusBsy | kStatusDrq))) return;
    if (reg == kRegData) return;
    control_ &= uint8_t(~kControlHob); // any task-file write drops HOB
    if (reg != kRegStatus) {
        drives_[0]->write_taskfile(reg, value);
        drives_[1]->write_taskfile(reg, value);
        if (reg == kRegDevice) unit_ = (value & kDeviceDev1) ? 1 : 0;
        return;
    }
    lower_irq();
    if (selected_absent()) return; // commands to a missing slave go nowhere
    selected().execute(value);
}

void IdeChannel::write_control(uint8_t value) {
    const uint8_t old = control_;
    control_ = value;
    if (!(old & kControlSrst) && (value & kControlSrst)) {
        cancel_dma();
        unit_ = 0;
        drives_[0]->srst_assert();
        drives_[1]->srst_assert();
    } else if ((old & kControlSrst) && !(value & kControlSrst)) {
        drives_[0]->srst_release();
        drives_[1]->srst_release();
    }
    // With nIEN set the device tri-states INTRQ: the line falls.
    if (value & kControlNien) lower_irq();
}

void IdeChannel::CommandBlock::io_read(uint64_t offset, std::span<uint8_t> data) {
    if (offset == kRegData && data.size() > 1) {
        le_store(data, ch_.selected().read_data(unsigned(data.size())));
        return;
    }
    // Wider accesses to the byte registers act as byte accesses, as on the ISA bus.
    for (size_t i = 0; i < data.size(); i++) data[i] = ch_.read_register(unsigned(offset + i) & 7);
}

void IdeChannel::CommandBlock::io_write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset == kRegData && data.size() > 1) {
        ch_.selected().write_data(unsigned(data.size()), uint32_t(le_load(data)));
        return;
    }
    for (size_t i = 0; i < data.size(); i++) ch_.write_register(unsigned(offset + i) & 7, data[i]);
}

// Alternate Status reads the status without acknowledging the interrupt.
void IdeChannel::ControlBlock::io_read(uint64_t, std::span<uint8_t> data) {
    uint8_t v = (ch_.no_devices() || ch_.selected_absent()) ? 0 : ch_.selected().status();
    for (auto& b : data) b = v;
}

void IdeChannel::ControlBlock::io_write(uint64_t, std::span<const uint8_t> data) {
    if (!data.empty()) ch_.write_control(data[0]);
}

// ---- bus-master registers -------------------------------------------------------------------

void IdeChannel::bm_read(unsigned offset, std::span<uint8_t> data) {
    if (offset >= kBmPrdTable) {
        for (size_t i = 0; i < data.size(); i++) {
            unsigned b = offset - kBmPrdTable + unsigned(i);
            data[i] = b < 4 ? uint8_t(bm_prd_table_ >> (8 * b)) : 0xFF;
        }
        return;
    }
    // Command and status are byte registers (QEMU bmdma_read answers wider reads with ones).
    if (data.size() != 1) {
        std::fill(data.begin(), data.end(), 0xFF);
        return;
    }
    data[0] = offset == kBmCommand ? bm_cmd_ : offset == kBmStatus ? bm_status_ : 0xFF;
}

void IdeChannel::bm_write(unsigned offset, std::span<const uint8_t> data) {
    if (offset >= kBmPrdTable) {
        for (size_t i = 0; i < data.size(); i++) {
            unsigned b = offset - kBmPrdTable + unsigned(i);
            if (b >= 4) break;
            bm_prd_table_ = (bm_prd_table_ & ~(0xFFu << (8 * b))) | uint32_t(data[i]) << (8 * b);
        }
        bm_prd_table_ &= ~3u; // dword aligned
        return;
    }
    if (data.size() != 1) return;
    if (offset == kBmCommand) {
        write_bm_command(data[0]);
    } else if (offset == kBmStatus) {
        uint8_t v = data[0];
        bm_status_ = uint8_t((v & (kBmStatusDrive0Dma | kBmStatusDrive1Dma)) |
                             (bm_status_ & kBmStatusActive) |
                             (bm_status_ & ~v & (kBmStatusError | kBmStatusInterrupt)));
    }
}

void IdeChannel::write_bm_command(uint8_t value) {
    // Writes that keep Start as it is change only the direction bit (QEMU bmdma_cmd_writeb).
    if ((value ^ bm_cmd_) & kBmCmdStart) {
        if (!(value & kBmCmdStart)) {
            cancel_dma();
            bm_status_ &= uint8_t(~kBmStatusActive);
        } else {
            cur_table_ = bm_prd_table_;
            if (!(bm_status_ & kBmStatusActive)) {
                bm_status_ |= kBmStatusActive;
                bm_cmd_ = value & (kBmCmdStart | kBmCmdWrite);
                run_dma();
                return;
            }
        }
    }
    bm_cmd_ = value & (kBmCmdStart | kBmCmdWrite);
}

// ---- DMA ------------------------------------------------------------------------------------

void IdeChannel::request_dma(unsigned unit, const IdeDmaRequest& request) {
    cancel_dma();
    pending_ = request;
    pending_unit_ = unit & 1;
    // A new command walks its PRD table from the start (QEMU bmdma_start_dma).
    cur_prd_addr_ = cur_prd_len_ = 0;
    cur_prd_last_ = false;
    prd_entries_ = 0;
    run_dma();
}

void IdeChannel::request_flush(unsigned unit) {
    cancel_dma();
    IdeDmaRequest req;
    req.kind = IdeDmaKind::Flush;
    pending_ = req;
    pending_unit_ = unit & 1;
    auto job = std::make_shared<Job>();
    job->unit = pending_unit_;
    job->req = req;
    job->flushing = true;
    job->medium = drives_[pending_unit_]->medium_ref();
    job_ = job;
    pump();
}

void IdeChannel::cancel_dma() {
    bool had = pending_.has_value();
    unsigned unit = pending_unit_;
    job_.reset();
    pending_.reset();
    if (had) drives_[unit]->dma_abandoned();
}

// Walks the PRD table from the current position until `job.req.bytes` are described. Returns
// false on a memory fault; a short table leaves job.sg describing less than asked.
bool IdeChannel::build_sg(Job& job) {
    uint64_t need = job.req.bytes, got = 0;
    while (got < need) {
        if (cur_prd_len_ == 0) {
            if (cur_prd_last_ || prd_entries_ >= kMaxPrdEntries) break;
            uint8_t e[8];
            if (!memory_.read(cur_table_, e)) return false;
            cur_table_ += 8;
            prd_entries_++;
            uint32_t addr = uint32_t(le_load(std::span<const uint8_t>(e, 4)));
            uint32_t count = uint32_t(le_load(std::span<const uint8_t>(e + 4, 4)));
            uint32_t len = count & 0xFFFE; // bit 0 is reserved
            cur_prd_len_ = len ? len : 0x10000;
            cur_prd_addr_ = addr;
            cur_prd_last_ = count & 0x80000000u;
        }
        uint64_t take = std::min<uint64_t>(need - got, cur_prd_len_);
        if (uint64_t(cur_prd_addr_) + take > k4G || !guest_range_ok(cur_prd_addr_, take))
            return false;
        if (!job.sg.empty() && job.sg.back().gpa + job.sg.back().len == cur_prd_addr_)
            job.sg.back().len += take;
        else
            job.sg.push_back({cur_prd_addr_, take});
        got += take;
        cur_prd_addr_ += uint32_t(take);
        cur_prd_len_ -= uint32_t(take);
    }
    // PRDs longer than the transfer keep ACTIVE set for an ATA command (QEMU "stay_active").
    job.stay_active = job.req.ata && got == need &&
                      (cur_prd_len_ > 0 || (!cur_prd_last_ && prd_entries_ < kMaxPrdEntries));
    return true;
}

bool IdeChannel::guest_range_ok(uint64_t gpa, uint64_t len) const {
    while (len) {
        const MemRegion* r = memory_.find(gpa, 1);
        if (!r) return false;
        uint64_t n = std::min(len, r->end() - gpa);
        gpa += n;
        len -= n;
    }
    return true;
}

// Copies between the bounce buffer and the scatter list, from byte `pos` of the transfer. The
// copies go region by region through GuestMemory, so a buffer split across RAM regions works
// and nothing outside RAM is ever touched.
bool IdeChannel::copy_to_guest(const Job& job, uint64_t pos, std::span<const uint8_t> data) {
    size_t done = 0;
    for (const SgEntry& e : job.sg) {
        if (done == data.size()) break;
        if (pos >= e.len) {
            pos -= e.len;
            continue;
        }
        uint64_t gpa = e.gpa + pos, avail = e.len - pos;
        pos = 0;
        while (avail && done < data.size()) {
            const MemRegion* r = memory_.find(gpa, 1);
            if (!r) return false;
            size_t n = size_t(std::min<uint64_t>({avail, r->end() - gpa, data.size() - done}));
            if (!memory_.write(gpa, data.subspan(done, n))) return false;
            gpa += n;
            avail -= n;
            done += n;
        }
    }
    return done == data.size();
}

bool IdeChannel::copy_from_guest(const Job& job, uint64_t pos, std::span<uint8_t> data) {
    size_t done = 0;
    for (const SgEntry& e : job.sg) {
        if (done == data.size()) break;
        if (pos >= e.len) {
            pos -= e.len;
            continue;
        }
        uint64_t gpa = e.gpa + pos, avail = e.len - pos;
        pos = 0;
        while (avail && done < data.size()) {
            const MemRegion* r = memory_.find(gpa, 1);
            if (!r) return false;
            size_t n = size_t(std::min<uint64_t>({avail, r->end() - gpa, data.size() - done}));
            if (!memory_.read(gpa, data.subspan(done, n))) return false;
            gpa += n;
            avail -= n;
            done += n;
        }
    }
    return done == data.size();
}

// Starts the pending transfer once the bus master is active.
void IdeChannel::run_dma() {
    if (!pending_ || job_ || !(bm_status_ & kBmStatusActive)) return;
    if (pending_->kind == IdeDmaKind::Flush) return;
    auto job = std::make_shared<Job>();
    job->unit = pending_unit_;
    job->req = *pending_;
    job->medium = drives_[pending_unit_]->medium_ref();
    if (job->req.bytes > 0) {
        if (!host_.bus_master_enabled() || !build_sg(*job)) {
            finish_dma(IdeDmaOutcome::MemoryFault, block::IoStatus::Ok);
            return;
        }
        uint64_t described = 0;
        for (const SgEntry& e : job->sg) described += e.len;
        if (described < job->req.bytes) {
            finish_dma(IdeDmaOutcome::ShortPrd, block::IoStatus::Ok);
            return;
        }
    }
    if (job->req.kind == IdeDmaKind::BufferRead) {
        std::span<const uint8_t> reply = drives_[job->unit]->reply_buffer();
        if (job->req.bytes > reply.size()) {
            finish_dma(IdeDmaOutcome::MemoryFault, block::IoStatus::Ok);
            return;
        }
        bool ok = copy_to_guest(*job, 0, reply.first(size_t(job->req.bytes)));
        finish_dma(ok ? IdeDmaOutcome::Ok : IdeDmaOutcome::MemoryFault, block::IoStatus::Ok);
        return;
    }
    if (!job->medium) {
        finish_dma(IdeDmaOutcome::IoError, block::IoStatus::IoError);
        return;
    }
    job_ = job;
    pump();
}

// Moves the job forward: the next chunk, the closing flush, or the end. Without a worker pool
// every step completes here; with one, this returns after each submission.
void IdeChannel::pump() {
    if (in_pump_) return;
    in_pump_ = true;
    while (job_) {
        std::shared_ptr<Job> job = job_;
        bool data_left = !job->flushing && job->done < job->req.bytes;
        bool flush_left = job->flushing || (job->req.flush_after && !data_left);
        if (!data_left && !flush_left) {
            finish_dma(IdeDmaOutcome::Ok, block::IoStatus::Ok);
            break;
        }
        if (!data_left) job->flushing = true;
        if (job->flushing && !job->medium) { // nothing to flush
            if (!apply_chunk(*job, block::IoStatus::Ok)) break;
            continue;
        }
        if (pool_) {
            submit_chunk(job);
            break;
        }
        // Synchronous mode.
        block::IoStatus st;
        if (job->flushing) {
            st = job->medium ? job->medium->flush() : block::IoStatus::Ok;
        } else {
            size_t n = size_t(std::min(kDmaChunk, job->req.bytes - job->done));
            job->bounce.resize(n);
            if (job->req.kind == IdeDmaKind::DiskWrite) {
                if (!copy_from_guest(*job, job->done, job->bounce)) {
                    finish_dma(IdeDmaOutcome::MemoryFault, block::IoStatus::Ok);
                    break;
                }
                st = job->medium->write(job->req.offset + job->done, job->bounce);
            } else {
                st = job->medium->read(job->req.offset + job->done, job->bounce);
            }
        }
        if (!apply_chunk(*job, st)) break;
    }
    in_pump_ = false;
}

void IdeChannel::submit_chunk(const std::shared_ptr<Job>& job) {
    std::shared_ptr<Anchor> anchor = anchor_;
    auto done = [anchor, job](block::IoStatus st) {
        std::lock_guard device(*anchor->device_lock);
        std::lock_guard g(anchor->mutex);
        if (anchor->channel) anchor->channel->chunk_completed(job, st);
    };
    if (job->flushing) {
        pool_->submit_flush(*job->medium, done);
        return;
    }
    size_t n = size_t(std::min(kDmaChunk, job->req.bytes - job->done));
    job->bounce.resize(n);
    if (job->req.kind == IdeDmaKind::DiskWrite) {
        if (!copy_from_guest(*job, job->done, job->bounce)) {
            finish_dma(IdeDmaOutcome::MemoryFault, block::IoStatus::Ok);
            return;
        }
        pool_->submit_write(*job->medium, job->req.offset + job->done, job->bounce, done);
    } else {
        pool_->submit_read(*job->medium, job->req.offset + job->done, job->bounce, done);
    }
}

// On a worker thread, with the device-model lock and the anchor held.
void IdeChannel::chunk_completed(const std::shared_ptr<Job>& job, block::IoStatus status) {
    if (job != job_) return; // abandoned: reset, Start cleared, medium changed
    if (apply_chunk(*job, status)) pump();
}

// Accounts for one finished step; returns false when the job ended.
bool IdeChannel::apply_chunk(Job& job, block::IoStatus status) {
    if (status != block::IoStatus::Ok) {
        finish_dma(IdeDmaOutcome::IoError, status);
        return false;
    }
    if (job.flushing) {
        job.req.flush_after = false;
        job.flushing = false;
        job.done = job.req.bytes;
        if (job.req.kind == IdeDmaKind::Flush) {
            unsigned unit = job.unit;
            job_.reset();
            pending_.reset();
            drives_[unit]->flush_finished(block::IoStatus::Ok);
            return false;
        }
        return true;
    }
    if (job.req.kind == IdeDmaKind::DiskRead && !copy_to_guest(job, job.done, job.bounce)) {
        finish_dma(IdeDmaOutcome::MemoryFault, block::IoStatus::Ok);
        return false;
    }
    job.done += job.bounce.size();
    return true;
}

void IdeChannel::finish_dma(IdeDmaOutcome outcome, block::IoStatus status) {
    const bool stay_active = job_ && job_->stay_active;
    const bool flush = pending_ && pending_->kind == IdeDmaKind::Flush;
    unsigned unit = pending_unit_;
    job_.reset();
    pending_.reset();
    if (flush) {
        drives_[unit]->flush_finished(status == block::IoStatus::Ok ? block::IoStatus::IoError
                                                                    : status);
        return;
    }
    if (outcome == IdeDmaOutcome::MemoryFault) {
        bm_status_ |= kBmStatusError;
        host_.signal_master_abort();
    }
    if (!(outcome == IdeDmaOutcome::Ok && stay_active)) bm_status_ &= uint8_t(~kBmStatusActive);
    drives_[unit]->dma_finished(outcome, status);
}

// ---- reset and state ------------------------------------------------------------------------

void IdeChannel::reset() {
    job_.reset();
    pending_.reset();
    unit_ = 0;
    control_ = 0;
    drives_[0]->reset(true);
    drives_[1]->reset(true);
    bm_cmd_ = bm_status_ = 0;
    bm_prd_table_ = cur_table_ = 0;
    cur_prd_addr_ = cur_prd_len_ = 0;
    cur_prd_last_ = false;
    prd_entries_ = 0;
    irq_level_ = false;
    irq_.lower();
}

void IdeChannel::save(StateWriter& out) const {
    out.begin("ide-channel", kStateVersion);
    out.put<uint8_t>(uint8_t(unit_));
    out.put(control_);
    out.put<uint8_t>(irq_level_);
    out.put(bm_cmd_);
    out.put(bm_status_);
    out.put(bm_prd_table_);
    // A transfer in flight is saved as its request: load runs it again from the start of the
    // PRD table, as QEMU restarts DMA after migration. The drive registers still describe it.
    out.put<uint8_t>(pending_.has_value());
    IdeDmaRequest req = pending_.value_or(IdeDmaRequest{});
    out.put<uint8_t>(uint8_t(pending_unit_));
    out.put<uint8_t>(uint8_t(req.kind));
    out.put(req.offset);
    out.put(req.bytes);
    out.put<uint8_t>(req.ata);
    out.put<uint8_t>(req.flush_after);
    drives_[0]->save(out);
    drives_[1]->save(out);
}

void IdeChannel::load(StateReader& in) {
    in.begin("ide-channel", kStateVersion, kStateVersion);
    uint8_t unit = in.get<uint8_t>();
    uint8_t control = in.get<uint8_t>();
    uint8_t irq = in.get<uint8_t>();
    uint8_t cmd = in.get<uint8_t>(), status = in.get<uint8_t>();
    uint32_t prd = in.get<uint32_t>();
    uint8_t has_pending = in.get<uint8_t>();
    uint8_t pending_unit = in.get<uint8_t>();
    IdeDmaRequest req;
    uint8_t kind = in.get<uint8_t>();
    in.get(req.offset);
    in.get(req.bytes);
    uint8_t ata = in.get<uint8_t>(), flush_after = in.get<uint8_t>();
    if (unit > 1 || irq > 1 || has_pending > 1 || pending_unit > 1 || ata > 1 || flush_after > 1 ||
        kind < uint8_t(IdeDmaKind::DiskRead) || kind > uint8_t(IdeDmaKind::Flush))
        throw StateError("ide-channel: bad value");
    req.kind = IdeDmaKind(kind);
    req.ata = ata;
    req.flush_after = flush_after;
    // 65536 sectors of 512 bytes for ATA, a CD medium's worth for ATAPI: the bytes are checked
    // against the medium again by the block layer; here they only must not overflow.
    if (req.offset + req.bytes < req.offset) throw StateError("ide-channel: bad DMA request");
    if (req.kind == IdeDmaKind::BufferRead && req.bytes > IdeDrive::kBufferSize)
        throw StateError("ide-channel: bad DMA reply size");

    job_.reset();
    pending_.reset();
    drives_[0]->load(in);
    drives_[1]->load(in);
    unit_ = unit;
    control_ = control;
    bm_cmd_ = cmd & (kBmCmdStart | kBmCmdWrite);
    bm_status_ = status & ~kBmStatusSimplex;
    bm_prd_table_ = prd & ~3u;
    irq_level_ = irq;
    irq_.set(irq_level_);
    if (has_pending) {
        pending_ = req;
        pending_unit_ = pending_unit;
    }
    resume_after_load();
}

void IdeChannel::resume_after_load() {
    if (!pending_) return;
    if (pending_->kind == IdeDmaKind::Flush) {
        unsigned unit = pending_unit_;
        pending_.reset();
        request_flush(unit);
        return;
    }
    cur_table_ = bm_prd_table_;
    cur_prd_addr_ = cur_prd_len_ = 0;
    cur_prd_last_ = false;
    prd_entries_ = 0;
    run_dma();
}

} // namespace hvm
