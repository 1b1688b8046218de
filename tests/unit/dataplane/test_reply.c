/* Replies end to end through the production burst function on a ring port: request
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

#include <time.h>

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
	w.svc = mc_dp_service_create(store, &pconf, set.max_item_size, 0);
	assert_non_null(w.svc);
	assert_int_equal(mc_dp_service_zero_copy(w.svc, 1024, 0), 0);
	return 0;
}

static void
put_item(const char *key, const void *val, uint32_t vlen, uint32_t flags)
{
	struct mc_key k;
	mc_key_init(&k, store, key, (uint32_t)strlen(key));
	assert_int_equal(
		mc_store_store(&w.svc->px.sx, &k,
			       &(struct mc_store_args){
				       .mode = MC_SET, .flags = flags, .val = val, .vlen = vlen},
			       NULL),
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
	struct mc_udp_frame f = {0};
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

/* Every value length 0..300, key lengths 1..40 (odd in one round, even in the next), flags of
 * 1 to 10 digits, get and gets (its CAS), a burst at a time, all answered by the lone get's
 * path: each reply is exact and its checksums are right, so every tail of the checksum loop,
 * and every parity the lone get's sum from its parts adds a piece at, is exercised. */
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
	for (vlen = 0; vlen < 300; vlen += 5) {
		static const uint32_t fl[] = {0,	 7,	   42,	      907,	  4242,	 65535,
					      123456, 9999999, 12345678, 987654321, 4294967295u};
		struct rte_mbuf *ms[32];
		const uint64_t fast = w.svc->px.st.cmd_get_fast;
		size_t wl = 0, ol;
		unsigned int n = 0, klen;
		for (klen = 1 + (vlen / 5) % 2; klen <= 40; klen += 2) {
			const uint32_t flags = fl[(klen + vlen / 5) % RTE_DIM(fl)];
			const uint32_t vl = vlen + klen % 10;
			char key[48], req[64];
			unsigned int j;
			for (j = 0; j < klen; j++)
				key[j] = (char)('a' + (j + vlen) % 26);
			key[klen] = '\0';
			put_item(key, v + (klen % 7), vl, flags);
			if (klen % 3 == 0) {
				struct mc_key k;
				uint8_t got[320];
				uint64_t cas;
				uint32_t gl, gf;
				mc_key_init(&k, store, key, klen);
				assert_int_equal(mc_store_get(&w.svc->px.sx, &k, got, sizeof(got), &gl,
							      &gf, &cas),
						 MC_OK);
				ms[n] = request(req, (size_t)sprintf(req, "gets %s\r\n", key),
						(uint16_t)n);
				wl += (size_t)sprintf(want + wl, "VALUE %s %u %u %llu\r\n", key, flags,
						      vl, (unsigned long long)cas);
				memcpy(want + wl, v + (klen % 7), vl);
				memcpy(want + wl + vl, "\r\nEND\r\n", 7);
				wl += vl + 7;
			} else {
				ms[n] = request(req, (size_t)sprintf(req, "get %s\r\n", key),
						(uint16_t)n);
				wl += value_reply(want + wl, key, flags, v + (klen % 7), vl);
			}
			n++;
		}
		assert_int_equal(exchange(ms, n, out, &ol), n);
		assert_int_equal(ol, wl);
		assert_memory_equal(out, want, wl);
		assert_int_equal(w.svc->px.st.cmd_get_fast - fast, n);
	}
}

/* Multi-gets in one datagram, values of odd and even lengths at odd and even offsets, long
 * ones (their kept sums are used, up to eight) and short ones (summed): the reply's checksum
 * is right whichever way each value is counted, and with more than eight kept. */
