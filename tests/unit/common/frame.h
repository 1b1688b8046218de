/* A memcached request as a client's kernel sends it: Ethernet, IPv4 and UDP headers with valid
 * checksums, the 8-byte memcached frame (single datagram) and the payload; and the ring-port
 * worker the unit tests feed such frames to. Shared by the unit tests and mcbench. */
#ifndef MC_TEST_FRAME_H
#define MC_TEST_FRAME_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "../../../dataplane/dataplane.h"
#include "../../../udp/udp.h"

/* mcbox's and the client's MAC addresses in these frames. */
static const uint8_t mc_test_our_mac[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t mc_test_cli_mac[6] = {0x02, 0, 0, 0, 0, 2};

/* A worker on a ring port (198.18.0.1, default options, no rate limiter: tests that want one
 * set w->rl) whose TX lands in *tx, over a pool of n mbufs without a per-lcore cache (its free
 * count is exact). It owns store partition 0. Returns 0 or -1. */
static inline int
mc_test_ring_worker_v(const char *name, unsigned int n, struct mc_config *cfg, struct mc_worker *w,
		      struct rte_mempool **pool, struct rte_ring **tx, int with_ip6);

static inline int
mc_test_ring_worker(const char *name, unsigned int n, struct mc_config *cfg, struct mc_worker *w,
		    struct rte_mempool **pool, struct rte_ring **tx)
{
	return mc_test_ring_worker_v(name, n, cfg, w, pool, tx, 0);
}

/* The box's and the client's IPv6 addresses (--ip6 2001:2::1/64; the client 2001:2::2). */
static const uint8_t mc_test_our_ip6[16] = {0x20, 0x01, 0, 2, [15] = 1};
static const uint8_t mc_test_cli_ip6[16] = {0x20, 0x01, 0, 2, [15] = 2};

/* The same worker with --ip6 2001:2::1/64 as well. */
static inline int
mc_test_ring_worker6(const char *name, unsigned int n, struct mc_config *cfg, struct mc_worker *w,
		     struct rte_mempool **pool, struct rte_ring **tx)
{
	return mc_test_ring_worker_v(name, n, cfg, w, pool, tx, 1);
}

static inline int
mc_test_ring_worker_v(const char *name, unsigned int n, struct mc_config *cfg, struct mc_worker *w,
		      struct rte_mempool **pool, struct rte_ring **tx, int with_ip6)
{
	struct mc_port port;
	struct rte_ether_addr mac;
	char pname[RTE_MEMPOOL_NAMESIZE];
	memcpy(mac.addr_bytes, mc_test_our_mac, 6);
	snprintf(pname, sizeof(pname), "%s_pool", name);
	*pool = rte_pktmbuf_pool_create(pname, n, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (*pool == NULL || mc_dp_ring_port(name, *pool, &mac, &port, tx) != 0)
		return -1;
	mc_config_defaults(cfg);
	cfg->ip = 0xc6120001u;
	if (with_ip6) {
		memcpy(cfg->ip6.net, mc_test_our_ip6, 16);
		cfg->ip6.bits = 64;
	}
	mc_dp_worker_init(w, cfg, &port, 0, 0, NULL, rte_rdtsc());
	return 0;
}

#define MC_FRAME_HDR_LEN (14 + 20 + 8 + MC_UDP_HDR_LEN)

/* Ethernet and IPv4 headers (valid header checksum) at p for l4len bytes of proto after them.
 * Addresses in host order. Returns the IPv4 header. */
static inline struct rte_ipv4_hdr *
mc_frame_eth_ipv4(uint8_t *p, const uint8_t dst_mac[6], const uint8_t src_mac[6], uint8_t proto,
		  uint32_t src_ip, uint32_t dst_ip, size_t l4len)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + 14);
	memcpy(p, dst_mac, 6);
	memcpy(p + 6, src_mac, 6);
	p[12] = 0x08;
	p[13] = 0x00;
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(20 + l4len));
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = rte_cpu_to_be_32(src_ip);
	ip->dst_addr = rte_cpu_to_be_32(dst_ip);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return ip;
}

/* Write the frame to p (MC_FRAME_HDR_LEN + plen bytes). Addresses in host order. */
static inline void
mc_frame_request(uint8_t *p, const uint8_t dst_mac[6], const uint8_t src_mac[6], uint32_t src_ip,
		 uint32_t dst_ip, uint16_t sport, uint16_t dport, uint16_t rid, const void *payload,
		 size_t plen)
{
	struct rte_ipv4_hdr *ip = mc_frame_eth_ipv4(p, dst_mac, src_mac, IPPROTO_UDP, src_ip, dst_ip,
						    8 + MC_UDP_HDR_LEN + plen);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(dport);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(8 + MC_UDP_HDR_LEN + plen));
	udp->dgram_cksum = 0;
	mc_udp_frame_write((uint8_t *)(udp + 1), rid, 0, 1);
	memcpy((uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, payload, plen);
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
}

#define MC_FRAME6_HDR_LEN (14 + 40 + 8 + MC_UDP_HDR_LEN)

/* Ethernet and IPv6 headers at p for l4len bytes of next header nh after them. Returns the
 * IPv6 header. */
static inline struct rte_ipv6_hdr *
mc_frame_eth_ipv6(uint8_t *p, const uint8_t dst_mac[6], const uint8_t src_mac[6], uint8_t nh,
		  const uint8_t src[16], const uint8_t dst[16], size_t l4len)
{
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(p + 14);
	memcpy(p, dst_mac, 6);
	memcpy(p + 6, src_mac, 6);
	p[12] = 0x86;
	p[13] = 0xdd;
	memset(ip6, 0, sizeof(*ip6));
	ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip6->payload_len = rte_cpu_to_be_16((uint16_t)l4len);
	ip6->proto = nh;
	ip6->hop_limits = 64;
	memcpy(ip6->src_addr, src, 16);
	memcpy(ip6->dst_addr, dst, 16);
	return ip6;
}

/* A memcached request over IPv6 (MC_FRAME6_HDR_LEN + plen bytes), UDP checksum filled. */
static inline void
mc_frame_request6(uint8_t *p, const uint8_t dst_mac[6], const uint8_t src_mac[6],
		  const uint8_t src[16], const uint8_t dst[16], uint16_t sport, uint16_t dport,
		  uint16_t rid, const void *payload, size_t plen)
{
	struct rte_ipv6_hdr *ip6 = mc_frame_eth_ipv6(p, dst_mac, src_mac, IPPROTO_UDP, src, dst,
						     8 + MC_UDP_HDR_LEN + plen);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(dport);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(8 + MC_UDP_HDR_LEN + plen));
	udp->dgram_cksum = 0;
	mc_udp_frame_write((uint8_t *)(udp + 1), rid, 0, 1);
	memcpy((uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, payload, plen);
	udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip6, udp);
}

#endif
