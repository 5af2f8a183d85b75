// Reading the files the user names with -kernel / -initrd into memory, with one-line errors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hvm {

// Largest kernel, initrd or module hvm reads: everything it loads must fit below 4 GiB anyway.
constexpr uint64_t kMaxImageFileSize = 4ull << 30;

// The whole file. Throws UserError "<path>: cannot read <what>: <reason>" when it cannot be
// opened or read, is not a regular file, or is larger than kMaxImageFileSize.
std::vector<uint8_t> read_image_file(const std::string& path, const char* what);

} // namespace hvm
