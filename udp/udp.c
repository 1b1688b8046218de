/* memcached UDP framing and the datagram service. */
#include "udp.h"
#include "../dataplane/dataplane.h"

#include <rte_byteorder.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_mempool.h>

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
#include <rte_ip.h>
#include <rte_udp.h>

int
mc_udp_frame_parse(const uint8_t *buf, size_t len, struct mc_udp_frame *f)
{
	if (len <= MC_UDP_HDR_LEN)
		return MC_UDP_SHORT;
	f->req_id = (uint16_t)(buf[0] << 8 | buf[1]);
	f->seq = (uint16_t)(buf[2] << 8 | buf[3]);
	f->total = (uint16_t)(buf[4] << 8 | buf[5]);
	f->reserved = (uint16_t)(buf[6] << 8 | buf[7]);
	if (f->total != 1)
		return MC_UDP_MULTI;
	return MC_UDP_OK;
}

void
mc_udp_frame_write(uint8_t *buf, uint16_t req_id, uint16_t seq, uint16_t total)
{
	buf[0] = (uint8_t)(req_id >> 8);
	buf[1] = (uint8_t)req_id;
	buf[2] = (uint8_t)(seq >> 8);
	buf[3] = (uint8_t)seq;
	buf[4] = (uint8_t)(total >> 8);
	buf[5] = (uint8_t)total;
	buf[6] = 0;
	buf[7] = 0;
}

/* Split a reply held in src into datagrams, each a new mbuf with a copy of m's (already
 * swapped) headers; m is freed. Every mbuf is taken before any datagram is queued,
 * so the reply goes whole or not at all (the caller reserved TX room for all of them). */
static void
send_split(struct mc_worker *w, struct mc_service *svc, struct rte_mbuf *m, uint16_t hlen,
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
		mc_dp_udp_finish(w, d, l2, (uint16_t)(MC_UDP_HDR_LEN + chunk));
		mc_dp_tx_push(w, d);
	}
	svc->dgrams_out += n;
	svc->replies_split++;
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
	o->buf = svc->scratch;
	o->len = total;
	return total;
}

/* Build datagrams from text and referenced values: per datagram a head mbuf (headers, frame,
 * text that fits), then segments of text or of item memory attached as external buffers.
 * Returns 1 when sent, 0 when nothing was attached (copy instead), -1 when the reply is lost. */
static int
send_chained(struct mc_worker *w, struct mc_service *svc, const uint8_t *tmpl, uint16_t hlen,
	     uint16_t l2, uint16_t req_id, struct mc_out *o)
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
		mc_dp_udp_finish(w, built[i], l2,
				 (uint16_t)(rte_pktmbuf_pkt_len(built[i]) - hlen));
		mc_dp_tx_push(w, built[i]);
	}
	svc->zc_values += o->nrefs;
	svc->dgrams_out += n;
	svc->replies_split += n > 1;
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

void
mc_udp_serve(struct mc_worker *w, struct rte_mbuf *m, uint16_t l2, uint16_t payload_len)
{
	struct mc_service *svc = w->svc;
	const uint16_t hlen = (uint16_t)(l2 + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr));
	const uint8_t *payload;
	struct mc_udp_frame f;
	struct mc_out out;
	uint8_t *base = m->buf_addr;
	uint16_t reply_off = 0, n;
	size_t room = 0, limit, total;
	/* The reply's destination: headers were already swapped. */
	const uint32_t src = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, l2)->dst_addr;

	/* The request as one contiguous view (a chained mbuf is copied once). */
	payload = rte_pktmbuf_read(m, hlen, payload_len, svc->lin);
	if (unlikely(payload == NULL || mc_udp_frame_parse(payload, payload_len, &f) != MC_UDP_OK)) {
		w->st.drop_frame++;
		rte_pktmbuf_free(m);
		return;
	}
	/* In place: the reply goes after the request in the same buffer, with room in front of
	 * it for the headers, so parsing never reads bytes the reply has overwritten. */
	if (m->nb_segs == 1 && RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1) {
		uint32_t end = (uint32_t)m->data_off + hlen + payload_len;
		reply_off = (uint16_t)RTE_ALIGN_CEIL(end, 8);
		if ((uint32_t)reply_off + hlen + MC_UDP_HDR_LEN < m->buf_len)
			room = RTE_MIN((size_t)MC_UDP_MAX_PAYLOAD,
				       (size_t)(m->buf_len - reply_off - hlen - MC_UDP_HDR_LEN));
	}
	/* The amplification cap: all the datagrams one request draws. */
	limit = RTE_MIN(svc->scratch_cap, (size_t)w->cfg->udp_reply_max);
	if (w->cfg->max_reply_ratio != 0)
		limit = RTE_MIN(limit, (size_t)w->cfg->max_reply_ratio * payload_len);
	mc_out_init(&out, room ? base + reply_off + hlen + MC_UDP_HDR_LEN : svc->scratch,
		    room ? room : svc->scratch_cap, svc->scratch, svc->scratch_cap, limit);
	if (!room)
		out.spilled = true;
	out.udp = true;
	out.zc_min = svc->zc_min;
	svc->px.hint_key = w->pre[w->cur].key;
	svc->px.hint_len = w->pre[w->cur].len;
	svc->px.hint_hash = w->pre[w->cur].hash;
	mc_proto_execute(&svc->px, payload + MC_UDP_HDR_LEN, payload_len - MC_UDP_HDR_LEN, &out);
	svc->px.hint_key = NULL;
	total = mc_out_pos(&out);
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
	if (unlikely(!mc_dp_rl_charge(w, src, (uint32_t)(total + n * (hlen + MC_UDP_HDR_LEN))))) {
		w->st.drop_ratelimit++;
		goto drop;
	}
	if (unlikely(out.nrefs != 0)) {
		uint8_t tmpl[128];
		memcpy(tmpl, rte_pktmbuf_mtod(m, uint8_t *), hlen);
		switch (send_chained(w, svc, tmpl, hlen, l2, f.req_id, &out)) {
		case 1:
			rte_pktmbuf_free(m);
			return;
		case -1:
			mc_out_rewind(&out, 0);
			w->st.drop_nombuf++;
			rte_pktmbuf_free(m);
			return;
		default:
			break;
		}
		/* Short of holders or mbufs: copy after all. */
		svc->zc_fallbacks++;
		flatten(svc, &out);
		send_split(w, svc, m, hlen, l2, f.req_id, out.buf, out.len);
		return;
	}
	if (!out.spilled) {
		/* One datagram, built where it lies: move the headers in front of it. */
		uint8_t *h = base + reply_off;
		memmove(h, rte_pktmbuf_mtod(m, uint8_t *), hlen);
		mc_udp_frame_write(h + hlen, f.req_id, 0, 1);
		m->data_off = reply_off;
		m->data_len = (uint16_t)(hlen + MC_UDP_HDR_LEN + out.len);
		m->pkt_len = m->data_len;
		mc_dp_udp_finish(w, m, l2, (uint16_t)(MC_UDP_HDR_LEN + out.len));
		svc->dgrams_out++;
		mc_dp_tx_push(w, m);
		return;
	}
	send_split(w, svc, m, hlen, l2, f.req_id, out.buf, out.len);
	return;
