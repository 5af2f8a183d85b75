// The RTL8139C+ transmit offloads: IPv4 header checksum, TCP/UDP checksum and TCP large send
// (segmentation), applied to one assembled frame as QEMU's rtl8139_cplus_transmit_one does
// after the CVE-2015-5165 fixes (QEMU commits 03247512 .. 8357946b):
//
//  - nothing is offloaded unless the frame holds an Ethernet header and a 20-byte IPv4 header,
//    has EtherType 0x0800 and IP version 4;
//  - the IP header length must be >= 20 and fit in the frame; the IP total length must be >= the
//    header length and fit in the frame. Everything after that works on the IP total length,
//    never on a length the frame does not back;
//  - large send needs TCP, at least a 20-byte TCP header, a TCP data offset >= 20 that fits in
//    the IP payload, and a non-zero MSS;
//  - a frame failing any check is sent exactly as the guest built it.
//
// Large send cuts the TCP payload into MSS-sized segments, each with the Ethernet header, the
// original IP header (total length and checksum recomputed, identification + segment index) and
// the TCP header (sequence number advanced, checksum recomputed). A large-send frame without
// payload produces no segment (QEMU). PSH and FIN stay on the last segment only: QEMU means to
// do the same but clears them on its working copy of the header for good, so its last segment
// of a multi-segment send loses them (a lost FIN); hvm follows the datasheet's intent.
//
// The TCP/UDP checksum (without large send) covers the IP payload the IP header announces. hvm
// skips it when that payload is too short to hold the checksum field (18 bytes TCP, 8 UDP),
// where QEMU would write the field past the announced payload.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

namespace hvm {

struct CplusTxOffload {
    bool ip_checksum = false;  // IPCS
    bool tcp_checksum = false; // TCPCS
    bool udp_checksum = false; // UDPCS
    bool large_send = false;   // LGSEN
    uint16_t mss = 0;          // large send MSS (11 bits in the descriptor)

    bool any() const { return ip_checksum || tcp_checksum || udp_checksum || large_send; }
};

// Applies `request` to `frame` (modified in place) and hands every resulting frame to `emit`:
// the frame itself, or its segments for a valid large send.
void apply_cplus_tx_offload(std::span<uint8_t> frame, const CplusTxOffload& request,
                            const std::function<void(std::span<const uint8_t>)>& emit);

} // namespace hvm
