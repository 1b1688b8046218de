/* Inside the dataplane: the checksum arithmetic the parse and reply stages share, and what one
 * of its files gives another. */
#ifndef MC_DP_INT_H
#define MC_DP_INT_H

#include "dataplane.h"

#include <rte_ip.h>
#include <rte_mbuf.h>

/* a + b with the carry out added back in (end-around carry): one add and one adc. */
static inline uint64_t
add_c(uint64_t a, uint64_t b)
{
	uint64_t r = a + b;
	return r + (r < b);
}

/* A 64-bit one's-complement accumulator folded to 16 bits (not inverted). */
static inline uint16_t
cksum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
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
	return cksum_fold(sum);
}

/* Sum of the UDP or TCP (proto) segment at offset off (pseudo header included), over a chain
 * if need be: each segment is folded first and swapped when it starts at an odd offset.
 * (DPDK 22.11's rte_raw_cksum_mbuf swaps an unfolded sum truncated to 16 bits and loses
 * carries there.) */
static inline uint16_t
l4_sum(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip, uint8_t proto, uint32_t off,
       uint32_t len)
{
	/* Pseudo header in memory order, summed as native words (one's-complement sums do not
	 * care how the words are grouped): addresses, zero and protocol, L4 length. */
	uint64_t sum = (uint64_t)ip->src_addr + ip->dst_addr + rte_cpu_to_be_16(proto) +
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

static inline uint16_t
udp_sum(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip, uint32_t off, uint32_t len)
{
	return l4_sum(m, ip, IPPROTO_UDP, off, len);
}

/* reply.c: the reply to memcached request f, whose headers were turned around. open lays out
 * o (in place after the request when it fits, else in the scratch); send queues the whole
 * reply, or refuses it whole (counted), and consumes f->m. */
void mc_dp_reply_open(struct mc_worker *w, struct mc_frame *f, struct mc_out *o);
void mc_dp_reply_send(struct mc_worker *w, struct mc_frame *f, struct mc_out *o);

/* exception.c: hand the burst's kernel-bound frames (w->exc_tx) to the exception queue; what
 * it refuses is dropped and counted. */
void mc_dp_exception_tx(struct mc_worker *w);

#endif
