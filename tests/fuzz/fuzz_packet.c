/* libFuzzer target: the whole packet path, IPv4 and IPv6. One Ethernet frame in (to mcbox's
 * MAC), or, when the input starts with "MCFR", up to MAX_FRAMES frames of one burst (each a
 * 16-bit big-endian length and its bytes: fragments to reassemble); zero or more frames out
 * through the production burst function on a ring port. Each reply must be a well-formed
 * IPv4 or IPv6 frame (UDP, ICMP, ICMPv6) or ARP, with valid checksums; no mbuf may leak (held
 * fragments are timed out after each input); the store's accounting must hold. */
#define ALLOW_EXPERIMENTAL_API /* rte_ipv6_udptcp_cksum_verify */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/dataplane.h"
#include "dataplane/dp_int.h"
#include "store/store.h"
#include "udp/udp.h"

static struct rte_mempool *pool;
static struct rte_ring *txr;
static struct rte_ring *ktxr; /* the exception port's TX: what went to the kernel */
static struct mc_worker w;
static struct mc_config cfg;
static struct mc_store *store;
static struct mc_proto_conf conf = {.udp_admin = true, .udp_writes = true};
static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 1};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char prefix[64];
	char *eal[] = {(char *)"fuzz", (char *)"--no-huge", (char *)"--no-pci", (char *)"--no-shconf",
		       (char *)"-m", (char *)"256", (char *)"-l", (char *)"0",
		       (char *)"--log-level=*:error", prefix};
	struct rte_ether_addr mac;
	struct mc_port port;
	struct mc_store_settings set = {.mem_bytes = 16u << 20, .nparts = 1, .max_item_size = 64 << 10,
					.factor = 1.25, .chunk_min = 48};
	(void)argc;
	(void)argv;
	snprintf(prefix, sizeof(prefix), "--file-prefix=mcfuzz-%d", (int)getpid());
	if (rte_eal_init(10, eal) < 0)
		abort();
	memcpy(mac.addr_bytes, our_mac, 6);
	pool = rte_pktmbuf_pool_create("fz", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (pool == NULL || mc_dp_ring_port("fzring", pool, &mac, &port, &txr) != 0)
		abort();
	mc_config_defaults(&cfg);
	cfg.ip = 0xc6120001u;
	{
		static const uint8_t ip6[16] = {0x20, 0x01, 0, 2, [15] = 1};
		memcpy(cfg.ip6.net, ip6, 16);
		cfg.ip6.bits = 64;
	}
	cfg.src_rps = 0;
	cfg.src_kbps = 0;
	mc_dp_worker_init(&w, &cfg, &port, 0, 0, NULL, 0);
	/* The exception path on, over a ring port, so what goes to the kernel is fuzzed too. */
	{
		struct mc_port kport;
		struct mc_exc exc = {.queues = 1, .up = true};
		if (mc_dp_ring_port("fzexc", pool, &mac, &kport, &ktxr) != 0)
			abort();
		exc.port_id = kport.port_id;
		mc_dp_worker_exception(&w, &exc);
	}
	store = mc_store_create(aligned_alloc(64, 16u << 20), 16u << 20, &set);
	w.svc = mc_dp_service_create(store, &conf, set.max_item_size, 0);
	/* Zero-copy from 64 bytes, so chained replies are fuzzed too. */
	if (store == NULL || w.svc == NULL || mc_dp_service_zero_copy(w.svc, 64, 0) != 0)
		abort();
	return 0;
}

static void
check_reply(const struct rte_mbuf *m)
{
	static uint8_t flat[2048];
	uint32_t len = rte_pktmbuf_pkt_len(m);
	const uint8_t *p = len <= sizeof(flat) ? rte_pktmbuf_read(m, 0, len, flat) : NULL;
	uint16_t l2 = 14, etype;
	if (p == NULL || len < 14 || memcmp(p + 6, our_mac, 6) != 0)
		abort();
	etype = (uint16_t)(p[12] << 8 | p[13]);
	if (etype == 0x8100) {
		etype = (uint16_t)(p[16] << 8 | p[17]);
		l2 = 18;
	}
	if (etype == 0x0806)
		return;
	if (etype == 0x86dd) {
		const struct rte_ipv6_hdr *ip6 = (const void *)(p + l2);
		if (len < l2 + 40u + 8 || rte_be_to_cpu_16(ip6->payload_len) != len - l2 - 40)
			abort();
		if (ip6->proto == IPPROTO_UDP) {
			const struct rte_udp_hdr *u = (const void *)(ip6 + 1);
			if (rte_be_to_cpu_16(u->dgram_len) != len - l2 - 40 || len - l2 - 40 > 8 + 1400 ||
			    u->dgram_cksum == 0 || rte_ipv6_udptcp_cksum_verify(ip6, u) != 0)
				abort();
		} else if (ip6->proto != IPPROTO_ICMPV6 ||
			   rte_ipv6_udptcp_cksum_verify(ip6, ip6 + 1) != 0) {
			abort();
		}
		return;
	}
	if (etype != 0x0800 || len < l2 + 20u)
		abort();
	{
		const struct rte_ipv4_hdr *ip = (const void *)(p + l2);
		uint16_t tot = rte_be_to_cpu_16(ip->total_length);
		if (rte_ipv4_cksum(ip) != 0 || tot != len - l2)
			abort();
		if (ip->next_proto_id == IPPROTO_UDP) {
			const struct rte_udp_hdr *u = (const void *)(ip + 1);
			uint32_t sum;
			if (rte_be_to_cpu_16(u->dgram_len) != tot - 20 || tot - 20 > 8 + 1400)
				abort();
			/* Pseudo header + datagram, checksum field included, sums to 0xffff. */
			sum = rte_ipv4_phdr_cksum(ip, 0) + rte_raw_cksum(u, tot - 20u);
			sum = (sum & 0xffff) + (sum >> 16);
			sum = (sum & 0xffff) + (sum >> 16);
			if (u->dgram_cksum != 0 && sum != 0xffff)
				abort();
		}
	}
}

