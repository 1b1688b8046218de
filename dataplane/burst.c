/* The burst pipeline, stage by stage, as l3fwd and MICA run theirs: every frame's L2-L4
 * headers are parsed and validated once into the burst's array (what it is, its offsets, the
 * verdict); each memcached request's first key found, hashed and its bucket requested, for the
 * whole burst; every item's first line requested; then each frame executed in order while the
 * rest of the items of frames a few places ahead are requested (that loop is reply.c's
 * mc_dp_execute, so the memcached answer inlines into it). Memcached requests are answered
 * by reply.c through the TX backlog, frames for the kernel go to the exception queue
 * (exception.c). Every frame neither answered nor handed to the kernel counts against exactly
 * one drop reason. */
#include "dp_int.h"
#include "../udp/udp.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#define ITEM_L2 12 /* frames whose items' other lines are requested into L2 with the first */

/* IPv6's all-nodes group (multicast listener queries come to it). */
static const struct rte_ether_addr all_nodes_mac = {{0x33, 0x33, 0, 0, 0, 1}};

/* rte_is_same_ether_addr in two loads a side instead of three. */
static inline bool
mac_eq(const struct rte_ether_addr *a, const struct rte_ether_addr *b)
{
	uint32_t a4, b4;
	uint16_t a2, b2;
	memcpy(&a4, a->addr_bytes, 4);
	memcpy(&b4, b->addr_bytes, 4);
	memcpy(&a2, a->addr_bytes + 4, 2);
	memcpy(&b2, b->addr_bytes + 4, 2);
	return ((a4 ^ b4) | (uint32_t)(uint16_t)(a2 ^ b2)) == 0;
}

static inline void
swap_macs(struct rte_ether_hdr *eth, const struct rte_ether_addr *ours)
{
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(ours, &eth->src_addr);
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

/* A source no request can honestly come from: zero, broadcast, multicast, loopback, our own
 * address, or our subnet's network or broadcast address (a reply to those would go to us, or
 * to the whole subnet). */
static inline bool
bad_source_ip(const struct mc_worker *w, uint32_t a_be)
{
	const uint32_t a = net32(a_be);
	/* The subnet's two (mc_dp_worker_init: 0 for a /31 or /32, which have none). */
	return a == 0 || a == 0xffffffffu || (a >> 28) == 0xe || (a >> 24) == 127 ||
	       a_be == w->ip_be || a == w->src_net || a == w->src_bcast;
}

/* Source ports of UDP services that answer whatever reaches them: a reply to one would start
 * a loop between two reflectors (CVE-2024-2169). Every privileged port, SSDP, mDNS, memcached,
 * and the ports this box serves. */
static inline bool
reflector_port(const struct mc_worker *w, uint16_t sport_be)
{
	const uint16_t p = net16(sport_be);
	if ((uint16_t)(p - w->udp_port) < w->nports)
		return true;
	/* Clients' ports are mostly ephemeral, above them all: one compare. */
	return p <= 11211 && (p < 1024 || p == 1900 || p == 5353 || p == 11211);
}

/* Allowed and within its budget (request now, reply bytes charged up front: the reply is about
 * the same size as the request for ARP, ND and ICMP echo). Counts the drop. */
bool
mc_dp_admit_echo(struct mc_worker *w, uint64_t src_key, uint32_t reply_bytes, bool allowed)
{
	if (unlikely(!allowed)) {
		w->st.drop_not_allowed++;
		return false;
	}
	if (unlikely(!mc_dp_rl_admit(w, src_key) || !mc_dp_rl_charge(w, src_key, reply_bytes))) {
		w->st.drop_ratelimit++;
		return false;
	}
	if (unlikely(!mc_dp_tx_reserve(w, 1))) {
		w->st.drop_tx_backlog++;
		return false;
	}
	return true;
}

/* ---- stage 1: parse and validate L2-L4, once ---- */

static void
parse_arp(struct mc_worker *w, struct mc_frame *f)
{
	const struct rte_arp_hdr *arp;
	if (unlikely(rte_pktmbuf_data_len(f->m) < f->l2 + sizeof(*arp)))
		VERDICT(f, drop_short);
	arp = rte_pktmbuf_mtod_offset(f->m, const struct rte_arp_hdr *, f->l2);
	if (w->ip_be == 0)
		VERDICT(f, drop_arp); /* an IPv6-only box */
	if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
	    arp->arp_plen != 4 || arp->arp_data.arp_tip != w->ip_be ||
	    (arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) &&
	     arp->arp_opcode != RTE_BE16(RTE_ARP_OP_REPLY)))
		VERDICT(f, drop_arp);
	if (rte_is_multicast_ether_addr(&arp->arp_data.arp_sha) ||
	    rte_is_zero_ether_addr(&arp->arp_data.arp_sha) ||
	    bad_source_ip(w, arp->arp_data.arp_sip))
		VERDICT(f, drop_arp);
	if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REQUEST)) {
		f->kind = MC_FRAME_ARP;
		return;
	}
	/* A reply to us: the kernel resolving a peer (its requests leave through the port).
	 * From a neighbour, or an allowed sender, as for requests. */
	if (w->exc != MC_EXC_ON)
		TO_KERNEL(f, drop_arp);
	if (((arp->arp_data.arp_sip ^ w->ip_be) & w->mask_be) != 0 &&
	    !mc_config_allowed(w->cfg, rte_be_to_cpu_32(arp->arp_data.arp_sip)))
		VERDICT(f, drop_not_allowed);
	TO_KERNEL(f, drop_arp);
}

