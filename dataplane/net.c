/* Per-packet L2/L3/L4 handling: classify, validate, answer ARP and ICMP echo in place, hand
 * memcached datagrams to the service, count everything that is dropped. */
#include "dataplane.h"
#include "../udp/udp.h"

#include <rte_ethdev.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_udp.h>
#include <rte_malloc.h>

#include <sys/random.h>

/* a + b with the carry out added back in (end-around carry): one add and one adc. */
static inline uint64_t
add_c(uint64_t a, uint64_t b)
{
	uint64_t r = a + b;
	return r + (r < b);
}

/* One's-complement sum of len bytes, native byte order, folded to 16 bits (not inverted):
 * sixteen bytes a step as an add-with-carry chain, where rte_raw_cksum adds two bytes a step.
 * Same result as rte_raw_cksum. */
static inline uint16_t
cksum_sum(const void *p, size_t len, uint64_t sum)
{
	const uint8_t *b = p;
	uint64_t w, w2;
	while (len >= 16) {
		memcpy(&w, b, 8);
		memcpy(&w2, b + 8, 8);
		sum = add_c(add_c(sum, w), w2);
		b += 16;
		len -= 16;
	}
	if (len >= 8) {
		memcpy(&w, b, 8);
		sum = add_c(sum, w);
		b += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t v;
		memcpy(&v, b, 4);
		sum = add_c(sum, v);
		b += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;
		memcpy(&v, b, 2);
		sum = add_c(sum, v);
		b += 2;
		len -= 2;
	}
	if (len)
		sum = add_c(sum, *b);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Sum of the UDP datagram at offset off (pseudo header included), over a chain if need be:
 * each segment is folded first and swapped when it starts at an odd offset. (DPDK 22.11's
 * rte_raw_cksum_mbuf swaps an unfolded sum truncated to 16 bits and loses carries there.) */
static inline uint16_t
udp_sum(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip, uint32_t off, uint32_t len)
{
	/* Pseudo header in memory order, summed as native words (one's-complement sums do not
	 * care how the words are grouped): addresses, zero and protocol, UDP length. */
	uint64_t sum = (uint64_t)ip->src_addr + ip->dst_addr + RTE_BE16(IPPROTO_UDP) +
		       rte_cpu_to_be_16((uint16_t)len);
	uint32_t done = 0;
	if (likely(m->nb_segs == 1))
		return cksum_sum(rte_pktmbuf_mtod_offset(m, const uint8_t *, off), len, sum);
	while (m != NULL && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	while (m != NULL && done < len) {
		uint32_t take = RTE_MIN((uint32_t)m->data_len - off, len - done);
		uint16_t part = cksum_sum(rte_pktmbuf_mtod_offset(m, const uint8_t *, off), take, 0);
		sum += (done & 1) ? rte_bswap16(part) : part;
		done += take;
		off = 0;
		m = m->next;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

#define DROP(w, m, reason)                                                                     \
	do {                                                                                   \
		(w)->st.reason++;                                                              \
		rte_pktmbuf_free(m);                                                           \
		return;                                                                        \
	} while (0)

void
mc_dp_tx_flush(struct mc_worker *w)
{
	/* The backlog is a ring: at most two contiguous runs. Keep what the queue refuses. */
	while (w->tx_n != 0) {
		uint16_t run = (uint16_t)RTE_MIN(w->tx_n, MC_TX_BACKLOG - w->tx_head);
		uint16_t sent = rte_eth_tx_burst(w->port_id, w->queue_id, &w->tx[w->tx_head], run);
		w->st.tx_packets += sent;
		w->tx_head = (uint16_t)((w->tx_head + sent) % MC_TX_BACKLOG);
		w->tx_n = (uint16_t)(w->tx_n - sent);
		if (unlikely(sent < run)) {
			/* The rest waits for the next poll; pushes until then do not retry. */
			w->st.tx_deferred++;
			w->tx_stalled = 1;
			return;
		}
	}
	w->tx_head = 0;
}

bool
mc_dp_tx_reserve(struct mc_worker *w, unsigned int n)
{
	if (likely(w->tx_n + n <= MC_TX_BACKLOG))
		return true;
	if (!w->tx_stalled)
		mc_dp_tx_flush(w);
	return w->tx_n + n <= MC_TX_BACKLOG;
}

void
mc_dp_tx_push(struct mc_worker *w, struct rte_mbuf *m)
{
	if (unlikely(w->tx_n == MC_TX_BACKLOG)) {
		/* Only a caller that skipped mc_dp_tx_reserve gets here. */
		w->st.drop_tx_backlog++;
		rte_pktmbuf_free(m);
		return;
	}
	w->tx[(w->tx_head + w->tx_n) % MC_TX_BACKLOG] = m;
	if (++w->tx_n >= MC_TX_FLUSH_AT && !w->tx_stalled)
		mc_dp_tx_flush(w);
}

static inline void
swap_macs(struct rte_ether_hdr *eth, const struct rte_ether_addr *ours)
{
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(ours, &eth->src_addr);
}

/* A source no request can honestly come from: zero, broadcast, multicast, loopback, our own
 * address, or our subnet's network or broadcast address (a reply to those would go to us, or
 * to the whole subnet). */
static inline bool
bad_source_ip(const struct mc_worker *w, uint32_t a_be)
{
	const uint32_t a = rte_be_to_cpu_32(a_be), mask = rte_be_to_cpu_32(w->mask_be);
	if (a == 0 || a == 0xffffffffu || (a >> 28) == 0xe || (a >> 24) == 127 || a_be == w->ip_be)
		return true;
	/* Inside our subnet (of /30 or wider: /31 and /32 have no such addresses). */
	return ((a_be ^ w->ip_be) & w->mask_be) == 0 && (~mask >> 1) != 0 &&
	       ((a & ~mask) == 0 || (a | mask) == 0xffffffffu);
}

/* Allowed and within its budget (request now, reply bytes charged up front: the reply is the
 * same size as the request for ARP and ICMP echo). ARP also answers any sender on our subnet,
 * allowed or not: a router must resolve us for routed clients to reach us, and an ARP reply
 * goes only to the requester's MAC, so it reflects nothing off-link. Counts the drop. */
static inline bool
admit_echo(struct mc_worker *w, uint32_t src_be, uint32_t reply_bytes, bool on_link_ok)
{
	const bool on_link = ((src_be ^ w->ip_be) & w->mask_be) == 0;
	if (unlikely(!(on_link_ok && on_link) &&
		     !mc_config_allowed(w->cfg, rte_be_to_cpu_32(src_be)))) {
		w->st.drop_not_allowed++;
		return false;
	}
	if (unlikely(!mc_dp_rl_admit(w, src_be) || !mc_dp_rl_charge(w, src_be, reply_bytes))) {
		w->st.drop_ratelimit++;
		return false;
	}
	if (unlikely(!mc_dp_tx_reserve(w, 1))) {
		w->st.drop_tx_backlog++;
		return false;
	}
	return true;
}

static void
handle_arp(struct mc_worker *w, struct rte_mbuf *m, struct rte_ether_hdr *eth, uint16_t l2)
{
	struct rte_arp_hdr *arp;
	if (unlikely(rte_pktmbuf_data_len(m) < l2 + sizeof(*arp)))
		DROP(w, m, drop_short);
	arp = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, l2);
	if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
	    arp->arp_plen != 4 || arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) ||
	    arp->arp_data.arp_tip != w->ip_be)
		DROP(w, m, drop_arp);
	if (rte_is_multicast_ether_addr(&arp->arp_data.arp_sha) ||
	    rte_is_zero_ether_addr(&arp->arp_data.arp_sha) ||
	    bad_source_ip(w, arp->arp_data.arp_sip))
		DROP(w, m, drop_arp);
	if (!admit_echo(w, arp->arp_data.arp_sip, rte_pktmbuf_pkt_len(m), true)) {
		rte_pktmbuf_free(m);
		return;
	}
	/* Turn the request into the reply in place. */
	arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	arp->arp_data.arp_tha = arp->arp_data.arp_sha;
	arp->arp_data.arp_tip = arp->arp_data.arp_sip;
	arp->arp_data.arp_sha = w->mac;
	arp->arp_data.arp_sip = w->ip_be;
	rte_ether_addr_copy(&arp->arp_data.arp_tha, &eth->dst_addr);
	rte_ether_addr_copy(&w->mac, &eth->src_addr);
	w->st.arp_replies++;
	mc_dp_tx_push(w, m);
}

/* Swap addresses of an IPv4 header for a reply, fresh TTL, no fragment bits. */
static inline void
ip_reply(struct rte_ipv4_hdr *ip)
{
	uint32_t a = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	ip->time_to_live = 64;
	ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
	ip->type_of_service = 0;
}

static void
handle_icmp(struct mc_worker *w, struct rte_mbuf *m, struct rte_ether_hdr *eth,
	    struct rte_ipv4_hdr *ip, uint16_t l2, uint16_t l4_len)
{
	struct rte_icmp_hdr *icmp;
	uint16_t ck;
	if (unlikely(l4_len < sizeof(*icmp)))
		DROP(w, m, drop_icmp);
	icmp = rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *, l2 + sizeof(*ip));
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0)
		DROP(w, m, drop_icmp);
	if (rte_raw_cksum_mbuf(m, l2 + sizeof(*ip), l4_len, &ck) != 0 || ck != 0xffff)
		DROP(w, m, drop_icmp);
	if (!admit_echo(w, ip->src_addr, rte_pktmbuf_pkt_len(m), false)) {
		rte_pktmbuf_free(m);
		return;
	}
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_cksum = 0;
	rte_raw_cksum_mbuf(m, l2 + sizeof(*ip), l4_len, &ck);
	icmp->icmp_cksum = (ck == 0xffff) ? ck : (uint16_t)~ck;
	ip_reply(ip);
	ip->packet_id = 0;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	swap_macs(eth, &w->mac);
	w->st.icmp_replies++;
	mc_dp_tx_push(w, m);
}

