/* IPv6 and reassembly on the fast path, through the production burst function on a ring port:
 * neighbor solicitations answered (and duplicate address detection defended), ICMPv6 echo,
 * memcached over UDP/IPv6 with its checksum, extension headers walked or refused, IPv4 and
 * IPv6 fragments reassembled, hostile fragments refused or given up with bounded memory, and
 * every mbuf back in the pool. Replies are checked with DPDK's own checksum functions. */
#define ALLOW_EXPERIMENTAL_API /* rte_ipv6_udptcp_cksum_verify */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rte_cycles.h>
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
static unsigned int pool_full;

static struct mc_proto_conf pconf = {.udp_admin = false, .udp_writes = true};

static int
setup(void **state)
{
	struct mc_store_settings set = {.nparts = 1, .max_item_size = 64 << 10, .factor = 1.25,
					.chunk_min = 48};
	struct mc_store *store;
	(void)state;
	assert_int_equal(mc_test_ring_worker6("ut6", 4095, &cfg, &w, &pool, &tx_ring), 0);
	store = mc_store_create(rte_malloc(NULL, 8 << 20, 64), 8 << 20, &set);
	assert_non_null(store);
	w.svc = mc_dp_service_create(store, &pconf, set.max_item_size, 0);
	assert_non_null(w.svc);
	assert_non_null(w.frag);
	pool_full = rte_mempool_avail_count(pool);
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

/* Run frames through the burst function; return the first reply (others are freed). */
static struct rte_mbuf *
run_n(struct rte_mbuf **ms, uint16_t n)
{
	void *out = NULL, *more;
	mc_dp_handle_burst(&w, ms, n);
	mc_dp_tx_flush(&w);
	if (rte_ring_dequeue(tx_ring, &out) != 0)
		return NULL;
	while (rte_ring_dequeue(tx_ring, &more) == 0)
		rte_pktmbuf_free(more);
	return out;
}

static struct rte_mbuf *
run(struct rte_mbuf *m)
{
	return run_n(&m, 1);
}

static void
assert_pool_full(void)
{
	assert_int_equal(rte_mempool_avail_count(pool), pool_full);
}

/* The ICMPv6 checksum over a reply, pseudo header included: 0 when right. */
static uint16_t
icmp6_check(const struct rte_ipv6_hdr *ip6)
{
	return rte_ipv6_udptcp_cksum_verify(ip6, ip6 + 1);
}

/* A neighbor solicitation for target from src to dst (ff02::1:ff00:1 or ours), with a source
 * link-layer option unless src is ::. */
static struct rte_mbuf *
ns_frame(const uint8_t *src, const uint8_t *dst, const uint8_t *dst_mac, const uint8_t *target,
	 uint8_t hops)
{
	static const uint8_t zero[16];
	const int opt = memcmp(src, zero, 16) != 0;
	uint8_t f[14 + 40 + 32] = {0};
	const size_t l4 = 24 + (opt ? 8 : 0);
	struct rte_ipv6_hdr *ip6 = mc_frame_eth_ipv6(f, dst_mac, mc_test_cli_mac, IPPROTO_ICMPV6,
						     src, dst, l4);
	uint8_t *ns = (uint8_t *)(ip6 + 1);
	uint16_t ck;
	ip6->hop_limits = hops;
	ns[0] = 135;
	memcpy(ns + 8, target, 16);
	if (opt) {
		ns[24] = 1;
		ns[25] = 1;
		memcpy(ns + 26, mc_test_cli_mac, 6);
	}
	ck = rte_ipv6_udptcp_cksum(ip6, ns);
	memcpy(ns + 2, &ck, 2);
	return frame(f, 14 + 40 + l4);
}

static void
test_neighbor_solicitation_answered(void **state)
{
	static const uint8_t sn[16] = {0xff, 0x02, [11] = 1, [12] = 0xff, [15] = 1};
	static const uint8_t sn_mac[6] = {0x33, 0x33, 0xff, 0, 0, 1};
	static const uint8_t other[16] = {0x20, 0x01, 0, 2, [15] = 7};
	static const uint8_t zero[16];
	struct rte_mbuf *r;
	const struct rte_ipv6_hdr *ip6;
	const uint8_t *p, *na;
	uint64_t drops;
	(void)state;
	/* To the solicited-node group: answered to the solicitor's link-layer address. */
	r = run(ns_frame(mc_test_cli_ip6, sn, sn_mac, mc_test_our_ip6, 255));
	assert_non_null(r);
	p = rte_pktmbuf_mtod(r, const uint8_t *);
	assert_memory_equal(p, mc_test_cli_mac, 6);
	assert_memory_equal(p + 6, mc_test_our_mac, 6);
	ip6 = (const struct rte_ipv6_hdr *)(p + 14);
	na = (const uint8_t *)(ip6 + 1);
	assert_int_equal(ip6->hop_limits, 255);
	assert_memory_equal(ip6->src_addr, mc_test_our_ip6, 16);
	assert_memory_equal(ip6->dst_addr, mc_test_cli_ip6, 16);
	assert_int_equal(rte_be_to_cpu_16(ip6->payload_len), 32);
	assert_int_equal(rte_pktmbuf_pkt_len(r), 14 + 40 + 32);
	assert_int_equal(na[0], 136);
	assert_int_equal(na[4], 0x60); /* solicited, override */
	assert_memory_equal(na + 8, mc_test_our_ip6, 16);
	assert_int_equal(na[24], 2);
	assert_memory_equal(na + 26, mc_test_our_mac, 6);
	assert_int_equal(icmp6_check(ip6), 0);
	rte_pktmbuf_free(r);
	/* Duplicate address detection for our address: defended to all nodes, not solicited. */
	r = run(ns_frame(zero, sn, sn_mac, mc_test_our_ip6, 255));
	assert_non_null(r);
	p = rte_pktmbuf_mtod(r, const uint8_t *);
	ip6 = (const struct rte_ipv6_hdr *)(p + 14);
	assert_int_equal(p[0], 0x33);
	assert_int_equal(ip6->dst_addr[0], 0xff);
	assert_int_equal(((const uint8_t *)(ip6 + 1))[4], 0x20);
	assert_int_equal(icmp6_check(ip6), 0);
	rte_pktmbuf_free(r);
	/* Routed (hop limit not 255), or for someone else: dropped. */
	drops = w.st.drop_nd;
	assert_null(run(ns_frame(mc_test_cli_ip6, sn, sn_mac, mc_test_our_ip6, 64)));
	assert_null(run(ns_frame(mc_test_cli_ip6, mc_test_our_ip6, mc_test_our_mac, other, 255)));
	assert_int_equal(w.st.drop_nd, drops + 2);
	/* Another group's solicitation: not ours at L3. */
	{
		static const uint8_t sn_other[16] = {0xff, 0x02, [11] = 1, [12] = 0xff, [15] = 7};
		drops = w.st.drop_ip_dst;
		assert_null(run(ns_frame(mc_test_cli_ip6, sn_other, sn_mac, other, 255)));
		assert_int_equal(w.st.drop_ip_dst, drops + 1);
	}
	assert_pool_full();
}

static void
test_unsolicited_advertisement(void **state)
{
	void *out = NULL;
	const uint8_t *p;
	const struct rte_ipv6_hdr *ip6;
	(void)state;
	mc_dp_announce(&w);
	mc_dp_tx_flush(&w);
	assert_int_equal(rte_ring_dequeue(tx_ring, &out), 0);
	p = rte_pktmbuf_mtod((struct rte_mbuf *)out, const uint8_t *);
	ip6 = (const struct rte_ipv6_hdr *)(p + 14);
	assert_int_equal(p[0], 0x33);
	assert_int_equal(p[5], 1);
	assert_int_equal(ip6->dst_addr[0], 0xff);
	assert_int_equal(ip6->dst_addr[15], 1);
	assert_int_equal(((const uint8_t *)(ip6 + 1))[0], 136);
	assert_int_equal(((const uint8_t *)(ip6 + 1))[4], 0x20); /* override only */
	assert_int_equal(icmp6_check(ip6), 0);
	rte_pktmbuf_free(out);
	assert_pool_full();
}

static void
test_echo6_answered(void **state)
{
	uint8_t f[14 + 40 + 64] = {0};
	struct rte_ipv6_hdr *ip6 = mc_frame_eth_ipv6(f, mc_test_our_mac, mc_test_cli_mac,
						     IPPROTO_ICMPV6, mc_test_cli_ip6,
						     mc_test_our_ip6, 64);
	uint8_t *icmp = (uint8_t *)(ip6 + 1);
	struct rte_mbuf *r;
	uint16_t ck;
	(void)state;
	icmp[0] = 128;
	memset(icmp + 8, 0xab, 56);
	ck = rte_ipv6_udptcp_cksum(ip6, icmp);
	memcpy(icmp + 2, &ck, 2);
	r = run(frame(f, sizeof(f)));
	assert_non_null(r);
	ip6 = rte_pktmbuf_mtod_offset(r, struct rte_ipv6_hdr *, 14);
	assert_int_equal(((uint8_t *)(ip6 + 1))[0], 129);
	assert_memory_equal(ip6->dst_addr, mc_test_cli_ip6, 16);
	assert_int_equal(icmp6_check(ip6), 0);
	assert_memory_equal((uint8_t *)(ip6 + 1) + 8, f + 14 + 40 + 8, 56);
	rte_pktmbuf_free(r);
	/* A bad checksum: dropped. */
	icmp[2] ^= 0x55;
	{
		const uint64_t before = w.st.drop_icmp;
		assert_null(run(frame(f, sizeof(f))));
		assert_int_equal(w.st.drop_icmp, before + 1);
	}
	assert_pool_full();
}

/* The text of a memcached reply datagram over IPv6 (after the frame header), its UDP checksum
 * verified. */
static void
expect_reply6(struct rte_mbuf *r, const char *text)
{
	const struct rte_ipv6_hdr *ip6;
	const struct rte_udp_hdr *udp;
	size_t n = strlen(text);
	assert_non_null(r);
	ip6 = rte_pktmbuf_mtod_offset(r, const struct rte_ipv6_hdr *, 14);
	udp = (const struct rte_udp_hdr *)(ip6 + 1);
	assert_memory_equal(ip6->dst_addr, mc_test_cli_ip6, 16);
	assert_memory_equal(ip6->src_addr, mc_test_our_ip6, 16);
	assert_int_equal(ip6->proto, IPPROTO_UDP);
	assert_int_equal(rte_be_to_cpu_16(udp->dst_port), 40000);
	assert_int_not_equal(udp->dgram_cksum, 0);
	assert_int_equal(rte_ipv6_udptcp_cksum_verify(ip6, udp), 0);
	assert_int_equal(rte_be_to_cpu_16(udp->dgram_len), 8 + MC_UDP_HDR_LEN + n);
	assert_memory_equal((const uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, text, n);
	rte_pktmbuf_free(r);
}

static struct rte_mbuf *
req6(const char *text)
{
	uint8_t f[MC_FRAME6_HDR_LEN + 256];
	size_t n = strlen(text);
	mc_frame_request6(f, mc_test_our_mac, mc_test_cli_mac, mc_test_cli_ip6, mc_test_our_ip6,
			  40000, 11211, 7, text, n);
	return frame(f, MC_FRAME6_HDR_LEN + n);
}

static void
test_udp6_get_and_set(void **state)
{
	struct rte_mbuf *m;
	(void)state;
	expect_reply6(run(req6("set k6 0 0 2\r\nhi\r\n")), "STORED\r\n");
	expect_reply6(run(req6("get k6\r\n")), "VALUE k6 0 2\r\nhi\r\nEND\r\n");
	/* IPv6 requires the UDP checksum: zero is a drop. */
	m = req6("get k6\r\n");
	rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 14 + 40)->dgram_cksum = 0;
	{
		const uint64_t before = w.st.drop_udp_cksum;
		assert_null(run(m));
		assert_int_equal(w.st.drop_udp_cksum, before + 1);
	}
	/* From outside the allowed prefix (2001:2::/64 by default). */
	{
		uint8_t f[MC_FRAME6_HDR_LEN + 16];
		static const uint8_t far[16] = {0x20, 0x01, 0, 3, [15] = 2};
		const uint64_t before = w.st.drop_not_allowed;
		mc_frame_request6(f, mc_test_our_mac, mc_test_cli_mac, far, mc_test_our_ip6, 40000,
				  11211, 7, "get k6\r\n", 8);
		assert_null(run(frame(f, MC_FRAME6_HDR_LEN + 8)));
		assert_int_equal(w.st.drop_not_allowed, before + 1);
	}
	assert_pool_full();
}

/* A request with extension headers (each 8 bytes: next header, length 0, padding) of types
 * exts[0..n) before UDP; with seg_left for a routing header. */
static struct rte_mbuf *
req6_ext(const char *text, const uint8_t *exts, size_t n, uint8_t seg_left)
{
	uint8_t f[MC_FRAME6_HDR_LEN + 64 + 256];
	const size_t tl = strlen(text), l4 = 8 + MC_UDP_HDR_LEN + tl;
	struct rte_ipv6_hdr *ip6 = mc_frame_eth_ipv6(f, mc_test_our_mac, mc_test_cli_mac,
						     n ? exts[0] : IPPROTO_UDP, mc_test_cli_ip6,
						     mc_test_our_ip6, 8 * n + l4);
	uint8_t *x = (uint8_t *)(ip6 + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(x + 8 * n);
	size_t i;
	memset(x, 0, 8 * n);
	for (i = 0; i < n; i++) {
		x[8 * i] = i + 1 < n ? exts[i + 1] : IPPROTO_UDP;
		if (exts[i] == 43)
			x[8 * i + 3] = seg_left;
	}
	udp->src_port = rte_cpu_to_be_16(40000);
	udp->dst_port = rte_cpu_to_be_16(11211);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)l4);
	udp->dgram_cksum = 0;
	mc_udp_frame_write((uint8_t *)(udp + 1), 9, 0, 1);
	memcpy((uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, text, tl);
	/* The pseudo header is the same with or without extension headers. */
	{
		const uint8_t proto = ip6->proto;
		const uint16_t plen = ip6->payload_len;
		ip6->proto = IPPROTO_UDP;
		ip6->payload_len = rte_cpu_to_be_16((uint16_t)l4);
		udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
		ip6->proto = proto;
		ip6->payload_len = plen;
	}
	return frame(f, 14 + 40 + 8 * n + l4);
}

static void
test_extension_headers(void **state)
{
	static const uint8_t ok1[] = {0, 60}, ok2[] = {43}, late_hbh[] = {60, 0},
			     many[] = {0, 60, 60, 60, 60};
	uint64_t before;
	(void)state;
	expect_reply6(run(req6("set e6 0 0 1\r\nx\r\n")), "STORED\r\n");
	/* Hop-by-hop then destination options: walked, and cut out of the reply. */
	expect_reply6(run(req6_ext("get e6\r\n", ok1, 2, 0)), "VALUE e6 0 1\r\nx\r\nEND\r\n");
	expect_reply6(run(req6_ext("get e6\r\n", ok2, 1, 0)), "VALUE e6 0 1\r\nx\r\nEND\r\n");
	before = w.st.drop_ip6_ext;
	assert_null(run(req6_ext("get e6\r\n", ok2, 1, 2)));      /* segments left */
	assert_null(run(req6_ext("get e6\r\n", late_hbh, 2, 0))); /* hop-by-hop not first */
	assert_null(run(req6_ext("get e6\r\n", many, 5, 0)));     /* too many */
	assert_int_equal(w.st.drop_ip6_ext, before + 3);
	/* An extension header longer than the packet. */
	{
		struct rte_mbuf *m = req6_ext("get e6\r\n", ok2, 1, 0);
		rte_pktmbuf_mtod_offset(m, uint8_t *, 14 + 40)[1] = 200;
		assert_null(run(m));
		assert_int_equal(w.st.drop_ip6_ext, before + 4);
	}
	assert_pool_full();
}

/* ---- reassembly ---- */

#define SET_LEN 3000 /* a set that needs three fragments of 1480 (IPv4) or 1448 (IPv6) */

/* The UDP datagram (header, memcached frame, "set big 0 0 N\r\n<value>\r\n") in buf, with its
 * checksum for src/dst of family v6; returns its length. */
static size_t
big_set(uint8_t *buf, int v6, uint8_t fill)
{
	char head[64];
	const int hl = snprintf(head, sizeof(head), "set big 0 0 %d\r\n", SET_LEN);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)buf;
	uint8_t *p = buf + 8;
	const size_t len = 8 + MC_UDP_HDR_LEN + (size_t)hl + SET_LEN + 2;
	mc_udp_frame_write(p, 11, 0, 1);
	memcpy(p + MC_UDP_HDR_LEN, head, (size_t)hl);
	memset(p + MC_UDP_HDR_LEN + hl, fill, SET_LEN);
	memcpy(p + MC_UDP_HDR_LEN + hl + SET_LEN, "\r\n", 2);
	udp->src_port = rte_cpu_to_be_16(40000);
	udp->dst_port = rte_cpu_to_be_16(11211);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)len);
	udp->dgram_cksum = 0;
	{
		uint8_t hdr[40] = {0};
		uint16_t ck;
		if (v6) {
			struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)hdr;
			ip6->payload_len = rte_cpu_to_be_16((uint16_t)len);
			ip6->proto = IPPROTO_UDP;
			memcpy(ip6->src_addr, mc_test_cli_ip6, 16);
			memcpy(ip6->dst_addr, mc_test_our_ip6, 16);
			ck = rte_ipv6_udptcp_cksum(ip6, udp);
		} else {
			struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)hdr;
			ip->version_ihl = 0x45;
			ip->total_length = rte_cpu_to_be_16((uint16_t)(20 + len));
			ip->next_proto_id = IPPROTO_UDP;
			ip->src_addr = rte_cpu_to_be_32(0xc6120002u);
			ip->dst_addr = rte_cpu_to_be_32(0xc6120001u);
			ck = rte_ipv4_udptcp_cksum(ip, udp);
		}
		udp->dgram_cksum = ck;
	}
	return len;
}