#define KSUM_LEN(i) ((i) % 4 == 3 ? 1 + (i) : 128 + ((i)&1))
static void
test_checksums_with_kept_value_sums(void **state)
{
	static uint8_t out[1 << 16];
	static char want[1 << 16];
	uint8_t v[256];
	unsigned int nkeys, i;
	(void)state;
	for (i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)(i * 29 + 3);
	for (i = 0; i < 11; i++) {
		char key[8];
		snprintf(key, sizeof(key), "m%u", i);
		put_item(key, v + i, KSUM_LEN(i), i);
	}
	for (nkeys = 1; nkeys <= 11; nkeys++) {
		char req[256];
		size_t rl = 4, wl = 0, ol;
		struct rte_mbuf *m;
		memcpy(req, "get ", 4);
		for (i = 0; i < nkeys; i++) {
			char key[8];
			int n = snprintf(key, sizeof(key), "m%u", i);
			rl += (size_t)sprintf(req + rl, "%s%s", key, i + 1 < nkeys ? " " : "\r\n");
			wl += (size_t)sprintf(want + wl, "VALUE %s %u %u\r\n", key, i, KSUM_LEN(i));
			memcpy(want + wl, v + i, KSUM_LEN(i));
			wl += KSUM_LEN(i);
			memcpy(want + wl, "\r\n", 2);
			wl += 2;
			(void)n;
		}
		memcpy(want + wl, "END\r\n", 5);
		wl += 5;
		m = request(req, rl, (uint16_t)nkeys);
		assert_int_equal(exchange(&m, 1, out, &ol), 1);
		assert_int_equal(ol, wl);
		assert_memory_equal(out, want, wl);
	}
	/* Values joined by append and prepend, of odd lengths: their sums are joined too. */
	{
		static const char *const ops[] = {"append", "prepend", "append", "prepend"};
		char vj[600];
		size_t vl = 129, wl, ol, k;
		struct rte_mbuf *m;
		memcpy(vj, v, vl);
		put_item("joined", vj, (uint32_t)vl, 0);
		for (k = 0; k < 4; k++) {
			char req[256];
			const size_t add = 3 + 2 * k;
			int n = snprintf(req, sizeof(req), "%s joined 0 0 %zu\r\n", ops[k], add);
			memcpy(req + n, v + 100 + k, add);
			memcpy(req + n + add, "\r\n", 2);
			m = request(req, (size_t)n + add + 2, 90);
			assert_int_equal(exchange(&m, 1, out, &ol), 1);
			assert_memory_equal(out, "STORED\r\n", 8);
			if (k & 1) {
				memmove(vj + add, vj, vl);
				memcpy(vj, v + 100 + k, add);
			} else {
				memcpy(vj + vl, v + 100 + k, add);
			}
			vl += add;
			m = request("get joined\r\n", 12, 91);
			assert_int_equal(exchange(&m, 1, out, &ol), 1);
			wl = value_reply(want, "joined", 0, (const uint8_t *)vj, (uint32_t)vl);
			assert_int_equal(ol, wl);
			assert_memory_equal(out, want, wl);
		}
	}
}

/* A lone "get <key>\r\n" is answered where it lies (no struct mc_out, no tokenizer): get,
 * gets with its CAS, a miss, a value long enough for its kept sum, and the 802.1Q tag kept;
 * counted once each. A lone get that cannot be answered so (a value to reference, a reply over
 * the amplification cap) falls back to the general path having written and counted nothing. */
