// `file:PATH` / `-chardev file,path=PATH[,append=on]`: guest output to a file (truncated unless
// append=on, as in QEMU); there is no input. Writes are synchronous: a regular file takes them at
// once, and a serial log must not lose its tail if hvm dies.
#pragma once
#include <string>

#include "base/log.hpp"
#include "chardev/char_backend.hpp"

namespace hvm {

class FileCharBackend : public CharBackend {
  public:
    // Throws UserError if the file cannot be opened for writing.
    FileCharBackend(const std::string& path, bool append);
    ~FileCharBackend() override;
    FileCharBackend(const FileCharBackend&) = delete;
    FileCharBackend& operator=(const FileCharBackend&) = delete;

    void write(std::span<const uint8_t> bytes) override;
    void attach(CharFrontend*) override {} // output only
    void accept_input() override {}

  private:
    std::string path_;
    int fd_ = -1;
    RateLimiter error_log_{1, 1u << 20};
};

} // namespace hvm
