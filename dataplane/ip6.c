/* IPv6 on the fast path: the header and its extension headers walked with bounds checks,
 * neighbor discovery for our address (RFC 4861: solicitations answered, one unsolicited
 * advertisement at start, advertisements to us handed to the kernel), ICMPv6 echo answered,
 * the ICMPv6 errors the kernel's TCP needs handed to it, UDP and TCP passed on to the shared
 * L4 parse, fragments to reassembly. A frame we keep has its extension headers cut out, so
 * every later stage sees a 40-byte IPv6 header followed by L4. */
#include "dp_int.h"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ip.h>

#define IP6_HBH 0
#define IP6_ROUTING 43
#define IP6_FRAGMENT 44
#define IP6_DSTOPTS 60
#define IP6_MAX_EXT 4     /* extension headers walked before L4; more is a drop */

#define ICMP6_DST_UNREACH 1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROB 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define MLD_QUERY 130
#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136
#define ND_OPT_SOURCE_LLA 1
#define ND_OPT_TARGET_LLA 2
#define ND_HOP_LIMIT 255      /* ND messages must come with it: proof they were not routed */
#define ND_MSG_LEN 24         /* type, code, checksum, flags or reserved, target */
#define NA_ROUTER 0x80
#define NA_SOLICITED 0x40
#define NA_OVERRIDE 0x20

static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
static const struct rte_ether_addr all_nodes_mac = {{0x33, 0x33, 0, 0, 0, 1}};

static inline bool
ip6_eq(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 16) == 0;
}

static inline bool
ip6_unspecified(const uint8_t *a)
{
	static const uint8_t zero[16];
	return ip6_eq(a, zero);
}

/* A source no request can honestly come from: multicast, loopback, ours, or IPv4-mapped (a
 * reply to those goes nowhere, to us, or to an IPv4 host through a translator). The
 * unspecified address is the caller's to judge (only duplicate address detection uses it). */
static inline bool
bad_source6(const struct mc_worker *w, const uint8_t *a)
{
	static const uint8_t loop[16] = {[15] = 1};
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	return a[0] == 0xff || ip6_eq(a, loop) || ip6_eq(a, w->ip6) || !memcmp(a, mapped, 12);
}

/* The link-layer address option of type want in the ND options at opts (len bytes), or NULL;
 * -1 in *bad when the options are malformed (a zero length, past the end, an LLA option not
 * 8 bytes long). */
static const uint8_t *
nd_lla(const uint8_t *opts, uint32_t len, uint8_t want, bool *bad)
{
	const uint8_t *found = NULL;
	uint32_t at = 0;
	*bad = false;
	while (at + 2 <= len) {
		const uint32_t olen = opts[at + 1] * 8u;
		if (olen == 0 || at + olen > len) {
			*bad = true;
			return NULL;
		}
		if (opts[at] == want) {
			if (olen != 8) {
				*bad = true;
				return NULL;
			}
			found = opts + at + 2;
		}
		at += olen;
	}
	if (at != len)
		*bad = true;
	return found;
}

/* Cut the extension headers (ext bytes after the 40-byte header) out of the frame: move the
 * Ethernet and IPv6 headers forward over them. They lie in the first segment (checked). */
static void
cut_ext(struct mc_frame *f, uint8_t nh, uint16_t ext)
{
	struct rte_mbuf *m = f->m;
	struct rte_ipv6_hdr *ip6;
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	memmove(p + ext, p, f->l2 + sizeof(*ip6));
	rte_pktmbuf_adj(m, ext);
	ip6 = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, f->l2);
	ip6->proto = nh;
	ip6->payload_len = rte_cpu_to_be_16((uint16_t)(rte_be_to_cpu_16(ip6->payload_len) - ext));
}

/* Neighbor solicitation (135) and advertisement (136), from a neighbour (hop limit 255) and
 * whole in the first segment. Answered for any on-link sender, allowed or not: a router must
 * resolve us for routed clients to reach us, and the answer goes only to the solicitor's
 * MAC (as for ARP). Paid from the worker's own ND budget (MC_ND_PPS), not the source's: an
 * on-link host could otherwise spend a whole client /64's budget with forged sources. */
