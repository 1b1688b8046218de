/* Memcached requests answered, and TX: stage 3 for a memcached frame (its budget, a lone get
 * written where it lies, anything else run through struct mc_out), the reply builders (in
 * place in the request's mbuf, split into datagrams, chained with values attached from item
 * memory), the UDP checksums they fill, the per-worker service state they write into, and the
 * TX backlog every reply leaves through. */
#include "dp_int.h"
#include "../udp/udp.h"

#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_memcpy.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_udp.h>

/* ---- the TX backlog ---- */

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

/* Queue m on the TX backlog, whose room the caller reserved (mc_dp_tx_reserve) just before:
 * inline into the in-place replies (every GET). */
static inline __attribute__((always_inline)) void
tx_push_reserved(struct mc_worker *w, struct rte_mbuf *m)
{
	w->tx[(w->tx_head + w->tx_n) % MC_TX_BACKLOG] = m;
	if (++w->tx_n >= MC_TX_FLUSH_AT && !w->tx_stalled)
		mc_dp_tx_flush(w);
}

/* The same without a reservation: refused (counted) when the backlog is full. */
static inline __attribute__((always_inline)) void
tx_push(struct mc_worker *w, struct rte_mbuf *m)
{
	if (unlikely(w->tx_n == MC_TX_BACKLOG)) {
		/* Only a caller that skipped mc_dp_tx_reserve gets here. */
		w->st.drop_tx_backlog++;
		rte_pktmbuf_free(m);
		return;
	}
	tx_push_reserved(w, m);
}

void
mc_dp_tx_push(struct mc_worker *w, struct rte_mbuf *m)
{
	tx_push(w, m);
}

/* ---- reply datagrams ---- */

/* A datagram's UDP sum, pseudo header included (addrs: the sum of the two addresses), when its
 * payload is the memcached frame header and then text_len bytes of text, contiguous after the
 * UDP header: the text is summed in pieces around the nsums copied values sums[] places, whose
 * sums the store kept, so a value is not read again. A piece that starts at an odd offset adds
 * its sum byte-swapped. */
static uint16_t
udp_sum_known(uint64_t addrs, const uint8_t *udp, uint32_t l4, const struct mc_out_sum *sums,
	      unsigned int nsums, uint32_t text_len)
{
	const uint8_t *text = udp + sizeof(struct rte_udp_hdr) + MC_UDP_HDR_LEN; /* even */
	uint64_t sum = addrs + RTE_BE16(IPPROTO_UDP) + rte_cpu_to_be_16((uint16_t)l4);
	uint32_t at = 0, i;
	sum += cksum_sum(udp, sizeof(struct rte_udp_hdr) + MC_UDP_HDR_LEN, 0);
	for (i = 0; i <= nsums; i++) {
		const uint32_t end = i < nsums ? sums[i].pos : text_len;
		const uint16_t part = cksum_sum(text + at, end - at, 0);
		sum += (at & 1) ? rte_bswap16(part) : part;
		if (i < nsums) {
			sum += (end & 1) ? rte_bswap16(sums[i].sum) : sums[i].sum;
			at = end + sums[i].len;
		}
	}
	return mc_sum_fold(sum);
}

/* The sum of a reply's IPv4 header words that udp_finish writes as constants: version and
 * header length with TOS 0, ID 0, DF, TTL 64 with UDP. Words in memory order, summed as
 * native ones, as cksum_sum sums them. */
#define REPLY_IP_FIXED_SUM                                                                     \
	((uint64_t)RTE_BE16(0x4500) + RTE_BE16(RTE_IPV4_HDR_DF_FLAG) + RTE_BE16(64 << 8 | IPPROTO_UDP))

/* A reply's IPv4 header up to the addresses (12 bytes at ip), in two stores: version 4 and 20
 * bytes, TOS 0, tot_be (the total length, network order); ID 0, DF; TTL 64, UDP; the header
 * checksum over these and the addresses (addrs: their sum, ip4_addrs), or 0 when the NIC
 * fills it in (cksum false). */
static inline __attribute__((always_inline)) void
ip4_reply_head(uint8_t *ip, uint16_t tot_be, uint64_t addrs, bool cksum)
{
	const uint64_t w0 = RTE_IPV4_VHL_DEF | (uint64_t)tot_be << 16 |
			    (uint64_t)RTE_BE16(RTE_IPV4_HDR_DF_FLAG) << 48;
	const uint32_t w1 =
		64u | (uint32_t)IPPROTO_UDP << 8 |
		(cksum ? (uint32_t)(uint16_t)~mc_sum_fold(addrs + REPLY_IP_FIXED_SUM + tot_be) << 16
		       : 0);
	memcpy(ip, &w0, 8);
	memcpy(ip + 8, &w1, 4);
}

