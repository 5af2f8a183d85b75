#include "vcpu/kvm/kvm_engine.hpp"

#include <algorithm>
#include <cerrno>
#include <cpuid.h>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/error.hpp"
#include "base/log.hpp"
#include "vcpu/guest_memory.hpp"
#include "vcpu/kvm/kvm_abi.hpp"
#include "vcpu/kvm/kvm_irq_routing.hpp"
#include "vcpu/kvm/kvm_vcpu.hpp"
#include "vcpu/kvm/kvm_vm.hpp"

namespace hvm {

namespace {

// QEMU target/i386/kvm/kvm.c kvm_arch_init: the EPT identity map page and the three pages of the
// real-mode TSS that VMX without unrestricted guest needs, just below the BIOS. The e820 map
// reserves 0xFEFFC000-0xFF000000 for them (pc-platform.md §1).
constexpr uint64_t kIdentityMapAddr = 0xfeffc000;
constexpr unsigned long kTssAddr = 0xfeffd000;
constexpr int kKvmApiVersion = 12;
constexpr uint32_t kMsrApicBase = 0x1b;
constexpr uint32_t kMsrX2apicFirst = 0x800;
constexpr uint32_t kX2apicMsrCount = 0x100;

int check_extension(int fd, long cap) {
    return ::ioctl(fd, KVM_CHECK_EXTENSION, cap);
}

// KVM passes the host's processor name through in 0x80000002-4 (QEMU's -cpu host shows it too);
// a KVM that reports them empty (KVM-PVM does) gets them from the CPUID instruction.
void fill_host_brand(std::vector<CpuidEntry>& supported) {
    for (auto& e : supported) {
        if (e.function < 0x80000002 || e.function > 0x80000004 || (e.eax | e.ebx | e.ecx | e.edx))
            continue;
        unsigned a, b, c, d;
        if (__get_cpuid(e.function, &a, &b, &c, &d))
            e = CpuidEntry{e.function, 0, e.flags, a, b, c, d};
    }
}

} // namespace

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

int kvm_ioctl(int fd, unsigned long request, unsigned long arg) {
    int r;
    do {
        r = ::ioctl(fd, request, arg);
    } while (r < 0 && errno == EINTR);
    return r;
}

KvmVm::~KvmVm() {
    if (vm_fd >= 0) ::close(vm_fd);
    if (kvm_fd >= 0) ::close(kvm_fd);
}

// ---- engine ----------------------------------------------------------------------------------

KvmEngine::KvmEngine(const EngineConfig& config, const char* device)
    : vm_(std::make_shared<KvmVm>()) {
    std::optional<CpuModel> model = parse_cpu_model(config.cpu_model);
    if (!model)
        fail("-cpu " + config.cpu_model + ": unknown CPU model (with KVM: host, max or qemu64)");
    if (config.vcpus == 0 || config.vcpus > 255)
        fail("-smp " + std::to_string(config.vcpus) + ": hvm's pc machine supports 1 to 255 CPUs");
    vm_->config = config;
    vm_->model = *model;
    open_device(device);
    create_vm();
    setup_msr_handling();
    if (config.kernel_irqchip) create_irqchip();
}

KvmEngine::~KvmEngine() = default;

void KvmEngine::open_device(const char* device) {
    int fd = ::open(device, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        std::string what = std::string(device) + ": " + std::strerror(e);
        if (e == EACCES || e == EPERM)
            fail(
                what +
                " (give your user read/write access to it, e.g. the kvm group, or use -accel emu)");
        fail(what + " (KVM is not available; use -accel emu)");
    }
    vm_->kvm_fd = fd;
    const int api = ::ioctl(fd, KVM_GET_API_VERSION, 0);
    if (api != kKvmApiVersion)
        fail(std::string(device) + ": KVM API version " + std::to_string(api) + ", hvm needs " +
             std::to_string(kKvmApiVersion) + " (use -accel emu)");

    struct Need {
        long cap;
        const char* name;
        bool irqchip_only;
    };
    static constexpr Need needs[] = {
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", false},
        {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", false},
        {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", false},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", false},
        {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", false},
        {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", false},
        {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", true},
        {KVM_CAP_PIT2, "KVM_CAP_PIT2", true},
        {KVM_CAP_PIT_STATE2, "KVM_CAP_PIT_STATE2", true},
        {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", true},
    };
    for (const Need& n : needs) {
        if (n.irqchip_only && !vm_->config.kernel_irqchip) continue;
        if (check_extension(fd, n.cap) <= 0)
            fail(std::string(device) + ": KVM lacks " + n.name +
                 (n.irqchip_only ? " (try -machine kernel-irqchip=off, or -accel emu)"
                                 : " (use -accel emu)"));
    }
    int max_vcpus = check_extension(fd, KVM_CAP_MAX_VCPUS);
    if (max_vcpus <= 0) max_vcpus = check_extension(fd, KVM_CAP_NR_VCPUS);
    if (max_vcpus <= 0) max_vcpus = 4; // the documented default when neither capability exists
    if (vm_->config.vcpus > unsigned(max_vcpus))
        fail("-smp " + std::to_string(vm_->config.vcpus) + ": this KVM supports at most " +
             std::to_string(max_vcpus) + " vCPUs");

    vm_->has_readonly_mem = check_extension(fd, KVM_CAP_READONLY_MEM) > 0;
    vm_->has_xcrs = check_extension(fd, KVM_CAP_XCRS) > 0;
    vm_->has_debugregs = check_extension(fd, KVM_CAP_DEBUGREGS) > 0;
    vm_->has_irq_status = check_extension(fd, KVM_CAP_IRQ_INJECT_STATUS) > 0;
    vm_->has_user_msr = check_extension(fd, KVM_CAP_X86_USER_SPACE_MSR) > 0;

    const int run_size = ::ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < int(sizeof(kvm_run)))
        throw std::runtime_error("kvm: " + errno_text("KVM_GET_VCPU_MMAP_SIZE"));
    vm_->run_mmap_size = size_t(run_size);

    // What KVM can offer a guest; grown until KVM stops answering E2BIG.
    for (uint32_t n = 128;; n *= 2) {
        kvm::FlexBuffer<kvm_cpuid2, kvm_cpuid_entry2> buf(n);
        buf->nent = n;
        if (kvm_ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf.get()) == 0) {
            for (uint32_t i = 0; i < buf->nent && i < n; i++) {
                const kvm_cpuid_entry2& e = buf.elems()[i];
                vm_->supported_cpuid.push_back(
                    CpuidEntry{e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
            }
            break;
        }
        if (errno != E2BIG || n >= 4096)
            throw std::runtime_error("kvm: " + errno_text("KVM_GET_SUPPORTED_CPUID"));
    }
    fill_host_brand(vm_->supported_cpuid);
    for (uint32_t n = 64;; n *= 2) {
        kvm::FlexBuffer<kvm_msr_list, uint32_t> buf(n);
        buf->nmsrs = n;
        if (kvm_ioctl(fd, KVM_GET_MSR_INDEX_LIST, buf.get()) == 0) {
            vm_->msr_index_list.assign(buf.elems(), buf.elems() + std::min(buf->nmsrs, n));
            break;
        }
        if (errno != E2BIG || n >= 65536)
            throw std::runtime_error("kvm: " + errno_text("KVM_GET_MSR_INDEX_LIST"));
    }
}

void KvmEngine::create_vm() {
    int vm_fd;
    do {
        vm_fd = ::ioctl(vm_->kvm_fd, KVM_CREATE_VM, 0);
    } while (vm_fd < 0 && errno == EINTR);
    if (vm_fd < 0)
        fail("KVM_CREATE_VM: " + std::string(std::strerror(errno)) + " (use -accel emu)");
    vm_->vm_fd = vm_fd;
    uint64_t idmap = kIdentityMapAddr;
    if (kvm_ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        throw std::runtime_error("kvm: " + errno_text("KVM_SET_IDENTITY_MAP_ADDR"));
    if (kvm_ioctl(vm_fd, KVM_SET_TSS_ADDR, kTssAddr) < 0)
        throw std::runtime_error("kvm: " + errno_text("KVM_SET_TSS_ADDR"));
}

// Unknown MSRs exit to user space (answered there, see KvmVcpu::handle_msr). Without the in-kernel
// irqchip the LAPIC's MSRs are filtered out of KVM so that the device model sees them: KVM would
// otherwise keep IA32_APIC_BASE to itself and #GP the x2APIC range.
void KvmEngine::setup_msr_handling() {
    if (!vm_->has_user_msr) {
        LOG_WARN("kvm: no KVM_CAP_X86_USER_SPACE_MSR: unknown MSRs raise #GP in the guest");
        return;
    }
    bool filter =
        !vm_->config.kernel_irqchip && check_extension(vm_->kvm_fd, KVM_CAP_X86_MSR_FILTER) > 0;
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
    cap.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN | (filter ? KVM_MSR_EXIT_REASON_FILTER : 0);
    if (kvm_ioctl(vm_->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
        LOG_WARN("kvm: KVM_ENABLE_CAP(X86_USER_SPACE_MSR): %s; unknown MSRs raise #GP",
                 std::strerror(errno));
        vm_->has_user_msr = false;
        return;
    }
    if (vm_->config.kernel_irqchip) return;
    if (!filter) {
        LOG_WARN("kvm: no KVM_CAP_X86_MSR_FILTER: IA32_APIC_BASE writes stay inside KVM");
        return;
    }
    // A clear bit in a range's bitmap denies the access, which then exits with REASON_FILTER.
    static const uint8_t deny_all[kX2apicMsrCount / 8] = {};
    kvm_msr_filter f{};
    f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
    f.ranges[0] = {KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, 1, kMsrApicBase,
                   const_cast<uint8_t*>(deny_all)};
    f.ranges[1] = {KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, kX2apicMsrCount, kMsrX2apicFirst,
                   const_cast<uint8_t*>(deny_all)};
    if (kvm_ioctl(vm_->vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
        throw std::runtime_error("kvm: " + errno_text("KVM_X86_SET_MSR_FILTER"));
}

void KvmEngine::create_irqchip() {
    const int fd = vm_->vm_fd;
    if (kvm_ioctl(fd, KVM_CREATE_IRQCHIP) < 0)
        throw std::runtime_error("kvm: " + errno_text("KVM_CREATE_IRQCHIP"));
    // Ports 0x40-0x43 in the kernel; port 0x61 stays in user space (flags 0, as QEMU's kvm-pit),
    // reading channel 2 through KvmPitChannel2.
    kvm_pit_config pit{};
    pit.flags = 0;
    if (kvm_ioctl(fd, KVM_CREATE_PIT2, &pit) < 0)
        throw std::runtime_error("kvm: " + errno_text("KVM_CREATE_PIT2"));
    // Lost ticks are reinjected (QEMU's kvm-pit lost_tick_policy=delay, KVM's default); said
    // explicitly since Windows' timekeeping depends on it.
    if (check_extension(vm_->kvm_fd, KVM_CAP_REINJECT_CONTROL) > 0) {
        kvm_reinject_control rc{};
        rc.pit_reinject = 1;
        if (kvm_ioctl(fd, KVM_REINJECT_CONTROL, &rc) < 0)
            LOG_WARN("kvm: KVM_REINJECT_CONTROL: %s", std::strerror(errno));
    }
    const std::vector<GsiRoute> routes = pc_gsi_routes();
    kvm::FlexBuffer<kvm_irq_routing, kvm_irq_routing_entry> table(routes.size());
    table->nr = static_cast<uint32_t>(routes.size());
    for (size_t i = 0; i < routes.size(); i++) {
        kvm_irq_routing_entry& e = table.elems()[i];
        e.gsi = routes[i].gsi;
        e.type = KVM_IRQ_ROUTING_IRQCHIP;
        e.u.irqchip.irqchip = routes[i].chip == GsiRoute::Chip::PicMaster  ? KVM_IRQCHIP_PIC_MASTER
                              : routes[i].chip == GsiRoute::Chip::PicSlave ? KVM_IRQCHIP_PIC_SLAVE
                                                                           : KVM_IRQCHIP_IOAPIC;
        e.u.irqchip.pin = routes[i].pin;
    }
    if (kvm_ioctl(fd, KVM_SET_GSI_ROUTING, table.get()) < 0)
        throw std::runtime_error("kvm: " + errno_text("KVM_SET_GSI_ROUTING"));
    irq_sink_ = std::make_unique<KvmIrqSink>(vm_);
    pit2_ = std::make_unique<KvmPitChannel2>(vm_);
}

bool KvmEngine::in_kernel_irqchip() const {
    return vm_->config.kernel_irqchip;
}

IrqSink* KvmEngine::irq_sink() {
    return irq_sink_.get();
}

void KvmEngine::set_device_lock(std::mutex& lock) {
    vm_->device_lock = &lock;
}

void KvmEngine::set_emulation_assist(std::function<bool(Vcpu&)> assist) {
    vm_->emulation_assist = std::move(assist);
}

void KvmEngine::map_memory(GuestMemory& mem) {
    // The layout wanted now.
    std::vector<Slot> want;
    for (const MemRegion& r : mem.regions()) {
        const uint64_t host = reinterpret_cast<uint64_t>(r.host);
        if ((r.gpa | r.size | host) & 0xfff)
            throw std::invalid_argument("kvm: memory region '" + r.name + "' is not page aligned");
        uint32_t flags = 0;
        if (r.readonly) {
            if (vm_->has_readonly_mem) {
                flags = KVM_MEM_READONLY;
            } else if (!vm_->warned_readonly) {
                vm_->warned_readonly = true;
                LOG_WARN("kvm: no KVM_CAP_READONLY_MEM: ROM region '%s' is writable by the guest",
                         r.name.c_str());
            }
        }
        want.push_back({r.gpa, r.size, host, flags});
    }
    auto set_slot = [&](unsigned n, const Slot& s) {
        kvm_userspace_memory_region m{};
        m.slot = n;
        m.flags = s.flags;
        m.guest_phys_addr = s.gpa;
        m.memory_size = s.size;
        m.userspace_addr = s.host;
        if (kvm_ioctl(vm_->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0)
            throw std::runtime_error("kvm: KVM_SET_USER_MEMORY_REGION: " +
                                     std::string(std::strerror(errno)));
    };
    // Delete what is no longer wanted, then add what is new; unchanged slots stay untouched so
    // running vCPUs never see a hole where nothing changed.
    for (unsigned n = 0; n < slots_.size(); n++) {
        if (slots_[n].size == 0) continue;
        if (std::find(want.begin(), want.end(), slots_[n]) != want.end()) continue;
        set_slot(n, Slot{slots_[n].gpa, 0, slots_[n].host, 0});
        slots_[n] = Slot{};
    }
    for (const Slot& w : want) {
        if (std::find(slots_.begin(), slots_.end(), w) != slots_.end()) continue;
        unsigned n = 0;
        while (n < slots_.size() && slots_[n].size != 0) n++;
        if (n == slots_.size()) slots_.push_back(Slot{});
        set_slot(n, w);
        slots_[n] = w;
    }
    vm_->memory.store(&mem);
}

std::unique_ptr<Vcpu> KvmEngine::create_vcpu(unsigned index, IoSink& io,
                                             CpuInterrupts* interrupts) {
    if (index >= vm_->config.vcpus)
        throw std::invalid_argument("kvm: vCPU index beyond EngineConfig::vcpus");
    if (vm_->config.kernel_irqchip && interrupts)
        throw std::invalid_argument("kvm: CpuInterrupts given with the in-kernel irqchip");
    if (!vm_->config.kernel_irqchip && (!interrupts || !vm_->device_lock))
        throw std::invalid_argument(
            "kvm: userspace irqchip needs CpuInterrupts and set_device_lock()");
    return std::make_unique<KvmVcpu>(vm_, index, io, interrupts);
}

bool KvmEngine::cpuinfo_has_hardware_virt(std::string_view cpuinfo) {
    size_t pos = 0;
    while (pos < cpuinfo.size()) {
        size_t eol = cpuinfo.find('\n', pos);
        if (eol == std::string_view::npos) eol = cpuinfo.size();
        std::string_view line = cpuinfo.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.substr(0, 5) != "flags") continue;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view flags = line.substr(colon + 1);
        size_t i = 0;
        while (i < flags.size()) {
            while (i < flags.size() && (flags[i] == ' ' || flags[i] == '\t')) i++;
            size_t j = i;
            while (j < flags.size() && flags[j] != ' ' && flags[j] != '\t') j++;
            std::string_view word = flags.substr(i, j - i);
            if (word == "vmx" || word == "svm") return true;
            i = j;
        }
    }
    return false;
}

bool KvmEngine::is_hardware_backed() {
    std::ifstream f("/proc/cpuinfo");
    if (!f) return false;
    std::stringstream ss;
    ss << f.rdbuf();
    return cpuinfo_has_hardware_virt(ss.str());
}

// ---- interrupt lines -------------------------------------------------------------------------

KvmIrqSink::KvmIrqSink(std::shared_ptr<KvmVm> vm) : vm_(std::move(vm)) {}

void KvmIrqSink::set_irq(unsigned gsi, bool level) {
    set_irq_status(gsi, level);
}

int KvmIrqSink::set_irq_status(unsigned gsi, bool level) {
    if (gsi >= kGsiCount) {
        if (vm_->bad_irq_log.allow())
            LOG_WARN("kvm: interrupt line %u is beyond GSI %u", gsi, kGsiCount - 1);
        return -1;
    }
    kvm_irq_level l{};
    l.irq = gsi;
    l.level = level ? 1 : 0;
    if (vm_->has_irq_status) {
        if (kvm_ioctl(vm_->vm_fd, KVM_IRQ_LINE_STATUS, &l) < 0) {
            LOG_ERROR("kvm: KVM_IRQ_LINE_STATUS(%u, %d): %s", gsi, level, std::strerror(errno));
            return -1;
        }
        return l.status;
    }
    if (kvm_ioctl(vm_->vm_fd, KVM_IRQ_LINE, &l) < 0) {
        LOG_ERROR("kvm: KVM_IRQ_LINE(%u, %d): %s", gsi, level, std::strerror(errno));
        return -1;
    }
    return 1;
}

KvmIrqSink::ChipState KvmIrqSink::irqchip_state() {
    ChipState st;
    for (uint32_t chip : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
        kvm_irqchip c{};
        c.chip_id = chip;
        if (kvm_ioctl(vm_->vm_fd, KVM_GET_IRQCHIP, &c) < 0) {
            LOG_ERROR("kvm: KVM_GET_IRQCHIP(%u): %s", chip, std::strerror(errno));
            continue;
        }
        if (chip == KVM_IRQCHIP_IOAPIC) {
            st.ioapic_irr = c.chip.ioapic.irr;
        } else {
            st.pic_irr[chip] = c.chip.pic.irr;
            st.pic_imr[chip] = c.chip.pic.imr;
        }
    }
    return st;
}

} // namespace hvm