/* IPv4 fragment of dgram: bytes [ofs, ofs + len), id, more fragments or not, protocol. */
static struct rte_mbuf *
frag4(const uint8_t *dgram, size_t ofs, size_t len, uint16_t id, int more, uint8_t proto)
{
	uint8_t f[14 + 20 + 1500];
	struct rte_ipv4_hdr *ip = mc_frame_eth_ipv4(f, mc_test_our_mac, mc_test_cli_mac, proto,
						    0xc6120002u, 0xc6120001u, len);
	ip->packet_id = rte_cpu_to_be_16(id);
	ip->fragment_offset = rte_cpu_to_be_16((uint16_t)((ofs / 8) | (more ? 0x2000 : 0)));
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	memcpy(f + 34, dgram + ofs, len);
	return frame(f, 34 + len);
}

/* IPv6 fragment (fragment header right after the IPv6 header, or after a destination options
 * header with dstopts). */
static struct rte_mbuf *
frag6(const uint8_t *dgram, size_t ofs, size_t len, uint32_t id, int more, int dstopts)
{
	uint8_t f[14 + 40 + 16 + 1500];
	const size_t x = dstopts ? 8 : 0;
	struct rte_ipv6_hdr *ip6 = mc_frame_eth_ipv6(f, mc_test_our_mac, mc_test_cli_mac,
						     dstopts ? 60 : 44, mc_test_cli_ip6,
						     mc_test_our_ip6, x + 8 + len);
	uint8_t *fh = (uint8_t *)(ip6 + 1) + x;
	const uint16_t fd = rte_cpu_to_be_16((uint16_t)((ofs & ~7u) | (more ? 1 : 0)));
	const uint32_t idb = rte_cpu_to_be_32(id);
	if (dstopts) {
		memset(ip6 + 1, 0, 8);
		((uint8_t *)(ip6 + 1))[0] = 44;
	}
	fh[0] = IPPROTO_UDP;
	fh[1] = 0;
	memcpy(fh + 2, &fd, 2);
	memcpy(fh + 4, &idb, 4);
	memcpy(fh + 8, dgram + ofs, len);
	return frame(f, 14 + 40 + x + 8 + len);
}

