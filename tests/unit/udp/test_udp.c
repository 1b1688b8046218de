/* The datagram path end to end through the production burst function on a ring port: request
 * and reply checksums at every length, the memcached frame, and the zero-copy reply's copy
 * fallbacks when holders or mbufs run out (no leak of an mbuf or of an item reference). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "dataplane/dataplane.h"
#include "store/store.h"
#include "tests/unit/common/eal.h"
#include "tests/unit/common/frame.h"
#include "udp/udp.h"

#define NB_MBUF 1023u
#define STORE_BYTES (16u << 20)

static struct rte_mempool *pool;
static struct rte_ring *tx_ring;
static struct mc_config cfg;
static struct mc_worker w;
static struct mc_store *store;
static struct mc_proto_conf pconf = {.udp_admin = false, .udp_writes = true};

static int
setup(void **state)
{
	struct mc_store_settings set = {.mem_bytes = STORE_BYTES, .nparts = 1,
					.max_item_size = 64 << 10, .factor = 1.25, .chunk_min = 48};
	(void)state;
	assert_int_equal(mc_test_ring_worker("udp", NB_MBUF, &cfg, &w, &pool, &tx_ring), 0);
	store = mc_store_create(rte_malloc(NULL, STORE_BYTES, 64), STORE_BYTES, &set);
	assert_non_null(store);
	w.svc = mc_udp_service_create(store, &pconf, set.max_item_size, 0);
	assert_non_null(w.svc);
	assert_int_equal(mc_udp_service_zero_copy(w.svc, 1024, 0), 0);
	return 0;
}

static void
put_item(const char *key, const void *val, uint32_t vlen, uint32_t flags)
{
	struct mc_key k;
	mc_key_init(&k, store, key, (uint32_t)strlen(key));
	assert_int_equal(mc_store_store(&w.svc->px.sx, MC_SET, &k, flags, 0, val, vlen, 0, NULL),
			 MC_STORED);
}

/* A request frame from 198.18.0.2:40000 with the memcached frame header and payload. */
static struct rte_mbuf *
request(const void *payload, size_t plen, uint16_t rid)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint8_t *p;
	assert_non_null(m);
	p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(MC_FRAME_HDR_LEN + plen));
	assert_non_null(p);
	mc_frame_request(p, mc_test_our_mac, mc_test_cli_mac, 0xc6120002u, 0xc6120001u, 40000, 11211, rid, payload,
			 plen);
	return m;
}

/* Check one reply datagram (any chain) as a kernel would, and that it is datagram seq of
 * total for rid; append its payload to out. */
static size_t
take_reply(struct rte_mbuf *m, uint16_t rid, uint16_t seq, uint16_t total, uint8_t *out)
{
	static uint8_t flat[2048];
	uint32_t len = rte_pktmbuf_pkt_len(m);
	const uint8_t *p;
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	struct mc_udp_frame f;
	uint32_t sum;
	assert_true(len <= sizeof(flat) && len >= 42 + 8);
	p = rte_pktmbuf_read(m, 0, len, flat);
	assert_memory_equal(p, mc_test_cli_mac, 6);
	assert_memory_equal(p + 6, mc_test_our_mac, 6);
	ip = (const struct rte_ipv4_hdr *)(p + 14);
	udp = (const struct rte_udp_hdr *)(ip + 1);
	assert_int_equal(rte_be_to_cpu_16(ip->total_length), len - 14);
	assert_int_equal(rte_be_to_cpu_16(udp->dgram_len), len - 34);
	assert_int_equal(rte_ipv4_cksum(ip), 0);
	assert_int_equal(ip->dst_addr, rte_cpu_to_be_32(0xc6120002u));
	assert_int_equal(udp->dst_port, rte_cpu_to_be_16(40000));
	/* A sent checksum is never 0 (that means "none"), and the datagram sums to 0xffff. */
	assert_int_not_equal(udp->dgram_cksum, 0);
	sum = rte_ipv4_phdr_cksum(ip, 0) + rte_raw_cksum(udp, len - 34);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	assert_int_equal(sum, 0xffff);
	assert_int_equal(mc_udp_frame_parse((const uint8_t *)(udp + 1), len - 42, &f) == MC_UDP_OK,
			 total == 1);
	assert_int_equal(f.req_id, rid);
	assert_int_equal(f.seq, seq);
	assert_int_equal(f.total, total);
	memcpy(out, p + 50, len - 50);
	rte_pktmbuf_free(m);
	return len - 50;
}

/* Run frames through the burst function; collect the replies' payloads in out (in order,
 * one request's datagrams after another's). Returns the number of reply datagrams. */
