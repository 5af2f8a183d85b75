#include "devmodel/net/rtl8139_tx_offload.hpp"

#include <cstring>
#include <vector>

#include "devmodel/net/ethernet.hpp"

namespace hvm {

namespace {

using namespace eth;

// Where the headers of an offloadable frame are, after every length check.
struct Ipv4Frame {
    uint8_t* ip = nullptr;
    size_t ip_header_len = 0;
    size_t ip_payload_len = 0; // from the IP total length, never beyond the frame
    uint8_t protocol = 0;
};

bool parse_ipv4(std::span<uint8_t> frame, Ipv4Frame& out) {
    if (frame.size() < kHeaderLen + kIpv4MinHeader) return false;
    if (load_be16(&frame[12]) != kTypeIpv4) return false;
    uint8_t* ip = frame.data() + kHeaderLen;
    size_t available = frame.size() - kHeaderLen;
    if ((ip[kIpVersionIhl] >> 4) != 4) return false;
    size_t hlen = size_t(ip[kIpVersionIhl] & 0x0F) * 4;
    if (hlen < kIpv4MinHeader || hlen > available) return false;
    size_t total = load_be16(ip + kIpTotalLength);
    if (total < hlen || total > available) return false;
    out.ip = ip;
    out.ip_header_len = hlen;
    out.ip_payload_len = total - hlen;
    out.protocol = ip[kIpProto];
    return true;
}

void set_ip_checksum(uint8_t* ip, size_t hlen) {
    store_be16(ip + kIpChecksum, 0);
    store_be16(ip + kIpChecksum, internet_checksum(std::span<const uint8_t>(ip, hlen)));
}

// Checksum of an L4 segment `l4` (header + data) with its checksum field at `field`.
void set_l4_checksum(const uint8_t* ip, uint8_t protocol, std::span<uint8_t> l4, size_t field) {
    store_be16(&l4[field], 0);
    uint32_t sum = pseudo_header_sum(ip, protocol, uint16_t(l4.size()));
    store_be16(&l4[field], uint16_t(~ones_complement_fold(ones_complement_add(l4, sum))));
}

// Returns false (nothing emitted) when the large send's own checks fail.
bool large_send(std::span<uint8_t> frame, const Ipv4Frame& f, uint16_t mss,
                const std::function<void(std::span<const uint8_t>)>& emit) {
    if (f.ip_payload_len < kTcpMinHeader || mss == 0) return false;
    uint8_t* tcp = f.ip + f.ip_header_len;
    size_t tcp_hlen = size_t(tcp[kTcpDataOffset] >> 4) * 4;
    if (tcp_hlen < kTcpMinHeader || tcp_hlen > f.ip_payload_len) return false;
    size_t data_len = f.ip_payload_len - tcp_hlen;
    const uint8_t* data = tcp + tcp_hlen;
    size_t headers = kHeaderLen + f.ip_header_len + tcp_hlen;

    uint16_t ip_id = load_be16(f.ip + kIpId);
    uint32_t seq = load_be32(tcp + kTcpSeq);
    uint8_t flags = tcp[kTcpFlags];
    std::vector<uint8_t> seg(headers + mss);
    unsigned index = 0;
    for (size_t off = 0; off < data_len; off += mss, index++) {
        bool last = off + mss >= data_len;
        size_t chunk = last ? data_len - off : mss;
        std::memcpy(seg.data(), frame.data(), headers);
        std::memcpy(seg.data() + headers, data + off, chunk);
        uint8_t* ip = seg.data() + kHeaderLen;
        uint8_t* th = ip + f.ip_header_len;
        store_be16(ip + kIpTotalLength, uint16_t(f.ip_header_len + tcp_hlen + chunk));
        store_be16(ip + kIpId, uint16_t(ip_id + index));
        set_ip_checksum(ip, f.ip_header_len);
        store_be32(th + kTcpSeq, uint32_t(seq + off));
        th[kTcpFlags] = last ? flags : uint8_t(flags & ~(kTcpPsh | kTcpFin));
        set_l4_checksum(ip, kProtoTcp, std::span(th, tcp_hlen + chunk), kTcpChecksum);
        emit(std::span<const uint8_t>(seg.data(), headers + chunk));
    }
    return true;
}

} // namespace

void apply_cplus_tx_offload(std::span<uint8_t> frame, const CplusTxOffload& request,
                            const std::function<void(std::span<const uint8_t>)>& emit) {
    Ipv4Frame f;
    if (!request.any() || !parse_ipv4(frame, f)) {
        emit(frame);
        return;
    }
    if (request.large_send) {
        // QEMU: a large send of anything but TCP gets no offload at all, not even IPCS.
        if (f.protocol == kProtoTcp && large_send(frame, f, request.mss, emit)) return;
        emit(frame);
        return;
    }
    if (request.ip_checksum) set_ip_checksum(f.ip, f.ip_header_len);
    std::span<uint8_t> l4(f.ip + f.ip_header_len, f.ip_payload_len);
    if (request.tcp_checksum && f.protocol == kProtoTcp && l4.size() >= kTcpChecksum + 2)
        set_l4_checksum(f.ip, kProtoTcp, l4, kTcpChecksum);
    else if (request.udp_checksum && f.protocol == kProtoUdp && l4.size() >= kUdpHeader)
        set_l4_checksum(f.ip, kProtoUdp, l4, kUdpChecksum);
    emit(frame);
}

} // namespace hvm
