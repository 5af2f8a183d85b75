// `pty`: a pseudo-terminal; the user attaches with `screen /dev/pts/N` or similar. Like QEMU it
// announces itself on stderr ("char device redirected to /dev/pts/N (label serial0)") and drops
// output while nobody has the slave open after a reader hung up (checked once a second).
#pragma once
#include <string>

#include "chardev/stream_backend.hpp"

namespace hvm {

class PtyCharBackend : public StreamCharBackend {
  public:
    // `label` names the device in the announcement (the -chardev id, or "serial0"). Throws
    // UserError if no pty can be allocated.
    PtyCharBackend(std::mutex& device_lock, const std::string& label);
    ~PtyCharBackend() override;

    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

} // namespace hvm
