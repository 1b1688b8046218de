/* The exception path: what the kernel needs goes to the exception port and nothing else does;
 * what the kernel sends leaves on the data port; the per-burst cap and the poll cadence; and
 * without an exception path the old drop reasons (or drop_no_exception) count. A second ring
 * port stands in for the TAP. No timing: every poll is driven by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rte_arp.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/dataplane.h"
#include "tests/unit/common/eal.h"
#include "tests/unit/common/frame.h"

#define OUR_IP 0xc6120001u  /* 198.18.0.1 */
#define CLI_IP 0xc6120002u  /* 198.18.0.2, on our subnet: allowed by default */
#define FAR_IP 0xc6130009u  /* 198.19.0.9: outside the allow list */

static struct rte_mempool *pool;
static struct rte_ring *tx_ring;    /* what the data port sends */
static struct rte_ring *port_rx;    /* what the data port receives */
static struct rte_ring *kern_tx;    /* what went to the kernel */
static struct rte_ring *kern_rx;    /* what the kernel sends */
static struct mc_config cfg;
static struct mc_worker w;
static struct mc_exc exc;

static struct mc_proto_conf pconf = {.udp_admin = false, .udp_writes = true};

static int
setup(void **state)
{
	struct mc_store_settings set = {.nparts = 1, .max_item_size = 64 << 10, .factor = 1.25,
					.chunk_min = 48};
	struct rte_ether_addr mac;
	struct mc_port kport;
	struct mc_store *store;
	(void)state;
	assert_int_equal(mc_test_ring_worker6("ue", 1023, &cfg, &w, &pool, &tx_ring), 0);
	port_rx = rte_ring_lookup("ue_rx");
	assert_non_null(port_rx);
	store = mc_store_create(rte_malloc(NULL, 8 << 20, 64), 8 << 20, &set);
	assert_non_null(store);
	w.svc = mc_dp_service_create(store, &pconf, set.max_item_size, 0);
	assert_non_null(w.svc);
	/* The exception port: a ring port, as the TAP would be. */
	memcpy(mac.addr_bytes, mc_test_our_mac, 6);
	assert_int_equal(mc_dp_ring_port("uk", pool, &mac, &kport, &kern_tx), 0);
	kern_rx = rte_ring_lookup("uk_rx");
	assert_non_null(kern_rx);
	exc.port_id = kport.port_id;
	exc.queues = 1;
	exc.up = true;
	assert_int_equal(w.exc, MC_EXC_MISSING); /* the default, tap, before one is given */
	mc_dp_worker_exception(&w, &exc);
	assert_int_equal(w.exc, MC_EXC_ON);
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

/* Ethernet to our MAC, IPv4 (valid header checksum) from src to dst, and l4 as given; TCP and
 * UDP get their checksum filled in (at its offset) unless bad_l4 is set. Returns the length. */
static size_t
ipv4(uint8_t *p, uint8_t proto, uint32_t src, uint32_t dst, const void *l4, size_t l4len,
     int bad_l4)
{
	struct rte_ipv4_hdr *ip =
		mc_frame_eth_ipv4(p, mc_test_our_mac, mc_test_cli_mac, proto, src, dst, l4len);
	memcpy(ip + 1, l4, l4len);
	if (proto == IPPROTO_TCP) {
		struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(ip + 1);
		t->cksum = 0;
		t->cksum = rte_ipv4_udptcp_cksum(ip, t);
		t->cksum ^= (uint16_t)(bad_l4 ? 0x0101 : 0);
	} else if (proto == IPPROTO_UDP) {
		struct rte_udp_hdr *u = (struct rte_udp_hdr *)(ip + 1);
		u->dgram_cksum = 0;
		u->dgram_cksum = rte_ipv4_udptcp_cksum(ip, u);
		u->dgram_cksum ^= (uint16_t)(bad_l4 ? 0x0101 : 0);
	}
	return 14 + 20 + l4len;
}

/* A TCP SYN from src:40000 to dst:11211. */
static struct rte_mbuf *
tcp_syn(uint32_t src, uint32_t dst, int bad_cksum)
{
	uint8_t f[14 + 20 + 20], tcp[20] = {0};
	tcp[0] = 40000 >> 8;
	tcp[1] = 40000 & 0xff;
	tcp[2] = 11211 >> 8;
	tcp[3] = 11211 & 0xff;
	tcp[7] = 1;          /* sequence number */
	tcp[12] = 5 << 4;    /* data offset */
	tcp[13] = 0x02;      /* SYN */
	tcp[14] = 0xff;      /* window */
	return frame(f, ipv4(f, IPPROTO_TCP, src, dst, tcp, sizeof(tcp), bad_cksum));
}

/* A DNS-like datagram from src:40000 to our port 53. */
static struct rte_mbuf *
udp_other(uint32_t src, int bad_cksum)
{
	uint8_t f[14 + 20 + 12], udp[12] = {0};
	udp[0] = 40000 >> 8;
	udp[1] = 40000 & 0xff;
	udp[3] = 53;
	udp[5] = sizeof(udp);
	memcpy(udp + 8, "abcd", 4);
	return frame(f, ipv4(f, IPPROTO_UDP, src, OUR_IP, udp, sizeof(udp), bad_cksum));
}

/* ICMP fragmentation needed (type 3 code 4), as a router sends the kernel's TCP. */
static struct rte_mbuf *
icmp_frag_needed(uint32_t src)
{
	uint8_t f[14 + 20 + 8 + 28], icmp[8 + 28] = {3, 4};
	uint16_t ck;
	icmp[6] = 1400 >> 8;
	icmp[7] = 1400 & 0xff;
	icmp[8] = 0x45; /* the start of the datagram that was too big */
	ck = (uint16_t)~rte_raw_cksum(icmp, sizeof(icmp));
	memcpy(icmp + 2, &ck, 2);
	return frame(f, ipv4(f, IPPROTO_ICMP, src, OUR_IP, icmp, sizeof(icmp), 0));
}

/* An ICMP message of the type given (code 0, 8 bytes of body) from src. */
static struct rte_mbuf *
icmp_type(uint32_t src, uint8_t type)
{
	uint8_t f[14 + 20 + 16], icmp[16] = {type, 0};
	uint16_t ck = (uint16_t)~rte_raw_cksum(icmp, sizeof(icmp));
	memcpy(icmp + 2, &ck, 2);
	return frame(f, ipv4(f, IPPROTO_ICMP, src, OUR_IP, icmp, sizeof(icmp), 0));
}

/* An ARP packet (op 1 request, 2 reply) from sip (host order) about our address. */
static struct rte_mbuf *
arp(uint16_t op, uint32_t sip)
{
	uint8_t f[60] = {0};
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(f + 14);
	memcpy(f, op == 1 ? (const uint8_t *)"\xff\xff\xff\xff\xff\xff" : mc_test_our_mac, 6);
	memcpy(f + 6, mc_test_cli_mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	a->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = 6;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(op);
	memcpy(a->arp_data.arp_sha.addr_bytes, mc_test_cli_mac, 6);
	a->arp_data.arp_sip = rte_cpu_to_be_32(sip);
	if (op == 2)
		memcpy(a->arp_data.arp_tha.addr_bytes, mc_test_our_mac, 6);
	a->arp_data.arp_tip = rte_cpu_to_be_32(OUR_IP);
	return frame(f, sizeof(f));
}

static struct rte_mbuf *
udp_get(uint32_t src)
{
	uint8_t f[MC_FRAME_HDR_LEN + 7];
	mc_frame_request(f, mc_test_our_mac, mc_test_cli_mac, src, OUR_IP, 40000, 11211, 1,
			 "get k\r\n", 7);
	return frame(f, sizeof(f));
}

static uint64_t
drops(const struct mc_worker *x)
{
	uint64_t n = 0;
#define X(name, help) n += strncmp(#name, "drop_", 5) == 0 ? x->st.name : 0;
	MC_DP_COUNTERS(X)
#undef X
	return n;
}

/* Frames waiting on ring r, freed; how many. */
static unsigned int
drain(struct rte_ring *r)
{
	void *m;
	unsigned int n = 0;
	while (rte_ring_dequeue(r, &m) == 0) {
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

/* Through the burst function of x as one burst of n; then the TX backlog flushed. */
static void
run_burst(struct mc_worker *x, struct rte_mbuf **m, uint16_t n)
{
	mc_dp_handle_burst(x, m, n);
	mc_dp_tx_flush(x);
}

/* m must reach the kernel unchanged and nothing else happen. */
static void
expect_kernel(struct rte_mbuf *m, const char *what)
{
	uint8_t copy[128];
	const uint32_t len = rte_pktmbuf_pkt_len(m);
	const uint64_t to = w.st.exc_to_kernel, d = drops(&w);
	void *got;
	memcpy(copy, rte_pktmbuf_mtod(m, const void *), RTE_MIN(len, sizeof(copy)));
	run_burst(&w, &m, 1);
	if (rte_ring_dequeue(kern_tx, &got) != 0)
		fail_msg("%s: not handed to the kernel (drops %llu -> %llu)", what,
			 (unsigned long long)d, (unsigned long long)drops(&w));
	assert_ptr_equal(got, m);
	assert_int_equal(rte_pktmbuf_pkt_len(m), len);
	assert_memory_equal(rte_pktmbuf_mtod(m, const void *), copy, RTE_MIN(len, sizeof(copy)));
	rte_pktmbuf_free(m);
	assert_int_equal(w.st.exc_to_kernel, to + 1);
	assert_int_equal(drops(&w), d);
	assert_int_equal(drain(tx_ring), 0);
}

/* m must be dropped, counted on counter of worker x, and reach neither ring. */
static void
expect_drop(struct mc_worker *x, struct rte_mbuf *m, const uint64_t *counter, const char *what)
{
	const uint64_t before = *counter, to = x->st.exc_to_kernel;
	const unsigned int avail = rte_mempool_avail_count(pool);
	run_burst(x, &m, 1);
	if (*counter != before + 1)
		fail_msg("%s: counter did not move", what);
	assert_int_equal(x->st.exc_to_kernel, to);
	assert_int_equal(drain(kern_tx), 0);
	assert_int_equal(drain(tx_ring), 0);
	assert_int_equal(rte_mempool_avail_count(pool), avail + 1);
}

static void
test_what_the_kernel_needs_goes_to_it(void **state)
{
	(void)state;
	expect_kernel(tcp_syn(CLI_IP, OUR_IP, 0), "TCP SYN");
	expect_kernel(arp(2, CLI_IP), "ARP reply");
	expect_kernel(icmp_frag_needed(CLI_IP), "ICMP fragmentation needed");
	expect_kernel(icmp_type(CLI_IP, 11), "ICMP time exceeded");
	expect_kernel(icmp_type(CLI_IP, 0), "ICMP echo reply");
}

/* Only what the TCP service and the kernel's TCP need: other TCP and UDP ports and other ICMP
 * are dropped, so the host's own services are not reachable on the data address. */
static void
test_other_ports_are_nobodys(void **state)
{
	struct rte_mbuf *m = tcp_syn(CLI_IP, OUR_IP, 0);
	(void)state;
	rte_pktmbuf_mtod_offset(m, uint8_t *, 14 + 20)[3] = 22; /* to port 11030 (0x2b16) */
	expect_drop(&w, m, &w.st.drop_tcp_port, "TCP to another port");
	expect_drop(&w, udp_other(CLI_IP, 0), &w.st.drop_udp_port, "UDP to port 53");
	expect_drop(&w, icmp_type(CLI_IP, 5), &w.st.drop_icmp, "ICMP redirect");
	expect_drop(&w, icmp_type(CLI_IP, 13), &w.st.drop_icmp, "ICMP timestamp request");
}

/* The fast path keeps what it answers: a memcached get, an ARP request, an echo request. */
static void
test_fast_path_answers_stay_on_the_fast_path(void **state)
{
	struct rte_mbuf *m = udp_get(CLI_IP);
	const uint64_t reqs = w.st.udp_requests, arps = w.st.arp_replies;
	(void)state;
	run_burst(&w, &m, 1);
	assert_int_equal(w.st.udp_requests, reqs + 1);
	assert_int_equal(drain(tx_ring), 1);
	m = arp(1, CLI_IP);
	run_burst(&w, &m, 1);
	assert_int_equal(w.st.arp_replies, arps + 1);
	assert_int_equal(drain(tx_ring), 1);
	assert_int_equal(drain(kern_tx), 0);
}

/* What the parse stage drops for safety does not reach the kernel either. */
static void
test_unsafe_frames_do_not_reach_the_kernel(void **state)
{
	struct rte_mbuf *m;
	(void)state;
	expect_drop(&w, tcp_syn(FAR_IP, OUR_IP, 0), &w.st.drop_not_allowed, "TCP from outside");
	expect_drop(&w, tcp_syn(CLI_IP, 0xc6120077u, 0), &w.st.drop_ip_dst, "TCP to another IP");
	expect_drop(&w, tcp_syn(OUR_IP, OUR_IP, 0), &w.st.drop_ip_src, "TCP from ourselves");
	expect_drop(&w, tcp_syn(0xc61200ffu, OUR_IP, 0), &w.st.drop_ip_src, "TCP from broadcast");
	expect_drop(&w, tcp_syn(CLI_IP, OUR_IP, 1), &w.st.drop_tcp_cksum, "TCP, bad checksum");
	expect_drop(&w, arp(2, FAR_IP), &w.st.drop_not_allowed, "ARP reply from outside");
	expect_drop(&w, arp(2, OUR_IP), &w.st.drop_arp, "ARP reply from ourselves");
	m = tcp_syn(CLI_IP, OUR_IP, 0);
	{
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14);
		ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_MF_FLAG);
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	expect_drop(&w, m, &w.st.drop_ip_frag, "TCP fragment");
	m = tcp_syn(CLI_IP, OUR_IP, 0);
	rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14)->hdr_checksum ^= 1;
	expect_drop(&w, m, &w.st.drop_ip_cksum, "TCP, bad IPv4 checksum");
	m = tcp_syn(CLI_IP, OUR_IP, 0);
	rte_pktmbuf_mtod(m, uint8_t *)[0] = 0x04; /* another MAC */
	expect_drop(&w, m, &w.st.drop_l2_dst, "TCP to another MAC");
	/* Other IP protocols are not the kernel's business here. */
	m = tcp_syn(CLI_IP, OUR_IP, 0);
	{
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, 14);
		ip->next_proto_id = 47;
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	expect_drop(&w, m, &w.st.drop_ip_proto, "GRE");
}

/* Frames for the kernel pass a token bucket (MC_EXC_PPS a second, MC_EXC_BUCKET at once): a full
 * bucket takes a whole burst of them; an empty one takes none, and the fast path's frames among
 * them are answered all the same. */
static void
test_kernel_frames_capped_by_a_token_bucket(void **state)
{
	struct rte_mbuf *m[MC_BURST];
	const uint64_t step = w.tsc_hz / MC_EXC_PPS;
	const unsigned int avail = rte_mempool_avail_count(pool);
	uint64_t cap = w.st.drop_exc_cap, to = w.st.exc_to_kernel;
	unsigned int i;
	(void)state;
	w.exc_tat = 0; /* full */
	for (i = 0; i < MC_BURST; i++)
		m[i] = i == 20 ? udp_get(CLI_IP) : tcp_syn(CLI_IP, OUR_IP, 0);
	run_burst(&w, m, MC_BURST);
	assert_int_equal(w.st.exc_to_kernel, to + MC_BURST - 1);
	assert_int_equal(w.st.drop_exc_cap, cap);
	assert_int_equal(drain(kern_tx), MC_BURST - 1);
	assert_int_equal(drain(tx_ring), 1);
	/* Empty for the next second: every frame for the kernel is a counted drop. */
	w.exc_tat = rte_rdtsc() + step * MC_EXC_BUCKET + w.tsc_hz;
	cap = w.st.drop_exc_cap;
	to = w.st.exc_to_kernel;
	for (i = 0; i < MC_BURST; i++)
		m[i] = i == 20 ? udp_get(CLI_IP) : tcp_syn(CLI_IP, OUR_IP, 0);
	run_burst(&w, m, MC_BURST);
	assert_int_equal(w.st.exc_to_kernel, to);
	assert_int_equal(w.st.drop_exc_cap, cap + MC_BURST - 1);
	assert_int_equal(drain(kern_tx), 0);
	assert_int_equal(drain(tx_ring), 1); /* the get among them is answered all the same */
	assert_int_equal(rte_mempool_avail_count(pool), avail);
	w.exc_tat = 0;
	expect_kernel(tcp_syn(CLI_IP, OUR_IP, 0), "TCP SYN once the bucket has tokens");
}

/* A kernel queue that takes nothing: the frame is freed and counted. */
static void
test_kernel_queue_full(void **state)
{
	static int dummy; /* fills the ring; never an mbuf */
	const unsigned int avail = rte_mempool_avail_count(pool);
	const uint64_t full = w.st.drop_exc_full, to = w.st.exc_to_kernel;
	struct rte_mbuf *m = tcp_syn(CLI_IP, OUR_IP, 0);
	void *x;
	(void)state;
	while (rte_ring_enqueue(kern_tx, &dummy) == 0)
		;
	run_burst(&w, &m, 1);
	assert_int_equal(w.st.drop_exc_full, full + 1);
	assert_int_equal(w.st.exc_to_kernel, to);
	while (rte_ring_dequeue(kern_tx, &x) == 0)
		assert_ptr_equal(x, &dummy);
	assert_int_equal(rte_mempool_avail_count(pool), avail);
}

/* Frames the kernel sends leave unchanged on the data port's TX queue. */
static void
test_kernel_frames_leave_on_the_port(void **state)
{
	struct rte_mbuf *m[3];
	const uint64_t from = w.st.exc_from_kernel, tx = w.st.tx_packets;
	void *got;
	unsigned int i;
	(void)state;
	m[0] = tcp_syn(OUR_IP, CLI_IP, 0); /* stands in for a SYN-ACK */
	m[1] = arp(1, OUR_IP);             /* the kernel resolving a peer */
	m[2] = udp_other(OUR_IP, 0);
	assert_int_equal(rte_ring_enqueue_bulk(kern_rx, (void **)m, 3, NULL), 3);
	/* Idle polls read the exception queue every MC_EXC_POLL_EVERY polls (an empty read of
	 * a TAP is a syscall). */
	w.exc_skip = 0;
	for (i = 0; i + 1 < MC_EXC_POLL_EVERY; i++) {
		assert_int_equal(mc_dp_poll(&w, rte_rdtsc()), 0);
		assert_int_equal(rte_ring_count(kern_rx), 3);
	}
	assert_int_equal(mc_dp_poll(&w, rte_rdtsc()), 0);
	assert_int_equal(rte_ring_count(kern_rx), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(rte_ring_dequeue(tx_ring, &got), 0);
		assert_ptr_equal(got, m[i]);
		rte_pktmbuf_free(got);
	}
	assert_int_equal(w.st.exc_from_kernel, from + 3);
	assert_int_equal(w.st.tx_packets, tx + 3);
	assert_int_equal(drain(tx_ring), 0);
}

/* While the port's bursts are full (or empty) the exception queue is read every
 * MC_EXC_POLL_EVERY polls; a poll that brought frames but not a full burst reads it at once. */
static void
test_kernel_queue_cadence(void **state)
{
	struct rte_mbuf *k, *m[MC_BURST];
	unsigned int p, i;
	(void)state;
	w.exc_skip = 0;
	for (p = 0; p < 2 * MC_EXC_POLL_EVERY; p++) {
		k = arp(1, OUR_IP);
		assert_int_equal(rte_ring_enqueue(kern_rx, k), 0);
		/* Full bursts of frames to another MAC (cheap drops). */
		for (i = 0; i < MC_BURST; i++) {
			m[i] = tcp_syn(CLI_IP, OUR_IP, 0);
			rte_pktmbuf_mtod(m[i], uint8_t *)[0] = 0x04;
		}
		assert_int_equal(rte_ring_enqueue_bulk(port_rx, (void **)m, MC_BURST, NULL), MC_BURST);
		assert_int_equal(mc_dp_poll(&w, rte_rdtsc()), MC_BURST);
		/* Read on every MC_EXC_POLL_EVERY-th full poll, then the whole backlog of it. */
		if ((p + 1) % MC_EXC_POLL_EVERY == 0) {
			assert_int_equal(rte_ring_count(kern_rx), 0);
			assert_int_equal(drain(tx_ring), MC_EXC_POLL_EVERY);
		} else {
			assert_int_equal(rte_ring_count(kern_rx), p % MC_EXC_POLL_EVERY + 1);
			assert_int_equal(drain(tx_ring), 0);
		}
	}
	/* Not full: read now. */
	k = arp(1, OUR_IP);
	assert_int_equal(rte_ring_enqueue(kern_rx, k), 0);
	m[0] = udp_get(CLI_IP);
	assert_int_equal(rte_ring_enqueue(port_rx, m[0]), 0);
	assert_int_equal(mc_dp_poll(&w, rte_rdtsc()), 1);
	assert_int_equal(rte_ring_count(kern_rx), 0);
	assert_int_equal(drain(tx_ring), 2);
}

/* Without an exception path the frames the kernel would get are drops: under their old
 * reasons with --exception off, as drop_no_exception when one was asked for but is missing
 * (the TAP could not be made, or the worker is not on port 0). */
static void
test_without_exception_path(void **state)
{
	static struct mc_worker x;
	struct mc_port port = {.port_id = w.port_id, .queues = 1, .nparts = 1, .pool = pool};
	(void)state;
	memcpy(port.mac.addr_bytes, mc_test_our_mac, 6);
	snprintf(cfg.exception, sizeof(cfg.exception), "off");
	mc_dp_worker_init(&x, &cfg, &port, 0, 0, NULL, rte_rdtsc());
	x.svc = w.svc;
	assert_int_equal(x.exc, MC_EXC_OFF);
	expect_drop(&x, tcp_syn(CLI_IP, OUR_IP, 0), &x.st.drop_ip_proto, "off: TCP");
	expect_drop(&x, arp(2, CLI_IP), &x.st.drop_arp, "off: ARP reply");
	expect_drop(&x, arp(2, FAR_IP), &x.st.drop_arp, "off: ARP reply from outside");
	expect_drop(&x, icmp_frag_needed(CLI_IP), &x.st.drop_icmp, "off: ICMP error");
	expect_drop(&x, udp_other(CLI_IP, 0), &x.st.drop_udp_port, "off: UDP to 53");
	expect_drop(&x, udp_other(CLI_IP, 1), &x.st.drop_udp_port, "off: UDP to 53, bad sum");
	expect_drop(&x, tcp_syn(FAR_IP, OUR_IP, 0), &x.st.drop_not_allowed, "off: TCP, outside");
	assert_int_equal(x.st.drop_no_exception + x.st.exc_to_kernel, 0);

	snprintf(cfg.exception, sizeof(cfg.exception), "tap");
	mc_dp_worker_init(&x, &cfg, &port, 0, 0, NULL, rte_rdtsc());
	x.svc = w.svc;
	assert_int_equal(x.exc, MC_EXC_MISSING);
	expect_drop(&x, tcp_syn(CLI_IP, OUR_IP, 0), &x.st.drop_no_exception, "missing: TCP");
	expect_drop(&x, arp(2, CLI_IP), &x.st.drop_no_exception, "missing: ARP reply");
	expect_drop(&x, icmp_frag_needed(CLI_IP), &x.st.drop_no_exception, "missing: ICMP");
	expect_drop(&x, udp_other(CLI_IP, 0), &x.st.drop_udp_port, "missing: UDP to 53");
	assert_int_equal(x.st.drop_ip_proto + x.st.drop_arp + x.st.drop_icmp, 0);
	/* A worker of another port gets no exception queue: exc has fewer queues than it. */
	x.queue_id = 1;
	mc_dp_worker_exception(&x, &exc);
	assert_int_equal(x.exc, MC_EXC_MISSING);
	mc_dp_worker_fini(&x);
}


/* An IPv6 frame of next header nh with body (its checksum field at ck_off, filled), from src
 * to dst with hop limit hops, to Ethernet dst_mac. */
static struct rte_mbuf *
v6_frame(const uint8_t *dst_mac, const uint8_t *src, const uint8_t *dst, uint8_t hops, uint8_t nh,
	 const uint8_t *body, size_t len, size_t ck_off)
{
	uint8_t f[14 + 40 + 64] = {0};
	struct rte_ipv6_hdr *ip6 = mc_frame_eth_ipv6(f, dst_mac, mc_test_cli_mac, nh, src, dst, len);
	uint8_t *l4 = (uint8_t *)(ip6 + 1);
	uint16_t ck;
	ip6->hop_limits = hops;
	memcpy(l4, body, len);
	ck = rte_ipv6_udptcp_cksum(ip6, l4);
	memcpy(l4 + ck_off, &ck, 2);
	return frame(f, 14 + 40 + len);
}

/* Over IPv6 the kernel gets TCP to -p, advertisements to us (its TCP peers' addresses), the
 * ICMPv6 errors TCP needs and multicast listener queries; nothing else. */
static void
test_ipv6_for_the_kernel(void **state)
{
	static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
	static const uint8_t all_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	static const uint8_t router[16] = {0xfe, 0x80, [15] = 1};
	uint8_t tcp[20] = {0x9c, 0x40, 0x2b, 0xcb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff};
	uint8_t na[32] = {136, 0, 0, 0, 0x60};
	uint8_t big[48] = {2, 0, 0, 0, 0, 0, 0x05, 0xdc};
	uint8_t query[24] = {130};
	(void)state;
	expect_kernel(v6_frame(mc_test_our_mac, mc_test_cli_ip6, mc_test_our_ip6, 64, IPPROTO_TCP,
			       tcp, 20, 16), "TCP SYN over IPv6");
	memcpy(na + 8, mc_test_cli_ip6, 16);
	na[24] = 2;
	na[25] = 1;
	memcpy(na + 26, mc_test_cli_mac, 6);
	expect_kernel(v6_frame(mc_test_our_mac, mc_test_cli_ip6, mc_test_our_ip6, 255,
			       IPPROTO_ICMPV6, na, 32, 2), "neighbor advertisement");
	expect_kernel(v6_frame(mc_test_our_mac, mc_test_cli_ip6, mc_test_our_ip6, 64,
			       IPPROTO_ICMPV6, big, 48, 2), "ICMPv6 packet too big");
	expect_kernel(v6_frame(all_mac, router, all_nodes, 1, IPPROTO_ICMPV6, query, 24, 2),
		      "multicast listener query");
	expect_drop(&w, v6_frame(all_mac, router, all_nodes, 64, IPPROTO_ICMPV6, query, 24, 2),
		    &w.st.drop_icmp, "a query with hop limit 64");
	expect_drop(&w, v6_frame(mc_test_our_mac, mc_test_cli_ip6, mc_test_our_ip6, 200,
				 IPPROTO_ICMPV6, na, 32, 2), &w.st.drop_nd, "an advertisement routed");
	tcp[3] = 22;
	expect_drop(&w, v6_frame(mc_test_our_mac, mc_test_cli_ip6, mc_test_our_ip6, 64, IPPROTO_TCP,
				 tcp, 20, 16), &w.st.drop_tcp_port, "TCP over IPv6 to port 22");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_what_the_kernel_needs_goes_to_it),
		cmocka_unit_test(test_ipv6_for_the_kernel),
		cmocka_unit_test(test_other_ports_are_nobodys),
		cmocka_unit_test(test_fast_path_answers_stay_on_the_fast_path),
		cmocka_unit_test(test_unsafe_frames_do_not_reach_the_kernel),
		cmocka_unit_test(test_kernel_frames_capped_by_a_token_bucket),
		cmocka_unit_test(test_kernel_queue_full),
		cmocka_unit_test(test_kernel_frames_leave_on_the_port),
		cmocka_unit_test(test_kernel_queue_cadence),
		cmocka_unit_test(test_without_exception_path),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
