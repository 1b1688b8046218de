/* memcached's UDP frame as a codec: the header round-trips, requests must be one datagram with
 * a payload, and replies take as many 1400-byte datagrams as they need. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "udp/udp.h"

static void
test_frame_round_trip(void **state)
{
	uint8_t b[16] = {0};
	struct mc_udp_frame f;
	(void)state;
	mc_udp_frame_write(b, 0xbeef, 3, 7);
	assert_memory_equal(b, "\xbe\xef\x00\x03\x00\x07\x00\x00", 8);
	/* A reply frame (total 7) is no request: requests are single datagrams. */
	assert_int_equal(mc_udp_frame_parse(b, sizeof(b), &f), MC_UDP_MULTI);
	assert_int_equal(f.req_id, 0xbeef);
	assert_int_equal(f.seq, 3);
	assert_int_equal(f.total, 7);
	mc_udp_frame_write(b, 1, 0, 1);
	assert_int_equal(mc_udp_frame_parse(b, 9, &f), MC_UDP_OK);
	/* The header alone, or less, is short; total 0 is not one datagram. */
	assert_int_equal(mc_udp_frame_parse(b, 8, &f), MC_UDP_SHORT);
	assert_int_equal(mc_udp_frame_parse(b, 3, &f), MC_UDP_SHORT);
	mc_udp_frame_write(b, 1, 0, 0);
	assert_int_equal(mc_udp_frame_parse(b, 9, &f), MC_UDP_MULTI);
}

static void
test_datagram_count(void **state)
{
	(void)state;
	assert_int_equal(mc_udp_dgram_count(0), 1);
	assert_int_equal(mc_udp_dgram_count(1), 1);
	assert_int_equal(mc_udp_dgram_count(MC_UDP_MAX_PAYLOAD), 1);
	assert_int_equal(mc_udp_dgram_count(MC_UDP_MAX_PAYLOAD + 1), 2);
	assert_int_equal(mc_udp_dgram_count(64 * 1024), 48);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_datagram_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