/* Echo requests are answered here; the ICMP the kernel's TCP needs (destination unreachable,
 * fragmentation needed among them; time exceeded; parameter problem) and echo replies to its
 * own pings are the kernel's; the rest (redirects, timestamps...) is dropped. */
static void
parse_icmp(const struct mc_worker *w, struct mc_frame *f, const struct rte_ipv4_hdr *ip)
{
	const struct rte_icmp_hdr *icmp;
	if (unlikely(f->l4_len < sizeof(*icmp)))
		VERDICT(f, drop_icmp);
	icmp = (const struct rte_icmp_hdr *)(ip + 1);
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST && w->exc != MC_EXC_ON)
		TO_KERNEL(f, drop_icmp); /* no exception path: not checked further */
	if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REQUEST && icmp->icmp_code != 0)
		VERDICT(f, drop_icmp);
	if (l4_sum_chain(f->m, 0, f->l2 + sizeof(*ip), f->l4_len) != 0xffff)
		VERDICT(f, drop_icmp);
	if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REPLY || icmp->icmp_type == 3 ||
	    icmp->icmp_type == 11 || icmp->icmp_type == 12)
		TO_KERNEL(f, drop_icmp);
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST)
		VERDICT(f, drop_icmp);
	f->kind = MC_FRAME_ICMP;
}

/* TCP to the TCP service's port is the kernel's (mcbox's TCP threads listen there), checksum
 * verified first. Other ports are not: the host's own services (sshd, rpcbind...) must not
 * become reachable on the box's data address. */
void
mc_dp_parse_tcp(const struct mc_worker *w, struct mc_frame *f, uint64_t addrs)
{
	const uint32_t off = f->l2 + f->l3_len;
	const struct rte_tcp_hdr *th;
	if (w->exc != MC_EXC_ON)
		TO_KERNEL(f, drop_ip_proto);
	if (unlikely(f->l4_len < sizeof(struct rte_tcp_hdr) ||
		     rte_pktmbuf_data_len(f->m) < off + sizeof(*th)))
		VERDICT(f, drop_short);
	th = rte_pktmbuf_mtod_offset(f->m, const struct rte_tcp_hdr *, off);
	if (th->dst_port != rte_cpu_to_be_16(w->cfg->tcp_port) || w->cfg->tcp_port == 0)
		VERDICT(f, drop_tcp_port);
	if (unlikely(!l4_cksum_ok(f, addrs, IPPROTO_TCP, off, f->l4_len)))
		VERDICT(f, drop_tcp_cksum);
	TO_KERNEL(f, drop_ip_proto);
}