#define MAX_FRAMES 8

static struct rte_mbuf *
frame_of(const uint8_t *data, size_t size)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	if (m == NULL)
		abort();
	memcpy(rte_pktmbuf_append(m, (uint16_t)size), data, size);
	/* Address the frame to us (the fuzzer finds the rest). */
	if (size >= 6)
		memcpy(rte_pktmbuf_mtod(m, uint8_t *), our_mac, 6);
	return m;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rte_mbuf *m, *ms[MAX_FRAMES];
	void *out[512];
	unsigned int n, i, nf = 0, before = rte_mempool_avail_count(pool);
	struct mc_store_part_stats ps;
	if (size > RTE_MBUF_DEFAULT_DATAROOM)
		return 0;
	if (size >= 4 && memcmp(data, "MCFR", 4) == 0) {
		size_t at = 4;
		while (nf < MAX_FRAMES && at + 2 <= size) {
			size_t len = (size_t)data[at] << 8 | data[at + 1];
			at += 2;
			if (len > size - at)
				len = size - at;
			ms[nf++] = frame_of(data + at, len);
			at += len;
		}
		if (nf == 0)
			return 0;
		m = NULL;
		mc_dp_handle_burst(&w, ms, (uint16_t)nf);
	} else {
		m = frame_of(data, size);
		mc_dp_handle_burst(&w, &m, 1);
	}
	mc_dp_tx_flush(&w);
	while ((n = rte_ring_dequeue_burst(txr, out, 512, NULL)) != 0) {
		for (i = 0; i < n; i++) {
			check_reply(out[i]);
			rte_pktmbuf_free(out[i]);
		}
	}
	/* The kernel gets the frame as it came (Ethernet padding cut at most): untagged IPv4 or
	 * ARP, at most one. */
	n = rte_ring_dequeue_burst(ktxr, out, 512, NULL);
	if (n > (m != NULL ? 1u : nf))
		abort();
	for (i = 0; i < n; i++) {
		const struct rte_mbuf *k = out[i];
		const uint8_t *p = rte_pktmbuf_mtod(k, const uint8_t *);
		if (k->nb_segs != 1 || k->pkt_len > size || k->pkt_len < 14 + 20 ||
		    memcmp(p, our_mac, 6) != 0 ||
		    !((p[12] == 0x08 && p[13] == 0x00) || (p[12] == 0x08 && p[13] == 0x06) ||
		      (p[12] == 0x86 && p[13] == 0xdd && k->pkt_len >= 14 + 40)))
			abort();
		/* One frame in: the kernel gets it as it came (IPv6 extension headers may be cut
		 * out, so there only the Ethernet and IPv6 addresses are compared). */
		if (m != NULL &&
		    (k != m || (p[13] != 0xdd && memcmp(p + 6, data + 6, k->pkt_len - 6) != 0) ||
		     (p[13] == 0xdd && memcmp(p + 6, data + 6, 8) != 0) ||
		     (p[13] == 0xdd && size >= 14 + 40 && memcmp(p + 22, data + 22, 32) != 0)))
			abort();
		rte_pktmbuf_free(out[i]);
	}
	/* Fragments the table holds: timed out, so that every mbuf is back. */
	mc_dp_frag_expire(&w, rte_rdtsc() + rte_get_tsc_hz() * (MC_FRAG_TIMEOUT_MS / 1000 + 1));
	if (rte_mempool_avail_count(pool) != before)
		abort();
	/* An item replaced while a reply still held it is a zombie until the sweep finds it
	 * released; every reply mbuf is freed by now, so after a sweep none may remain. */
	mc_store_part_stats(store, &ps);
	if (ps.zombies != 0) {
		mc_store_sweep(store, 0, 1u << 30);
		mc_store_part_stats(store, &ps);
	}
	if (ps.bytes > (16u << 20) || ps.zombies != 0)
		abort();
	return 0;
}
