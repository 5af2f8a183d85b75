#include "block/open_image.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include "base/error.hpp"
#include "base/log.hpp"
#include "block/host_file.hpp"
#include "block/qcow2_image.hpp"
#include "block/raw_image.hpp"

namespace hvm::block {
namespace {

using FileId = std::pair<dev_t, ino_t>;

std::string probe_file(HostFile& file) {
    uint8_t magic[4] = {};
    if (file.length() >= 4 && file.pread(0, magic) == IoStatus::Ok && qcow2::has_magic(magic))
        return "qcow2";
    return "raw";
}

// A relative backing name is relative to the directory of the image that names it, not to the
// current directory (QEMU's path_combine).
std::string resolve_backing(const std::string& image, const std::string& backing) {
    if (backing.empty() || backing[0] == '/') return backing;
    size_t slash = image.rfind('/');
    if (slash == std::string::npos) return backing;
    return image.substr(0, slash + 1) + backing;
}

std::unique_ptr<BlockDevice> open_chain(const std::string& path, std::string format, bool read_only,
                                        CacheMode cache, bool warn_probe, int depth,
                                        std::set<FileId>& seen) {
    if (depth > kMaxBackingChainDepth)
        fail("Backing file chain of '" + path + "' is too deep (more than " +
             std::to_string(kMaxBackingChainDepth) + " images)");
    auto file = HostFile::open(path, read_only, cache);
    if (!seen.insert({file->device_id(), file->inode()}).second)
        fail("Backing file chain of '" + path + "' contains a loop");

    bool probed = false;
    if (format.empty()) {
        format = probe_file(*file);
        probed = format == "raw";
        if (probed && warn_probe)
            LOG_WARN("WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                     "         Automatically detecting the format is dangerous for raw images, "
                     "write operations on block 0 will be restricted.\n"
                     "         Specify the 'raw' format explicitly to remove the restrictions.",
                     path.c_str());
    }
    if (format == "raw") return std::make_unique<RawImage>(std::move(file), probed);
    if (format != "qcow2")
        fail("Unknown driver '" + format + "' for '" + path + "' (hvm supports raw and qcow2)");

    qcow2::ImageInfo info = Qcow2Image::read_image_info(*file);
    std::unique_ptr<BlockDevice> backing;
    if (!info.backing_file.empty()) {
        // Backing files are only read; QEMU's permission scheme lets other readers share them.
        backing = open_chain(resolve_backing(path, info.backing_file), info.backing_format, true,
                             cache, false, depth + 1, seen);
    }
    return std::make_unique<Qcow2Image>(std::move(file), info, std::move(backing));
}

// Unlinks the overlay as soon as it is open: the file lives exactly as long as the descriptor,
// so it disappears on exit even after kill -9.
class TempPath {
  public:
    explicit TempPath(std::string p) : path_(std::move(p)) {}
    ~TempPath() { unlink(path_.c_str()); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

} // namespace

std::string probe_format(const std::string& path) {
    auto file = HostFile::open(path, true, CacheMode::writeback_mode(), false);
    return probe_file(*file);
}

std::unique_ptr<BlockDevice> open_image(const std::string& path, const OpenOptions& options) {
    std::set<FileId> seen;
    if (!options.snapshot)
        return open_chain(path, options.format, options.read_only, options.cache, true, 0, seen);

    auto base = open_chain(path, options.format, true, options.cache, true, 0, seen);
    std::string dir = options.temp_dir;
    if (dir.empty()) {
        const char* env = std::getenv("TMPDIR");
        dir = env && *env ? env : "/var/tmp";
    }
    std::string templ = dir + "/hvm-snapshot-XXXXXX";
    int fd = mkstemp(templ.data());
    if (fd < 0)
        fail("Could not create temporary overlay in '" + dir + "': " + std::strerror(errno));
    close(fd);
    TempPath temp(templ);
    // Overlay contents die with the process, so flushing them to disk is pointless (QEMU also
    // opens the temporary snapshot with cache.no-flush).
    CacheMode overlay_cache = CacheMode::unsafe();
    auto file = HostFile::open(temp.path(), false, overlay_cache);
    Qcow2Image::create(*file, base->size());
    qcow2::ImageInfo info = Qcow2Image::read_image_info(*file);
    return std::make_unique<Qcow2Image>(std::move(file), info, std::move(base));
}

} // namespace hvm::block
