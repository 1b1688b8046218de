/* mcgen's request table and reply matching (see mcgen_match.h). */
#include "mcgen_match.h"

#include <stdlib.h>
#include <string.h>

int
mcg_match_create(struct mcg_match *m, const struct mc_wl *wl, uint64_t timeout_ticks,
		 double ns_per_tick)
{
	memset(m, 0, sizeof(*m));
	m->wl = wl;
	m->timeout = timeout_ticks;
	m->ns_per_tick = ns_per_tick;
	m->slot = calloc(MCG_SLOTS, sizeof(*m->slot));
	m->pool = calloc(MCG_ASM_POOL, sizeof(*m->pool));
	if (m->slot == NULL || m->pool == NULL) {
		mcg_match_destroy(m);
		return -1;
	}
	for (unsigned int i = 0; i < MCG_ASM_POOL; i++) {
		m->pool[i].next_free = m->free_asm;
		m->free_asm = &m->pool[i];
	}
	return 0;
}

void
mcg_match_destroy(struct mcg_match *m)
{
	free(m->slot);
	free(m->pool);
	m->slot = NULL;
	m->pool = NULL;
}

/* Count one event of request q (NULL: of no request) in both sets of counters. */
#define COUNT(m, q, field, n)                                                                  \
	do {                                                                                   \
		(m)->all.field += (n);                                                         \
		if ((q) != NULL ? (q)->measured : (m)->measuring)                              \
			(m)->measured.field += (n);                                            \
	} while (0)

static void
release(struct mcg_match *m, struct mcg_req *q)
{
	if (q->as != NULL) {
		q->as->next_free = m->free_asm;
		m->free_asm = q->as;
		q->as = NULL;
	}
	q->live = false;
	m->outstanding--;
}

static void
finish(struct mcg_match *m, struct mcg_req *q, uint64_t now, enum mc_wl_verdict v,
       const struct mc_wl_result *res, const uint8_t *p, size_t n)
{
	COUNT(m, q, replies, 1);
	if (q->unchecked) {
		COUNT(m, q, unchecked, 1);
	} else if (v == MC_WL_BAD) {
		COUNT(m, q, errors, 1);
		m->why = res->why;
		m->bad_len = (uint32_t)(n < sizeof(m->bad) ? n : sizeof(m->bad));
		memcpy(m->bad, p, m->bad_len);
	} else {
		COUNT(m, q, hits, res->hits);
		COUNT(m, q, misses, res->misses);
	}
	if (q->measured)
		mc_hist_add(&m->h, (uint64_t)((double)(now - q->sent) * m->ns_per_tick));
	release(m, q);
}

struct mc_wl_req *
mcg_issue(struct mcg_match *m, uint64_t now, uint16_t *rid)
{
	struct mcg_req *q = &m->slot[m->next_rid];
	if (q->live) { /* the id came round while still in flight */
		COUNT(m, q, loss, 1);
		release(m, q);
	}
	*rid = m->next_rid++;
	q->sent = now;
	q->order = ++m->order;
	q->msg_total = q->msg_got = q->next_seq = 0;
	q->live = true;
	q->unchecked = false;
	q->measured = m->measuring;
	m->outstanding++;
	COUNT(m, q, requests, 1);
	return &q->r;
}

void
mcg_unissue(struct mcg_match *m, uint16_t rid)
{
	struct mcg_req *q = &m->slot[rid];
	if (!q->live)
		return;
	m->all.requests--;
	if (q->measured)
		m->measured.requests--;
	release(m, q);
}

/* Add datagram seq of a message of total to q's reassembly; returns the verdict on the
 * stream when this completed the message, MORE otherwise. */
