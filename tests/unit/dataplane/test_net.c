/* Dataplane L2/L3: ARP and ICMP answered in place, every malformed case dropped with its own
 * counter, nothing leaked. Frames go through the production burst function on a ring port. The
 * software checksum against DPDK's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
#include "dataplane/dp_int.h"
#include "tests/unit/common/eal.h"
#include "tests/unit/common/frame.h"

static struct rte_mempool *pool;
static struct rte_ring *tx_ring;
static struct mc_config cfg;
static struct mc_worker w;

static struct mc_proto_conf pconf = {.udp_admin = false, .udp_writes = true};

static int
setup(void **state)
{
	struct mc_store_settings set = {.nparts = 1, .max_item_size = 64 << 10, .factor = 1.25,
					.chunk_min = 48};
	struct mc_store *store;
	(void)state;
	assert_int_equal(mc_test_ring_worker("ut", 1023, &cfg, &w, &pool, &tx_ring), 0);
	store = mc_store_create(rte_malloc(NULL, 8 << 20, 64), 8 << 20, &set);
	assert_non_null(store);
	w.svc = mc_dp_service_create(store, &pconf, set.max_item_size, 0);
	assert_non_null(w.svc);
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

/* A rate limiter with fixed secrets (so slots are known) for cfg's rates. */
static struct mc_rl *
limiter(uint32_t rps, uint32_t kbps, uint32_t burst_ms)
{
	struct mc_config c = cfg;
	struct mc_rl *rl;
	c.src_rps = rps;
	c.src_kbps = kbps;
	c.src_burst_ms = burst_ms;
	c.udp_reply_max = 1400;
	rl = mc_dp_rl_create(&c, rte_get_tsc_hz(), 0);
	assert_non_null(rl);
	rl->k0 = 0x5bd1e9955bd1e995ull;
	rl->k1 = 0x9e3779b97f4a7c15ull;
	return rl;
}

static unsigned int
slot_of(const struct mc_rl *rl, uint32_t src_be)
{
	return (unsigned int)(((src_be ^ rl->k0) * rl->k1) >> 48);
}

/* Budgets: a new source gets a small burst (5 ms of its rate), not a second's worth; refills
 * at the rate under steady traffic; reply bytes are charged before the reply leaves; the
 * budget holds across workers; sources that share a slot share a budget. */
static void
test_rate_limits_per_source(void **state)
{
	const uint32_t a = rte_cpu_to_be_32(0xc6120002u), b = rte_cpu_to_be_32(0xc6120003u);
	struct mc_worker w2;
	struct mc_rl *rl = limiter(1000, 1, 5);
	int i;
	(void)state;
	assert_int_not_equal(slot_of(rl, a), slot_of(rl, b));
	w.rl = rl;
	w.now = rte_rdtsc();
	/* 1000 requests a second, 5 ms of burst: five at once, then the sixth is refused. */
	for (i = 0; i < 5; i++)
		assert_true(mc_dp_rl_admit(&w, a));
	assert_false(mc_dp_rl_admit(&w, a));
	/* Another worker (another queue RSS sent a to) sees the same budget. */
	w2 = w;
	w2.queue_id = 1;
	assert_false(mc_dp_rl_admit(&w2, a));
	/* Another source has its own. Reply bytes are charged before the reply is sent: 1 KiB a
	 * second, with a burst of two 1400-byte replies; what the budget cannot pay is refused,
	 * and a source with its byte budget spent gets no more requests in. */
	assert_true(mc_dp_rl_admit(&w, b));
	assert_true(mc_dp_rl_charge(&w, b, 2800));
	assert_false(mc_dp_rl_charge(&w, b, 100));
	assert_false(mc_dp_rl_admit(&w, b));
	mc_dp_rl_destroy(rl);
	/* Steady traffic refills at the rate: at 1000/s a request every 1 ms is served, and
	 * every other one when they come each 0.5 ms. The clock is set here, not read. */
	{
		const uint32_t c3 = rte_cpu_to_be_32(0xc6120004u);
		const uint64_t ms = rte_get_tsc_hz() / 1000 + 1;
		unsigned int served = 0, k;
		w.rl = rl = limiter(1000, 0, 5);
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
		mc_dp_rl_destroy(rl);
	}
	/* Two sources in one slot alternate: together they get one source's burst, not two. */
	{
		const uint32_t c = rte_cpu_to_be_32(0xc6120010u);
		uint32_t d = 0;
		unsigned int served = 0, x;
		w.rl = rl = limiter(1000, 0, 5);
		for (x = 0x0a000001u; d == 0; x++)
			if (x != 0xc6120010u && slot_of(rl, rte_cpu_to_be_32(x)) == slot_of(rl, c))
				d = rte_cpu_to_be_32(x);
		for (i = 0; i < 10; i++)
			served += mc_dp_rl_admit(&w, (i & 1) ? d : c);
		assert_int_equal(served, 5);
		mc_dp_rl_destroy(rl);
	}
	w.rl = NULL;
}

