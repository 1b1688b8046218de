/* Dataplane L2/L3: ARP and ICMP answered in place, every malformed case dropped with its own
 * counter, nothing leaked. Frames go through the production burst function on a ring port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/dataplane.h"
#include "tests/unit/common/eal.h"
#include "tests/unit/common/frame.h"

static struct rte_mempool *pool;
static struct rte_ring *tx_ring;
static struct mc_config cfg;
static struct mc_worker w;

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(mc_test_ring_worker("ut", 1023, &cfg, &w, &pool, &tx_ring), 0);
	return 0;
}

static struct rte_mbuf *
frame(const void *bytes, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	assert_non_null(m);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), bytes, len);
	return m;
}

/* Run one frame through the burst function; return the reply or NULL. */
static struct rte_mbuf *
run(struct rte_mbuf *m)
{
	void *out = NULL;
	mc_dp_handle_burst(&w, &m, 1);
	mc_dp_tx_flush(&w);
	if (rte_ring_dequeue(tx_ring, &out) != 0)
		return NULL;
	return out;
}

static size_t
eth_hdr(uint8_t *p, uint16_t type)
{
	memcpy(p, mc_test_our_mac, 6);
	memcpy(p + 6, mc_test_cli_mac, 6);
	p[12] = (uint8_t)(type >> 8);
	p[13] = (uint8_t)type;
	return 14;
}

static size_t
ip_hdr(uint8_t *p, uint8_t vihl, uint16_t tot, uint16_t frag, uint8_t proto, uint32_t src)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)p;
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = vihl;
	ip->total_length = rte_cpu_to_be_16(tot);
	ip->fragment_offset = rte_cpu_to_be_16(frag);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = rte_cpu_to_be_32(src);
	ip->dst_addr = rte_cpu_to_be_32(0xc6120001u);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return 20;
}

static void
test_arp_request_answered_in_place(void **state)
{
	uint8_t f[64] = {0};
	size_t n;
	struct rte_mbuf *r;
	(void)state;
	n = eth_hdr(f, 0x0806);
	memset(f, 0xff, 6);
	const uint8_t arp[] = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 2,
			       0, 0, 0, 0, 0, 0, 198, 18, 0, 1};
	memcpy(f + n, arp, sizeof(arp));
	r = run(frame(f, 60));
	assert_non_null(r);
	const uint8_t *p = rte_pktmbuf_mtod(r, const uint8_t *);
	assert_memory_equal(p, mc_test_cli_mac, 6);
	assert_memory_equal(p + 6, mc_test_our_mac, 6);
	assert_int_equal(p[21], 2); /* reply */
	assert_memory_equal(p + 22, mc_test_our_mac, 6);
	assert_memory_equal(p + 32, mc_test_cli_mac, 6);
	assert_int_equal(p[31], 1);
	assert_int_equal(p[41], 2);
	rte_pktmbuf_free(r);
	assert_int_equal(w.st.arp_replies, 1);
}

static void
test_icmp_echo_reply_checksums(void **state)
{
	uint8_t f[14 + 20 + 8 + 56];
	size_t n = eth_hdr(f, 0x0800);
	uint16_t ck;
	struct rte_mbuf *r;
	(void)state;
	n += ip_hdr(f + n, 0x45, 20 + 8 + 56, 0, IPPROTO_ICMP, 0xc6120002u);
	memset(f + n, 0, 8);
	f[n] = 8;
	f[n + 4] = 0x12;
	for (int i = 0; i < 56; i++)
		f[n + 8 + i] = (uint8_t)i;
	ck = (uint16_t)~rte_raw_cksum(f + n, 64);
	memcpy(f + n + 2, &ck, 2);
	r = run(frame(f, sizeof(f)));
	assert_non_null(r);
	const uint8_t *p = rte_pktmbuf_mtod(r, const uint8_t *);
	const struct rte_ipv4_hdr *ip = (const void *)(p + 14);
	assert_int_equal(rte_ipv4_cksum(ip), 0);
	assert_int_equal(ip->dst_addr, rte_cpu_to_be_32(0xc6120002u));
	assert_int_equal(p[34], 0); /* echo reply */
	assert_int_equal(rte_raw_cksum(p + 34, 64), 0xffff);
	assert_memory_equal(p + 42, f + 42, 56);
	rte_pktmbuf_free(r);
}