static void
test_lone_get_where_it_lies(void **state)
{
	static uint8_t out[1 << 16];
	static char want[1 << 16];
	uint8_t v[300], v2[300], zc[2000];
	struct mc_proto_stats p0;
	struct mc_store_ctx_stats s0;
	struct rte_mbuf *ms[5];
	struct mc_key k;
	uint64_t cas;
	uint32_t vl, fl;
	size_t wl = 0, ol;
	unsigned int i;
	(void)state;
	for (i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)(i * 13 + 5);
	memset(zc, 'z', sizeof(zc));
	put_item("lone-a", v, 5, 0);
	put_item("lone-b", v + 1, 259, 4242);
	put_item("lone-zc", zc, sizeof(zc), 1);
	mc_key_init(&k, store, "lone-b", 6);
	assert_int_equal(mc_store_get(&w.svc->px.sx, &k, v2, sizeof(v2), &vl, &fl, &cas), MC_OK);
	ms[0] = request("get lone-a\r\n", 12, 1);
	wl += value_reply(want + wl, "lone-a", 0, v, 5);
	ms[1] = request("gets lone-b\r\n", 13, 2);
	wl += (size_t)sprintf(want + wl, "VALUE lone-b 4242 259 %llu\r\n", (unsigned long long)cas);
	memcpy(want + wl, v + 1, 259);
	wl += 259;
	memcpy(want + wl, "\r\nEND\r\n", 7);
	wl += 7;
	ms[2] = request("get lone-b\r\n", 12, 3);
	wl += value_reply(want + wl, "lone-b", 4242, v + 1, 259);
	ms[3] = request("get lone-none\r\n", 15, 4);
	memcpy(want + wl, "END\r\n", 5);
	wl += 5;
	/* Referenced (zero-copy from 1024 bytes here): the general path sends it. */
	ms[4] = request("get lone-zc\r\n", 13, 5);
	wl += value_reply(want + wl, "lone-zc", 1, zc, sizeof(zc));
	p0 = w.svc->px.st;
	s0 = w.svc->px.sx.st;
	assert_int_equal(exchange(ms, 5, out, &ol), 6);
	assert_int_equal(ol, wl);
	assert_memory_equal(out, want, wl);
	assert_int_equal(w.svc->px.st.cmd_get_fast - p0.cmd_get_fast, 5);
	assert_int_equal(w.svc->px.st.cmd_ascii - p0.cmd_ascii, 5);
	assert_int_equal(w.svc->px.sx.st.cmd_get - s0.cmd_get, 5);
	assert_int_equal(w.svc->px.sx.st.get_hits - s0.get_hits, 4);
	assert_int_equal(w.svc->px.sx.st.get_misses - s0.get_misses, 1);

	/* Tagged: the reply keeps the tag, its sums are right. */
	{
		uint8_t buf[256];
		void *r[4];
		struct rte_mbuf *m = request("get lone-a\r\n", 12, 6), *t = rte_pktmbuf_alloc(pool);
		const uint32_t n = rte_pktmbuf_pkt_len(m);
		const uint8_t *p;
		const struct rte_ipv4_hdr *ip;
		const struct rte_udp_hdr *udp;
		uint32_t sum;
		memcpy(buf, rte_pktmbuf_mtod(m, uint8_t *), 12);
		memcpy(buf + 12, "\x81\x00\x00\x07", 4);
		memcpy(buf + 16, rte_pktmbuf_mtod(m, uint8_t *) + 12, n - 12);
		rte_pktmbuf_free(m);
		assert_non_null(t);
		memcpy(rte_pktmbuf_append(t, (uint16_t)(n + 4)), buf, n + 4);
		mc_dp_handle_burst(&w, &t, 1);
		mc_dp_tx_flush(&w);
		assert_int_equal(rte_ring_dequeue_burst(tx_ring, r, 4, NULL), 1);
		m = r[0];
		p = rte_pktmbuf_mtod(m, const uint8_t *);
		assert_memory_equal(p, mc_test_cli_mac, 6);
		assert_memory_equal(p + 6, mc_test_our_mac, 6);
		assert_memory_equal(p + 12, "\x81\x00\x00\x07\x08\x00", 6);
		ip = (const struct rte_ipv4_hdr *)(p + 18);
		udp = (const struct rte_udp_hdr *)(ip + 1);
		assert_int_equal(rte_be_to_cpu_16(ip->total_length), rte_pktmbuf_pkt_len(m) - 18);
		assert_int_equal(rte_ipv4_cksum(ip), 0);
		sum = rte_ipv4_phdr_cksum(ip, 0) + rte_raw_cksum(udp, rte_pktmbuf_pkt_len(m) - 38);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		assert_int_equal(sum, 0xffff);
		wl = value_reply(want, "lone-a", 0, v, 5);
		assert_int_equal(rte_pktmbuf_pkt_len(m), 18 + 20 + 8 + 8 + wl);
		assert_memory_equal(p + 54, want, wl);
		rte_pktmbuf_free(m);
	}

	/* Over the amplification cap (4 reply bytes per request byte): what the general path
	 * answers, counted once. */
	{
		const uint32_t ratio = cfg.max_reply_ratio;
		const uint64_t fast = w.svc->px.st.cmd_get_fast;
		cfg.max_reply_ratio = 4;
		ms[0] = request("get lone-b\r\n", 12, 7);
		assert_int_equal(exchange(ms, 1, out, &ol), 1);
		cfg.max_reply_ratio = ratio;
		assert_true(ol > 13 && memcmp(out, "SERVER_ERROR ", 13) == 0);
		assert_int_equal(w.svc->px.st.cmd_get_fast - fast, 1);
	}

	/* A lone get that must go the general way (under a cap that leaves it no room in place;
	 * nothing fits the reply either) of an item expired as it was stored: looked up once,
	 * its expiry counted once. */
	{
		const uint32_t ratio = cfg.max_reply_ratio;
		const uint64_t expired = w.svc->px.sx.st.get_expired;
		mc_key_init(&k, store, "lone-exp", 8);
		assert_int_equal(mc_store_store(&w.svc->px.sx, &k,
						&(struct mc_store_args){.mode = MC_SET,
									.exptime = mc_store_now(store),
									.val = "x",
									.vlen = 1},
						NULL),
				 MC_STORED);
		cfg.max_reply_ratio = 2; /* 44 bytes: under the reply's reserve */
		ms[0] = request("get lone-exp\r\n", 14, 8);
		exchange(ms, 1, out, &ol);
		cfg.max_reply_ratio = ratio;
		assert_int_equal(w.svc->px.sx.st.get_expired - expired, 1);
	}

	/* A request in a buffer someone else holds too (a reference count of 2): answered, and
	 * not where it lies; the other holder's bytes are as they were. */
	{
		uint8_t before[128];
		struct rte_mbuf *m = request("get lone-a\r\n", 12, 9);
		const uint16_t len = rte_pktmbuf_data_len(m), off = m->data_off;
		assert_true(len <= sizeof(before));
		memcpy(before, rte_pktmbuf_mtod(m, uint8_t *), len);
		rte_mbuf_refcnt_update(m, 1);
		ms[0] = m;
		assert_int_equal(exchange(ms, 1, out, &ol), 1);
		wl = value_reply(want, "lone-a", 0, v, 5);
		assert_int_equal(ol, wl);
		assert_memory_equal(out, want, wl);
		assert_int_equal(rte_mbuf_refcnt_read(m), 1);
		assert_int_equal(m->data_off, off);
		assert_int_equal(rte_pktmbuf_data_len(m), len);
		assert_memory_equal(rte_pktmbuf_mtod(m, uint8_t *), before, len);
		rte_pktmbuf_free(m);
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
	/* Any bit of a lone get's datagram (its sum worked out from its parts in stage 2:
	 * headers, command, key, end of line), of a lone gets (its key at an odd offset), of
	 * requests summed whole, flipped: dropped as a bad sum. The source port's low byte
	 * (a port no less ephemeral), the sum, the frame header and the request. */
	{
		static const char *const reqs[] = {"get ck\r\n", "gets ck\r\n", "get ckk\r\n",
						    "gets ckk\r\n", "get ck ck\r\n", "mg ck v\r\n"};
		unsigned int r, at;
		for (r = 0; r < RTE_DIM(reqs); r++) {
			const unsigned int rl = (unsigned int)strlen(reqs[r]);
			m = request(reqs[r], rl, 3);
			assert_int_equal(exchange(&m, 1, out, &ol), 1); /* whole, it is answered */
			for (at = 35; at < 50 + rl; at++) {
				if (at >= 36 && at < 40)
					continue; /* the destination port and the length */
				before = w.st.drop_udp_cksum;
				m = request(reqs[r], rl, 3);
				rte_pktmbuf_mtod(m, uint8_t *)[at] ^= (uint8_t)(at & 1 ? 0x10 : 0x01);
				assert_int_equal(exchange(&m, 1, out, &ol), 0);
				assert_int_equal(w.st.drop_udp_cksum, before + 1);
			}
		}
	}
	/* The sum of a lone gets near 2^64 before the key's is added: a 231-byte key (a UDP
	 * length of 254) whose checksum field is 0xffff, so the headers' two words carry ones
	 * in their top 24 bits. Two key bytes (a 16-bit word at an even offset of the datagram)
	 * are chosen to make the field 0xffff. Answered, not dropped. */
	{
		static char key[232], req[256];
		uint8_t f[MC_FRAME_HDR_LEN + 256];
		const struct rte_udp_hdr *u = (const struct rte_udp_hdr *)(f + 34);
		unsigned int c, found = 0;
		size_t rl = 0;
		for (c = 0; c < 26 * 94 * 94 && found < 2; c++) {
			uint32_t s0, want;
			memset(key, 'a' + (int)(c / (94 * 94)), 227);
			key[227] = (char)('!' + c / 94 % 94); /* offsets 248, 249: move the sum */
			key[228] = (char)('!' + c % 94);
			key[229] = key[230] = 'k'; /* at datagram offsets 250 and 251 */
			rl = (size_t)sprintf(req, "gets %s\r\n", key);
			mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, 0xc6120002u, 0xc6120001u,
					 40000, 11211, 5, req, rl);
			/* The field is ~S; 0 in it needs S = 0xffff: move the word by -S. */
			s0 = (uint16_t)~rte_be_to_cpu_16(u->dgram_cksum);
			want = ((uint32_t)('k' << 8 | 'k') + 0xffffu - s0) % 0xffffu;
			if ((want >> 8) < '!' || (want >> 8) > '~' || (want & 0xff) < '!' ||
			    (want & 0xff) > '~')
				continue;
			key[229] = (char)(want >> 8);
			key[230] = (char)(want & 0xff);
			rl = (size_t)sprintf(req, "gets %s\r\n", key);
			mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, 0xc6120002u, 0xc6120001u,
					 40000, 11211, 5, req, rl);
			assert_int_equal(u->dgram_cksum, 0xffff);
			assert_int_equal(rte_be_to_cpu_16(u->dgram_len), 254);
			found++;
			put_item(key, "v", 1, 0);
			m = rte_pktmbuf_alloc(pool);
			assert_non_null(m);
			memcpy(rte_pktmbuf_append(m, (uint16_t)(MC_FRAME_HDR_LEN + rl)), f,
			       MC_FRAME_HDR_LEN + rl);
			before = w.st.drop_udp_cksum;
			assert_int_equal(exchange(&m, 1, out, &ol), 1);
			assert_int_equal(w.st.drop_udp_cksum, before);
		}
		assert_int_equal(found, 2);
	}
	/* From a reflector's port (DNS), a bad sum is still counted as a bad sum; a good one
	 * as the port. */
	{
		uint8_t f[MC_FRAME_HDR_LEN + 8];
		const uint64_t port = w.st.drop_src_port;
		before = w.st.drop_udp_cksum;
		mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, 0xc6120002u, 0xc6120001u, 53,
				 11211, 4, "get ck\r\n", 8);
		m = rte_pktmbuf_alloc(pool);
		assert_non_null(m);
		memcpy(rte_pktmbuf_append(m, sizeof(f)), f, sizeof(f));
		assert_int_equal(exchange(&m, 1, out, &ol), 0);
		assert_int_equal(w.st.drop_src_port, port + 1);
		f[52] ^= 0x01;
		m = rte_pktmbuf_alloc(pool);
		assert_non_null(m);
		memcpy(rte_pktmbuf_append(m, sizeof(f)), f, sizeof(f));
		assert_int_equal(exchange(&m, 1, out, &ol), 0);
		assert_int_equal(w.st.drop_udp_cksum, before + 1);
		assert_int_equal(w.st.drop_src_port, port + 1);
	}
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
	uint64_t zc = w.svc->st.zc_values, fb = w.svc->st.zc_fallbacks;
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
	assert_int_equal(w.svc->st.zc_values, zc + 1);
	assert_no_leaks();

	nheld = rte_mempool_avail_count(w.svc->zc_pool);
	assert_true(nheld <= RTE_DIM(held));
	assert_int_equal(rte_mempool_get_bulk(w.svc->zc_pool, held, nheld), 0);
	m = request("get big\r\n", 9, 8);
	assert_int_equal(exchange(&m, 1, out, &ol), 3);
	assert_int_equal(ol, wl);
	assert_memory_equal(out, want, wl);
	assert_int_equal(w.svc->st.zc_fallbacks, fb + 1);
	assert_int_equal(w.svc->st.zc_values, zc + 1);
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