/* Inline into the IPv4 parse (the hot path); ip6.c calls it through mc_dp_parse_udp. */
static inline __attribute__((always_inline)) void
parse_udp(struct mc_worker *w, struct mc_frame *f, uint64_t addrs)
{
	struct rte_mbuf *m = f->m;
	const uint32_t off = f->l2 + f->l3_len;
	const struct rte_udp_hdr *udp;
	uint16_t dlen;
	if (unlikely(f->l4_len < sizeof(*udp) || rte_pktmbuf_data_len(m) < off + sizeof(*udp)))
		VERDICT(f, drop_udp_len);
	udp = rte_pktmbuf_mtod_offset(m, const struct rte_udp_hdr *, off);
	dlen = net16(udp->dgram_len);
	if (unlikely(dlen < sizeof(*udp) || dlen > f->l4_len))
		VERDICT(f, drop_udp_len);
	/* Another port: nobody's. Not the kernel's either: the host's UDP services (NTP, SNMP,
	 * SSDP...) would become reflectors on the box's data address. */
	if (unlikely(udp->dst_port != w->udp_port_be &&
		     (uint16_t)(net16(udp->dst_port) - w->udp_port) >= w->nports))
		VERDICT(f, drop_udp_port);
	if (dlen < f->l4_len)
		rte_pktmbuf_trim(m, f->l4_len - dlen);
	/* The NIC's verdict when it gave one (NONE: verified, just not rewritten), else ours,
	 * in stage 2: a lone get's from the key's sum it works out anyway (stage_hash). IPv4
	 * may leave the sum out (0); IPv6 may not. */
	f->ck_sum = 0;
	if (udp->dgram_cksum != 0) {
		const uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
		if (unlikely(ck == RTE_MBUF_F_RX_L4_CKSUM_BAD))
			VERDICT(f, drop_udp_cksum);
		if (ck == RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN)
			f->ck_sum = addrs + RTE_BE16(IPPROTO_UDP) + udp->dgram_len;
	} else if (unlikely(f->v6)) {
		VERDICT(f, drop_udp_cksum);
	}
	if (unlikely(reflector_port(w, udp->src_port))) {
		if (f->ck_sum != 0 && !udp_sum_ok(f, dlen))
			VERDICT(f, drop_udp_cksum); /* the reason a bad sum had before */
		VERDICT(f, drop_src_port);
	}
	f->payload_len = (uint16_t)(dlen - sizeof(*udp));
	/* The request in view when it lies in the first segment; a chain is copied later. */
	f->payload = rte_pktmbuf_data_len(m) >= off + sizeof(*udp) + f->payload_len
			     ? rte_pktmbuf_mtod_offset(m, const uint8_t *, off + sizeof(*udp))
			     : NULL;
	f->kind = MC_FRAME_MEMCACHED;
}

void
mc_dp_parse_udp(struct mc_worker *w, struct mc_frame *f, uint64_t addrs)
{
	parse_udp(w, f, addrs);
}

/* IPv4, from its header on. A reassembled datagram comes back to the top whole, its header
 * rewritten by the reassembly with the checksum left at zero: every fragment's was checked.
 * Inline, without recursion, into the parse stage: the hot path. */
