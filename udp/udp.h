/* The memcached UDP frame as a codec: the 8-byte header every request and reply datagram
 * carries (request id, sequence number, datagram count, reserved; all big-endian), and how a
 * reply is laid out in datagrams. It knows nothing of packets or ports. */
#ifndef MC_UDP_H
#define MC_UDP_H

#include <stdint.h>
#include <stddef.h>

#define MC_UDP_HDR_LEN 8
#define MC_UDP_MAX_DGRAM 1400 /* memcached's UDP_MAX_PAYLOAD_SIZE, header included */
#define MC_UDP_MAX_PAYLOAD (MC_UDP_MAX_DGRAM - MC_UDP_HDR_LEN)

struct mc_udp_frame {
	uint16_t req_id;
	uint16_t seq;
	uint16_t total;
	uint16_t reserved;
};

enum mc_udp_status { MC_UDP_OK = 0, MC_UDP_SHORT = -1, MC_UDP_MULTI = -2 };

/* Parse the frame header at buf. A request must carry more than the header and be a single
 * datagram (total == 1), as memcached requires. */
int mc_udp_frame_parse(const uint8_t *buf, size_t len, struct mc_udp_frame *f);
/* Write a frame header. */
void mc_udp_frame_write(uint8_t *buf, uint16_t req_id, uint16_t seq, uint16_t total);
/* Datagrams needed for a reply of len bytes (at least 1). */
static inline uint16_t
mc_udp_dgram_count(size_t len)
{
	return (uint16_t)(len == 0 ? 1 : (len + MC_UDP_MAX_PAYLOAD - 1) / MC_UDP_MAX_PAYLOAD);
}

#endif