static void
test_reassembly_ipv4(void **state)
{
	static uint8_t d[4096];
	const size_t len = big_set(d, 0, 'a');
	struct rte_mbuf *ms[3], *r;
	uint64_t before;
	const struct rte_udp_hdr *udp;
	(void)state;
	/* Out of order, in one burst: the datagram is whole after the third. */
	ms[0] = frag4(d, 1480, 1480, 100, 1, IPPROTO_UDP);
	ms[1] = frag4(d, 2960, len - 2960, 100, 0, IPPROTO_UDP);
	ms[2] = frag4(d, 0, 1480, 100, 1, IPPROTO_UDP);
	before = w.st.frag_reassembled;
	r = run_n(ms, 3);
	assert_int_equal(w.st.frag_reassembled, before + 1);
	assert_non_null(r);
	udp = rte_pktmbuf_mtod_offset(r, const struct rte_udp_hdr *, 34);
	assert_memory_equal((const uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, "STORED\r\n", 8);
	rte_pktmbuf_free(r);
	/* A fragment with a bad value byte (UDP checksum): reassembled, then dropped. */
	d[1000] ^= 1;
	ms[0] = frag4(d, 0, 1480, 101, 1, IPPROTO_UDP);
	ms[1] = frag4(d, 1480, 1480, 101, 1, IPPROTO_UDP);
	ms[2] = frag4(d, 2960, len - 2960, 101, 0, IPPROTO_UDP);
	before = w.st.drop_udp_cksum;
	assert_null(run_n(ms, 3));
	assert_int_equal(w.st.drop_udp_cksum, before + 1);
	d[1000] ^= 1;
	assert_pool_full();
}

static void
test_reassembly_ipv6(void **state)
{
	static uint8_t d[4096];
	const size_t len = big_set(d, 1, 'b');
	struct rte_mbuf *ms[3], *r;
	uint64_t before;
	(void)state;
	ms[0] = frag6(d, 0, 1448, 7, 1, 0);
	ms[1] = frag6(d, 2896, len - 2896, 7, 0, 0);
	ms[2] = frag6(d, 1448, 1448, 7, 1, 0);
	before = w.st.frag_reassembled;
	r = run_n(ms, 3);
	assert_int_equal(w.st.frag_reassembled, before + 1);
	expect_reply6(r, "STORED\r\n");
	expect_reply6(run(req6("mg big s\r\n")), "HD s3000\r\n");
	/* A fragment header after another extension header: the library cannot; refused. */
	before = w.st.drop_ip_frag;
	assert_null(run(frag6(d, 0, 1448, 8, 1, 1)));
	assert_int_equal(w.st.drop_ip_frag, before + 1);
	/* An atomic fragment (offset 0, no more): the whole datagram. */
	{
		uint8_t small[128];
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)small;
		const char *t = "get big\r\n";
		uint8_t ph[40] = {0};
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)ph;
		udp->src_port = rte_cpu_to_be_16(40000);
		udp->dst_port = rte_cpu_to_be_16(11211);
		udp->dgram_len = rte_cpu_to_be_16((uint16_t)(16 + strlen(t)));
		udp->dgram_cksum = 0;
		mc_udp_frame_write(small + 8, 3, 0, 1);
		memcpy(small + 16, t, strlen(t));
		ip6->payload_len = udp->dgram_len;
		ip6->proto = IPPROTO_UDP;
		memcpy(ip6->src_addr, mc_test_cli_ip6, 16);
		memcpy(ip6->dst_addr, mc_test_our_ip6, 16);
		udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
		r = run(frag6(small, 0, 16 + strlen(t), 9, 0, 0));
		assert_non_null(r);
		rte_pktmbuf_free(r);
	}
	assert_pool_full();
}

