/* memcached's UDP frame header. */
#include "udp.h"

int
mc_udp_frame_parse(const uint8_t *buf, size_t len, struct mc_udp_frame *f)
{
	if (len <= MC_UDP_HDR_LEN)
		return MC_UDP_SHORT;
	f->req_id = (uint16_t)(buf[0] << 8 | buf[1]);
	f->seq = (uint16_t)(buf[2] << 8 | buf[3]);
	f->total = (uint16_t)(buf[4] << 8 | buf[5]);
	f->reserved = (uint16_t)(buf[6] << 8 | buf[7]);
	if (f->total != 1)
		return MC_UDP_MULTI;
	return MC_UDP_OK;
}

void
mc_udp_frame_write(uint8_t *buf, uint16_t req_id, uint16_t seq, uint16_t total)
{
	buf[0] = (uint8_t)(req_id >> 8);
	buf[1] = (uint8_t)req_id;
	buf[2] = (uint8_t)(seq >> 8);
	buf[3] = (uint8_t)seq;
	buf[4] = (uint8_t)(total >> 8);
	buf[5] = (uint8_t)total;
	buf[6] = 0;
	buf[7] = 0;
}
