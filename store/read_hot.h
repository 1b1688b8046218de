/* The store's lookup inline (mc_store_read_hot), for the transports' hot path, a GET per
 * packet: called, and with struct mc_store_read filled in memory and read back, it cost the
 * warm UDP GET about 10 cycles (docs/PERFORMANCE.md); inline, the fields the caller does not
 * use are never loaded. It brings the store's layout (store_int.h) with it: include it only
 * where that is worth the names it adds (proto.h, for the lone get). mc_store_read_begin is
 * the same lookup, out of line. */
#ifndef MC_STORE_READ_HOT_H
#define MC_STORE_READ_HOT_H

#include "store_int.h"

/* What slot entry e of bucket b (read at version v) holds for k. */
enum st_probe { PROBE_OTHER, PROBE_HIT, PROBE_DEAD, PROBE_CHANGED };

static inline __attribute__((always_inline)) enum st_probe
st_probe(struct mc_store_ctx *cx, const struct part *p, const struct bucket *b, uint32_t v,
      uint64_t e, uint16_t tag, const struct mc_key *k, struct mc_store_read *r)
{
	const struct mc_store *s = cx->s;
	const struct mc_item *it;
	uint32_t klen, vlen;
	ptrdiff_t u;
	int dead;
	if (e == 0 || (uint16_t)(e >> 48) != tag)
		return PROBE_OTHER;
	it = item_at(p, e);
	klen = mc_item_klen(it);
	if (klen != k->len || !key_bytes_eq(it->data, k->p, klen))
		return PROBE_OTHER;
	vlen = mc_item_vlen(it);
	/* A racing writer may have changed the item: keep reads inside the partition. */
	u = unit_of(p, it);
	if (u < 0 || (const uint8_t *)it->data + klen + vlen > p->base + p->len)
		return PROBE_CHANGED;
	r->it = it;
	r->ver = &b->ver;
	r->v = v;
	r->flags = it->flags;
	r->vlen = vlen;
	r->exptime = it->exptime;
	r->cas = it->cas;
	r->vsum = it->vsum;
	r->value = it->data + klen;
	r->state = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
	r->ref = p->refs + u;
	r->use = p->use + u;
	r->fetched = (__atomic_load_n(r->use, __ATOMIC_RELAXED) & USE_SEEN) != 0;
	if (!mc_store_read_check(r))
		return PROBE_CHANGED;
	dead = item_dead(s, p, r->cas, r->exptime);
	if (likely(dead == 0))
		return PROBE_HIT;
	if (dead == 1)
		cx->st.get_expired++;
	else
		cx->st.get_flushed++;
	return PROBE_DEAD;
}

/* Both buckets scanned under their versions, for a key placed in p at bi[]. */
static inline __attribute__((always_inline)) enum mc_store_status
st_read_scan(struct mc_store_ctx *cx, const struct mc_key *k, const struct part *p,
	     const uint32_t bi[2], struct mc_store_read *r)
{
	const uint16_t tag = tag_of(k->hash);
	uint32_t v[2], m;
	unsigned int j;
retry:
	for (j = 0; j < 2; j++) {
		const struct bucket *b = &p->buckets[bi[j]];
		v[j] = __atomic_load_n(&b->ver, __ATOMIC_ACQUIRE);
		if (unlikely(v[j] & 1)) {
			cx->st.read_retries++;
			rte_pause();
			goto retry;
		}
		for (m = tag_matches(b, tag); m != 0; m &= m - 1) {
			switch (st_probe(cx, p, b, v[j],
					 __atomic_load_n(&b->slot[__builtin_ctz(m)], __ATOMIC_RELAXED),
					 tag, k, r)) {
			case PROBE_HIT: return MC_OK;
			case PROBE_DEAD: return MC_MISS;
			case PROBE_CHANGED: goto changed;
			default: break;
			}
		}
	}
	/* A miss is only a miss if neither bucket changed while we looked. */
	for (j = 0; j < 2; j++)
		if (__atomic_load_n(&p->buckets[bi[j]].ver, __ATOMIC_ACQUIRE) != v[j])
			goto changed;
	return MC_MISS;
changed:
	cx->st.read_retries++;
	goto retry;
}

/* mc_store_read_begin, inline: the slot the item prefetch matched (k->way) is tried first,
 * and on a hit there is no scan of the buckets; else both are scanned (st_read_scan). */
static inline __attribute__((always_inline)) enum mc_store_status
mc_store_read_hot(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	const struct part *p;
	uint32_t bi[2];
	key_place(cx->s, k, &p, bi);
	if (likely(k->way != 0)) {
		const unsigned int w = k->way - 1u;
		const struct bucket *b = &p->buckets[bi[w >> 3]];
		const uint32_t vb = __atomic_load_n(&b->ver, __ATOMIC_ACQUIRE);
		if (likely((vb & 1) == 0)) {
			switch (st_probe(cx, p, b, vb, __atomic_load_n(&b->slot[w & 7], __ATOMIC_RELAXED),
					 tag_of(k->hash), k, r)) {
			case PROBE_HIT: return MC_OK;
			case PROBE_DEAD: return MC_MISS;
			case PROBE_CHANGED: cx->st.read_retries++; break;
			default: break; /* moved, replaced or a tag collision: look properly */
			}
		}
	}
	return st_read_scan(cx, k, p, bi, r);
}

#endif