/* An ICMP echo request from src (host order) with a valid checksum. */
static struct rte_mbuf *
echo_request(uint32_t src)
{
	uint8_t f[14 + 20 + 8 + 16];
	size_t n = eth_hdr(f, 0x0800);
	uint16_t ck;
	n += ip_hdr(f + n, 0x45, 20 + 8 + 16, 0, IPPROTO_ICMP, src);
	memset(f + n, 0, 24);
	f[n] = 8;
	ck = (uint16_t)~rte_raw_cksum(f + n, 24);
	memcpy(f + n + 2, &ck, 2);
	return frame(f, sizeof(f));
}

/* An ARP request for our address from sender address sip (host order). */
static struct rte_mbuf *
arp_request(uint32_t sip)
{
	uint8_t f[60] = {0};
	size_t n = eth_hdr(f, 0x0806);
	const uint8_t arp[] = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, (uint8_t)(sip >> 24),
			       (uint8_t)(sip >> 16), (uint8_t)(sip >> 8), (uint8_t)sip,
			       0, 0, 0, 0, 0, 0, 198, 18, 0, 1};
	memset(f, 0xff, 6);
	memcpy(f + n, arp, sizeof(arp));
	return frame(f, sizeof(f));
}

/* A memcached "version" request from src:sport (host order). */
static struct rte_mbuf *
udp_request(uint32_t src, uint16_t sport)
{
	uint8_t f[MC_FRAME_HDR_LEN + 9];
	mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, src, 0xc6120001u, sport, 11211, 1,
			 "version\r\n", 9);
	return frame(f, sizeof(f));
}

static void
expect_drop(struct rte_mbuf *m, const uint64_t *counter, const char *what)
{
	const uint64_t before = *counter;
	struct rte_mbuf *r = run(m);
	if (r != NULL) {
		rte_pktmbuf_free(r);
		fail_msg("%s: answered", what);
	}
	if (*counter != before + 1)
		fail_msg("%s: counter did not move", what);
}

/* ICMP echo and ARP obey the allow list and the per-source budget, as memcached requests do:
 * a forged source gets nothing reflected to it. */
static void
test_icmp_and_arp_obey_allow_list_and_budget(void **state)
{
	struct rte_mbuf *r;
	int i, answered = 0;
	(void)state;
	/* 198.19.0.9: outside the default allow list (our /24). */
	expect_drop(echo_request(0xc6130009u), &w.st.drop_not_allowed, "ICMP from outside");
	expect_drop(arp_request(0xc6130009u), &w.st.drop_not_allowed, "ARP from outside");
	/* Inside it, answered, within a budget: 1000/s with 5 ms of burst. */
	w.rl = limiter(1000, 0, 5);
	w.now = rte_rdtsc();
	for (i = 0; i < 8; i++) {
		r = run(i & 1 ? arp_request(0xc6120002u) : echo_request(0xc6120002u));
		if (r != NULL) {
			answered++;
			rte_pktmbuf_free(r);
		}
	}
	assert_int_equal(answered, 5);
	assert_int_equal(w.st.drop_ratelimit, 3);
	mc_dp_rl_destroy(w.rl);
	w.rl = NULL;
	/* An allow list of routed clients only: neighbours on our subnet (the router) still
	 * resolve us by ARP, but get no echo. */
	cfg.n_allow = 1;
	cfg.allow[0].net = 0x0a000000u;
	cfg.allow[0].mask = 0xff000000u;
	/* The config is fixed while a worker runs: it remembers the sources that passed the
	 * old list. Forget them, as a worker started with this config would not know them. */
	memset(w.src_ok, 0, sizeof(w.src_ok));
	r = run(arp_request(0xc6120002u));
	assert_non_null(r);
	rte_pktmbuf_free(r);
	expect_drop(echo_request(0xc6120002u), &w.st.drop_not_allowed, "ICMP, not allowed");
	expect_drop(arp_request(0xc6130009u), &w.st.drop_not_allowed, "ARP, off the subnet");
	cfg.n_allow = 0;
	memset(w.src_ok, 0, sizeof(w.src_ok));
}

/* Sources nothing honest sends from: our own address, and our subnet's network and broadcast
 * addresses (a reply would go to us, or to the whole subnet). ARP likewise. */
