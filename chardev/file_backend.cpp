#include "chardev/file_backend.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"

namespace hvm {

FileCharBackend::FileCharBackend(const std::string& path, bool append) : path_(path) {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    fd_ = open(path.c_str(), flags, 0666);
    if (fd_ < 0) fail("file: cannot open '" + path + "' for writing: " + strerror(errno));
}

FileCharBackend::~FileCharBackend() {
    if (fd_ >= 0) close(fd_);
}

void FileCharBackend::write(std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t r = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (r > 0) {
            done += size_t(r);
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            if (error_log_.allow())
                LOG_WARN("file %s: write failed (%s); guest output is lost", path_.c_str(),
                         r < 0 ? strerror(errno) : "no progress");
            return;
        }
    }
}

} // namespace hvm