/* The UDP checksum of a reply datagram, in software: with nsums values (a single datagram
 * whose text follows the frame header) their kept sums are added instead of reading them. */
static inline __attribute__((always_inline)) void
udp_cksum_sw(struct rte_mbuf *m, struct rte_udp_hdr *udp, uint16_t l4, uint32_t l4_off,
	     uint64_t addrs, const struct mc_out_sum *sums, unsigned int nsums)
{
	uint16_t ck;
	if (nsums != 0)
		ck = (uint16_t)~udp_sum_known(addrs, (const uint8_t *)udp, l4, sums, nsums,
					      l4 - (uint32_t)sizeof(*udp) - MC_UDP_HDR_LEN);
	else if (likely(m->nb_segs == 1))
		ck = (uint16_t)~cksum_sum(udp, l4, addrs + RTE_BE16(IPPROTO_UDP) + udp->dgram_len);
	else
		ck = (uint16_t)~l4_sum(m, addrs, IPPROTO_UDP, l4_off, l4);
	udp->dgram_cksum = ck == 0 ? 0xffff : ck;
}

/* The IPv6 reply's header (addresses already turned around) and UDP length and checksum,
 * which IPv6 requires. */
static void
udp6_finish(const struct mc_worker *w, struct rte_mbuf *m, uint16_t l2_len, uint16_t payload_len,
	    const struct mc_out_sum *sums, unsigned int nsums)
{
	struct rte_ipv6_hdr *ip6 = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, l2_len);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	const uint16_t l4 = (uint16_t)(sizeof(*udp) + payload_len);
	ip6->vtc_flow = RTE_BE32(6u << 28);
	ip6->payload_len = rte_cpu_to_be_16(l4);
	ip6->proto = IPPROTO_UDP;
	ip6->hop_limits = 64;
	udp->dgram_len = rte_cpu_to_be_16(l4);
	udp->dgram_cksum = 0;
	if (w->tx_cksum_offload) {
		m->l2_len = l2_len;
		m->l3_len = sizeof(*ip6);
		m->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
		udp->dgram_cksum = rte_ipv6_phdr_cksum(ip6, m->ol_flags);
	} else if (nsums == 1 && sums[0].pos == 0 &&
		   sums[0].len == l4 - sizeof(*udp) - MC_UDP_HDR_LEN) {
		/* The whole text's sum known (a lone get's, from its parts): the headers only. */
		udp->dgram_cksum = mc_sum_udp(ip6_addrs(ip6) + RTE_BE16(IPPROTO_UDP) +
					      udp->dgram_len +
					      cksum_sum(udp, sizeof(*udp) + MC_UDP_HDR_LEN, 0) +
					      sums[0].sum);
	} else {
		udp_cksum_sw(m, udp, l4, l2_len + sizeof(*ip6), ip6_addrs(ip6), sums, nsums);
	}
}

/* Fill the IP header and the UDP length and checksum of a reply whose L2..L4 headers were
 * turned around. IPv4: the header is written whole here, all but the addresses, so its
 * checksum is the constants' sum plus the length and the addresses, and the addresses' sum
 * serves the UDP pseudo header too. l2_len is the Ethernet header length (14 or 18),
 * payload_len the UDP payload length. sums, nsums as for udp_cksum_sw. */
static inline __attribute__((always_inline)) void
udp_finish(const struct mc_worker *w, struct rte_mbuf *m, bool v6, uint16_t l2_len,
	   uint16_t payload_len, const struct mc_out_sum *sums, unsigned int nsums)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2_len);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	const uint16_t l4 = (uint16_t)(sizeof(*udp) + payload_len);
	if (unlikely(v6)) {
		udp6_finish(w, m, l2_len, payload_len, sums, nsums);
		return;
	}
	const uint64_t addrs = ip4_addrs(ip);
	ip4_reply_head((uint8_t *)ip, rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4)), addrs,
		       !w->tx_cksum_offload);
	udp->dgram_len = rte_cpu_to_be_16(l4);
	udp->dgram_cksum = 0;
	if (w->tx_cksum_offload) {
		m->l2_len = l2_len;
		m->l3_len = sizeof(*ip);
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
		udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	} else {
		udp_cksum_sw(m, udp, l4, l2_len + sizeof(*ip), addrs, sums, nsums);
	}
}

