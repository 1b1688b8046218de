/* The store's GET path inline, for the transports' hot path (a GET per packet): a text key
 * hashed and placed (mc_store_key_text_hot), its item prefetched (mc_store_prefetch_item_hot)
 * and looked up (mc_store_read_hot). Called, the lookup filled struct mc_store_read in memory
 * for the caller to read back and cost the warm UDP GET about 10 cycles (docs/PERFORMANCE.md);
 * inline, the fields the caller does not use are never loaded. It brings the store's layout
 * (store_int.h) with it: include it only where that is worth the names it adds (proto.h, for
 * the lone get, and so the dataplane). store.h's functions of the same names without _hot
 * (where there is one) are these, out of line. */
#ifndef MC_STORE_HOT_H
#define MC_STORE_HOT_H

#include "store_int.h"

/* k's partition and buckets worked out and kept in k; its first bucket requested. */
static inline __attribute__((always_inline)) void
st_place(const struct mc_store *s, struct mc_key *k)
{
	const unsigned int part = part_of(s, k->hash);
	k->part = (uint16_t)part;
	k->bkt = bucket_first(s->index[part].nbuckets, k->hash);
	k->placed = true;
	rte_prefetch0(&s->index[part].buckets[k->bkt]);
}

/* mc_store_key_prefetch for a key the text protocols delimit, in one pass over its bytes:
 * false (k not set) when one of the len bytes is at or below ' ' (a space or control byte
 * would have ended it: then it is not the key). Sets k->sum too. */
static inline __attribute__((always_inline)) bool
mc_store_key_text_hot(const struct mc_store *s, struct mc_key *k, const void *p, uint32_t len)
{
	uint64_t low, sum;
	const uint64_t h = hash_words(s->seed, p, len, &low, &sum);
	if (low != 0)
		return false;
	k->p = p;
	k->len = len;
	k->hash = h;
	k->sum = (sum & 0xffffffffu) + (sum >> 32); /* 2^32 is 1 modulo 0xffff */
	k->way = 0;
	st_place(s, k);
	return true;
}

/* mc_store_prefetch_item, inline, for a key placed (st_place) already, in two steps: the
 * item's first line now, and in later[0..1] the two other lines its hit reads, for the
 * caller to request nearer its turn (for a key not in its first bucket, that bucket's line,
 * in the cache already: a request for nothing). */
static inline __attribute__((always_inline)) void
mc_store_prefetch_item_hot(const struct mc_store *s, struct mc_key *k, const void **later)
{
	const unsigned int part = k->part;
	const struct bucket *index = s->index[part].buckets, *b = &index[k->bkt];
	const struct part *p = s->parts[part];
	const uint32_t m = tag_matches(b, tag_of(k->hash));
	if (m != 0) {
		/* The first match only: a second is a 16-bit tag collision, rare enough that
		 * the lookup's own scan covers it. Writers store whole slots, so even a stale
		 * one holds an offset inside the partition. Two lines of the item: the smallest
		 * items are 72 bytes (a 16-byte key, a 32-byte value), so at most places in a
		 * page the value ends in the line after the header's (cold GET 282 -> 267
		 * cycles). The hit will read (and may set) the item's use bits too: their line
		 * as well. */
		const unsigned int i = TAG_SLOT(m);
		const struct mc_item *it = item_at(p, __atomic_load_n(&b->slot[i], __ATOMIC_RELAXED));
		rte_prefetch0(it);
		later[0] = (const uint8_t *)it + 64;
		/* Unchecked: a prefetch of any address is harmless, and a stale slot's is
		 * only wasted (the lookup checks it with unit_of). Integer arithmetic, so no
		 * pointer leaves its object. */
		later[1] = (const void *)((uintptr_t)p->use +
					  (((uintptr_t)it - (uintptr_t)p->pages) >> UNIT_SHIFT));
		k->way = (uint8_t)(1 + i);
		k->item = it;
		k->bucket = b;
		return;
	}
	/* Not in its first bucket (a miss, or placed second): the lookup reads both, and the
	 * second was not requested with the first. */
	{
		uint32_t b1, b2;
		buckets_in(s->index[part].nbuckets, k->hash, &b1, &b2);
		rte_prefetch0(&index[b2]);
		later[0] = later[1] = b;
	}
}

/* What slot entry e of bucket b (read at version v) holds for k. tag 0 (no tag is 0): not
 * compared, for the item hint, whose slot the prefetch matched by tag and which still holds
 * that item; an item of another key there fails the key compare. */
enum st_probe { PROBE_OTHER, PROBE_HIT, PROBE_DEAD, PROBE_CHANGED };

static inline __attribute__((always_inline)) enum st_probe
st_probe_at(struct mc_store_ctx *cx, const struct part *p, const struct bucket *b, uint32_t v,
	    uint64_t e, const struct mc_item *it, uint16_t tag, const struct mc_key *k,
	    struct mc_store_read *r)
{
	const struct mc_store *s = cx->s;
	uint32_t klen, vlen;
	ptrdiff_t u;
	int dead;
	if (e == 0 || (tag != 0 && (uint16_t)(e >> 48) != tag))
		return PROBE_OTHER;
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

/* The same, the item worked out from e. */
static inline __attribute__((always_inline)) enum st_probe
st_probe(struct mc_store_ctx *cx, const struct part *p, const struct bucket *b, uint32_t v,
	 uint64_t e, uint16_t tag, const struct mc_key *k, struct mc_store_read *r)
{
	return st_probe_at(cx, p, b, v, e, item_at(p, e), tag, k, r);
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
					 __atomic_load_n(&b->slot[TAG_SLOT(m)], __ATOMIC_RELAXED),
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

/* mc_store_read_begin, inline: the slot and item the item prefetch matched (k->way,
 * k->item) are tried first, and on a hit there is no scan of the buckets; else both are
 * scanned (st_read_scan). */
static inline __attribute__((always_inline)) enum mc_store_status
mc_store_read_hot(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	const struct part *p;
	uint32_t bi[2];
	if (likely(k->way != 0)) {
		const struct bucket *b = k->bucket;
		const uint32_t vb = __atomic_load_n(&b->ver, __ATOMIC_ACQUIRE);
		const uint64_t e = __atomic_load_n(&b->slot[(size_t)k->way - 1], __ATOMIC_RELAXED);
		p = cx->s->parts[k->part];
		/* The item the prefetch found, while the slot still holds it: its reads start
		 * without waiting for the bucket's. */
		if (likely((vb & 1) == 0 && item_at(p, e) == k->item)) {
			switch (st_probe_at(cx, p, b, vb, e, (const struct mc_item *)k->item, 0, k,
					    r)) {
			case PROBE_HIT: return MC_OK;
			case PROBE_DEAD: return MC_MISS;
			case PROBE_CHANGED: cx->st.read_retries++; break;
			default: break; /* moved, replaced or a tag collision: look properly */
			}
		}
	}
	p = cx->s->parts[key_place(cx->s, k, bi)];
	return st_read_scan(cx, k, p, bi, r);
}

#endif
