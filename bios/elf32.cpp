#include "bios/elf32.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "bios/loader_util.hpp"

namespace hvm {

using loader::field;
using loader::hex;

bool is_elf(std::span<const uint8_t> file) {
    return file.size() >= 4 &&
           std::equal(std::begin(elf::kMagic), std::end(elf::kMagic), file.begin());
}

bool is_elf64(std::span<const uint8_t> file) {
    return is_elf(file) && file.size() > elf::kEiClass && file[elf::kEiClass] == elf::kClass64;
}

Elf32Image parse_elf32(std::span<const uint8_t> file, const std::string& name) {
    if (!is_elf(file) || file.size() < elf::kEhdr32Size) fail(name + ": not an ELF file");
    if (file[elf::kEiClass] != elf::kClass32) fail(name + ": not a 32-bit ELF file");
    if (file[elf::kEiData] != elf::kData2Lsb) fail(name + ": not a little-endian ELF file");
    uint64_t machine = field(file, elf::kEMachine, 2);
    if (machine != elf::kEm386)
        fail(name + ": ELF machine " + std::to_string(machine) + " is not i386");

    Elf32Image img;
    img.entry = static_cast<uint32_t>(field(file, 24, 4));
    uint64_t phoff = field(file, 28, 4);
    uint64_t phentsize = field(file, 42, 2);
    uint64_t phnum = field(file, 44, 2);
    if (phnum == 0) fail(name + ": ELF file has no program headers");
    if (phentsize < elf::kPhdr32Size)
        fail(name + ": ELF program header size " + std::to_string(phentsize) + " is too small");
    if (phoff > file.size() || phnum * phentsize > file.size() - phoff)
        fail(name + ": ELF program headers lie outside the file");

    for (uint64_t i = 0; i < phnum; i++) {
        auto ph = file.subspan(phoff + i * phentsize, elf::kPhdr32Size);
        if (field(ph, 0, 4) != elf::kPtLoad) continue;
        Elf32Segment s;
        s.offset = static_cast<uint32_t>(field(ph, 4, 4));
        s.paddr = static_cast<uint32_t>(field(ph, 12, 4));
        s.filesz = static_cast<uint32_t>(field(ph, 16, 4));
        s.memsz = static_cast<uint32_t>(field(ph, 20, 4));
        std::string which = name + ": ELF segment " + std::to_string(i);
        if (s.filesz > s.memsz)
            fail(which + " has more file bytes (" + hex(s.filesz) + ") than memory (" +
                 hex(s.memsz) + ")");
        if (uint64_t(s.offset) + s.filesz > file.size())
            fail(which + " (" + hex(s.filesz) + " bytes at file offset " + hex(s.offset) +
                 ") is larger than the file");
        if (uint64_t(s.paddr) + s.memsz > (1ull << 32))
            fail(which + " at " + hex(s.paddr) + " wraps past 4 GiB");
        if (s.memsz == 0) continue;
        img.segments.push_back(s);
    }
    if (img.segments.empty()) fail(name + ": ELF file has no loadable segment");
    return img;
}

} // namespace hvm