/* ---- the TX backlog and housekeeping ---- */

static void *const SENTINEL = (void *)(uintptr_t)0x40;

/* Leave only `room` free slots in the ring port's TX ring (sentinels stand in for frames a NIC
 * has not sent yet). */
static void
tx_ring_leave(struct rte_ring *r, unsigned int room)
{
	while (rte_ring_free_count(r) > room)
		assert_int_equal(rte_ring_enqueue(r, SENTINEL), 0);
}

/* Take what the ring port sent, sentinels dropped; check and collect each reply datagram. */
static unsigned int
tx_ring_take(struct rte_ring *r, uint8_t *out, size_t *outlen, uint16_t *seq)
{
	void *p;
	unsigned int got = 0;
	while (rte_ring_dequeue(r, &p) == 0) {
		struct rte_mbuf *m = p;
		const uint8_t *fh;
		uint16_t total;
		if (p == SENTINEL)
			continue;
		fh = rte_pktmbuf_mtod_offset(m, const uint8_t *, 42);
		total = (uint16_t)(fh[4] << 8 | fh[5]);
		*outlen += take_reply(m, (uint16_t)(fh[0] << 8 | fh[1]), *seq, total, out + *outlen);
		*seq = (uint16_t)(*seq + 1 == total ? 0 : *seq + 1);
		got++;
	}
	return got;
}