static enum mc_wl_verdict
assemble(struct mcg_match *m, struct mcg_req *q, uint16_t seq, uint16_t total, const uint8_t *p,
	 size_t n, struct mc_wl_result *res)
{
	struct mcg_asm *a = q->as;
	size_t at;
	if (q->msg_total == 0) { /* a new message */
		q->msg_total = total;
		q->msg_got = 0;
		a->got = 0;
	}
	res->why = NULL;
	if (total != q->msg_total || total > MCG_ASM_DGRAMS) {
		res->why = total > MCG_ASM_DGRAMS ? "a reply longer than mcgen reassembles"
						  : "the datagram count changed within a message";
		return MC_WL_BAD;
	}
	if (a->got & (1u << seq)) {
		COUNT(m, q, late, 1); /* a duplicate */
		return MC_WL_MORE;
	}
	at = a->len + (size_t)seq * MC_WL_DGRAM_PAYLOAD;
	if ((seq + 1u < total && n != MC_WL_DGRAM_PAYLOAD) || at + n > sizeof(a->buf)) {
		res->why = "a short datagram within a message";
		return MC_WL_BAD;
	}
	memcpy(a->buf + at, p, n);
	a->got |= 1u << seq;
	if (seq + 1u == total)
		a->last_len = (uint16_t)n;
	if (++q->msg_got < total)
		return MC_WL_MORE;
	a->len += (uint32_t)((total - 1u) * MC_WL_DGRAM_PAYLOAD + a->last_len);
	q->msg_total = 0;
	q->next_seq = 0;
	return mc_wl_check(m->wl, &q->r, a->buf, a->len, res);
}

/* A reply that cannot be reassembled (no buffer free): matched by datagram count only. */
static void
count_only(struct mcg_match *m, struct mcg_req *q, uint16_t total, uint64_t now)
{
	struct mc_wl_result res = {0};
	q->unchecked = true;
	q->msg_total = total;
	if (++q->msg_got >= total)
		finish(m, q, now, MC_WL_DONE, &res, NULL, 0);
}

void
mcg_reply(struct mcg_match *m, const uint8_t *d, size_t len, uint64_t now)
{
	struct mc_wl_result res = {0};
	enum mc_wl_verdict v;
	struct mcg_req *q;
	uint16_t rid, seq, total;
	if (len < MC_WL_UDP_HDR) {
		COUNT(m, (struct mcg_req *)NULL, late, 1);
		return;
	}
	rid = (uint16_t)(d[0] << 8 | d[1]);
	seq = (uint16_t)(d[2] << 8 | d[3]);
	total = (uint16_t)(d[4] << 8 | d[5]);
	q = &m->slot[rid];
	if (!q->live) {
		COUNT(m, (struct mcg_req *)NULL, late, 1);
		return;
	}
	d += MC_WL_UDP_HDR;
	len -= MC_WL_UDP_HDR;
	if (total == 0 || seq >= total) {
		res.why = "a bad datagram sequence";
		finish(m, q, now, MC_WL_BAD, &res, d, len);
		return;
	}
	if (q->as == NULL && q->msg_got == 0 && q->msg_total == 0) {
		/* The reply's first datagram: a reply to a later request came first? */
		if (q->order < m->newest_answered)
			COUNT(m, q, reorders, 1);
		else
			m->newest_answered = q->order;
	}
	if (seq != q->next_seq)
		COUNT(m, q, reorders, 1);
	q->next_seq = (uint16_t)(seq + 1);
	if (q->unchecked) {
		count_only(m, q, total, now);
		return;
	}
	if (q->as == NULL && total == 1) { /* the common case: checked in place */
		v = mc_wl_check(m->wl, &q->r, d, len, &res);
		if (v != MC_WL_MORE) {
			finish(m, q, now, v, &res, d, len);
			return;
		}
	}
	if (q->as == NULL) {
		if (m->free_asm == NULL) {
			count_only(m, q, total, now);
			return;
		}
		q->as = m->free_asm;
		m->free_asm = q->as->next_free;
		q->as->len = 0;
		q->msg_total = 0;
	}
	v = assemble(m, q, seq, total, d, len, &res);
	if (v != MC_WL_MORE || res.why != NULL)
		finish(m, q, now, res.why != NULL ? MC_WL_BAD : v, &res, q->as->buf, q->as->len);
}

void
mcg_expire(struct mcg_match *m, uint64_t now)
{
	while (m->oldest_rid != m->next_rid) {
		struct mcg_req *q = &m->slot[m->oldest_rid];
		if (q->live) {
			if (now - q->sent <= m->timeout)
				return;
			COUNT(m, q, loss, 1);
			release(m, q);
		}
		m->oldest_rid++;
	}
}

void
mcg_expire_all(struct mcg_match *m)
{
	for (unsigned int i = 0; i < MCG_SLOTS; i++) {
		struct mcg_req *q = &m->slot[i];
		if (q->live) {
			COUNT(m, q, loss, 1);
			release(m, q);
		}
	}
	m->oldest_rid = m->next_rid;
}
