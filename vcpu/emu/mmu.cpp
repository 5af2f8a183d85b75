// Segmentation limit/type checks, page walks (32-bit, PAE, 4-level; SDM Vol. 3 ch. 4), the software
// TLB and the slow memory paths (page-crossing accesses, MMIO, ROM).
#include "vcpu/emu/x86_cpu.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm::emu {

namespace {
constexpr uint64_t kCr0Wp = 1u << 16;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pse = 1u << 4;
constexpr uint64_t kCr4Pae = 1u << 5;
constexpr uint64_t kEferNxe = 1u << 11;

constexpr uint64_t kPteP = 1u << 0, kPteW = 1u << 1, kPteU = 1u << 2, kPteA = 1u << 5,
                   kPteD = 1u << 6, kPtePs = 1u << 7, kPteG = 1u << 8;
constexpr uint64_t kPteNx = 1ull << 63;
constexpr unsigned kPhysBits = 40; // CPUID 0x80000008 reports 40 physical address bits
constexpr uint64_t kPhysMask = ((1ull << kPhysBits) - 1) & ~0xfffull;
constexpr uint64_t kHighRsvd =
    ~((1ull << kPhysBits) - 1) & ~kPteNx & ((1ull << 52) - 1) & ~0ull; // bits 51:MAXPHYADDR

// #PF error code bits (SDM Vol. 3 §4.7)
constexpr uint32_t kPfP = 1, kPfW = 2, kPfU = 4, kPfRsvd = 8, kPfI = 16;
} // namespace

void X86Cpu::tlb_flush_all() {
    for (auto& e : tlb_) e.tag = ~0ull;
    large_pages_in_tlb_ = false;
}

void X86Cpu::tlb_flush_nonglobal() {
    for (auto& e : tlb_)
        if (!(e.perm & kPermGlobal)) e.tag = ~0ull;
}

void X86Cpu::tlb_flush_page(uint64_t lin) {
    // A large page is cached as 4 KiB pieces; INVLPG of any address in it must drop them all.
    if (large_pages_in_tlb_) {
        tlb_flush_all();
        return;
    }
    TlbEntry& e = tlb_[(lin >> 12) & (kTlbSize - 1)];
    if (e.tag == (lin >> 12)) e.tag = ~0ull;
}

void X86Cpu::memory_written(uint64_t, uint64_t) {
    // The decode cache validates the instruction bytes on every hit (see DecodedInsn), so DMA
    // writes need no invalidation here. The hook stays for caches that will need it (a
    // translated-block cache keyed by page).
}

[[noreturn]] void X86Cpu::page_fault(uint64_t lin, uint32_t err) {
    s.cr2 = lin;
    throw GuestFault{kPFv, true, err};
}