/* A zero-copy value in flight: DPDK's shared info for the external buffer, and the store
 * reference it holds until the last mbuf attached to it is freed (by TX, any lcore). */
struct mc_zc {
	struct rte_mbuf_ext_shared_info sh;
	uint8_t *ref;
	struct rte_mempool *mp;
};

static void
zc_free(void *addr, void *opaque)
{
	struct mc_zc *z = opaque;
	(void)addr;
	mc_store_ref_put(z->ref);
	rte_mempool_put(z->mp, z);
}

/* Split a reply held in src into datagrams, each a new mbuf with a copy of m's (already
 * swapped) headers; m is freed. Every mbuf is taken before any datagram is queued,
 * so the reply goes whole or not at all (the caller reserved TX room for all of them). */
static void
send_split(struct mc_worker *w, struct mc_service *svc, struct rte_mbuf *m, bool v6, uint16_t hlen,
	   uint16_t l2, uint16_t req_id, const uint8_t *src, size_t len)
{
	const uint16_t n = mc_udp_dgram_count(len);
	struct rte_mbuf *ms[MC_TX_BACKLOG];
	uint8_t tmpl[128];
	size_t off = 0;
	uint16_t i;

	if (unlikely(n > RTE_DIM(ms) || rte_pktmbuf_alloc_bulk(w->pool, ms, n) != 0)) {
		w->st.drop_nombuf++;
		rte_pktmbuf_free(m);
		return;
	}
	memcpy(tmpl, rte_pktmbuf_mtod(m, uint8_t *), hlen);
	for (i = 0; i < n; i++) {
		struct rte_mbuf *d = ms[i];
		size_t chunk = RTE_MIN((size_t)MC_UDP_MAX_PAYLOAD, len - off);
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(d, (uint16_t)(hlen + MC_UDP_HDR_LEN + chunk));
		memcpy(p, tmpl, hlen);
		mc_udp_frame_write(p + hlen, req_id, i, n);
		memcpy(p + hlen + MC_UDP_HDR_LEN, src + off, chunk);
		off += chunk;
		udp_finish(w, d, v6, l2, (uint16_t)(MC_UDP_HDR_LEN + chunk), NULL, 0);
		mc_dp_tx_push(w, d);
	}
	svc->st.reply_datagrams += n;
	svc->st.replies_split++;
	rte_pktmbuf_free(m);
}

/* Copy the referenced values into the scratch so the reply is one linear buffer again, and
 * release the references. Returns the reply length. */
static size_t
flatten(struct mc_service *svc, struct mc_out *o)
{
	size_t total = mc_out_pos(o), t = o->len;
	int i;
	/* Work from the end: move text tails right, then drop each value in front of them. */
	if (o->buf != svc->scratch)
		memcpy(svc->scratch, o->buf, o->len);
	for (i = o->nrefs - 1; i >= 0; i--) {
		const struct mc_out_ref *r = &o->refs[i];
		size_t dst_text = r->lpos + r->len;
		memmove(svc->scratch + dst_text, svc->scratch + r->at, t - r->at);
		memcpy(svc->scratch + r->lpos, r->p, r->len);
		mc_store_ref_put(r->ref);
		t = r->at;
	}
	o->nrefs = 0;
	o->reflen = 0;
	o->nsums = 0; /* the text moved: its noted value positions no longer hold */
	o->buf = svc->scratch;
	o->len = total;
	return total;
}

/* Build datagrams from text and referenced values: per datagram a head mbuf (headers, frame,
 * text that fits), then segments of text or of item memory attached as external buffers.
 * Returns 1 when sent, 0 when nothing was attached (copy instead), -1 when the reply is lost. */
