// The KVM ABI, for vcpu/kvm/*.cpp only: nothing outside vcpu/kvm includes this header (the rest of
// hvm never sees a KVM type).
//
// Why this header exists: the uapi headers of Linux up to 6.4 (Debian 12 ships them) declare the
// variable-length tails of kvm_cpuid2, kvm_msrs, kvm_msr_list, kvm_irq_routing, kvm_signal_mask and
// kvm_xsave with __DECLARE_FLEX_ARRAY, which wraps the array in a struct holding an empty struct.
// An empty struct is 1 byte in C++ (0 in C), so in C++ these structs grow, their array moves, and
// the ioctl numbers computed from their sizes change: KVM then answers EINVAL. Linux 6.5 fixed the
// macro for C++ ("T member[0]"); we apply the same definition before including <linux/kvm.h>, and
// the static_asserts below prove the C layout.
#pragma once
#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8);
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8);
static_assert(sizeof(kvm_msr_list) == 4 && offsetof(kvm_msr_list, indices) == 4);
static_assert(sizeof(kvm_irq_routing) == 8 && offsetof(kvm_irq_routing, entries) == 8);
static_assert(sizeof(kvm_signal_mask) == 4 && offsetof(kvm_signal_mask, sigset) == 4);
static_assert(sizeof(kvm_xsave) == 4096);
static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05u, "ioctl number must match the C ABI");
static_assert(KVM_GET_MSR_INDEX_LIST == 0xc004ae02u, "ioctl number must match the C ABI");

namespace hvm::kvm {

// A KVM structure with a variable-length array tail (kvm_cpuid2 + entries, kvm_msrs + entries...),
// zeroed, with room for `n` elements of `Elem`. Stored as uint64_t words: no KVM structure needs
// more than 8-byte alignment.
template <typename Head, typename Elem> class FlexBuffer {
  public:
    explicit FlexBuffer(size_t n) : words_((sizeof(Head) + n * sizeof(Elem) + 7) / 8, 0) {}
    Head* get() { return reinterpret_cast<Head*>(words_.data()); }
    Head* operator->() { return get(); }
    Elem* elems() {
        return reinterpret_cast<Elem*>(reinterpret_cast<uint8_t*>(words_.data()) + sizeof(Head));
    }

  private:
    std::vector<uint64_t> words_;
};

} // namespace hvm::kvm