static inline __attribute__((always_inline)) void
parse_ip4(struct mc_worker *w, struct mc_frame *f)
{
	struct rte_mbuf *m;
	struct rte_ipv4_hdr *ip;
	uint16_t tot, frame_l3;
	bool whole = false;

again:
	m = f->m;
	if (unlikely(rte_pktmbuf_data_len(m) < f->l2 + sizeof(*ip)))
		VERDICT(f, drop_short);
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, f->l2);
	if (unlikely(ip->version_ihl != RTE_IPV4_VHL_DEF)) { /* IPv4, no options: one compare */
		if ((ip->version_ihl >> 4) != 4)
			VERDICT(f, drop_ip_version);
		if ((ip->version_ihl & 0xf) < 5)
			VERDICT(f, drop_ip_hdr);
		if (rte_pktmbuf_data_len(m) < f->l2 + (ip->version_ihl & 0xf) * 4u)
			VERDICT(f, drop_ip_hdr);
		VERDICT(f, drop_ip_options);
	}
	tot = net16(ip->total_length);
	frame_l3 = (uint16_t)(rte_pktmbuf_pkt_len(m) - f->l2);
	if (unlikely(tot < sizeof(*ip) || tot > frame_l3))
		VERDICT(f, drop_ip_len);
	if (likely(!whole)) {
		const uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
		if (unlikely(ck == RTE_MBUF_F_RX_IP_CKSUM_BAD))
			VERDICT(f, drop_ip_cksum);
		if (ck == RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN &&
		    unlikely(cksum_sum(ip, sizeof(*ip), 0) != 0xffff))
			VERDICT(f, drop_ip_cksum);
	}
	if (unlikely(ip->dst_addr != w->ip_be || w->ip_be == 0))
		VERDICT(f, drop_ip_dst);
	{
		/* The source checks, or the memory of this source passing them. */
		const uint64_t ok = (uint64_t)ip->src_addr | 1ull << 32;
		uint64_t *seen = &w->src_ok[ip->src_addr >> 24];
		if (unlikely(*seen != ok)) {
			if (unlikely(bad_source_ip(w, ip->src_addr)))
				VERDICT(f, drop_ip_src);
			if (unlikely(!mc_config_allowed(w->cfg, net32(ip->src_addr))))
				VERDICT(f, drop_not_allowed);
			*seen = ok;
		}
	}
	/* Ethernet pads short frames: cut the padding so lengths below are the IP ones. */
	if (tot < frame_l3)
		rte_pktmbuf_trim(m, frame_l3 - tot);
	if (unlikely((ip->fragment_offset &
		      RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0)) {
		struct rte_mbuf *d = whole ? NULL : mc_dp_frag4(w, f, ip, tot);
		if (whole)
			VERDICT(f, drop_ip_frag);
		if (d == NULL)
			return; /* held, or a verdict */
		f->m = d;
		whole = true;
		goto again;
	}
	f->src_key = ip->src_addr;
	f->l4_len = (uint16_t)(tot - sizeof(*ip));
	if (ip->next_proto_id == IPPROTO_UDP) {
		parse_udp(w, f, ip4_addrs(ip));
		return;
	}
	if (ip->next_proto_id == IPPROTO_TCP) {
		mc_dp_parse_tcp(w, f, ip4_addrs(ip));
		return;
	}
	if (ip->next_proto_id == IPPROTO_ICMP) {
		parse_icmp(w, f, ip);
		return;
	}
	VERDICT(f, drop_ip_proto);
}