static void
parse_nd(const struct mc_worker *w, struct mc_frame *f, const struct rte_ipv6_hdr *ip6,
	 const uint8_t *icmp, bool mcast_dst, uint64_t addrs)
{
	const uint32_t off = f->l2 + sizeof(*ip6);
	const bool unspec = ip6_unspecified(ip6->src_addr);
	const uint8_t *lla;
	bool bad;
	if (ip6->hop_limits != ND_HOP_LIMIT || icmp[1] != 0 || f->l4_len < ND_MSG_LEN ||
	    rte_pktmbuf_data_len(f->m) < off + f->l4_len)
		VERDICT(f, drop_nd);
	if (l4_sum(f->m, addrs, IPPROTO_ICMPV6, off, f->l4_len) != 0xffff)
		VERDICT(f, drop_nd);
	lla = nd_lla(icmp + ND_MSG_LEN, f->l4_len - ND_MSG_LEN,
		     icmp[0] == ND_NEIGHBOR_SOLICIT ? ND_OPT_SOURCE_LLA : ND_OPT_TARGET_LLA, &bad);
	if (bad || (lla != NULL && (rte_is_multicast_ether_addr((const void *)lla) ||
				    rte_is_zero_ether_addr((const void *)lla))))
		VERDICT(f, drop_nd);
	if (icmp[0] == ND_NEIGHBOR_SOLICIT) {
		if (!ip6_eq(icmp + 8, w->ip6))
			VERDICT(f, drop_nd);
		/* Duplicate address detection: from ::, to the solicited-node group, no LLA. */
		if (unspec && (!mcast_dst || lla != NULL))
			VERDICT(f, drop_nd);
		f->src_key = ip6_src_key(ip6->src_addr);
		f->kind = MC_FRAME_ND;
		return;
	}
	/* An advertisement: the kernel resolving a peer (its solicitations leave through the
	 * port). To our unicast address, for someone else's. */
	if (unspec || mcast_dst || ip6_eq(icmp + 8, w->ip6))
		VERDICT(f, drop_nd);
	TO_KERNEL(f, drop_nd);
}

/* The rest of ICMPv6, from an allowed source to our unicast address: echo requests answered
 * here; the errors the kernel's TCP needs (unreachable, packet too big, time exceeded,
 * parameter problem) and echo replies to its own pings are the kernel's; the rest dropped. */
static void
parse_icmp6(const struct mc_worker *w, struct mc_frame *f, const uint8_t *icmp, uint64_t addrs)
{
	const uint32_t off = f->l2 + sizeof(struct rte_ipv6_hdr);
	const uint8_t type = icmp[0];
	if (type == ICMP6_ECHO_REQUEST) {
		if (icmp[1] != 0 || f->l4_len < 8 ||
		    l4_sum(f->m, addrs, IPPROTO_ICMPV6, off, f->l4_len) != 0xffff)
			VERDICT(f, drop_icmp);
		f->kind = MC_FRAME_ICMP;
		return;
	}
	if (type != ICMP6_DST_UNREACH && type != ICMP6_PACKET_TOO_BIG &&
	    type != ICMP6_TIME_EXCEEDED && type != ICMP6_PARAM_PROB && type != ICMP6_ECHO_REPLY)
		VERDICT(f, drop_icmp);
	if (w->exc != MC_EXC_ON)
		TO_KERNEL(f, drop_icmp); /* no exception path: not checked further */
	if (!l4_cksum_ok(f, addrs, IPPROTO_ICMPV6, off, f->l4_len))
		VERDICT(f, drop_icmp);
	TO_KERNEL(f, drop_icmp);
}