/* A reply of four datagrams meets a TX queue with room for two: the other two wait in the
 * backlog and leave on the next flush. The client gets the whole reply, never half of it. */
static void
test_multi_datagram_reply_paced_not_cut(void **state)
{
	static uint8_t out[8192], v[5000];
	static char want[8192];
	struct rte_mbuf *m;
	uint64_t deferred = w.st.tx_deferred;
	size_t wl, ol = 0;
	uint16_t seq = 0;
	(void)state;
	memset(v, 'p', sizeof(v));
	put_item("pace", v, sizeof(v), 0);
	wl = value_reply(want, "pace", 0, v, sizeof(v));
	tx_ring_leave(tx_ring, 2);
	m = request("get pace\r\n", 10, 9);
	mc_dp_handle_burst(&w, &m, 1);
	mc_dp_tx_flush(&w);
	assert_int_equal(tx_ring_take(tx_ring, out, &ol, &seq), 2);
	assert_int_equal(w.st.tx_deferred, deferred + 1);
	mc_dp_tx_flush(&w);
	assert_int_equal(tx_ring_take(tx_ring, out, &ol, &seq), 2);
	assert_int_equal(ol, wl);
	assert_memory_equal(out, want, wl);
	assert_int_equal(w.tx_n, 0);
	assert_no_leaks();
}