static void
stage_parse(struct mc_worker *w, struct mc_frame *f)
{
	struct rte_mbuf *m = f->m;
	const struct rte_ether_hdr *eth;
	uint16_t etype;

	f->l2 = sizeof(*eth);
	f->key.p = NULL;
	f->lone = 0;
	f->hdr_ok = false;
	if (unlikely(rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m))) {
		/* Bytes someone else holds too (a clone, an attached or external buffer): every
		 * answer is built in its frame's own buffer, so on a private copy of it. */
		struct rte_mbuf *c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);
		if (c == NULL)
			VERDICT(f, drop_nombuf);
		rte_pktmbuf_free(m);
		f->m = m = c;
	}
	if (unlikely(rte_pktmbuf_data_len(m) < sizeof(*eth)))
		VERDICT(f, drop_short);
	eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	/* Ours, broadcast, or IPv6's solicited-node group of our address or all nodes. */
	if (unlikely(!mac_eq(&eth->dst_addr, &w->mac) &&
		     !rte_is_broadcast_ether_addr(&eth->dst_addr) &&
		     !(w->has_ip6 && (rte_is_same_ether_addr(&eth->dst_addr, &w->ip6_sn_mac) ||
				      rte_is_same_ether_addr(&eth->dst_addr, &all_nodes_mac)))))
		VERDICT(f, drop_l2_dst);
	if (unlikely(rte_is_multicast_ether_addr(&eth->src_addr)))
		VERDICT(f, drop_l2_src);
	etype = eth->ether_type;
	if (etype == RTE_BE16(RTE_ETHER_TYPE_VLAN)) {
		/* 802.1Q: keep the tag, it goes back out unchanged. */
		const struct rte_vlan_hdr *vh;
		if (unlikely(rte_pktmbuf_data_len(m) < f->l2 + sizeof(*vh)))
			VERDICT(f, drop_short);
		vh = (const struct rte_vlan_hdr *)(eth + 1);
		etype = vh->eth_proto;
		f->l2 += sizeof(*vh);
	}
	if (likely(etype == RTE_BE16(RTE_ETHER_TYPE_IPV4))) {
		f->v6 = 0;
		f->l3_len = sizeof(struct rte_ipv4_hdr);
		parse_ip4(w, f);
		return;
	}
	if (etype == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
		parse_arp(w, f);
		return;
	}
	if (etype == RTE_BE16(RTE_ETHER_TYPE_IPV6) && w->has_ip6) {
		f->v6 = 1;
		f->l3_len = sizeof(struct rte_ipv6_hdr);
		mc_dp_parse_ip6(w, f);
		return;
	}
	VERDICT(f, drop_ethertype);
}

/* ---- stage 2: the memcached frame, the first key hashed, its buckets prefetched, the UDP
 * checksum verified ---- */

/* A lone get's datagram (f->lone, its key hashed and summed) sums to 0xffff: its headers'
 * sixteen bytes, the command and "\r\n" (constants at their offsets' parity) and the key's
 * sum, added to the pseudo header's, read nothing twice. The headers' two words can take the
 * sum near 2^64 (a checksum field of 0xffff sets its top 16 bits): it is folded to 33 bits
 * before the small terms are added (the key's is below 2^41 shifted), so none can wrap. */
static inline bool
lone_sum_ok(const struct mc_frame *f)
{
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	const unsigned int odd = f->lone - 1u; /* "gets " puts the key at an odd offset */
	uint64_t udp, frame, sum;
	memcpy(&udp, f->payload - sizeof(struct rte_udp_hdr), 8);
	memcpy(&frame, f->payload, 8);
	sum = add_c(add_c(f->ck_sum, udp), frame);
	sum = (sum & 0xffffffffu) + (sum >> 32); /* 2^32 is 1 modulo 0xffff */
	sum += odd ? MC_SUM2('g', 'e') + MC_SUM2('t', 's') + ' ' : MC_SUM2('g', 'e') + MC_SUM2('t', ' ');
	sum += f->key.sum << (8 * odd);
	sum += (uint64_t)MC_SUM2('\r', '\n') << (8 * ((odd + f->key.len) & 1));
	return mc_sum_fold(sum) == 0xffff;
#else
	/* The constants above are little-endian words: sum it whole. */
	return udp_sum_ok(f, f->payload_len + sizeof(struct rte_udp_hdr));
#endif
}