static void
test_sources_that_cannot_be_answered(void **state)
{
	(void)state;
	expect_drop(udp_request(0xc6120001u, 40000), &w.st.drop_ip_src, "UDP from ourselves");
	expect_drop(udp_request(0xc6120000u, 40000), &w.st.drop_ip_src, "UDP from the network");
	expect_drop(udp_request(0xc61200ffu, 40000), &w.st.drop_ip_src, "UDP from broadcast");
	expect_drop(echo_request(0xc61200ffu), &w.st.drop_ip_src, "ICMP from broadcast");
	expect_drop(arp_request(0xc6120001u), &w.st.drop_arp, "ARP from ourselves");
	expect_drop(arp_request(0xc61200ffu), &w.st.drop_arp, "ARP from broadcast");
}

/* A request whose memcached frame header is bad (a multi-datagram request here) is charged to
 * its source's budget and counted as a request before it is dropped (drop_frame); over budget,
 * it is a rate-limit drop like any other request. */
static void
test_bad_frame_header_after_the_budget(void **state)
{
	struct rte_mbuf *m;
	const uint64_t reqs = w.st.udp_requests;
	int i;
	(void)state;
	m = udp_request(0xc6120002u, 40000);
	rte_pktmbuf_mtod(m, uint8_t *)[42 + 5] = 2; /* total = 2 */
	{
		struct rte_udp_hdr *u = rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 34);
		u->dgram_cksum = 0; /* no checksum: the edit stands */
	}
	expect_drop(m, &w.st.drop_frame, "bad frame header");
	assert_int_equal(w.st.udp_requests, reqs + 1);
	w.rl = limiter(1000, 0, 5);
	w.now = rte_rdtsc();
	for (i = 0; i < 5; i++) {
		struct rte_mbuf *r = run(udp_request(0xc6120002u, 40000));
		assert_non_null(r);
		rte_pktmbuf_free(r);
	}
	m = udp_request(0xc6120002u, 40000);
	rte_pktmbuf_mtod(m, uint8_t *)[42 + 5] = 2;
	rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 34)->dgram_cksum = 0;
	expect_drop(m, &w.st.drop_ratelimit, "bad frame header over budget");
	mc_dp_rl_destroy(w.rl);
	w.rl = NULL;
}

/* Reply bytes are charged in the burst before a reply leaves, on the lone get's path and the
 * general one alike: a 1 KiB/s budget with its least burst (two 1400-byte replies) pays two
 * replies of 1,361 to 1,378 bytes from a source and refuses the third, counted. */
static void
test_reply_bytes_charged_in_the_burst(void **state)
{
	static const char *const reqs[2] = {"get rl-big\r\n", "mg rl-big v\r\n"};
	static uint8_t v[1300];
	struct mc_key k;
	unsigned int path, i, got;
	(void)state;
	memset(v, 'b', sizeof(v));
	mc_key_init(&k, w.svc->px.sx.s, "rl-big", 6);
	assert_int_equal(mc_store_store(&w.svc->px.sx, &k,
					&(struct mc_store_args){.mode = MC_SET, .val = v,
								.vlen = sizeof(v)},
					NULL),
			 MC_STORED);
	w.rl = limiter(100000, 1, 5);
	for (path = 0; path < 4; path++) {
		/* One worker's limiter, then one shared by workers (compare-and-swap). */
		const uint32_t src = 0xc6120020u + path;
		const size_t len = strlen(reqs[path & 1]);
		const uint64_t limited = w.st.drop_ratelimit;
		struct rte_mbuf *ms[3];
		void *out[8];
		for (i = 0; i < 3; i++) {
			uint8_t f[MC_FRAME_HDR_LEN + 32];
			mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, src, 0xc6120001u, 40000,
					 11211, (uint16_t)i, reqs[path & 1], len);
			ms[i] = frame(f, MC_FRAME_HDR_LEN + len);
		}
		w.rl->shared = path >= 2;
		mc_dp_handle_burst(&w, ms, 3);
		mc_dp_tx_flush(&w);
		got = rte_ring_dequeue_burst(tx_ring, out, RTE_DIM(out), NULL);
		assert_int_equal(got, 2);
		for (i = 0; i < got; i++) {
			struct rte_mbuf *r = out[i];
			assert_true(rte_pktmbuf_pkt_len(r) > 1350);
			rte_pktmbuf_free(r);
		}
		assert_int_equal(w.st.drop_ratelimit, limited + 1);
	}
	mc_dp_rl_destroy(w.rl);
	w.rl = NULL;
}

/* The worker remembers sources that passed its checks, by their address's last byte: another
 * source in the same place is checked in full, not waved through, and a refused one does not
 * make the remembered one forgotten or refused. */