void
mc_dp_udp_finish(const struct mc_worker *w, struct rte_mbuf *m, uint16_t l2_len,
		 uint16_t payload_len)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2_len);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint16_t l4 = (uint16_t)(sizeof(*udp) + payload_len);
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4));
	udp->dgram_len = rte_cpu_to_be_16(l4);
	ip->hdr_checksum = 0;
	udp->dgram_cksum = 0;
	if (w->tx_cksum_offload) {
		m->l2_len = l2_len;
		m->l3_len = sizeof(*ip);
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
		udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	} else {
		uint16_t ck;
		ip->hdr_checksum = (uint16_t)~cksum_sum(ip, sizeof(*ip), 0);
		ck = (uint16_t)~udp_sum(m, ip, l2_len + sizeof(*ip), l4);
		udp->dgram_cksum = ck == 0 ? 0xffff : ck;
	}
}

static inline struct mc_rl_slot *
rl_slot(const struct mc_rl *rl, uint32_t src)
{
	/* Multiply-shift with a secret: 2-universal, so no two sources collide by design. */
	return &rl->slot[((src ^ rl->k0) * rl->k1) >> (64 - 16)];
}

/* GCRA: move *tat on by cost unless that puts it more than window ahead of now. Lock-free:
 * workers on other queues may charge the same slot. */