/* A TX queue that takes nothing: replies wait until the backlog cannot hold another whole
 * one; later replies are refused whole (counted), and every reply that leaves is complete. */
static void
test_full_backlog_refuses_whole_replies(void **state)
{
	static uint8_t out[1 << 22], v[60000];
	struct mc_config c2;
	struct mc_worker w2;
	struct rte_mempool *pool2;
	struct rte_ring *tx2;
	unsigned int i, dgrams, fit;
	size_t ol = 0;
	uint16_t seq = 0;
	(void)state;
	assert_int_equal(mc_test_ring_worker("udp2", 4095, &c2, &w2, &pool2, &tx2), 0);
	w2.svc = mc_dp_service_create(store, &pconf, 64 << 10, 0); /* copies: one mbuf a datagram */
	assert_non_null(w2.svc);
	memset(v, 'b', sizeof(v));
	put_item("huge", v, sizeof(v), 0);
	dgrams = mc_udp_dgram_count(sizeof(v) + 30);
	fit = MC_TX_BACKLOG / dgrams;
	tx_ring_leave(tx2, 0);
	for (i = 0; i < fit + 3; i++) {
		uint8_t f[MC_FRAME_HDR_LEN + 10];
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool2);
		assert_non_null(m);
		mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, 0xc6120002u, 0xc6120001u,
				 40000, 11211, (uint16_t)i, "get huge\r\n", 10);
		memcpy(rte_pktmbuf_append(m, sizeof(f)), f, sizeof(f));
		mc_dp_handle_burst(&w2, &m, 1);
	}
	assert_int_equal(w2.st.drop_tx_backlog, 3);
	assert_int_equal(w2.tx_n, fit * dgrams);
	/* The queue drains: every reply queued leaves whole. */
	while (w2.tx_n != 0) {
		size_t before = ol;
		void *p;
		while (rte_ring_dequeue(tx2, &p) == 0)
			if (p != SENTINEL)
				rte_pktmbuf_free(p);
		mc_dp_tx_flush(&w2);
		tx_ring_take(tx2, out, &ol, &seq);
		assert_true(ol > before);
		ol = 0;
	}
	assert_int_equal(seq, 0); /* ended on a reply's last datagram */
	mc_dp_worker_fini(&w2);
	mc_dp_service_destroy(w2.svc);
	assert_int_equal(rte_mempool_avail_count(pool2), 4095);
}

