// The two sides of a guest network link, as small interfaces so a NIC model never sees a socket,
// a tap fd or slirp (STYLE.md: backends are injected; QEMU's NetClientState split into the two
// directions it actually uses).
//
//  - NetBackend is the host side: the NIC hands it every frame the guest transmits, and asks it
//    to retry frames it had to refuse.
//  - NetFrontend is the NIC as the backend sees it: can it take a frame now, and take this one.
//
// Threading: every call in either direction happens with the device-model lock held. A backend
// thread (tap reader, slirp poll loop) takes that lock before calling receive()/can_receive().
// Frames are plain Ethernet frames: destination MAC first, no preamble, no FCS.
#pragma once
#include <cstdint>
#include <span>

namespace hvm {

class NetBackend {
  public:
    virtual ~NetBackend() = default;
    // One frame the guest transmitted (already segmented, checksummed and VLAN-tagged by the NIC
    // if the guest asked for offloads). The span is valid only during the call; a backend that
    // cannot send it now drops it, as a wire would.
    virtual void send(std::span<const uint8_t> frame) = 0;
    // The NIC has room again after NetFrontend::receive() returned false (the guest consumed
    // receive buffers, reset the ring or changed its interrupt mask). A backend that kept the
    // refused frame retries it now; it may call receive() from inside this call, or schedule the
    // retry. The NIC calls this liberally: a call with nothing queued costs nothing.
    virtual void receive_ready() {}
};

class NetFrontend {
  public:
    virtual ~NetFrontend() = default;
    // False while receive() would refuse a frame for lack of room (QEMU's can_receive): the
    // backend should stop reading from the host and wait for NetBackend::receive_ready().
    virtual bool can_receive() const = 0;
    // Offers one frame from the network. True: the NIC consumed it (delivered to the guest, or
    // dropped by the NIC's own rules: receiver off, address filter, oversize). False: no room
    // right now (backpressure); keep the frame and retry after receive_ready().
    virtual bool receive(std::span<const uint8_t> frame) = 0;
};

} // namespace hvm