void
mc_dp_parse_ip6(struct mc_worker *w, struct mc_frame *f)
{
	struct rte_mbuf *m = f->m;
	struct rte_ipv6_hdr *ip6;
	uint32_t plen, frame_l3, off, end;
	uint16_t ext;
	uint64_t addrs;
	unsigned int n, passes = 0;
	bool mcast_dst;
	uint8_t nh;

again:
	if (unlikely(rte_pktmbuf_data_len(m) < f->l2 + sizeof(*ip6)))
		VERDICT(f, drop_short);
	ip6 = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, f->l2);
	if (unlikely((ip6->vtc_flow & RTE_BE32(0xf0000000u)) != RTE_BE32(0x60000000u)))
		VERDICT(f, drop_ip_version);
	plen = rte_be_to_cpu_16(ip6->payload_len);
	frame_l3 = rte_pktmbuf_pkt_len(m) - f->l2;
	/* 0: a jumbogram (hop-by-hop option), which no Ethernet frame carries. */
	if (unlikely(plen == 0 || sizeof(*ip6) + plen > frame_l3))
		VERDICT(f, drop_ip_len);
	/* Ours, our solicited-node group (only a solicitation may use it, checked below), or all
	 * nodes (only a multicast listener query may, for the kernel: snooping switches stop
	 * forwarding our group to a port whose listener stops reporting). */
	mcast_dst = ip6->dst_addr[0] == 0xff;
	if (unlikely(mcast_dst ? !ip6_eq(ip6->dst_addr, w->ip6_sn) &&
					 !ip6_eq(ip6->dst_addr, all_nodes)
			       : !ip6_eq(ip6->dst_addr, w->ip6)))
		VERDICT(f, drop_ip_dst);
	if (unlikely(bad_source6(w, ip6->src_addr)))
		VERDICT(f, drop_ip_src);
	if (sizeof(*ip6) + plen < frame_l3)
		rte_pktmbuf_trim(m, frame_l3 - (uint32_t)sizeof(*ip6) - plen);

	/* Extension headers: hop-by-hop (first only), destination options and a routing header
	 * with no segments left are skipped; a fragment header goes to reassembly. */
	nh = ip6->proto;
	off = f->l2 + sizeof(*ip6);
	end = off + plen;
	for (n = 0; nh == IP6_HBH || nh == IP6_DSTOPTS || nh == IP6_ROUTING; n++) {
		const uint8_t *x;
		uint32_t xlen;
		if (unlikely(n == IP6_MAX_EXT || (nh == IP6_HBH && n != 0) || off + 8 > end ||
			     off + 8 > rte_pktmbuf_data_len(m)))
			VERDICT(f, drop_ip6_ext);
		x = rte_pktmbuf_mtod_offset(m, const uint8_t *, off);
		xlen = (x[1] + 1u) * 8;
		if (unlikely(off + xlen > end || off + xlen > rte_pktmbuf_data_len(m) ||
			     (nh == IP6_ROUTING && x[3] != 0)))
			VERDICT(f, drop_ip6_ext);
		nh = x[0];
		off += xlen;
	}
	ext = (uint16_t)(off - f->l2 - sizeof(*ip6));
	f->l4_len = (uint16_t)(end - off);
	addrs = ip6_addrs(ip6);

	if (unlikely(nh == IP6_FRAGMENT)) {
		struct rte_mbuf *d;
		/* Once: a datagram that comes out of reassembly fragmented again is refused. */
		if (mcast_dst || ip6_unspecified(ip6->src_addr) || passes++ != 0)
			VERDICT(f, drop_ip_frag);
		if (!mc_config_allowed6(w->cfg, ip6->src_addr))
			VERDICT(f, drop_not_allowed);
		d = mc_dp_frag6(w, f, ip6, (uint16_t)off, (uint16_t)end);
		if (d == NULL)
			return; /* held, cut to a whole datagram in place, or a verdict */
		m = f->m = d;
		goto again;
	}
	if (nh == IPPROTO_ICMPV6) {
		const uint8_t *icmp;
		if (unlikely(f->l4_len < 4 || off + 4 > rte_pktmbuf_data_len(m)))
			VERDICT(f, drop_icmp);
		icmp = rte_pktmbuf_mtod_offset(m, const uint8_t *, off);
		if (icmp[0] == MLD_QUERY) {
			/* From a link-local router, hop limit 1 (RFC 3810), summed right: the
			 * kernel's, which reports our groups. */
			if (ip6->hop_limits != 1 || ip6->src_addr[0] != 0xfe ||
			    (ip6->src_addr[1] & 0xc0) != 0x80 || w->exc != MC_EXC_ON ||
			    l4_sum(m, addrs, IPPROTO_ICMPV6, off, f->l4_len) != 0xffff)
				VERDICT(f, drop_icmp);
			TO_KERNEL(f, drop_icmp);
		}
		if (unlikely(ip6_eq(ip6->dst_addr, all_nodes)))
			VERDICT(f, drop_ip_dst);
		if (icmp[0] == ND_NEIGHBOR_SOLICIT || icmp[0] == ND_NEIGHBOR_ADVERT) {
			if (ext != 0)
				VERDICT(f, drop_nd); /* ND carries no extension headers */
			parse_nd(w, f, ip6, icmp, mcast_dst, addrs);
			return;
		}
	}
	/* Everything else comes to our unicast address from an allowed source. */
	if (unlikely(mcast_dst))
		VERDICT(f, drop_ip_dst);
	if (unlikely(ip6_unspecified(ip6->src_addr)))
		VERDICT(f, drop_ip_src);
	if (unlikely(!mc_config_allowed6(w->cfg, ip6->src_addr)))
		VERDICT(f, drop_not_allowed);
	if (nh != IPPROTO_UDP && nh != IPPROTO_TCP && nh != IPPROTO_ICMPV6)
		VERDICT(f, drop_ip_proto);
	f->src_key = ip6_src_key(ip6->src_addr);
	if (unlikely(ext != 0))
		cut_ext(f, nh, ext);
	if (nh == IPPROTO_UDP) {
		mc_dp_parse_udp(w, f, addrs);
		return;
	}
	if (nh == IPPROTO_TCP) {
		mc_dp_parse_tcp(w, f, addrs);
		return;
	}
	parse_icmp6(w, f, rte_pktmbuf_mtod_offset(f->m, const uint8_t *, f->l2 + sizeof(*ip6)),
		    addrs);
}