/* Hostile fragments: refused before the table, or given up with every mbuf back. */
static void
test_hostile_fragments(void **state)
{
	static uint8_t d[4096];
	const size_t len = big_set(d, 0, 'c');
	struct rte_mbuf *ms[MC_BURST];
	uint64_t refused = w.st.drop_ip_frag, given_up = w.st.frag_dropped;
	unsigned int i, b;
	(void)state;
	(void)len;
	/* Refused: a tiny first fragment (no whole UDP header), a misaligned middle one, an
	 * empty one, ICMP, and one that would end past 64 KiB. */
	assert_null(run(frag4(d, 0, 4, 200, 1, IPPROTO_UDP)));
	assert_null(run(frag4(d, 0, 1001, 201, 1, IPPROTO_UDP)));
	assert_null(run(frag4(d, 8, 0, 202, 1, IPPROTO_UDP)));
	assert_null(run(frag4(d, 0, 1480, 203, 1, IPPROTO_ICMP)));
	{
		struct rte_mbuf *m = frag4(d, 0, 1480, 204, 1, IPPROTO_UDP);
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14);
		ip->fragment_offset = rte_cpu_to_be_16(8100 | 0x2000); /* 64,800 + 1,480 */
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		assert_null(run(m));
	}
	assert_int_equal(w.st.drop_ip_frag, refused + 5);
	/* Overlap: the same middle fragment twice: the datagram is given up whole. */
	ms[0] = frag4(d, 0, 1480, 300, 1, IPPROTO_UDP);
	ms[1] = frag4(d, 1480, 1480, 300, 1, IPPROTO_UDP);
	ms[2] = frag4(d, 1480, 1480, 300, 1, IPPROTO_UDP);
	ms[3] = frag4(d, 2960, len - 2960, 300, 0, IPPROTO_UDP);
	assert_null(run_n(ms, 4));
	assert_true(w.st.frag_dropped > given_up);
	/* A flood of first fragments that never complete: the table holds at most
	 * MC_FRAG_MAX_DGRAMS, the rest are given up at once, and the mbufs held are bounded. */
	for (b = 0; b < 40; b++) {
		for (i = 0; i < MC_BURST; i++)
			ms[i] = frag4(d, 0, 1480, (uint16_t)(1000 + b * MC_BURST + i), 1, IPPROTO_UDP);
		assert_null(run_n(ms, MC_BURST));
		assert_true(pool_full - rte_mempool_avail_count(pool) <= MC_FRAG_MAX_DGRAMS);
	}
	assert_true(w.st.frag_dropped >= given_up + 40 * MC_BURST - MC_FRAG_MAX_DGRAMS);
	/* Sets that never complete are freed once they time out. */
	mc_dp_frag_expire(&w, rte_rdtsc() + rte_get_tsc_hz() * (MC_FRAG_TIMEOUT_MS / 1000 + 1));
	assert_pool_full();
}


