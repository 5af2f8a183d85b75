// The floor of the exit path: a bare KVM loop with no device model. A 32-bit protected-mode guest
// runs the same loop as tests/guests/pio_loop.s (`out 0x80, al; inc al; dec ecx; jnz`) N times;
// this program only re-enters KVM_RUN after each KVM_EXIT_IO. hvm's exit path is compared against
// this (bench/exit_path.sh).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static double now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
    uint32_t n = argc > 1 ? uint32_t(strtoul(argv[1], nullptr, 0)) : 1000000;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        perror("/dev/kvm");
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0 || ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
        perror("KVM_CREATE_VM");
        return 1;
    }
    const size_t mem_size = 0x10000;
    auto* mem = static_cast<uint8_t*>(
        mmap(nullptr, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    kvm_userspace_memory_region region{0, 0, 0, mem_size, reinterpret_cast<uint64_t>(mem)};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        perror("KVM_SET_USER_MEMORY_REGION");
        return 1;
    }
    // 0x1000: mov ecx, n; xor al, al; 1: out 0x80, al; inc al; dec ecx; jnz 1b; hlt
    uint8_t code[] = {0xb9, 0, 0, 0, 0, 0x30, 0xc0, 0xe6, 0x80, 0xfe, 0xc0, 0x49, 0x75, 0xf9, 0xf4};
    memcpy(code + 1, &n, 4);
    memcpy(mem + 0x1000, code, sizeof code);

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    auto* run =
        static_cast<kvm_run*>(mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
    kvm_sregs sregs;
    ioctl(vcpu, KVM_GET_SREGS, &sregs);
    // Flat 32-bit protected mode, paging off (the multiboot entry state).
    kvm_segment flat{};
    flat.base = 0;
    flat.limit = 0xffffffff;
    flat.present = 1;
    flat.s = 1;
    flat.db = 1;
    flat.g = 1;
    flat.selector = 0x10;
    flat.type = 3;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat;
    flat.selector = 0x08;
    flat.type = 11;
    sregs.cs = flat;
    sregs.cr0 |= 1;
    ioctl(vcpu, KVM_SET_SREGS, &sregs);
    kvm_regs regs{};
    regs.rip = 0x1000;
    regs.rflags = 2;
    ioctl(vcpu, KVM_SET_REGS, &regs);

    uint64_t exits = 0;
    double t0 = now();
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            perror("KVM_RUN");
            return 1;
        }
        if (run->exit_reason == KVM_EXIT_IO) {
            exits++;
            continue;
        }
        if (run->exit_reason == KVM_EXIT_HLT) break;
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    double t = now() - t0;
    printf("kvm-floor: %llu exits in %.3f s: %.0f ns/exit\n", (unsigned long long)exits, t,
           t * 1e9 / double(exits ? exits : 1));
    return exits == n ? 0 : 1;
}