static int
send_chained(struct mc_worker *w, struct mc_service *svc, const uint8_t *tmpl, bool v6,
	     uint16_t hlen, uint16_t l2, uint16_t req_id, struct mc_out *o)
{
	struct mc_zc *zc[MC_OUT_MAX_REFS];
	struct rte_mbuf *built[512];
	const size_t total = mc_out_pos(o);
	const uint16_t n = mc_udp_dgram_count(total);
	unsigned int nb = 0, ri = 0, i;
	size_t tpos = 0, roff = 0, done = 0;
	uint16_t d;

	if (n > RTE_DIM(built) || rte_mempool_get_bulk(svc->zc_pool, (void **)zc, o->nrefs) != 0)
		return 0;
	for (i = 0; i < o->nrefs; i++) {
		zc[i]->ref = o->refs[i].ref;
		zc[i]->mp = svc->zc_pool;
		zc[i]->sh.free_cb = zc_free;
		zc[i]->sh.fcb_opaque = zc[i];
		rte_mbuf_ext_refcnt_set(&zc[i]->sh, 0);
	}
	for (d = 0; d < n; d++) {
		struct rte_mbuf *head = rte_pktmbuf_alloc(w->pool), *tail;
		size_t room = RTE_MIN((size_t)MC_UDP_MAX_PAYLOAD, total - done);
		uint8_t *p;
		if (head == NULL)
			goto fail;
		built[nb++] = head;
		p = (uint8_t *)rte_pktmbuf_append(head, (uint16_t)(hlen + MC_UDP_HDR_LEN));
		memcpy(p, tmpl, hlen);
		mc_udp_frame_write(p + hlen, req_id, d, n);
		tail = head;
		while (room > 0) {
			size_t text_end = ri < o->nrefs ? o->refs[ri].at : o->len;
			if (tpos < text_end) {
				/* Text: into the tail if it is ours and has room, else a new segment. */
				size_t take = RTE_MIN(room, text_end - tpos);
				if (RTE_MBUF_HAS_EXTBUF(tail) || rte_pktmbuf_tailroom(tail) < take) {
					struct rte_mbuf *seg = rte_pktmbuf_alloc(w->pool);
					if (seg == NULL || rte_pktmbuf_chain(head, seg) != 0) {
						rte_pktmbuf_free(seg);
						goto fail;
					}
					tail = seg;
				}
				memcpy(rte_pktmbuf_append(tail, (uint16_t)take), o->buf + tpos, take);
				if (tail != head)
					head->pkt_len += (uint32_t)take;
				tpos += take;
				room -= take;
				done += take;
			} else {
				/* A value: attach item memory. */
				const struct mc_out_ref *r = &o->refs[ri];
				size_t take = RTE_MIN(room, (size_t)r->len - roff);
				void *va = (void *)(uintptr_t)(r->p + roff);
				const struct rte_memseg *ms = rte_mem_virt2memseg(va, NULL);
				struct rte_mbuf *seg;
				rte_iova_t iova = RTE_BAD_IOVA;
				if (ms != NULL) {
					/* One segment never crosses a page: pages need not be contiguous. */
					take = RTE_MIN(take, (size_t)RTE_PTR_DIFF(RTE_PTR_ADD(ms->addr, ms->len), va));
					iova = ms->iova + RTE_PTR_DIFF(va, ms->addr);
				}
				seg = rte_pktmbuf_alloc(w->pool);
				if (seg == NULL)
					goto fail;
				rte_mbuf_ext_refcnt_update(&zc[ri]->sh, 1);
				rte_pktmbuf_attach_extbuf(seg, va, iova, (uint16_t)take, &zc[ri]->sh);
				seg->data_len = (uint16_t)take;
				seg->pkt_len = (uint32_t)take;
				if (rte_pktmbuf_chain(head, seg) != 0) {
					rte_pktmbuf_free(seg);
					goto fail;
				}
				tail = seg;
				roff += take;
				room -= take;
				done += take;
				if (roff == r->len) {
					ri++;
					roff = 0;
				}
			}
		}
	}
	for (i = 0; i < nb; i++) {
		udp_finish(w, built[i], v6, l2, (uint16_t)(rte_pktmbuf_pkt_len(built[i]) - hlen), NULL,
			   0);
		mc_dp_tx_push(w, built[i]);
	}
	svc->st.zc_values += o->nrefs;
	svc->st.reply_datagrams += n;
	svc->st.replies_split += n > 1;
	o->nrefs = 0; /* the references now belong to the mbufs */
	o->reflen = 0;
	return 1;
fail:
	/* Free what was built: holders with attachments release their items as their last mbuf
	 * goes. Holders nothing was attached to go back to the pool; their refs stay the caller's. */
	for (i = 0; i < nb; i++)
		rte_pktmbuf_free(built[i]);
	{
		unsigned int first = ri + (roff > 0);
		for (i = first; i < o->nrefs; i++)
			rte_mempool_put(svc->zc_pool, zc[i]);
		if (first == 0)
			return 0;
		/* Some values went with their mbufs: this reply cannot be rebuilt. */
		memmove(o->refs, o->refs + first, (o->nrefs - first) * sizeof(o->refs[0]));
		o->nrefs = (uint16_t)(o->nrefs - first);
		return -1;
	}
}