drop:
	mc_out_rewind(&out, 0);
	rte_pktmbuf_free(m);
}

/* The first key of a get-like request in p[0..len), or NULL. */
static const uint8_t *
first_key(const uint8_t *p, size_t len, uint32_t *klen)
{
	size_t off, e;
	if (len >= 24 && p[0] == 0x80) {
		uint8_t op = p[1];
		uint32_t kl = (uint32_t)(p[2] << 8 | p[3]);
		if (op != 0x00 && op != 0x09 && op != 0x0c && op != 0x0d)
			return NULL;
		off = 24u + p[4];
		if (kl == 0 || kl > MC_KEY_MAX || off + kl > len)
			return NULL;
		*klen = kl;
		return p + off;
	}
	if (len > 4 && !memcmp(p, "get ", 4))
		off = 4;
	else if (len > 5 && !memcmp(p, "gets ", 5))
		off = 5;
	else if (len > 3 && !memcmp(p, "mg ", 3))
		off = 3;
	else
		return NULL;
	/* The key ends at the first byte below '!' (space, CR, LF), found 8 bytes a step; a key
	 * with control characters just gets a useless prefetch and no reused hash. */
	e = off;
	while (e + 8 <= len) {
		uint64_t v, t;
		memcpy(&v, p + e, 8);
		t = (v - 0x2121212121212121ull) & ~v & 0x8080808080808080ull;
		if (t) {
			e += (size_t)__builtin_ctzll(t) >> 3;
			goto found;
		}
		e += 8;
	}
	while (e < len && p[e] > ' ')
		e++;
found:
	if (e == off || e == len || e - off > MC_KEY_MAX)
		return NULL;
	*klen = (uint32_t)(e - off);
	return p + off;
}

void
mc_udp_prefetch(struct mc_worker *w, const struct rte_mbuf *m, unsigned int i)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *), *key;
	uint32_t len = rte_pktmbuf_data_len(m), l2 = 14, klen;
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	if (len < 14 + 20 + 8 + 8)
		return;
	if (p[12] == 0x81 && p[13] == 0x00)
		l2 = 18;
	ip = (const struct rte_ipv4_hdr *)(p + l2);
	if (p[l2 - 2] != 0x08 || p[l2 - 1] != 0x00 || ip->version_ihl != 0x45 ||
	    ip->next_proto_id != IPPROTO_UDP || len < l2 + 20u + 8u + 8u)
		return;
	udp = (const struct rte_udp_hdr *)(ip + 1);
	if (udp->dst_port != w->udp_port_be &&
	    (uint16_t)(rte_be_to_cpu_16(udp->dst_port) - w->udp_port) >= w->nports)
		return;
	key = first_key((const uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, len - l2 - 20 - 8 - MC_UDP_HDR_LEN,
			&klen);
	if (key != NULL) {
		w->pre[i].key = key;
		w->pre[i].len = klen;
		w->pre[i].hash = mc_store_hash(w->svc->px.sx.s, key, klen);
		mc_store_prefetch(w->svc->px.sx.s, w->pre[i].hash);
	}
}

struct mc_service *
mc_udp_service_create(struct mc_store *store, const struct mc_proto_conf *conf,
		      uint32_t max_item_size, int socket)
{
	struct mc_service *svc = rte_zmalloc_socket("mc_svc", sizeof(*svc), RTE_CACHE_LINE_SIZE,
						    socket);
	if (svc == NULL)
		return NULL;
	mc_proto_ctx_init(&svc->px, store, conf);
	svc->scratch_cap = mc_udp_scratch_size(max_item_size);
	svc->scratch = rte_malloc_socket("mc_scratch", svc->scratch_cap, 64, socket);
	svc->lin = rte_malloc_socket("mc_lin", 65536, 64, socket);
	if (svc->scratch == NULL || svc->lin == NULL) {
		mc_udp_service_destroy(svc);
		return NULL;
	}
	return svc;
}

int
mc_udp_service_zero_copy(struct mc_service *svc, uint32_t min, int socket)
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
mc_udp_service_destroy(struct mc_service *svc)
{
	if (svc == NULL)
		return;
	rte_mempool_free(svc->zc_pool);
	rte_free(svc->scratch);
	rte_free(svc->lin);
	rte_free(svc);
}