TlbEntry& X86Cpu::translate(uint64_t lin, Access acc, bool user) {
    TlbEntry& e = tlb_[(lin >> 12) & (kTlbSize - 1)];
    uint64_t gpa_page;
    uint32_t perm;
    bool large = false;
    if (!(s.cr0 & kCr0Pg)) {
        gpa_page = lin & ~0xfffull & 0xffffffffull;
        perm = kPermUser | kPermWrite | kPermExec | kPermDirty;
    } else {
        const bool nxe = s.efer & kEferNxe;
        const bool is_write = acc == Access::Write;
        uint32_t err =
            (is_write ? kPfW : 0) | (user ? kPfU : 0) | (acc == Access::Fetch && nxe ? kPfI : 0);
        // Entries walked, so that A (and D on the leaf) can be set once the access is allowed.
        uint64_t entry_gpa[5];
        unsigned entry_size = 8;
        unsigned nwalk = 0;
        bool u = true, w = true, nx = false, global = false;
        uint64_t leaf = 0, page_size = 0x1000, leaf_base = 0;
        const uint64_t rsvd_nx = nxe ? 0 : kPteNx;
        auto read_entry = [&](uint64_t& gpa) {
            gpa &= a20_mask_;
            uint64_t v = 0;
            phys_read(gpa, &v, entry_size);
            return v;
        };
        if (lma() || (s.cr4 & kCr4Pae)) {
            uint64_t table;
            int level;
            if (lma()) {
                table = s.cr3 & kPhysMask;
                level = 4;
            } else {
                // PAE: the PDPTE (no U/S, R/W, NX bits; SDM §4.4.1).
                uint64_t g = (s.cr3 & 0xffffffe0u) + ((lin >> 30) & 3) * 8;
                uint64_t pdpte = read_entry(g);
                if (!(pdpte & kPteP)) page_fault(lin, err);
                if (pdpte & (kHighRsvd | 0x1e6 | kPteNx)) page_fault(lin, err | kPfP | kPfRsvd);
                table = pdpte & kPhysMask;
                level = 2;
            }
            for (;; level--) {
                unsigned shift = 12 + 9 * (level - 1);
                uint64_t g = table + ((lin >> shift) & 511) * 8;
                uint64_t pte = read_entry(g);
                entry_gpa[nwalk++] = g;
                if (!(pte & kPteP)) page_fault(lin, err);
                uint64_t rsvd = kHighRsvd | rsvd_nx;
                bool ps = level > 1 && (pte & kPtePs);
                if (level == 4) rsvd |= kPtePs | kPteG;      // PML4E: PS and bit 8 reserved
                if (level == 3 && ps) rsvd |= 0x3fffe000ull; // 1G page: bits 29:13
                if (level == 2 && ps) rsvd |= 0x1fe000ull;   // 2M page: bits 20:13
                if (pte & rsvd) page_fault(lin, err | kPfP | kPfRsvd);
                u = u && (pte & kPteU);
                w = w && (pte & kPteW);
                nx = nx || (nxe && (pte & kPteNx));
                if (level == 1 || ps) {
                    leaf = pte;
                    page_size = 1ull << shift;
                    leaf_base = pte & kPhysMask & ~(page_size - 1);
                    large = ps;
                    break;
                }
                table = pte & kPhysMask;
            }
        } else {
            // 32-bit paging: 4-byte entries; 4 MiB pages with CR4.PSE (PSE-36 address bits 39:32
            // from PDE bits 20:13).
            entry_size = 4;
            uint64_t g = (s.cr3 & 0xfffff000u) + ((lin >> 22) & 1023) * 4;
            uint64_t pde = read_entry(g);
            entry_gpa[nwalk++] = g;
            if (!(pde & kPteP)) page_fault(lin, err);
            u = pde & kPteU;
            w = pde & kPteW;
            if ((pde & kPtePs) && (s.cr4 & kCr4Pse)) {
                if (pde & (1u << 21)) page_fault(lin, err | kPfP | kPfRsvd);
                leaf = pde;
                page_size = 0x400000;
                leaf_base = (pde & 0xffc00000u) | ((pde >> 13) & 0xff) << 32;
                large = true;
            } else {
                g = (pde & 0xfffff000u) + ((lin >> 12) & 1023) * 4;
                uint64_t pte = read_entry(g);
                entry_gpa[nwalk++] = g;
                if (!(pte & kPteP)) page_fault(lin, err);
                u = u && (pte & kPteU);
                w = w && (pte & kPteW);
                leaf = pte;
                leaf_base = pte & 0xfffff000u;
            }
        }
        // Access rights (SDM §4.6): user needs U/S everywhere; writes need R/W everywhere for
        // user mode, and for supervisor mode when CR0.WP = 1.
        if (user && !u) page_fault(lin, err | kPfP);
        if (is_write && !w && (user || (s.cr0 & kCr0Wp))) page_fault(lin, err | kPfP);
        if (acc == Access::Fetch && nx) page_fault(lin, err | kPfP);
        // Set accessed bits on the walk, dirty on the leaf for writes; atomically, since another
        // vCPU may be walking or the guest updating the same tables.
        for (unsigned i = 0; i < nwalk; i++) {
            uint64_t bits = kPteA | ((is_write && i == nwalk - 1) ? kPteD : 0);
            if (auto sl = mem_.slice(entry_gpa[i], entry_size)) {
                if (entry_size == 8)
                    __atomic_fetch_or(reinterpret_cast<uint64_t*>(sl->data()), bits,
                                      __ATOMIC_SEQ_CST);
                else
                    __atomic_fetch_or(reinterpret_cast<uint32_t*>(sl->data()), uint32_t(bits),
                                      __ATOMIC_SEQ_CST);
            }
        }
        global = (leaf & kPteG) && (s.cr4 & (1u << 7));
        perm = (u ? kPermUser : 0) | (w ? kPermWrite : 0) | (nx ? 0 : kPermExec) |
               ((is_write || (leaf & kPteD)) ? kPermDirty : 0) | (global ? kPermGlobal : 0) |
               (large ? kPermLarge : 0);
        gpa_page = leaf_base + (lin & (page_size - 1) & ~0xfffull);
    }
    gpa_page &= a20_mask_; // A20 gate closed: physical address bit 20 forced to 0
    e.tag = ~0ull;
    e.gpa = gpa_page;
    e.host = nullptr;
    if (const MemRegion* r = mem_.find(gpa_page, 0x1000)) {
        e.host = r->host + (gpa_page - r->gpa);
        perm |= kPermHostR | (r->readonly ? 0 : kPermHostW);
    }
    if (large) large_pages_in_tlb_ = true;
    e.perm = perm;
    e.tag = lin >> 12;
    return e;
}

uint64_t X86Cpu::canonical_or_fault(uint64_t lin, unsigned seg) {
    if (uint64_t(int64_t(lin << 16) >> 16) != lin)
        throw GuestFault{seg == SS ? kSSv : kGP, true, 0};
    return lin;
}