/* A poll with the RX ring never empty: housekeeping still runs every millisecond of (fake)
 * TSC time, so a 2-second TTL expires on time, and a delayed flush_all comes due. */
static void
test_ttl_expires_on_time_under_load(void **state)
{
	static uint8_t out[1 << 16];
	struct rte_ring *rx = rte_ring_lookup("udp_rx");
	const uint64_t hz = rte_get_tsc_hz(), t0 = rte_rdtsc();
	unsigned int step, first_miss = 0;
	int round;
	(void)state;
	assert_non_null(rx);
	w.store = store;
	for (round = 0; round < 2; round++) {
		const char *key = round == 0 ? "ttl2" : "flushed";
		char req[32];
		size_t rl = (size_t)snprintf(req, sizeof(req), "get %s\r\n", key);
		struct mc_key k;
		/* One timeline: round r starts 3 s after round r - 1. */
		const uint64_t base = t0 + 3 * hz * (uint64_t)round;
		w.clock_tsc0 = t0;
		w.hk_next = base;
		w.clock_secs = 3 * (uint64_t)round;
		mc_store_clock_tick(store, w.clock_secs, time(NULL));
		mc_key_init(&k, store, key, (uint32_t)strlen(key));
		assert_int_equal(
			mc_store_store(
				&w.svc->px.sx, &k,
				&(struct mc_store_args){
					.mode = MC_SET,
					.exptime = round == 0 ? mc_store_realtime(store, 2) : 0,
					.val = "v",
					.vlen = 1},
				NULL),
			MC_STORED);
		if (round == 1)
			mc_store_flush(store, 2);
		first_miss = 0;
		/* 10 ms a poll, 3 seconds; the ring holds two bursts before every poll. */
		for (step = 0; step < 300; step++) {
			const uint64_t now = base + hz / 100 * step;
			size_t ol = 0;
			uint16_t seq = 0;
			while (rte_ring_count(rx) < 2 * MC_BURST) {
				struct rte_mbuf *m = request(req, rl, (uint16_t)step);
				assert_int_equal(rte_ring_enqueue(rx, m), 0);
			}
			assert_int_equal(mc_dp_poll(&w, now), MC_BURST);
			assert_true(rte_ring_count(rx) > 0);
			assert_int_equal(tx_ring_take(tx_ring, out, &ol, &seq), MC_BURST);
			if (first_miss == 0 && memcmp(out, "END\r\n", 5) == 0) {
				first_miss = step;
			}
			if (first_miss != 0)
				assert_memory_equal(out, "END\r\n", 5);
		}
		/* Due at 2 s: the step at 2.00 s, or the next when the 10 ms steps round down. */
		if (first_miss < 200 || first_miss > 201)
			fail_msg("round %d: first miss at step %u, not at 2 s", round, first_miss);
		while (rte_ring_count(rx) > 0) {
			void *p = NULL;
			assert_int_equal(rte_ring_dequeue(rx, &p), 0);
			rte_pktmbuf_free(p);
		}
	}
	w.store = NULL;
	assert_no_leaks();
}