/* ---- answers ---- */

/* Write an advertisement of our address from l3 on: the IPv6 header to dst, the message with
 * flags, our MAC as the target link-layer address, its checksum. Returns its length from l3. */
static uint16_t
write_na(const struct mc_worker *w, uint8_t *l3, const uint8_t *dst, uint8_t flags)
{
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)l3;
	uint8_t *na = l3 + sizeof(*ip6);
	const uint16_t len = ND_MSG_LEN + 8;
	ip6->vtc_flow = RTE_BE32(6u << 28);
	ip6->payload_len = rte_cpu_to_be_16(len);
	ip6->proto = IPPROTO_ICMPV6;
	ip6->hop_limits = ND_HOP_LIMIT;
	memcpy(ip6->src_addr, w->ip6, 16);
	memcpy(ip6->dst_addr, dst, 16);
	memset(na, 0, ND_MSG_LEN);
	na[0] = ND_NEIGHBOR_ADVERT;
	na[4] = flags;
	memcpy(na + 8, w->ip6, 16);
	na[24] = ND_OPT_TARGET_LLA;
	na[25] = 1;
	memcpy(na + 26, w->mac.addr_bytes, RTE_ETHER_ADDR_LEN);
	{
		const uint16_t ck = (uint16_t)~cksum_sum(na, len, ip6_addrs(ip6) +
								  RTE_BE16(IPPROTO_ICMPV6) +
								  rte_cpu_to_be_16(len));
		memcpy(na + 2, &ck, 2);
	}
	return (uint16_t)(sizeof(*ip6) + len);
}

