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
 * datagram (total == 1), as memcached requires. Inline: every request passes here. */
static inline int
mc_udp_frame_parse(const uint8_t *buf, size_t len, struct mc_udp_frame *f)
{
	uint64_t v;
	_Static_assert(sizeof(*f) == MC_UDP_HDR_LEN, "the header's four fields, unpadded");
	if (len <= MC_UDP_HDR_LEN)
		return MC_UDP_SHORT;
	/* One load; on a little-endian host the bytes of every field swapped at once. */
	__builtin_memcpy(&v, buf, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = (v & 0x00ff00ff00ff00ffull) << 8 | ((v >> 8) & 0x00ff00ff00ff00ffull);
#endif
	__builtin_memcpy(f, &v, 8);
	if (f->total != 1)
		return MC_UDP_MULTI;
	return MC_UDP_OK;
}

/* Write a frame header: on a little-endian host, one 8-byte store. */
static inline void
mc_udp_frame_write(uint8_t *buf, uint16_t req_id, uint16_t seq, uint16_t total)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t v = (uint64_t)__builtin_bswap16(req_id) |
			   (uint64_t)__builtin_bswap16(seq) << 16 |
			   (uint64_t)__builtin_bswap16(total) << 32;
	__builtin_memcpy(buf, &v, 8);
#else
	buf[0] = (uint8_t)(req_id >> 8);
	buf[1] = (uint8_t)req_id;
	buf[2] = (uint8_t)(seq >> 8);
	buf[3] = (uint8_t)seq;
	buf[4] = (uint8_t)(total >> 8);
	buf[5] = (uint8_t)total;
	buf[6] = 0;
	buf[7] = 0;
#endif
}

/* Datagrams needed for a reply of len bytes (at least 1). */
static inline uint16_t
mc_udp_dgram_count(size_t len)
{
	return (uint16_t)(len == 0 ? 1 : (len + MC_UDP_MAX_PAYLOAD - 1) / MC_UDP_MAX_PAYLOAD);
}

#endif