/* Where the reply to f goes in place: after the request in the same buffer, 8-aligned, with
 * room in front of it for the headers, so parsing never reads bytes the reply has overwritten.
 * Sets *at (the headers' offset in the buffer) and returns the room for one datagram's text
 * after them; 0 when there is none (a chained buffer, or no space left). */
static inline __attribute__((always_inline)) size_t
reply_place(const struct mc_frame *f, uint32_t *at)
{
	const struct rte_mbuf *m = f->m;
	const uint16_t hlen = frame_hlen(f);
	uint32_t text;
	/* A direct buffer only this frame holds (stage 1 copies any other): one segment will do. */
	if (unlikely(m->nb_segs != 1))
		return 0;
	*at = RTE_ALIGN_CEIL((uint32_t)m->data_off + hlen + f->payload_len, 8);
	text = *at + hlen + MC_UDP_HDR_LEN;
	if (unlikely(text >= m->buf_len))
		return 0;
	return RTE_MIN((size_t)MC_UDP_MAX_PAYLOAD, (size_t)(m->buf_len - text));
}

/* The amplification cap: all the bytes of all the datagrams one request draws. */
static inline __attribute__((always_inline)) size_t
reply_limit(const struct mc_worker *w, const struct mc_frame *f)
{
	size_t limit = w->reply_max; /* set for the burst (mc_dp_handle_burst) */
	if (w->reply_ratio != 0)
		limit = RTE_MIN(limit, (size_t)w->reply_ratio * f->payload_len);
	return limit;
}

/* Lay out o for the reply to f: in place after the request when it fits, else in the
 * scratch. */
static void
reply_open(struct mc_worker *w, struct mc_frame *f, struct mc_out *o)
{
	struct mc_service *svc = w->svc;
	uint32_t at = 0;
	const size_t room = reply_place(f, &at);
	/* at < buf_len when there is room, so it fits the 16 bits reply_send reads. */
	f->reply_off = room ? (uint16_t)at : 0;
	mc_out_init(o,
		    room ? (uint8_t *)f->m->buf_addr + at + frame_hlen(f) + MC_UDP_HDR_LEN
			 : svc->scratch,
		    room ? room : svc->scratch_cap, svc->scratch, svc->scratch_cap,
		    reply_limit(w, f));
	if (!room)
		o->spilled = true;
	o->udp = true;
	o->zc_min = svc->zc_min;
}

/* The replies that do not fit in place: with referenced values (zero-copy), or spilled past
 * the request's mbuf (split into datagrams). TX room and budget are paid already. */
static void __attribute__((noinline))
reply_send_other(struct mc_worker *w, struct mc_frame *f, struct mc_out *o)
{
	struct mc_service *svc = w->svc;
	struct rte_mbuf *m = f->m;
	const uint16_t l2 = f->l2, hlen = frame_hlen(f);
	if (o->nrefs != 0) {
		uint8_t tmpl[128];
		memcpy(tmpl, rte_pktmbuf_mtod(m, uint8_t *), hlen);
		switch (send_chained(w, svc, tmpl, f->v6, hlen, l2, f->hdr.req_id, o)) {
		case 1:
			rte_pktmbuf_free(m);
			return;
		case -1:
			w->st.drop_nombuf++;
			mc_out_rewind(o, 0);
			rte_pktmbuf_free(m);
			return;
		default:
			break;
		}
		/* Short of holders or mbufs: copy after all. */
		svc->st.zc_fallbacks++;
		flatten(svc, o);
	}
	send_split(w, svc, m, f->v6, hlen, l2, f->hdr.req_id, o->buf, o->len);
}

/* Queue the whole reply o, or refuse it whole (counted); consumes f->m. Inline into its one
 * caller however large the lone get's inline code makes that: as a call it cost meta mg and
 * binary GETK 19 instructions each (docs/PERFORMANCE.md). */