static void
test_remembered_sources_are_exact(void **state)
{
	struct rte_mbuf *r;
	(void)state;
	r = run(udp_request(0xc6120002u, 40000)); /* 198.18.0.2: allowed, now remembered */
	assert_non_null(r);
	rte_pktmbuf_free(r);
	expect_drop(udp_request(0xc6130002u, 40000), &w.st.drop_not_allowed,
		    "198.19.0.2, outside the list, in 198.18.0.2's place");
	expect_drop(echo_request(0xc6130002u), &w.st.drop_not_allowed, "ICMP from 198.19.0.2");
	expect_drop(udp_request(0xc6120102u, 40000), &w.st.drop_not_allowed,
		    "198.18.1.2, outside our /24, in 198.18.0.2's place");
	r = run(udp_request(0xc6120002u, 40000));
	assert_non_null(r);
	rte_pktmbuf_free(r);
	/* Our subnet's broadcast address shares its place with nothing allowed: refused each
	 * time, never remembered. */
	expect_drop(udp_request(0xc61200ffu, 40000), &w.st.drop_ip_src, "UDP from broadcast");
	expect_drop(udp_request(0xc61200ffu, 40000), &w.st.drop_ip_src, "UDP from broadcast again");
}

/* Datagrams from the ports of services that answer anything (echo, chargen, DNS, NTP, SSDP,
 * mDNS, memcached, ...) would start a reflection loop: counted drops. */
static void
test_reflection_loops_refused(void **state)
{
	static const uint16_t ports[] = {0, 7, 13, 17, 19, 37, 53, 69, 111, 123, 137, 161, 389,
					 1023, 1900, 5353, 11211};
	struct rte_mbuf *r;
	size_t i;
	(void)state;
	for (i = 0; i < RTE_DIM(ports); i++) {
		char what[32];
		snprintf(what, sizeof(what), "source port %u", ports[i]);
		expect_drop(udp_request(0xc6120002u, ports[i]), &w.st.drop_src_port, what);
	}
	/* Above and between them, and right past the highest (which one compare passes), a
	 * client's port is answered. */
	{
		static const uint16_t ok[] = {1024, 1901, 5354, 11210, 11212, 40000};
		for (i = 0; i < RTE_DIM(ok); i++) {
			r = run(udp_request(0xc6120002u, ok[i]));
			assert_non_null(r);
			rte_pktmbuf_free(r);
		}
	}
}

/* The software checksum (the adc chain on x86-64, 32 bytes a step, and its tails) gives
 * rte_raw_cksum's sum for every length to 256 at every alignment, over bytes that carry and
 * all-ones bytes, and adds a starting sum as one's-complement arithmetic does. */
static void
test_checksum_sum_matches_dpdk(void **state)
{
	static const uint64_t starts[] = {0, 1, 0xffff, 0x123456789abcdefull, UINT64_MAX - 1};
	static uint8_t buf[264 + 8];
	unsigned int pass, len, off, i;
	(void)state;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = pass ? 0xff : (uint8_t)(i * 151 + 7 + (i >> 3));
		for (len = 0; len <= 256; len++) {
			for (off = 0; off < 8; off++) {
				const uint16_t want = rte_raw_cksum(buf + off, len);
				assert_int_equal(cksum_sum(buf + off, len, 0), want);
				for (i = 0; i < RTE_DIM(starts); i++) {
					const uint64_t st = starts[i];
					const uint32_t st16 = (uint32_t)(st % 0xffff);
					assert_int_equal(cksum_sum(buf + off, len, st) % 0xffff,
							 (want + st16) % 0xffff);
				}
			}
		}
	}
}

/* The checksum reads only its len bytes (the short tail is one load that ends where they
 * end): the same sum whatever lies on either side, and under ASan, no read past an
 * allocation of exactly len bytes. */
static void
test_checksum_reads_only_its_bytes(void **state)
{
	static uint8_t around[2][16 + 64 + 16];
	unsigned int len, i, side;
	(void)state;
	for (len = 1; len <= 64; len++) {
		uint8_t *exact = malloc(len);
		uint16_t sums[2];
		assert_non_null(exact);
		for (i = 0; i < len; i++)
			exact[i] = (uint8_t)(i * 37 + 11);
		for (side = 0; side < 2; side++) {
			memset(around[side], side ? 0xff : 0x00, sizeof(around[side]));
			memcpy(around[side] + 16, exact, len);
			sums[side] = cksum_sum(around[side] + 16, len, 0);
		}
		assert_int_equal(sums[0], sums[1]);
		assert_int_equal(cksum_sum(exact, len, 0), sums[0]);
		assert_int_equal(sums[0], rte_raw_cksum(exact, len));
		free(exact);
	}
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
		cmocka_unit_test(test_icmp_and_arp_obey_allow_list_and_budget),
		cmocka_unit_test(test_sources_that_cannot_be_answered),
		cmocka_unit_test(test_remembered_sources_are_exact),
		cmocka_unit_test(test_reflection_loops_refused),
		cmocka_unit_test(test_bad_frame_header_after_the_budget),
		cmocka_unit_test(test_reply_bytes_charged_in_the_burst),
		cmocka_unit_test(test_checksum_sum_matches_dpdk),
		cmocka_unit_test(test_checksum_reads_only_its_bytes),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