static void
stage_hash(const struct mc_worker *w, const struct mc_store_front *fr, struct mc_frame *f)
{
	const struct mc_store *s;
	const uint8_t *key, *req;
	uint32_t klen;
	size_t len;
	if (f->kind != MC_FRAME_MEMCACHED)
		return;
	/* The source's budget slot, requested now too: with many sources it is a miss. */
	if (w->rl != NULL) {
		f->rl_slot = mc_dp_rl_slot(w->rl, f->src_key);
		rte_prefetch0(f->rl_slot);
	}
	if (f->payload == NULL)
		goto whole_sum;
	s = w->svc->px.sx.s;
	/* A bad header is dropped when the frame executes, after its source's budget is charged,
	 * as for a chained frame. */
	f->hdr_ok = mc_udp_frame_parse(f->payload, f->payload_len, &f->hdr) == MC_UDP_OK;
	if (unlikely(!f->hdr_ok || w->no_batch_prefetch))
		goto whole_sum;
	/* A lone get's key is found, hashed, summed and placed in one pass over it; anything
	 * else is looked for first. */
	req = f->payload + MC_UDP_HDR_LEN;
	len = f->payload_len - MC_UDP_HDR_LEN;
	key = mc_proto_lone_key(req, len, &klen);
	if (key != NULL && mc_store_key_text_hot(s, &f->key, key, klen, fr)) {
		f->lone = (uint8_t)(key - req - 3); /* "get " 1, "gets " 2 */
		if (likely(f->ck_sum == 0 || lone_sum_ok(f)))
			return;
		f->lone = 0;
		f->key.p = NULL;
		f->key.way = 0; /* not to ask the front table */
		VERDICT(f, drop_udp_cksum);
	}
	if (f->ck_sum != 0 && !udp_sum_ok(f, f->payload_len + sizeof(struct rte_udp_hdr))) {
		f->key.p = NULL;
		VERDICT(f, drop_udp_cksum);
	}
	key = mc_proto_first_key(req, len, &klen);
	if (key != NULL)
		mc_store_key_hot(s, &f->key, key, klen, fr);
	return;
whole_sum:
	if (f->ck_sum != 0 && !udp_sum_ok(f, f->payload_len + sizeof(struct rte_udp_hdr)))
		VERDICT(f, drop_udp_cksum);
}

/* ---- stage 3: execute, in order ---- */

static void
answer_arp(struct mc_worker *w, struct rte_mbuf *m, uint16_t l2)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *arp = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, l2);
	/* Any sender on our subnet is answered, allowed or not: a router must resolve us for
	 * routed clients to reach us, and an ARP reply goes only to the requester's MAC, so it
	 * reflects nothing off-link. */
	const uint32_t sip = arp->arp_data.arp_sip;
	if (!mc_dp_admit_echo(w, sip, rte_pktmbuf_pkt_len(m),
			      ((sip ^ w->ip_be) & w->mask_be) == 0 ||
				      mc_config_allowed(w->cfg, rte_be_to_cpu_32(sip)))) {
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

static void
answer_icmp(struct mc_worker *w, struct mc_frame *f)
{
	struct rte_mbuf *m = f->m;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, f->l2);
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip + 1);
	uint16_t ck;
	if (!mc_dp_admit_echo(w, f->src_key, rte_pktmbuf_pkt_len(m), true)) { /* allowed: parse */
		rte_pktmbuf_free(m);
		return;
	}
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_cksum = 0;
	ck = l4_sum_chain(m, 0, f->l2 + sizeof(*ip), f->l4_len);
	icmp->icmp_cksum = (ck == 0xffff) ? ck : (uint16_t)~ck;
	ip_reply(ip);
	ip->packet_id = 0;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	swap_macs(eth, &w->mac);
	w->st.icmp_replies++;
	mc_dp_tx_push(w, m);
}

/* Not charged to the source's budgets: what the kernel gets is its business (SYN floods meet
 * its syncookies), and a TCP client's segments would otherwise eat its UDP budget. The
 * per-burst cap bounds the time a flood for the kernel takes from the fast path. */