uint64_t X86Cpu::seg_linear_slow(unsigned seg, uint64_t off, unsigned size, Access acc) {
    const Segment& sg = s.seg[seg];
    if (mode64_) {
        uint64_t lin = off + (seg >= FS ? sg.base : 0);
        canonical_or_fault(lin, seg);
        if (size > 1) canonical_or_fault(lin + size - 1, seg);
        return lin;
    }
    const uint8_t vec = seg == SS ? kSSv : kGP;
    if (pe() && !v86()) {
        if (sg.unusable) throw GuestFault{vec, true, 0};
        if (acc == Access::Write) {
            if ((sg.type & 0xa) != 0x2) throw GuestFault{vec, true, 0}; // code or read-only
        } else if (acc == Access::Read) {
            if ((sg.type & 0xa) == 0x8) throw GuestFault{vec, true, 0}; // execute-only code
        }
    }
    uint64_t last = off + size - 1;
    if ((sg.type & 0xc) == 0x4 && (sg.s || !pe())) {
        // Expand-down data segment: valid offsets are (limit, 0xffff or 0xffffffff].
        uint64_t upper = sg.db ? 0xffffffffull : 0xffffull;
        if (off <= sg.limit || last > upper) throw GuestFault{vec, true, 0};
    } else if (last > sg.limit) {
        throw GuestFault{vec, true, 0};
    }
    return (sg.base + off) & 0xffffffffull;
}

void X86Cpu::phys_read(uint64_t gpa, void* out, unsigned size) {
    if (const MemRegion* r = mem_.find(gpa, size)) {
        memcpy(out, r->host + (gpa - r->gpa), size);
        return;
    }
    auto* p = static_cast<uint8_t*>(out);
    if (size == 1 || size == 2 || size == 4 || size == 8) {
        IoRequest req;
        req.kind = IoRequest::Kind::Mmio;
        req.is_write = false;
        req.size = uint8_t(size);
        req.addr = gpa;
        req.data = p;
        req.vcpu = index_;
        memset(p, 0xff, size);
        io_.handle_io(req);
        return;
    }
    for (unsigned i = 0; i < size; i++) phys_read(gpa + i, p + i, 1);
}

void X86Cpu::phys_write(uint64_t gpa, const void* in, unsigned size) {
    if (const MemRegion* r = mem_.find(gpa, size)) {
        if (!r->readonly) memcpy(r->host + (gpa - r->gpa), in, size); // ROM: writes dropped
        return;
    }
    auto* p = static_cast<const uint8_t*>(in);
    if (size == 1 || size == 2 || size == 4 || size == 8) {
        uint8_t buf[8];
        memcpy(buf, p, size);
        IoRequest req;
        req.kind = IoRequest::Kind::Mmio;
        req.is_write = true;
        req.size = uint8_t(size);
        req.addr = gpa;
        req.data = buf;
        req.vcpu = index_;
        io_.handle_io(req);
        return;
    }
    for (unsigned i = 0; i < size; i++) phys_write(gpa + i, p + i, 1);
}

void X86Cpu::read_lin_slow(uint64_t lin, void* out, unsigned size, bool sys) {
    const bool user = user_access(sys);
    unsigned off = lin & 0xfff;
    if (off + size > 0x1000) {
        unsigned n1 = 0x1000 - off;
        uint64_t lin2 = lin + n1;
        if (!lma()) lin2 &= 0xffffffffull;
        uint64_t g1 = translate(lin, Access::Read, user).gpa + off;
        uint64_t g2 = translate(lin2, Access::Read, user).gpa;
        phys_read(g1, out, n1);
        phys_read(g2, static_cast<uint8_t*>(out) + n1, size - n1);
        return;
    }
    TlbEntry& e = translate(lin, Access::Read, user);
    if (e.perm & kPermHostR)
        memcpy(out, e.host + off, size);
    else
        phys_read(e.gpa + off, out, size);
}

void X86Cpu::write_lin_slow(uint64_t lin, const void* in, unsigned size, bool sys) {
    const bool user = user_access(sys);
    unsigned off = lin & 0xfff;
    if (off + size > 0x1000) {
        unsigned n1 = 0x1000 - off;
        uint64_t lin2 = lin + n1;
        if (!lma()) lin2 &= 0xffffffffull;
        // Both pages are checked before any byte is written (the store is all or nothing).
        uint64_t g1 = translate(lin, Access::Write, user).gpa + off;
        uint64_t g2 = translate(lin2, Access::Write, user).gpa;
        phys_write(g1, in, n1);
        phys_write(g2, static_cast<const uint8_t*>(in) + n1, size - n1);
        return;
    }
    TlbEntry& e = translate(lin, Access::Write, user);
    if (e.perm & kPermHostW)
        memcpy(e.host + off, in, size);
    else
        phys_write(e.gpa + off, in, size);
}

uint8_t* X86Cpu::lin_rmw_ptr(uint64_t lin, unsigned size) {
    if ((lin & 0xfff) + size > 0x1000) return nullptr;
    TlbEntry& f = tlb_[(lin >> 12) & (kTlbSize - 1)];
    uint32_t need = write_need_ | (user_access(false) ? kPermUser | kPermWrite : 0);
    if (f.tag == (lin >> 12) && (f.perm & need) == need) return f.host + (lin & 0xfff);
    TlbEntry& e = translate(lin, Access::Write, user_access(false));
    if (!(e.perm & kPermHostW)) return nullptr;
    return e.host + (lin & 0xfff);
}

} // namespace hvm::emu