static inline __attribute__((always_inline)) void
reply_send(struct mc_worker *w, struct mc_frame *f, struct mc_out *o)
{
	struct rte_mbuf *m = f->m;
	const uint16_t l2 = f->l2, hlen = frame_hlen(f);
	const size_t total = mc_out_pos(o);
	uint8_t *h;
	uint16_t n;

	if (total == 0) {
		rte_pktmbuf_free(m);
		return;
	}
	/* The whole reply or nothing: room for every datagram on the TX backlog, and the
	 * source's byte budget charged for all of them before any leaves. */
	n = mc_udp_dgram_count(total);
	if (unlikely(!mc_dp_tx_reserve(w, n))) {
		w->st.drop_tx_backlog++;
		goto drop;
	}
	if (unlikely(!mc_dp_rl_charge_at(w, f->rl_slot, (uint32_t)(total + n * (hlen + MC_UDP_HDR_LEN))))) {
		w->st.drop_ratelimit++;
		goto drop;
	}
	if (unlikely(o->nrefs != 0 || o->spilled)) {
		reply_send_other(w, f, o);
		return;
	}
	/* One datagram, built where it lies: move the headers in front of it (42 or 46 bytes,
	 * 62 or 66 over IPv6; never overlapping: the reply starts past the request). */
	h = (uint8_t *)m->buf_addr + f->reply_off;
	rte_memcpy(h, rte_pktmbuf_mtod(m, uint8_t *), hlen);
	mc_udp_frame_write(h + hlen, f->hdr.req_id, 0, 1);
	m->data_off = f->reply_off;
	m->data_len = (uint16_t)(hlen + MC_UDP_HDR_LEN + o->len);
	m->pkt_len = m->data_len;
	udp_finish(w, m, f->v6, l2, (uint16_t)(MC_UDP_HDR_LEN + o->len), o->sums,
		   o->nsums <= MC_OUT_MAX_SUMS ? o->nsums : 0);
	w->svc->st.reply_datagrams++;
	tx_push_reserved(w, m);
	return;
drop:
	mc_out_rewind(o, 0);
	rte_pktmbuf_free(m);
}

/* A lone reply's headers over IPv4 with software checksums, at h in front of its text_len
 * bytes of text (text_sum: their sum, unfolded): each field written once, from the request's
 * headers where they lie and the values in hand, and both sums from registers: nothing just
 * written is read back. (The general path copies the headers, turns them around, rewrites
 * most of the IP header, then sums the UDP header and the text back from memory.) */
static inline __attribute__((always_inline)) void
lone_headers4(const struct mc_worker *w, const struct mc_frame *f, uint8_t *h, uint16_t text_len,
	      uint64_t text_sum)
{
	const uint8_t *q = rte_pktmbuf_mtod(f->m, const uint8_t *);
	const struct rte_ipv4_hdr *qip = (const struct rte_ipv4_hdr *)(q + f->l2);
	uint8_t *ip = h + f->l2;
	const uint16_t l4 = (uint16_t)(sizeof(struct rte_udp_hdr) + MC_UDP_HDR_LEN + text_len);
	const uint16_t l4_be = rte_cpu_to_be_16(l4);
	const uint16_t tot_be = rte_cpu_to_be_16((uint16_t)(sizeof(struct rte_ipv4_hdr) + l4));
	const uint32_t src = qip->dst_addr, dst = qip->src_addr;
	const uint64_t addrs = (uint64_t)src + dst;
	uint64_t w0, fr, sum;
	uint32_t ports;
	uint16_t rid, ck;

	/* Ethernet: to the request's source, from us; the type (after an 802.1Q tag) as it came. */
	memcpy(h, q + 6, 6);
	memcpy(h + 6, &w->mac, 6);
	if (likely(f->l2 == sizeof(struct rte_ether_hdr)))
		memcpy(h + 12, q + 12, 2);
	else
		memcpy(h + 12, q + 12, 6);
	/* IPv4: the header udp_finish writes, the addresses turned around. */
	ip4_reply_head(ip, tot_be, addrs, true);
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	/* UDP: the ports turned around, the length, the sum; then the frame header: the request
	 * id as it came, sequence 0 of 1. */
	memcpy(&ports, q + f->l2 + sizeof(struct rte_ipv4_hdr), 4);
	ports = ports >> 16 | ports << 16;
	memcpy(&rid, f->payload, 2);
	fr = rid | (uint64_t)RTE_BE16(1) << 32;
	sum = addrs + RTE_BE16(IPPROTO_UDP) + 2u * l4_be + ports + rid + RTE_BE16(1) + text_sum;
	ck = mc_sum_udp(sum);
	w0 = ports | (uint64_t)l4_be << 32 | (uint64_t)ck << 48;
	memcpy(ip + sizeof(struct rte_ipv4_hdr), &w0, 8);
	memcpy(ip + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr), &fr, 8);
}