static void
to_kernel(struct mc_worker *w, struct mc_frame *f)
{
	if (w->exc != MC_EXC_ON) {
		if (w->exc == MC_EXC_OFF)
			w->st.c[f->drop]++;
		else
			w->st.drop_no_exception++;
		rte_pktmbuf_free(f->m);
		return;
	}
	{
		/* GCRA: a frame is due every step; up to MC_EXC_BUCKET may come early. */
		const uint64_t step = w->tsc_hz / MC_EXC_PPS;
		uint64_t tat = w->exc_tat > w->now ? w->exc_tat : w->now;
		if (unlikely(tat - w->now > step * MC_EXC_BUCKET || w->exc_n == MC_EXC_BURST)) {
			w->st.drop_exc_cap++;
			rte_pktmbuf_free(f->m);
			return;
		}
		w->exc_tat = tat + step;
	}
	w->exc_tx[w->exc_n++] = f->m;
}

/* A frame other than a memcached request, executed (the execute loop, mc_dp_execute, is in
 * reply.c, so that the memcached answer inlines into it). */
void
mc_dp_execute_other(struct mc_worker *w, struct mc_frame *f)
{
	switch (f->kind) {
	case MC_FRAME_ARP:
		answer_arp(w, f->m, f->l2);
		break;
	case MC_FRAME_ICMP:
		if (f->v6)
			mc_dp_answer_echo6(w, f);
		else
			answer_icmp(w, f);
		break;
	case MC_FRAME_KERNEL:
		to_kernel(w, f);
		break;
	case MC_FRAME_ND:
		mc_dp_answer_nd(w, f);
		break;
	case MC_FRAME_HELD:
		break;
	default:
		w->st.c[f->drop]++;
		rte_pktmbuf_free(f->m);
		break;
	}
}

/* ---- the burst ---- */

/* Stage 3 for one frame: the front table asked (when stage 2 did not), its item's first line
 * requested, the lines its turn will want in item_later (the frame's own buffer for a frame
 * with no key: a request for nothing). */
static inline __attribute__((always_inline)) void
item_first(const struct mc_store *s, const struct mc_store_front *fr, struct mc_frame *f,
	   struct mc_front_count *c)
{
	if (f->key.p != NULL) {
		if (f->key.way == MC_WAY_ASK)
			mc_store_front_ask(fr, s, &f->key, false, c);
		mc_store_prefetch_item_hot(s, &f->key, f->item_later);
	} else {
		f->item_later[0] = f->item_later[1] = f->m;
	}
}

/* A measurement build only (-DMC_STAGE_TSC, docs/PERFORMANCE.md): TSC cycles spent in each
 * stage, summed over every burst. The stamps cost about 5 cycles a request themselves. */
#ifdef MC_STAGE_TSC
uint64_t mc_dp_stage_tsc[MC_DP_STAGES];
#define STAGE_START() uint64_t stage_t = rte_rdtsc(), stage_u
#define STAGE_END(k)                                                                           \
	do {                                                                                   \
		stage_u = rte_rdtsc();                                                         \
		mc_dp_stage_tsc[k] += stage_u - stage_t;                                       \
		stage_t = stage_u;                                                             \
	} while (0)
#else
#define STAGE_START() do { } while (0)
#define STAGE_END(k) do { } while (0)
#endif