static inline bool
gcra_take(uint64_t *tat, uint64_t now, uint64_t cost, uint64_t window)
{
	uint64_t t = __atomic_load_n(tat, __ATOMIC_RELAXED), n;
	do {
		n = (t > now ? t : now) + cost;
		if (n - now > window)
			return false;
	} while (!__atomic_compare_exchange_n(tat, &t, n, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

struct mc_rl *
mc_dp_rl_create(const struct mc_config *cfg, uint64_t tsc_hz, int socket)
{
	struct mc_rl *rl;
	uint64_t k[2];
	if (cfg->src_rps == 0 && cfg->src_kbps == 0)
		return NULL;
	rl = rte_zmalloc_socket("mc_rl", sizeof(*rl), RTE_CACHE_LINE_SIZE, socket);
	if (rl != NULL)
		rl->slot = rte_zmalloc_socket("mc_rl_slots", sizeof(*rl->slot) * MC_RL_SLOTS,
					      RTE_CACHE_LINE_SIZE, socket);
	if (rl == NULL || rl->slot == NULL || getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
		rte_exit(EXIT_FAILURE, "cannot set up the per-source rate limiter\n");
	rl->k0 = k[0];
	rl->k1 = k[1] | 1;
	if (cfg->src_rps != 0) {
		rl->req_cost = RTE_MAX(tsc_hz / cfg->src_rps, (uint64_t)1);
		rl->req_window = RTE_MAX(tsc_hz / 1000 * cfg->src_burst_ms, rl->req_cost);
	}
	if (cfg->src_kbps != 0) {
		const uint64_t bps = (uint64_t)cfg->src_kbps * 1024;
		/* The burst holds at least one reply of the largest size with its headers. */
		const uint64_t burst = RTE_MAX(bps / 1000 * cfg->src_burst_ms,
					       (uint64_t)cfg->udp_reply_max * 2);
		rl->byte_cost_fp = RTE_MAX((tsc_hz << 16) / bps, (uint64_t)1);
		rl->byte_window = (burst * rl->byte_cost_fp) >> 16;
		/* Ethernet, IPv4, UDP and memcached headers, and a 5-byte "END\r\n". */
		rl->byte_min = ((14 + 20 + 8 + 8 + 5) * rl->byte_cost_fp) >> 16;
	}
	return rl;
}

void
mc_dp_rl_destroy(struct mc_rl *rl)
{
	if (rl == NULL)
		return;
	rte_free(rl->slot);
	rte_free(rl);
}

bool
mc_dp_rl_admit(struct mc_worker *w, uint32_t src)
{
	const struct mc_rl *rl = w->rl;
	struct mc_rl_slot *s;
	if (rl == NULL)
		return true;
	s = rl_slot(rl, src);
	/* A source whose byte budget cannot pay even the smallest reply gets no request in
	 * either: nothing is parsed, looked up or copied for it. */
	if (rl->byte_cost_fp != 0 &&
	    __atomic_load_n(&s->byte_tat, __ATOMIC_RELAXED) + rl->byte_min > w->now + rl->byte_window)
		return false;
	return rl->req_cost == 0 || gcra_take(&s->req_tat, w->now, rl->req_cost, rl->req_window);
}

bool
mc_dp_rl_charge(struct mc_worker *w, uint32_t src, uint32_t bytes)
{
	const struct mc_rl *rl = w->rl;
	if (rl == NULL || rl->byte_cost_fp == 0)
		return true;
	return gcra_take(&rl_slot(rl, src)->byte_tat, w->now, (bytes * rl->byte_cost_fp) >> 16,
			 rl->byte_window);
}

/* Source ports of UDP services that answer whatever reaches them: a reply to one would start
 * a loop between two reflectors (CVE-2024-2169). Every privileged port, SSDP, mDNS, memcached,
 * and the ports this box serves. */
static inline bool
reflector_port(const struct mc_worker *w, uint16_t sport_be)
{
	const uint16_t p = rte_be_to_cpu_16(sport_be);
	return p < 1024 || p == 1900 || p == 5353 || p == 11211 ||
	       (uint16_t)(p - w->udp_port) < w->nports;
}

static void
handle_udp(struct mc_worker *w, struct rte_mbuf *m, struct rte_ether_hdr *eth,
	   struct rte_ipv4_hdr *ip, uint16_t l2, uint16_t l4_len)
{
	struct rte_udp_hdr *udp;
	uint16_t dlen;
	if (unlikely(l4_len < sizeof(*udp)))
		DROP(w, m, drop_udp_len);
	udp = (struct rte_udp_hdr *)(ip + 1);
	dlen = rte_be_to_cpu_16(udp->dgram_len);
	if (unlikely(dlen < sizeof(*udp) || dlen > l4_len))
		DROP(w, m, drop_udp_len);
	if (unlikely(udp->dst_port != w->udp_port_be &&
		     (uint16_t)(rte_be_to_cpu_16(udp->dst_port) - w->udp_port) >= w->nports))
		DROP(w, m, drop_udp_port);
	if (dlen < l4_len)
		rte_pktmbuf_trim(m, l4_len - dlen);
	/* The NIC's verdict when it gave one (NONE: verified, just not rewritten), else ours. */
	if (udp->dgram_cksum != 0) {
		const uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
		if (unlikely(ck == RTE_MBUF_F_RX_L4_CKSUM_BAD))
			DROP(w, m, drop_udp_cksum);
		if (ck == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN &&
		    unlikely(udp_sum(m, ip, l2 + sizeof(*ip), dlen) != 0xffff))
			DROP(w, m, drop_udp_cksum);
	}
	if (unlikely(reflector_port(w, udp->src_port)))
		DROP(w, m, drop_src_port);
	if (unlikely(!mc_dp_rl_admit(w, ip->src_addr)))
		DROP(w, m, drop_ratelimit);
	ip_reply(ip);
	ip->packet_id = 0;
	{
		uint16_t p = udp->src_port;
		udp->src_port = udp->dst_port;
		udp->dst_port = p;
	}
	swap_macs(eth, &w->mac);
	w->st.udp_requests++;
	mc_udp_serve(w, m, l2, (uint16_t)(dlen - sizeof(*udp)));
}

static void
handle_one(struct mc_worker *w, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	uint16_t l2 = sizeof(*eth), etype, tot, frame_l3, l4_len;

	if (unlikely(rte_pktmbuf_data_len(m) < sizeof(*eth)))
		DROP(w, m, drop_short);
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (unlikely(!rte_is_same_ether_addr(&eth->dst_addr, &w->mac) &&
		     !rte_is_broadcast_ether_addr(&eth->dst_addr)))
		DROP(w, m, drop_l2_dst);
	if (unlikely(rte_is_multicast_ether_addr(&eth->src_addr)))
		DROP(w, m, drop_l2_src);
	etype = eth->ether_type;
	if (etype == RTE_BE16(RTE_ETHER_TYPE_VLAN)) {
		/* 802.1Q: keep the tag, it goes back out unchanged. */
		struct rte_vlan_hdr *vh;
		if (unlikely(rte_pktmbuf_data_len(m) < l2 + sizeof(*vh)))
			DROP(w, m, drop_short);
		vh = (struct rte_vlan_hdr *)(eth + 1);
		etype = vh->eth_proto;
		l2 += sizeof(*vh);
	}
	if (etype == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
		handle_arp(w, m, eth, l2);
		return;
	}
	if (unlikely(etype != RTE_BE16(RTE_ETHER_TYPE_IPV4)))
		DROP(w, m, drop_ethertype);
	if (unlikely(rte_pktmbuf_data_len(m) < l2 + sizeof(*ip)))
		DROP(w, m, drop_short);
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2);
	if (unlikely((ip->version_ihl >> 4) != 4))
		DROP(w, m, drop_ip_version);
	if (unlikely((ip->version_ihl & 0xf) < 5))
		DROP(w, m, drop_ip_hdr);
	if (unlikely((ip->version_ihl & 0xf) != 5)) {
		if (rte_pktmbuf_data_len(m) < l2 + (ip->version_ihl & 0xf) * 4u)
			DROP(w, m, drop_ip_hdr);
		DROP(w, m, drop_ip_options);
	}
	tot = rte_be_to_cpu_16(ip->total_length);
	frame_l3 = (uint16_t)(rte_pktmbuf_pkt_len(m) - l2);
	if (unlikely(tot < sizeof(*ip) || tot > frame_l3))
		DROP(w, m, drop_ip_len);
	{
		const uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
		if (unlikely(ck == RTE_MBUF_F_RX_IP_CKSUM_BAD))
			DROP(w, m, drop_ip_cksum);
		if (ck == RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN &&
		    unlikely(cksum_sum(ip, sizeof(*ip), 0) != 0xffff))
			DROP(w, m, drop_ip_cksum);
	}
	if (unlikely((ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0))
		DROP(w, m, drop_ip_frag);
	if (unlikely(ip->dst_addr != w->ip_be))
		DROP(w, m, drop_ip_dst);
	if (unlikely(bad_source_ip(w, ip->src_addr)))
		DROP(w, m, drop_ip_src);
	if (unlikely(!mc_config_allowed(w->cfg, rte_be_to_cpu_32(ip->src_addr))))
		DROP(w, m, drop_not_allowed);
	/* Ethernet pads short frames: cut the padding so lengths below are the IP ones. */
	if (tot < frame_l3)
		rte_pktmbuf_trim(m, frame_l3 - tot);
	l4_len = (uint16_t)(tot - sizeof(*ip));
	if (ip->next_proto_id == IPPROTO_UDP) {
		if (unlikely(rte_pktmbuf_data_len(m) < l2 + sizeof(*ip) + sizeof(struct rte_udp_hdr)))
			DROP(w, m, drop_udp_len);
		handle_udp(w, m, eth, ip, l2, l4_len);
		return;
	}
	if (ip->next_proto_id == IPPROTO_ICMP) {
		handle_icmp(w, m, eth, ip, l2, l4_len);
		return;
	}
	DROP(w, m, drop_ip_proto);
}

#define PREFETCH_OFFSET 3
#define ITEM_AHEAD 4

void
mc_dp_handle_burst(struct mc_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t i;
	w->st.rx_packets += n;
	if (w->rl != NULL)
		w->now = rte_rdtsc();
	for (i = 0; i < n; i++)
		w->pre[i].key = NULL;
	if (w->svc != NULL && !w->no_batch_prefetch) {
		/* MICA-style batching: every header, then every get's key hashed and its index
		 * buckets prefetched, for the whole burst before executing any of it, so the
		 * lookups' cache misses overlap. The headers are warm after this. */
		for (i = 0; i < n; i++)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
		for (i = 0; i < n; i++)
			mc_udp_prefetch(w, pkts[i], i);
		/* Items too, ITEM_AHEAD frames before their turn: by then their buckets are in,
		 * and a cold item costs a DRAM round trip that nothing else would hide. */
		for (i = 0; i < ITEM_AHEAD && i < n; i++)
			if (w->pre[i].key != NULL)
				mc_store_prefetch_item(w->svc->px.sx.s, w->pre[i].hash);
		for (i = 0; i < n; i++) {
			if (i + ITEM_AHEAD < n && w->pre[i + ITEM_AHEAD].key != NULL)
				mc_store_prefetch_item(w->svc->px.sx.s, w->pre[i + ITEM_AHEAD].hash);
			w->cur = i;
			handle_one(w, pkts[i]);
		}
		return;
	}
	/* Prefetch the first packets, then j + OFFSET while handling j. */
	for (i = 0; i < PREFETCH_OFFSET && i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i + PREFETCH_OFFSET < n; i++) {
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_OFFSET], void *));
		w->cur = i;
		handle_one(w, pkts[i]);
	}
	for (; i < n; i++) {
		w->cur = i;
		handle_one(w, pkts[i]);
	}
}

void
mc_dp_stats_sum(const struct mc_worker *ws, unsigned int n, struct mc_dp_stats *out)
{
	unsigned int i;
	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
#define X(name, help) out->name += ws[i].st.name;
		MC_DP_COUNTERS(X)
#undef X
	}
}

int
mc_dp_stats_line(const struct mc_dp_stats *s, char *buf, size_t len)
{
	int off = snprintf(buf, len, "rx=%" PRIu64 " tx=%" PRIu64 " udp=%" PRIu64 " arp=%" PRIu64
				     " icmp=%" PRIu64,
			   s->rx_packets, s->tx_packets, s->udp_requests, s->arp_replies,
			   s->icmp_replies);
#define X(name, help)                                                                          \
	if (s->name != 0 && (!strncmp(#name, "drop_", 5) || !strcmp(#name, "tx_deferred")) &&   \
	    off >= 0 && (size_t)off < len)                                                     \
		off += snprintf(buf + off, len - (size_t)off, " %s=%" PRIu64, #name, s->name);
	MC_DP_COUNTERS(X)
#undef X
	return off;
}
