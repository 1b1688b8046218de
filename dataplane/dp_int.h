/* Inside the dataplane: the checksum arithmetic the parse and reply stages share, and what one
 * of its files gives another. */
#ifndef MC_DP_INT_H
#define MC_DP_INT_H

#include "dataplane.h"

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

/* a + b with the carry out added back in (end-around carry): one add and one adc. */
static inline uint64_t
add_c(uint64_t a, uint64_t b)
{
	uint64_t r = a + b;
	return r + (r < b);
}

/* Network to host order for the parse: the compiler's byte swap, which it can fold into a
 * compare or a load (DPDK's x86 rte_be_to_cpu_16 is an asm statement it cannot look into). */
static inline uint16_t
net16(uint16_t v)
{
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	return __builtin_bswap16(v);
#else
	return v;
#endif
}

static inline uint32_t
net32(uint32_t v)
{
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

/* One's-complement sum of len bytes, native byte order, folded to 16 bits (not inverted):
 * eight bytes an add with carry, where rte_raw_cksum adds two bytes a step. Same result as
 * rte_raw_cksum. On x86-64, 32 bytes a step as one unbroken adc chain: the compiler's version
 * of add_c re-derives the carry with a compare each time, twice the instructions. */
static inline uint16_t
cksum_sum(const void *p, size_t len, uint64_t sum)
{
	const uint8_t *b = p;
	uint64_t w, w2;
#if defined(__x86_64__)
	if (len >= 32) {
		uint64_t n = len / 32;
		/* lea and dec leave the carry flag alone, so it runs from one step to the next. */
		__asm__("clc\n"
			"1:\n\t"
			"adcq (%[b]), %[s]\n\t"
			"adcq 8(%[b]), %[s]\n\t"
			"adcq 16(%[b]), %[s]\n\t"
			"adcq 24(%[b]), %[s]\n\t"
			"leaq 32(%[b]), %[b]\n\t"
			"decq %[n]\n\t"
			"jnz 1b\n\t"
			"adcq $0, %[s]"
			: [s] "+r"(sum), [b] "+r"(b), [n] "+r"(n)
			:
			: "cc", "memory"); /* it reads the bytes the caller may just have written */
		len &= 31;
	}
#endif
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
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	if (len != 0 && b - (const uint8_t *)p >= 8) {
		/* The last 1-7 bytes with one load: the eight bytes ending where they end, those
		 * already summed shifted out. The tail starts at an even offset, and so does its
		 * first byte after the shift. */
		memcpy(&w, b + len - 8, 8);
		return mc_sum_fold(add_c(sum, w >> (8 * (8 - len))));
	}
#endif
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
	return mc_sum_fold(sum);
}

/* The pseudo header's addresses, summed as native words (one's-complement sums do not care
 * how the words are grouped): IPv4's two, IPv6's eight 32-bit words. */
static inline uint64_t
ip4_addrs(const struct rte_ipv4_hdr *ip)
{
	return (uint64_t)ip->src_addr + ip->dst_addr;
}

static inline uint64_t
ip6_addrs(const struct rte_ipv6_hdr *ip6)
{
	uint64_t sum = 0;
	uint32_t v[8];
	unsigned int i;
	memcpy(v, ip6->src_addr, 16);
	memcpy(v + 4, ip6->dst_addr, 16);
	for (i = 0; i < 8; i++)
		sum += v[i];
	return sum;
}

/* Sum of the L4 segment (proto: UDP, TCP, ICMPv6) at offset off, pseudo header included
 * (addrs: ip4_addrs or ip6_addrs; IPv6's 32-bit length and next header add up to the same
 * two words as IPv4's), over a chain if need be: each segment is folded first and swapped
 * when it starts at an odd offset. (DPDK 22.11's rte_raw_cksum_mbuf swaps an unfolded sum
 * truncated to 16 bits and loses carries there.) */
static __attribute__((noinline, unused)) uint16_t
l4_sum_chain(const struct rte_mbuf *m, uint64_t sum, uint32_t off, uint32_t len)
{
	uint32_t done = 0;
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

/* The one-segment case inline (every request the parse checks), the chain out of line. */
static inline __attribute__((always_inline)) uint16_t
l4_sum(const struct rte_mbuf *m, uint64_t addrs, uint8_t proto, uint32_t off, uint32_t len)
{
	const uint64_t sum = addrs + rte_cpu_to_be_16(proto) + rte_cpu_to_be_16((uint16_t)len);
	if (likely(m->nb_segs == 1))
		return cksum_sum(rte_pktmbuf_mtod_offset(m, const uint8_t *, off), len, sum);
	return l4_sum_chain(m, sum, off, len);
}

/* f's UDP datagram of len bytes (header included) sums to 0xffff with its pseudo header
 * (f->ck_sum): its checksum holds. */
static inline bool
udp_sum_ok(const struct mc_frame *f, uint32_t len)
{
	const uint32_t off = f->l2 + f->l3_len;
	if (likely(f->m->nb_segs == 1))
		return cksum_sum(rte_pktmbuf_mtod_offset(f->m, const uint8_t *, off), len,
				 f->ck_sum) == 0xffff;
	return l4_sum_chain(f->m, f->ck_sum, off, len) == 0xffff;
}

/* The rate-limit key of an IPv6 source: its /64, with the top bit set so that it is never an
 * IPv4 address's key. */
static inline uint64_t
ip6_src_key(const uint8_t *a)
{
	uint64_t k;
	memcpy(&k, a, 8);
	return k | (1ull << 63);
}

/* ---- the parse stage's verdicts (burst.c, ip6.c, frag.c) ---- */

/* The frame is dropped for reason (a counter of struct mc_dp_stats), in the execute stage. */
#define VERDICT(f, reason)                                                                     \
	do {                                                                                   \
		(f)->kind = MC_FRAME_DROP;                                                     \
		(f)->drop = MC_DP_CTR_##reason;                                                \
		return;                                                                        \
	} while (0)

/* The frame is for the kernel: the exception path takes it, or, without one, it is dropped for
 * reason (--exception off) or as drop_no_exception. The kernel interface has no VLANs: a
 * tagged frame is not handed over. */
#define TO_KERNEL(f, reason)                                                                   \
	do {                                                                                   \
		(f)->kind = (f)->l2 == sizeof(struct rte_ether_hdr) ? MC_FRAME_KERNEL          \
								    : MC_FRAME_DROP;           \
		(f)->drop = MC_DP_CTR_##reason;                                                \
		return;                                                                        \
	} while (0)

/* The NIC's verdict on the L4 checksum when it gave one, else the sum over the segment at
 * off (pseudo header from addrs). */
static inline bool
l4_cksum_ok(const struct mc_frame *f, uint64_t addrs, uint8_t proto, uint32_t off, uint16_t len)
{
	const uint64_t ck = f->m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (ck != RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN)
		return ck != RTE_MBUF_F_RX_L4_CKSUM_BAD;
	return l4_sum(f->m, addrs, proto, off, len) == 0xffff;
}

/* burst.c: UDP and TCP, after IPv4 or IPv6 (the L4 header at l2 + l3_len, addrs its pseudo
 * header's addresses): memcached's, the kernel's, or a counted drop. */
void mc_dp_parse_udp(struct mc_worker *w, struct mc_frame *f, uint64_t addrs);
void mc_dp_parse_tcp(const struct mc_worker *w, struct mc_frame *f, uint64_t addrs);
/* Allowed and within its budget, with TX room for one frame: the checks of every frame
 * answered in place (ARP, ND, echo). Counts the drop. */
bool mc_dp_admit_echo(struct mc_worker *w, uint64_t src_key, uint32_t reply_bytes, bool allowed);

/* ip6.c: an IPv6 frame, from its IP header on: ND and ICMPv6 settled here, UDP and TCP passed
 * on to mc_dp_parse_udp/tcp, fragments to reassembly (then parsed again whole). */
void mc_dp_parse_ip6(struct mc_worker *w, struct mc_frame *f);
/* Answer a neighbor solicitation (MC_FRAME_ND) and an ICMPv6 echo request in place. */
void mc_dp_answer_nd(struct mc_worker *w, struct mc_frame *f);
void mc_dp_answer_echo6(struct mc_worker *w, struct mc_frame *f);

/* frag.c: hand a fragment to the worker's table. Returns the whole datagram (a chain, its IP
 * header rewritten as unfragmented, L4 checksum to be verified in software), or NULL: the
 * fragment is held (f->kind HELD) or refused (a verdict). */
struct rte_mbuf *mc_dp_frag4(struct mc_worker *w, struct mc_frame *f, struct rte_ipv4_hdr *ip,
			     uint16_t tot);
struct rte_mbuf *mc_dp_frag6(struct mc_worker *w, struct mc_frame *f, struct rte_ipv6_hdr *ip6,
			     uint16_t off, uint16_t end);
/* Free what the table gave up during the burst (counted as frag_dropped), and, from
 * housekeeping, the datagrams that waited too long. */
void mc_dp_frag_flush(struct mc_worker *w);
void mc_dp_frag_expire(struct mc_worker *w, uint64_t now);
int mc_dp_frag_init(struct mc_worker *w, int socket);
void mc_dp_frag_fini(struct mc_worker *w);

/* The headers in front of a memcached request or reply datagram's frame header. */
static inline uint16_t
frame_hlen(const struct mc_frame *f)
{
	return (uint16_t)(f->l2 + f->l3_len + 8);
}

/* Turn a memcached request's headers (a copy of them at h, or in place) around for its
 * reply: MACs (ours as the source), IP addresses, UDP ports. udp_finish writes the rest. */
static inline __attribute__((always_inline)) void
turn_around(const struct mc_worker *w, const struct mc_frame *f, uint8_t *h)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)h;
	uint8_t *l3 = h + f->l2;
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(l3 + f->l3_len);
	uint16_t port;
	if (likely(!f->v6)) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l3;
		const uint32_t addr = ip->src_addr;
		ip->src_addr = ip->dst_addr;
		ip->dst_addr = addr;
	} else {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)l3;
		uint8_t a[16];
		memcpy(a, ip6->src_addr, 16);
		memcpy(ip6->src_addr, ip6->dst_addr, 16);
		memcpy(ip6->dst_addr, a, 16);
	}
	port = udp->src_port;
	udp->src_port = udp->dst_port;
	udp->dst_port = port;
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&w->mac, &eth->src_addr);
}

/* Stage 3 (reply.c): the burst's n frames executed in order, each one's item lines
 * (item_later) requested MC_ITEM_AHEAD frames before its turn. A memcached request
 * (MC_FRAME_MEMCACHED) is answered there: its source's budget, then the commands executed and
 * the reply built, in place after the request where it fits (a lone get without struct
 * mc_out), else split into datagrams or chained with values attached; sent whole or refused
 * whole (counted). Other frames go to mc_dp_execute_other (burst.c). Consumes every f->m. */
void mc_dp_execute(struct mc_worker *w, struct mc_frame *f, uint16_t n);
void mc_dp_execute_other(struct mc_worker *w, struct mc_frame *f);

/* exception.c: hand the burst's kernel-bound frames (w->exc_tx) to the exception queue; what
 * it refuses is dropped and counted. */
void mc_dp_exception_tx(struct mc_worker *w);

#endif