static unsigned int
exchange(struct rte_mbuf **ms, unsigned int n, uint8_t *out, size_t *outlen)
{
	void *r[512];
	unsigned int got = 0, k;
	uint16_t seq = 0;
	mc_dp_handle_burst(&w, ms, (uint16_t)n);
	mc_dp_tx_flush(&w);
	*outlen = 0;
	while ((k = rte_ring_dequeue_burst(tx_ring, r, RTE_DIM(r), NULL)) != 0) {
		unsigned int i;
		for (i = 0; i < k; i++) {
			struct rte_mbuf *m = r[i];
			const uint8_t *fh = rte_pktmbuf_mtod_offset(m, const uint8_t *, 42);
			uint16_t rid = (uint16_t)(fh[0] << 8 | fh[1]), total = (uint16_t)(fh[4] << 8 | fh[5]);
			*outlen += take_reply(m, rid, seq, total, out + *outlen);
			seq = (uint16_t)(seq + 1 == total ? 0 : seq + 1);
			got++;
		}
	}
	return got;
}

static size_t
value_reply(char *buf, const char *key, uint32_t flags, const uint8_t *v, uint32_t vlen)
{
	int n = sprintf(buf, "VALUE %s %u %u\r\n", key, flags, vlen);
	memcpy(buf + n, v, vlen);
	memcpy(buf + n + vlen, "\r\nEND\r\n", 7);
	return (size_t)n + vlen + 7;
}

/* Every value length 0..300 and key length 1..40, a burst at a time: each reply is exact and
 * its checksums are right, so every tail of the checksum loop is exercised both ways. */
static void
test_checksums_at_every_length(void **state)
{
	static uint8_t out[1 << 16];
	static char want[1 << 16];
	uint8_t v[320]; /* lengths up to 299, from offsets up to 6 */
	unsigned int vlen, i;
	(void)state;
	for (i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)(i * 7 + 1);
	for (vlen = 0; vlen < 300; vlen += 10) {
		struct rte_mbuf *ms[32];
		size_t wl = 0, ol;
		unsigned int n = 0, klen;
		for (klen = 1; klen <= 40; klen += 2) {
			char key[48], req[64];
			unsigned int j;
			for (j = 0; j < klen; j++)
				key[j] = (char)('a' + (j + vlen) % 26);
			key[klen] = '\0';
			put_item(key, v + (klen % 7), vlen + klen % 10, klen);
			ms[n] = request(req, (size_t)sprintf(req, "get %s\r\n", key), (uint16_t)n);
			wl += value_reply(want + wl, key, klen, v + (klen % 7), vlen + klen % 10);
			n++;
		}
		assert_int_equal(exchange(ms, n, out, &ol), n);
		assert_int_equal(ol, wl);
		assert_memory_equal(out, want, wl);
	}
}

/* A corrupted datagram is a counted drop; checksum 0 ("none sent") is served. */
static void
test_bad_request_checksum_dropped(void **state)
{
	static uint8_t out[4096];
	struct rte_mbuf *m;
	struct rte_udp_hdr *udp;
	uint64_t before = w.st.drop_udp_cksum;
	unsigned int len;
	size_t ol;
	(void)state;
	put_item("ck", "x", 1, 0);
	for (len = 0; len < 3; len++) {
		m = request("get ck\r\n", 8, 1);
		rte_pktmbuf_mtod(m, uint8_t *)[50 + 4 + len] ^= 0x01; /* the key's bytes */
		assert_int_equal(exchange(&m, 1, out, &ol), 0);
	}
	assert_int_equal(w.st.drop_udp_cksum, before + 3);
	m = request("get ck\r\n", 8, 2);
	udp = rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 34);
	udp->dgram_cksum = 0;
	assert_int_equal(exchange(&m, 1, out, &ol), 1);
	assert_int_equal(ol, strlen("VALUE ck 0 1\r\nx\r\nEND\r\n"));
}

/* A NIC's checksum verdict in ol_flags is taken as given: GOOD (or NONE) spares the software
 * check, BAD drops what would have passed it. */
static void
test_nic_checksum_verdicts(void **state)
{
	static uint8_t out[4096];
	const uint64_t good = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	uint64_t ipd = w.st.drop_ip_cksum, udpd = w.st.drop_udp_cksum;
	struct rte_mbuf *m;
	size_t ol;
	(void)state;
	put_item("nk", "y", 1, 0);
	/* Checksums wrong in the bytes, but the NIC says it verified them. */
	m = request("get nk\r\n", 8, 1);
	rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14)->hdr_checksum ^= 0x0100;
	rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 34)->dgram_cksum ^= 0x0100;
	m->ol_flags |= good;
	assert_int_equal(exchange(&m, 1, out, &ol), 1);
	m = request("get nk\r\n", 8, 2);
	rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 34)->dgram_cksum ^= 0x0100;
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_NONE | RTE_MBUF_F_RX_L4_CKSUM_NONE;
	assert_int_equal(exchange(&m, 1, out, &ol), 1);
	/* Right in the bytes, but the NIC says bad. */
	m = request("get nk\r\n", 8, 3);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	assert_int_equal(exchange(&m, 1, out, &ol), 0);
	m = request("get nk\r\n", 8, 4);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_BAD;
	assert_int_equal(exchange(&m, 1, out, &ol), 0);
	assert_int_equal(w.st.drop_ip_cksum, ipd + 1);
	assert_int_equal(w.st.drop_udp_cksum, udpd + 1);
}