void
mc_dp_handle_burst(struct mc_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	struct mc_frame *f = w->frames;
	/* The store and the front table read once: the stages' stores to the frames could
	 * alias w->svc. */
	const struct mc_store *s = NULL;
	struct mc_store_front *fr = NULL;
	struct mc_front_count fc = {0, 0, 0, 0};
	uint16_t i;
	STAGE_START();

	if (w->svc != NULL) {
		s = w->svc->px.sx.s;
		fr = w->svc->px.sx.front;
	}

	w->st.rx_packets += n;
	if (w->svc != NULL) {
		w->reply_max = (uint32_t)RTE_MIN(w->svc->scratch_cap, (size_t)w->cfg->udp_reply_max);
		w->reply_ratio = w->cfg->max_reply_ratio;
	}
	w->rl_byte_fp = 0;
	if (w->rl != NULL) {
		w->now = rte_rdtsc();
		mc_dp_rl_bounds(w->rl, w->now, &w->rl_req_lim, &w->rl_byte_lim);
		w->rl_byte_fp = w->rl->byte_cost_fp;
		w->rl_byte_end = w->now + w->rl->byte_window;
	}
	for (i = 0; i < n; i++) {
		f[i].m = pkts[i];
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	}
	/* MICA-style batching: every frame parsed, then every key hashed and its bucket
	 * requested, for the whole burst before any lookup, so the cache misses overlap. (With
	 * two buckets requested a key, 64 requests in a short burst cost the cold GET 50 cycles
	 * and the loops ran eight frames at a time; with one a key, the whole burst at once is
	 * the faster: docs/PERFORMANCE.md.) */
	STAGE_END(0);
	for (i = 0; i < n; i++)
		stage_parse(w, &f[i]);
	STAGE_END(1);
	for (i = 0; i < n; i++)
		stage_hash(w, fr, &f[i]);
	/* While the worker's front table answers nearly every lookup, stage 2 requested no
	 * bucket: the table is asked now, so that the items it has are requested, and the
	 * buckets of the keys it lacks, a stage sooner than the item stage would. */
	if (fr != NULL && fr->mode == MC_FRONT_HOT) {
		for (i = 0; i < n; i++)
			if (f[i].key.way == MC_WAY_ASK)
				mc_store_front_ask(fr, s, &f[i].key, true, &fc);
	}
	STAGE_END(2);
	/* Then every item's first line, read from its bucket (requested for the whole burst by
	 * now), with the first MC_ITEM_AHEAD items' other two lines (second line, use bits);
	 * the next ones' other lines into L2, up to ITEM_L2; and every item's other lines
	 * MC_ITEM_AHEAD frames before its turn. Thirty-two lines at once are what a cold burst's
	 * memory takes best: three a frame into L1 for all, at once, cost it 90 cycles a
	 * request, and the other two into L2 for all made its run averages swing past 300; the
	 * first dozen into L2 help the warm GET a few cycles (docs/PERFORMANCE.md). */
	{
		/* Three loops, one for each way the other lines are requested (into L1 now, into
		 * L2 now, later), with no test of i in them. */
		const uint16_t a = RTE_MIN(n, (uint16_t)MC_ITEM_AHEAD);
		const uint16_t l2 = RTE_MIN(n, (uint16_t)ITEM_L2);
		for (i = 0; i < a; i++) {
			item_first(s, fr, &f[i], &fc);
			rte_prefetch0(f[i].item_later[0]);
			rte_prefetch0(f[i].item_later[1]);
		}
		for (; i < l2; i++) {
			item_first(s, fr, &f[i], &fc);
			rte_prefetch1(f[i].item_later[0]);
			rte_prefetch1(f[i].item_later[1]);
		}
		for (; i < n; i++)
			item_first(s, fr, &f[i], &fc);
	}
	for (; i < n + MC_ITEM_AHEAD; i++)
		f[i].item_later[0] = f[i].item_later[1] = f;
	STAGE_END(3);
	mc_dp_execute(w, f, n);
	if (fr != NULL)
		mc_store_front_burst(fr, s, &fc);
	STAGE_END(4);
	if (w->exc_n != 0)
		mc_dp_exception_tx(w);
	if (unlikely(w->dr.cnt != 0))
		mc_dp_frag_flush(w);
}

/* ---- counters ---- */

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
	if (s->name != 0 &&                                                                    \
	    (!strncmp(#name, "drop_", 5) || !strncmp(#name, "exc_", 4) ||                      \
	     !strcmp(#name, "tx_deferred")) &&                                                 \
	    off >= 0 && (size_t)off < len)                                                     \
		off += snprintf(buf + off, len - (size_t)off, " %s=%" PRIu64, #name, s->name);
	MC_DP_COUNTERS(X)
#undef X
	return off;
}