/* m's data moved onto the reply built at at: hlen bytes of headers, the frame header, n of
 * text. */
static inline void
lone_frame(struct rte_mbuf *m, uint32_t at, uint16_t hlen, size_t n)
{
	m->data_off = (uint16_t)at;
	m->data_len = (uint16_t)(hlen + MC_UDP_HDR_LEN + n);
	m->pkt_len = m->data_len;
}

/* A lone get (f->lone, admitted) answered where it lies, with no struct mc_out: the reply
 * after the request in its own buffer, its headers in front of it, built from the request's
 * (lone_headers4 over IPv4, else copied and turned around), its UDP sum from the text's sum
 * that mc_proto_lone_get works out from its parts. Returns false, having changed nothing,
 * when it cannot (a chained buffer, a value to reference, a reply that does not fit): the
 * general path answers. */
static inline __attribute__((always_inline)) bool
reply_lone(struct mc_worker *w, struct mc_frame *f)
{
	struct mc_service *svc = w->svc;
	struct rte_mbuf *m = f->m;
	const uint16_t hlen = frame_hlen(f);
	struct mc_store_read r;
	uint32_t at;
	size_t cap = reply_place(f, &at), limit = reply_limit(w, f), n;
	uint64_t ts;
	uint8_t *h;
	bool hit;

	/* The room in place, within the amplification cap less the error's reserve, as
	 * mc_out_init sets it for the general path; none, and the general path answers before
	 * anything is looked up (a lookup here and another there would count an expired item's
	 * expiry twice). */
	if (unlikely(cap == 0 || limit <= MC_OUT_RESERVE))
		return false;
	hit = mc_store_read_hot(&svc->px.sx, &f->key, &r) == MC_OK;
	cap = RTE_MIN(cap, limit - MC_OUT_RESERVE);
	h = (uint8_t *)m->buf_addr + at;
	/* Two calls, not one with hit ? &r : NULL: with its address known, r lives in registers
	 * (11 instructions a hit fewer, docs/PERFORMANCE.md). */
	if (likely(hit))
		n = mc_proto_lone_get(&svc->px, &f->key, &r, f->lone == 2,
				      h + hlen + MC_UDP_HDR_LEN, cap, svc->zc_min, &ts);
	else
		n = mc_proto_lone_get(&svc->px, &f->key, NULL, f->lone == 2,
				      h + hlen + MC_UDP_HDR_LEN, cap, svc->zc_min, &ts);
	if (unlikely(n == 0 || n == MC_LONE_CHANGED))
		return false; /* changed under the copy: the general path looks again */
	/* As reply_send: TX room, and the source's byte budget charged, before it leaves. */
	if (unlikely(!mc_dp_tx_reserve(w, 1))) {
		w->st.drop_tx_backlog++;
		rte_pktmbuf_free(m);
		return true;
	}
	if (unlikely(!mc_dp_rl_charge_at(w, f->rl_slot, (uint32_t)(n + hlen + MC_UDP_HDR_LEN)))) {
		w->st.drop_ratelimit++;
		rte_pktmbuf_free(m);
		return true;
	}
	/* The headers from the request's, then the mbuf moved onto the reply. */
	if (likely(!f->v6 && !w->tx_cksum_offload && ts != 0)) {
		lone_headers4(w, f, h, (uint16_t)n, ts);
		lone_frame(m, at, hlen, n);
	} else {
		/* The request's headers in front of the reply (never overlapping: it starts past
		 * the request), turned around there; the text summed as it lies. */
		const struct mc_out_sum all = {0, (uint32_t)n, mc_sum_fold(ts)};
		rte_memcpy(h, rte_pktmbuf_mtod(m, uint8_t *), hlen);
		turn_around(w, f, h);
		mc_udp_frame_write(h + hlen, f->hdr.req_id, 0, 1);
		lone_frame(m, at, hlen, n);
		udp_finish(w, m, f->v6, f->l2, (uint16_t)(MC_UDP_HDR_LEN + n), &all, ts != 0);
	}
	svc->st.reply_datagrams++;
	tx_push_reserved(w, m);
	return true;
}