/* An 802.1Q tag (tci) inserted after the MAC addresses. */
static struct rte_mbuf *
vlanize(struct rte_mbuf *m, uint16_t tci)
{
	uint8_t buf[2048];
	const uint32_t n = rte_pktmbuf_pkt_len(m);
	memcpy(buf, rte_pktmbuf_mtod(m, uint8_t *), 12);
	buf[12] = 0x81;
	buf[13] = 0;
	buf[14] = (uint8_t)(tci >> 8);
	buf[15] = (uint8_t)tci;
	memcpy(buf + 16, rte_pktmbuf_mtod(m, uint8_t *) + 12, n - 12);
	rte_pktmbuf_free(m);
	return frame(buf, n + 4);
}

/* Fragments with a VLAN tag are refused (the library's key has no VLAN: fragments of two
 * VLANs would make one datagram, parsed at the wrong offset). */
static void
test_tagged_fragments_refused(void **state)
{
	static uint8_t d[4096];
	const size_t len = big_set(d, 0, 'v');
	struct rte_mbuf *ms[3];
	const uint64_t refused = w.st.drop_ip_frag, whole = w.st.frag_reassembled;
	(void)state;
	ms[0] = frag4(d, 0, 1480, 700, 1, IPPROTO_UDP);
	ms[1] = vlanize(frag4(d, 1480, 1480, 700, 1, IPPROTO_UDP), 9);
	ms[2] = vlanize(frag4(d, 2960, len - 2960, 700, 0, IPPROTO_UDP), 9);
	assert_null(run_n(ms, 3));
	assert_int_equal(w.st.drop_ip_frag, refused + 2);
	assert_int_equal(w.st.frag_reassembled, whole);
	assert_null(run(vlanize(frag6(d, 0, 1448, 78, 1, 0), 9)));
	assert_int_equal(w.st.drop_ip_frag, refused + 3);
	mc_dp_frag_expire(&w, rte_rdtsc() + rte_get_tsc_hz() * (MC_FRAG_TIMEOUT_MS / 1000 + 1));
	assert_pool_full();
}

