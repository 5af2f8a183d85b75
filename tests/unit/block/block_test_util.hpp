// Helpers for the block tests: a scratch directory and running qemu-img / qemu-io as the oracle.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace blocktest {

class TempDir {
  public:
    TempDir() {
        char templ[] = "/tmp/hvm-block-test-XXXXXX";
        char* p = mkdtemp(templ);
        if (!p) std::abort();
        path_ = p;
    }
    ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

struct CmdResult {
    int status = -1; // exit code
    std::string output;
};

// Runs a shell command, capturing stdout and stderr.
inline CmdResult run(const std::string& cmd) {
    CmdResult r;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// qemu-img check: 0 = clean, 3 = leaked clusters only, 2 = corruption.
inline CmdResult qemu_check(const std::string& img) {
    return run("qemu-img check -f qcow2 '" + img + "'");
}

inline std::vector<uint8_t> pattern(size_t n, uint8_t byte) {
    return std::vector<uint8_t>(n, byte);
}

inline std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(rng());
    return v;
}

inline std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    std::vector<uint8_t> v(size_t(std::max<std::streamoff>(0, f.tellg())));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size()));
    return v;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

// Patches bytes of a file in place (hostile-header tests).
inline void patch_file(const std::string& path, uint64_t offset,
                       const std::vector<uint8_t>& bytes) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(std::streamoff(offset));
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::vector<uint8_t> be32v(uint32_t v) {
    return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}
inline std::vector<uint8_t> be64v(uint64_t v) {
    auto hi = be32v(uint32_t(v >> 32)), lo = be32v(uint32_t(v));
    hi.insert(hi.end(), lo.begin(), lo.end());
    return hi;
}

} // namespace blocktest
