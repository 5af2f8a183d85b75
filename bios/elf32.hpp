// The little of ELF a Multiboot loader needs: the file header and the PT_LOAD program headers of
// a 32-bit little-endian i386 executable (System V ABI, "Object Files" chapter; TIS ELF 1.2).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hvm {

namespace elf {
constexpr uint8_t kMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr size_t kEiClass = 4;
constexpr size_t kEiData = 5;
constexpr uint8_t kClass32 = 1;
constexpr uint8_t kClass64 = 2;
constexpr uint8_t kData2Lsb = 1;
constexpr uint16_t kEm386 = 3;
constexpr uint16_t kEmX86_64 = 62;
constexpr uint32_t kPtLoad = 1;
constexpr size_t kEhdr32Size = 52;
constexpr size_t kPhdr32Size = 32;
constexpr size_t kEMachine = 18; // u16, at the same offset in ELF32 and ELF64
} // namespace elf

struct Elf32Segment {
    uint32_t offset = 0; // p_offset
    uint32_t paddr = 0;  // p_paddr: where a Multiboot loader puts it
    uint32_t filesz = 0;
    uint32_t memsz = 0;
};

struct Elf32Image {
    uint32_t entry = 0;
    std::vector<Elf32Segment> segments; // PT_LOAD segments with p_memsz > 0, in file order
};

bool is_elf(std::span<const uint8_t> file);
// ELFCLASS64 file (what QEMU's multiboot loader refuses).
bool is_elf64(std::span<const uint8_t> file);

// Parses an ELF32 i386 executable. Throws UserError "<name>: ..." for anything malformed: wrong
// class, byte order or machine, program headers outside the file, a segment whose file bytes lie
// outside the file or exceed its memory size, or whose addresses wrap past 4 GiB.
Elf32Image parse_elf32(std::span<const uint8_t> file, const std::string& name);

} // namespace hvm
