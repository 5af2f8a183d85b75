#include "bios/image_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.hpp"

namespace hvm {

namespace {
[[noreturn]] void cannot_read(const std::string& path, const char* what, const std::string& why) {
    fail(path + ": cannot read " + what + ": " + why);
}

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) close(fd);
    }
};
} // namespace

std::vector<uint8_t> read_image_file(const std::string& path, const char* what) {
    Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) cannot_read(path, what, strerror(errno));
    struct stat st;
    if (fstat(f.fd, &st) != 0) cannot_read(path, what, strerror(errno));
    if (!S_ISREG(st.st_mode)) cannot_read(path, what, "not a regular file");
    if (static_cast<uint64_t>(st.st_size) > kMaxImageFileSize)
        cannot_read(path, what, "larger than 4 GiB");
    std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = read(f.fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) cannot_read(path, what, strerror(errno));
        if (n == 0) cannot_read(path, what, "file shrank while being read");
        done += static_cast<size_t>(n);
    }
    return data;
}

} // namespace hvm