static void
assert_no_leaks(void)
{
	struct mc_store_part_stats ps;
	assert_int_equal(rte_mempool_avail_count(pool), NB_MBUF);
	assert_int_equal(rte_mempool_in_use_count(w.svc->zc_pool), 0);
	mc_store_sweep(store, 0, 1u << 30);
	mc_store_part_stats(store, &ps);
	assert_int_equal(ps.zombies, 0);
}

/* A 3000-byte value is sent from item memory in three datagrams; with no holder left it is
 * copied instead (counted), with the same bytes. */
static void
test_zero_copy_and_its_copy_fallback(void **state)
{
	static uint8_t out[8192];
	static char want[8192];
	static uint8_t v[3000];
	void *held[4096];
	unsigned int nheld, i;
	size_t wl, ol;
	uint64_t zc = w.svc->zc_values, fb = w.svc->zc_fallbacks;
	struct rte_mbuf *m;
	(void)state;
	for (i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)(i * 13);
	put_item("big", v, sizeof(v), 5);
	wl = value_reply(want, "big", 5, v, sizeof(v));
	m = request("get big\r\n", 9, 7);
	assert_int_equal(exchange(&m, 1, out, &ol), 3);
	assert_int_equal(ol, wl);
	assert_memory_equal(out, want, wl);
	assert_int_equal(w.svc->zc_values, zc + 1);
	assert_no_leaks();

	nheld = rte_mempool_avail_count(w.svc->zc_pool);
	assert_true(nheld <= RTE_DIM(held));
	assert_int_equal(rte_mempool_get_bulk(w.svc->zc_pool, held, nheld), 0);
	m = request("get big\r\n", 9, 8);
	assert_int_equal(exchange(&m, 1, out, &ol), 3);
	assert_int_equal(ol, wl);
	assert_memory_equal(out, want, wl);
	assert_int_equal(w.svc->zc_fallbacks, fb + 1);
	assert_int_equal(w.svc->zc_values, zc + 1);
	rte_mempool_put_bulk(w.svc->zc_pool, held, nheld);
	assert_no_leaks();
}

/* With only k mbufs left for the reply, for every k: the reply arrives whole (zero-copy, or
 * copied after a failed attempt) or is a counted drop_nombuf, and nothing leaks: every mbuf
 * and holder comes back, and the item replaced afterwards leaves no zombie. */
static void
test_out_of_mbufs_mid_reply(void **state)
{
	static uint8_t out[8192];
	static char want[8192];
	static uint8_t v[3000];
	static void *held[NB_MBUF];
	unsigned int k, whole = 0, lost = 0;
	size_t wl, ol;
	(void)state;
	memset(v, 'q', sizeof(v));
	put_item("big2", v, sizeof(v), 0);
	wl = value_reply(want, "big2", 0, v, sizeof(v));
	for (k = 0; k <= 8; k++) {
		struct rte_mbuf *m = request("get big2\r\n", 10, (uint16_t)k);
		unsigned int nheld = rte_mempool_avail_count(pool) - k, n;
		uint64_t drops = w.st.drop_nombuf;
		assert_int_equal(rte_mempool_get_bulk(pool, held, nheld), 0);
		n = exchange(&m, 1, out, &ol);
		rte_mempool_put_bulk(pool, held, nheld);
		if (n == 0) {
			assert_int_equal(w.st.drop_nombuf, drops + 1);
			lost++;
		} else {
			assert_int_equal(n, 3);
			assert_int_equal(ol, wl);
			assert_memory_equal(out, want, wl);
			whole++;
		}
		assert_int_equal(rte_mempool_avail_count(pool), NB_MBUF);
	}
	/* Enough mbufs for the whole chained reply at the top, none at the bottom. */
	assert_true(whole > 0 && lost > 0);
	put_item("big2", "new", 3, 0);
	assert_no_leaks();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksums_at_every_length),
		cmocka_unit_test(test_bad_request_checksum_dropped),
		cmocka_unit_test(test_nic_checksum_verdicts),
		cmocka_unit_test(test_zero_copy_and_its_copy_fallback),
		cmocka_unit_test(test_out_of_mbufs_mid_reply),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