/* Each worker sweeps its own partition, whichever port and queue it serves: expired items in
 * every partition are reclaimed (with several ports, only the first port's were). */
static void
test_each_worker_sweeps_its_partition(void **state)
{
	static uint8_t mem2[16 << 20] __attribute__((aligned(64)));
	struct mc_store_settings set = {.nparts = 2, .max_item_size = 64 << 10, .factor = 1.25,
					.chunk_min = 48};
	struct mc_store *s2 = mc_store_create(mem2, sizeof(mem2), &set);
	struct mc_store_ctx cx = {.s = s2};
	struct mc_store_part_stats ps;
	struct mc_worker w1 = w, w2 = w;
	const uint64_t hz = rte_get_tsc_hz(), t0 = rte_rdtsc();
	unsigned int i, step;
	(void)state;
	assert_non_null(s2);
	mc_store_clock_tick(s2, 0, time(NULL));
	for (i = 0; i < 200; i++) {
		char key[16];
		struct mc_key k;
		mc_key_init(&k, s2, key, (uint32_t)snprintf(key, sizeof(key), "sw%u", i));
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET,
						       .exptime = mc_store_realtime(s2, 1),
						       .val = "v",
						       .vlen = 1},
			       NULL);
	}
	/* Port 0 queue 0 owns partition 0; port 1 queue 0 owns partition 1. */
	w1.part = 0;
	w2.part = 1;
	w1.store = w2.store = s2;
	w1.tick = w2.tick = NULL;
	w1.clock_tsc0 = w2.clock_tsc0 = w1.hk_next = w2.hk_next = t0;
	w1.clock_secs = w2.clock_secs = 0;
	for (step = 0; step < 300; step++) {
		const uint64_t now = t0 + hz / 100 * step;
		/* The ring port stands in for both ports: nothing arrives, housekeeping runs. */
		assert_int_equal(mc_dp_poll(&w1, now), 0);
		assert_int_equal(mc_dp_poll(&w2, now), 0);
	}
	mc_store_part_stats(s2, &ps);
	assert_int_equal(ps.curr_items, 0);
	assert_int_equal(ps.reclaimed, 200);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksums_at_every_length),
		cmocka_unit_test(test_checksums_with_kept_value_sums),
		cmocka_unit_test(test_lone_get_where_it_lies),
		cmocka_unit_test(test_bad_request_checksum_dropped),
		cmocka_unit_test(test_nic_checksum_verdicts),
		cmocka_unit_test(test_zero_copy_and_its_copy_fallback),
		cmocka_unit_test(test_out_of_mbufs_mid_reply),
		cmocka_unit_test(test_multi_datagram_reply_paced_not_cut),
		cmocka_unit_test(test_full_backlog_refuses_whole_replies),
		cmocka_unit_test(test_ttl_expires_on_time_under_load),
		cmocka_unit_test(test_each_worker_sweeps_its_partition),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