static void
test_malformed_frames_dropped_with_reason(void **state)
{
	struct {
		const char *name;
		uint8_t vihl;
		int tot_delta; /* added to the honest total length */
		uint16_t frag;
		uint8_t proto;
		uint32_t src;
		int bad_cksum;
		size_t cut; /* bytes cut off the frame's end */
		uint64_t *counter;
	} cases[] = {
		{"version 6", 0x65, 0, 0, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_version},
		{"ihl 4", 0x44, 0, 0, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_hdr},
		{"options", 0x46, 0, 0, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_options},
		{"total too big", 0x45, 100, 0, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_len},
		{"total too small", 0x45, -20, 0, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_len},
		{"bad checksum", 0x45, 0, 0, 1, 0xc6120002u, 1, 0, &w.st.drop_ip_cksum},
		{"more fragments", 0x45, 0, 0x2000, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_frag},
		{"fragment offset", 0x45, 0, 0x0010, 1, 0xc6120002u, 0, 0, &w.st.drop_ip_frag},
		{"multicast source", 0x45, 0, 0, 1, 0xe0000001u, 0, 0, &w.st.drop_ip_src},
		{"gre", 0x45, 0, 0, 47, 0xc6120002u, 0, 0, &w.st.drop_ip_proto},
		{"short frame", 0x45, 0, 0, 1, 0xc6120002u, 0, 30, &w.st.drop_short},
		{"udp too short", 0x45, -4, 0, 17, 0xc6120002u, 0, 0, &w.st.drop_udp_len},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t f[14 + 24 + 8] = {0};
		size_t n = eth_hdr(f, 0x0800);
		uint64_t before = *cases[i].counter;
		unsigned int avail = rte_mempool_avail_count(pool);
		ip_hdr(f + n, cases[i].vihl, (uint16_t)(28 + cases[i].tot_delta), cases[i].frag,
		       cases[i].proto, cases[i].src);
		if (cases[i].bad_cksum)
			f[n + 10] ^= 0x55;
		f[n + 20] = 8;
		struct rte_mbuf *m = frame(f, 14 + 28 - cases[i].cut);
		assert_null(run(m));
		if (*cases[i].counter != before + 1)
			fail_msg("case '%s': counter did not move", cases[i].name);
		assert_int_equal(rte_mempool_avail_count(pool), avail);
	}
}

static void
test_wrong_destination_mac_dropped(void **state)
{
	uint8_t f[60] = {0};
	(void)state;
	eth_hdr(f, 0x0800);
	f[0] = 0x04;
	uint64_t before = w.st.drop_l2_dst;
	assert_null(run(frame(f, sizeof(f))));
	assert_int_equal(w.st.drop_l2_dst, before + 1);
}

static void
test_rate_limits_per_source(void **state)
{
	const uint32_t a = rte_cpu_to_be_32(0xc6120002u), b = rte_cpu_to_be_32(0xc6120003u);
	int i;
	(void)state;
	assert_non_null(w.rl);
	w.now = rte_rdtsc();
	cfg.src_rps = 5;
	cfg.src_kbps = 1;
	for (i = 0; i < 5; i++)
		assert_true(mc_dp_rl_admit(&w, a));
	/* The sixth request at the same instant is over the rate. */
	assert_false(mc_dp_rl_admit(&w, a));
	/* Another source has its own buckets. */
	assert_true(mc_dp_rl_admit(&w, b));
	/* Reply bytes: a kilobyte a second; 2 KiB of replies puts b in debt. */
	mc_dp_rl_charge(&w, b, 2048);
	assert_false(mc_dp_rl_admit(&w, b));
	/* Under steady traffic a slow rate still refills: at 1000/s, a request every 1 ms of
	 * the burst clock is served, and every other one when they come each 0.5 ms. The
	 * clock is set here, not read, so the test does not depend on how fast it runs. */
	{
		const uint32_t c3 = rte_cpu_to_be_32(0xc6120004u);
		const uint64_t ms = rte_get_tsc_hz() / 1000 + 1;
		unsigned int served = 0, k;
		cfg.src_rps = 1000;
		cfg.src_kbps = 0;
		while (mc_dp_rl_admit(&w, c3))
			;
		for (k = 0; k < 50; k++) {
			w.now += ms;
			served += mc_dp_rl_admit(&w, c3);
		}
		assert_int_equal(served, 50);
		served = 0;
		for (k = 0; k < 100; k++) {
			w.now += ms / 2 + 1;
			served += mc_dp_rl_admit(&w, c3);
		}
		assert_int_equal(served, 50);
		/* Time that stands still refills nothing. */
		assert_false(mc_dp_rl_admit(&w, c3));
	}
	cfg.src_rps = 200000;
	cfg.src_kbps = 100000;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arp_request_answered_in_place),
		cmocka_unit_test(test_icmp_echo_reply_checksums),
		cmocka_unit_test(test_malformed_frames_dropped_with_reason),
		cmocka_unit_test(test_wrong_destination_mac_dropped),
		cmocka_unit_test(test_rate_limits_per_source),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
