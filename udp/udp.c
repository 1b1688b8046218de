/* memcached UDP framing and the datagram service. */
#include "udp.h"
#include "../dataplane/dataplane.h"

#include <rte_byteorder.h>
#include <rte_malloc.h>
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

/* Split a reply held in src into datagrams: the first reuses m, the rest are new mbufs with a
 * copy of m's (already swapped) headers. All mbufs are taken before any is built. */
static void
send_split(struct mc_worker *w, struct mc_service *svc, struct rte_mbuf *m, uint16_t hlen,
	   uint16_t l2, uint16_t req_id, const uint8_t *src, size_t len)
{
	uint16_t n = mc_udp_dgram_count(len), i;
	struct rte_mbuf *ms[256];
	uint8_t tmpl[128];
	size_t off = 0;

	memcpy(tmpl, rte_pktmbuf_mtod(m, uint8_t *), hlen);
	for (i = 0; i < n; i += 256) {
		uint16_t batch = (uint16_t)RTE_MIN(256, n - i), j;
		if (rte_pktmbuf_alloc_bulk(w->pool, ms, batch) != 0) {
			w->st.drop_nombuf++;
			rte_pktmbuf_free(m);
			return;
		}
		for (j = 0; j < batch; j++) {
			struct rte_mbuf *d = ms[j];
			size_t chunk = RTE_MIN((size_t)MC_UDP_MAX_PAYLOAD, len - off);
			uint8_t *p = (uint8_t *)rte_pktmbuf_append(d, (uint16_t)(hlen + MC_UDP_HDR_LEN + chunk));
			memcpy(p, tmpl, hlen);
			mc_udp_frame_write(p + hlen, req_id, (uint16_t)(i + j), n);
			memcpy(p + hlen + MC_UDP_HDR_LEN, src + off, chunk);
			off += chunk;
			mc_dp_udp_finish(w, d, l2, (uint16_t)(MC_UDP_HDR_LEN + chunk));
			mc_dp_tx_push(w, d);
		}
	}
	svc->dgrams_out += n;
	svc->replies_split++;
	rte_pktmbuf_free(m);
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
	uint16_t reply_off = 0;
	size_t room = 0, limit;
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
	limit = svc->scratch_cap;
	if (w->cfg->max_reply_ratio != 0)
		limit = RTE_MIN(limit, (size_t)w->cfg->max_reply_ratio * payload_len);
	mc_out_init(&out, room ? base + reply_off + hlen + MC_UDP_HDR_LEN : svc->scratch,
		    room ? room : svc->scratch_cap, svc->scratch, svc->scratch_cap, limit);
	if (!room)
		out.spilled = true;
	mc_proto_execute(&svc->px, payload + MC_UDP_HDR_LEN, payload_len - MC_UDP_HDR_LEN, &out);
	if (out.full)
		svc->px.st.reply_cut++;
	if (out.len == 0) {
		rte_pktmbuf_free(m);
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
		mc_dp_rl_charge(w, src, (uint32_t)out.len);
		svc->dgrams_out++;
		mc_dp_tx_push(w, m);
		return;
	}
	mc_dp_rl_charge(w, src, (uint32_t)out.len);
	send_split(w, svc, m, hlen, l2, f.req_id, out.buf, out.len);
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
	for (e = off; e < len && e - off <= MC_KEY_MAX; e++)
		if (p[e] == ' ' || p[e] == '\r' || p[e] == '\n')
			break;
	if (e == off || e == len || e - off > MC_KEY_MAX)
		return NULL;
	*klen = (uint32_t)(e - off);
	return p + off;
}

void
mc_udp_prefetch(const struct mc_worker *w, const struct rte_mbuf *m)
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
	if (udp->dst_port != w->udp_port_be)
		return;
	key = first_key((const uint8_t *)(udp + 1) + MC_UDP_HDR_LEN, len - l2 - 20 - 8 - MC_UDP_HDR_LEN,
			&klen);
	if (key != NULL)
		mc_store_prefetch(w->svc->px.sx.s, mc_store_hash(key, klen));
}

void
mc_udp_idle(struct mc_worker *w)
{
	struct mc_service *svc = w->svc;
	if (svc == NULL)
		return;
	/* Each lcore sweeps its own partition: expired items and released zombies. */
	mc_store_sweep(svc->px.sx.s, w->queue_id % mc_store_nparts(svc->px.sx.s), 256);
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

void
mc_udp_service_destroy(struct mc_service *svc)
{
	if (svc == NULL)
		return;
	rte_free(svc->scratch);
	rte_free(svc->lin);
	rte_free(svc);
}