/* Solicitations are paid from the worker's own ND budget: a host forging sources in a
 * client's /64 cannot spend that /64's request budget, and the defence against duplicate
 * address detection answers once a second. */
static void
test_nd_has_its_own_budget(void **state)
{
	static const uint8_t sn[16] = {0xff, 0x02, [11] = 1, [12] = 0xff, [15] = 1};
	static const uint8_t sn_mac[6] = {0x33, 0x33, 0xff, 0, 0, 1};
	static const uint8_t zero[16];
	uint8_t attacker[16];
	struct rte_mbuf *ms[MC_BURST];
	uint64_t limited, answered;
	unsigned int i;
	(void)state;
	expect_reply6(run(req6("set rl 0 0 1\r\nz\r\n")), "STORED\r\n");
	cfg.src_rps = 1000; /* a burst of 5 requests */
	cfg.src_kbps = 0;
	cfg.src_burst_ms = 5;
	w.rl = mc_dp_rl_create(&cfg, rte_get_tsc_hz(), 0);
	assert_non_null(w.rl);
	w.now = rte_rdtsc();
	memcpy(attacker, mc_test_cli_ip6, 16);
	attacker[15] = 0x99; /* another host in the client's /64 */
	limited = w.st.drop_ratelimit;
	for (i = 0; i < 16; i++)
		ms[i] = ns_frame(attacker, sn, sn_mac, mc_test_our_ip6, 255);
	rte_pktmbuf_free(run_n(ms, 16));
	assert_int_equal(w.st.drop_ratelimit, limited);
	expect_reply6(run(req6("get rl\r\n")), "VALUE rl 0 1\r\nz\r\nEND\r\n");
	mc_dp_rl_destroy(w.rl);
	w.rl = NULL;
	/* More than the bucket at once: the rest are counted. */
	answered = w.st.nd_replies;
	limited = w.st.drop_nd_rate;
	for (i = 0; i < MC_BURST; i++)
		ms[i] = ns_frame(attacker, sn, sn_mac, mc_test_our_ip6, 255);
	rte_pktmbuf_free(run_n(ms, MC_BURST));
	for (i = 0; i < MC_BURST; i++)
		ms[i] = ns_frame(attacker, sn, sn_mac, mc_test_our_ip6, 255);
	rte_pktmbuf_free(run_n(ms, MC_BURST));
	assert_true(w.st.drop_nd_rate > limited);
	assert_true(w.st.nd_replies - answered <= MC_ND_BUCKET + 1);
	/* Duplicate address detection: one answer a second (the first test's is forgotten). */
	w.dad_tat = 0;
	limited = w.st.drop_nd_rate;
	ms[0] = ns_frame(zero, sn, sn_mac, mc_test_our_ip6, 255);
	ms[1] = ns_frame(zero, sn, sn_mac, mc_test_our_ip6, 255);
	rte_pktmbuf_free(run_n(ms, 2));
	assert_int_equal(w.st.drop_nd_rate, limited + 1);
	assert_pool_full();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_neighbor_solicitation_answered),
		cmocka_unit_test(test_unsolicited_advertisement),
		cmocka_unit_test(test_echo6_answered),
		cmocka_unit_test(test_udp6_get_and_set),
		cmocka_unit_test(test_extension_headers),
		cmocka_unit_test(test_reassembly_ipv4),
		cmocka_unit_test(test_reassembly_ipv6),
		cmocka_unit_test(test_hostile_fragments),
		cmocka_unit_test(test_tagged_fragments_refused),
		cmocka_unit_test(test_nd_has_its_own_budget),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