void
mc_dp_answer_nd(struct mc_worker *w, struct mc_frame *f)
{
	struct rte_mbuf *m = f->m;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv6_hdr *ip6 = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, f->l2);
	const uint8_t *ns = (const uint8_t *)(ip6 + 1);
	const bool dad = ip6_unspecified(ip6->src_addr);
	struct rte_ether_addr to;
	uint8_t dst[16];
	const uint8_t *lla;
	bool bad;
	uint16_t len;
	/* The reply is 32 bytes of message: it must fit where the solicitation was. */
	if (m->nb_segs != 1 ||
	    (uint32_t)m->data_off + f->l2 + sizeof(*ip6) + ND_MSG_LEN + 8 > m->buf_len) {
		w->st.drop_nd++;
		rte_pktmbuf_free(m);
		return;
	}
	{
		/* GCRA, as the exception path's: one due every step, a bucket may come early. */
		const uint64_t now = rte_rdtsc();
		const uint64_t step = dad ? w->tsc_hz : w->tsc_hz / MC_ND_PPS;
		const uint64_t burst = dad ? 1 : MC_ND_BUCKET;
		uint64_t *tat = dad ? &w->dad_tat : &w->nd_tat;
		const uint64_t t = *tat > now ? *tat : now;
		if (t + step - now > step * burst) {
			w->st.drop_nd_rate++;
			rte_pktmbuf_free(m);
			return;
		}
		*tat = t + step;
	}
	if (!mc_dp_tx_reserve(w, 1)) {
		w->st.drop_tx_backlog++;
		rte_pktmbuf_free(m);
		return;
	}
	lla = nd_lla(ns + ND_MSG_LEN, f->l4_len - ND_MSG_LEN, ND_OPT_SOURCE_LLA, &bad);
	if (dad) {
		/* Someone wants our address: defend it to all nodes (RFC 4861 7.2.4). */
		rte_ether_addr_copy(&all_nodes_mac, &to);
		memcpy(dst, all_nodes, 16);
	} else {
		rte_ether_addr_copy(lla != NULL ? (const void *)lla : (const void *)&eth->src_addr, &to);
		memcpy(dst, ip6->src_addr, 16);
	}
	rte_ether_addr_copy(&to, &eth->dst_addr);
	rte_ether_addr_copy(&w->mac, &eth->src_addr);
	len = write_na(w, (uint8_t *)ip6, dst, (uint8_t)(NA_OVERRIDE | (dad ? 0 : NA_SOLICITED)));
	m->data_len = (uint16_t)(f->l2 + len);
	m->pkt_len = m->data_len;
	m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
	w->st.nd_replies++;
	mc_dp_tx_push(w, m);
}

void
mc_dp_answer_echo6(struct mc_worker *w, struct mc_frame *f)
{
	struct rte_mbuf *m = f->m;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv6_hdr *ip6 = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, f->l2);
	uint8_t *icmp = (uint8_t *)(ip6 + 1), a[16];
	uint16_t ck;
	if (!mc_dp_admit_echo(w, f->src_key, rte_pktmbuf_pkt_len(m), true)) { /* allowed: parse */
		rte_pktmbuf_free(m);
		return;
	}
	memcpy(a, ip6->src_addr, 16);
	memcpy(ip6->src_addr, ip6->dst_addr, 16);
	memcpy(ip6->dst_addr, a, 16);
	ip6->vtc_flow = RTE_BE32(6u << 28);
	ip6->hop_limits = 64;
	icmp[0] = ICMP6_ECHO_REPLY;
	icmp[2] = icmp[3] = 0;
	ck = (uint16_t)~l4_sum(m, ip6_addrs(ip6), IPPROTO_ICMPV6, f->l2 + sizeof(*ip6), f->l4_len);
	memcpy(icmp + 2, &ck, 2);
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&w->mac, &eth->src_addr);
	w->st.icmp_replies++;
	mc_dp_tx_push(w, m);
}

void
mc_dp_announce(struct mc_worker *w)
{
	struct rte_ether_hdr *eth;
	struct rte_mbuf *m;
	uint16_t len;
	if (!w->has_ip6)
		return;
	m = rte_pktmbuf_alloc(w->pool);
	if (m == NULL || !mc_dp_tx_reserve(w, 1)) {
		rte_pktmbuf_free(m);
		w->st.drop_nombuf++;
		return;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eth));
	rte_ether_addr_copy(&all_nodes_mac, &eth->dst_addr);
	rte_ether_addr_copy(&w->mac, &eth->src_addr);
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
	len = write_na(w, (uint8_t *)rte_pktmbuf_append(m, sizeof(struct rte_ipv6_hdr) + ND_MSG_LEN + 8),
		       all_nodes, NA_OVERRIDE);
	RTE_SET_USED(len);
	w->st.nd_replies++;
	mc_dp_tx_push(w, m);
}