static void __attribute__((noinline))
answer_general(struct mc_worker *w, struct mc_frame *f)
{
	struct mc_service *svc = w->svc;
	struct mc_out out;
	/* The reply's headers: the request's, turned around (udp_finish writes the rest of the
	 * IP header). */
	turn_around(w, f, rte_pktmbuf_mtod(f->m, uint8_t *));
	reply_open(w, f, &out);
	mc_proto_execute(&svc->px, f->payload + MC_UDP_HDR_LEN, f->payload_len - MC_UDP_HDR_LEN,
			 f->key.p != NULL ? &f->key : NULL, &out);
	reply_send(w, f, &out);
}

static inline __attribute__((always_inline)) void
answer_memcached(struct mc_worker *w, struct mc_frame *f)
{
	struct mc_service *svc = w->svc;
	struct rte_mbuf *m = f->m;

	if (unlikely(!mc_dp_rl_admit_at(w, f->rl_slot))) { /* f->rl_slot: stage 2 */
		w->st.drop_ratelimit++;
		rte_pktmbuf_free(m);
		return;
	}
	w->st.udp_requests++;
	/* A lone get was found in a whole, valid frame (stage 2): straight to its reply. */
	if (likely(f->lone) && reply_lone(w, f))
		return;
	if (unlikely(f->payload == NULL)) {
		/* A chained request: one copy makes it contiguous. */
		f->payload = rte_pktmbuf_read(m, frame_hlen(f), f->payload_len, svc->lin);
		f->hdr_ok = f->payload != NULL &&
			    mc_udp_frame_parse(f->payload, f->payload_len, &f->hdr) == MC_UDP_OK;
	}
	if (unlikely(!f->hdr_ok)) {
		w->st.drop_frame++;
		rte_pktmbuf_free(m);
		return;
	}
	answer_general(w, f);
}

/* Here rather than in burst.c, with the other stages, so that answer_memcached inlines into
 * the loop: a call a frame cost 7.5 instructions a GET (docs/PERFORMANCE.md). */
void
mc_dp_execute(struct mc_worker *w, struct mc_frame *f, uint16_t n)
{
	uint16_t i;
	for (i = 0; i < n; i++) {
		rte_prefetch0(f[i + MC_ITEM_AHEAD].item_later[0]);
		rte_prefetch0(f[i + MC_ITEM_AHEAD].item_later[1]);
		if (likely(f[i].kind == MC_FRAME_MEMCACHED)) /* one compare, not a switch */
			answer_memcached(w, &f[i]);
		else
			mc_dp_execute_other(w, &f[i]);
	}
}

/* ---- the service ---- */

struct mc_service *
mc_dp_service_create(struct mc_store *store, const struct mc_proto_conf *conf,
		      uint32_t max_item_size, int socket)
{
	struct mc_service *svc = rte_zmalloc_socket("mc_svc", sizeof(*svc), RTE_CACHE_LINE_SIZE,
						    socket);
	if (svc == NULL)
		return NULL;
	mc_proto_ctx_init(&svc->px, store, conf);
	svc->scratch_cap = mc_dp_scratch_size(max_item_size);
	svc->scratch = rte_malloc_socket("mc_scratch", svc->scratch_cap, 64, socket);
	svc->lin = rte_malloc_socket("mc_lin", 65536, 64, socket);
	/* The worker's front table (store.h): its requests' hot first keys skip the index. */
	svc->px.sx.front = rte_zmalloc_socket("mc_front", MC_STORE_FRONT_BYTES, 64, socket);
	if (svc->scratch == NULL || svc->lin == NULL || svc->px.sx.front == NULL) {
		mc_dp_service_destroy(svc);
		return NULL;
	}
	return svc;
}

int
mc_dp_service_zero_copy(struct mc_service *svc, uint32_t min, int socket)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	static unsigned int seq;
	if (min == 0)
		return 0;
	snprintf(name, sizeof(name), "mc_zc_%u", __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	svc->zc_pool = rte_mempool_create(name, 4095, sizeof(struct mc_zc), 64, 0, NULL, NULL, NULL,
					  NULL, socket, 0);
	if (svc->zc_pool == NULL)
		return -1;
	svc->zc_min = min;
	return 0;
}

void
mc_dp_service_destroy(struct mc_service *svc)
{
	if (svc == NULL)
		return;
	rte_mempool_free(svc->zc_pool);
	rte_free(svc->scratch);
	rte_free(svc->lin);
	rte_free(svc->px.sx.front);
	rte_free(svc);
}
