/* The store's GET path inline, for the transports' hot path (a GET per packet): a text key
 * hashed and placed (mc_store_key_text_hot), the reader's front table asked for it
 * (mc_store_front_ask, mc_store_front_burst), its item prefetched (mc_store_prefetch_item_hot)
 * and looked up (mc_store_read_hot). Called, the lookup filled struct mc_store_read in memory
 * for the caller to read back and cost the warm UDP GET about 10 cycles (docs/PERFORMANCE.md);
 * inline, the fields the caller does not use are never loaded. It brings the store's layout
 * (store_int.h) with it: include it only where that is worth the names it adds (proto.h, for
 * the lone get, and so the dataplane). store.h's functions of the same names without _hot
 * (where there is one) are these, out of line. */
#ifndef MC_STORE_HOT_H
#define MC_STORE_HOT_H

#include "store_int.h"

/* k's partition and buckets worked out and kept in k; its first bucket requested unless
 * !bucket. */
static inline __attribute__((always_inline)) void
st_place(const struct mc_store *s, struct mc_key *k, bool bucket)
{
	const unsigned int part = part_of(s, k->hash);
	k->part = (uint16_t)part;
	k->bkt = bucket_first(s->index[part].nbuckets, k->hash);
	k->placed = MC_KEY_PLACED;
	if (bucket)
		rte_prefetch0(&s->index[part].buckets[k->bkt]);
}

/* ---- the front table (store_int.h has its layout and read protocol) ---- */

static inline __attribute__((always_inline)) struct st_front_set *
front_set(const struct mc_store_front *fr, uint64_t hash)
{
	return (struct st_front_set *)&fr->set[(hash >> 16) & (MC_STORE_FRONT_SETS - 1)];
}

static inline uint32_t
front_tag(uint64_t hash)
{
	return (uint32_t)(hash >> 32) | 1;
}

/* The ways of fs whose tag is t, a bit each. */
static inline __attribute__((always_inline)) uint32_t
front_matches(const struct st_front_set *fs, uint32_t t)
{
#ifdef __SSE2__
	const __m128i v = _mm_load_si128((const __m128i *)(const void *)fs->htag);
	return (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v, _mm_set1_epi32((int)t))));
#else
	uint32_t m = 0;
	unsigned int j;
	for (j = 0; j < 4; j++)
		m |= (uint32_t)(fs->htag[j] == t) << j;
	return m;
#endif
}

/* Whether the table is asked for, and takes, the key of this hash: every key's while at
 * least a quarter of lookups would hit it (MC_FRONT_WARM, MC_FRONT_HOT), else only those of
 * a fixed eighth of all keys (COLD), whose hits show when keys turn hot again. On a cold
 * lookup the table costs a read more, and its lines displace others (docs/PERFORMANCE.md). */
static inline __attribute__((always_inline)) bool
front_sample(uint64_t hash)
{
	return ((hash >> 40) & 7) == 0;
}

static inline __attribute__((always_inline)) bool
front_used(const struct mc_store_front *fr, uint64_t hash)
{
	return fr->mode != MC_FRONT_COLD || front_sample(hash);
}

/* mc_store_front_place, inline, for a key placed with the front table's set requested
 * (mc_store_key_text_hot): its item requested on a match; else, when the text did not request
 * the bucket (bucket: the table's mode is MC_FRONT_HOT), the bucket now. Counted in c. */
static inline __attribute__((always_inline)) void
mc_store_front_ask(const struct mc_store_front *fr, const struct mc_store *s, struct mc_key *k,
		   bool bucket, struct mc_front_count *c)
{
	const struct st_front_set *fs = front_set(fr, k->hash);
	const uint32_t m = front_matches(fs, front_tag(k->hash));
	/* The sampled keys are counted apart except in HOT (bucket), whose decision is all of
	 * them: a constant at each call, so HOT's asks do not work it out. */
	const unsigned int sampled = bucket ? 0 : front_sample(k->hash);
	c->asked++;
	c->sample_asked += sampled;
	if (m != 0) {
		const unsigned int j = (unsigned int)__builtin_ctz(m);
		k->item = fs->it[j];
		k->fcas = fs->cas[j];
		k->way = MC_WAY_FRONT;
		c->hits++;
		c->sample_hits += sampled;
		rte_prefetch0(k->item);
		return;
	}
	k->way = 0;
	if (bucket)
		rte_prefetch0(&s->index[k->part].buckets[k->bkt]);
}

/* After a burst, its asks (c) counted in: the mode for the next ones. The sampled eighth's
 * hits over at least 64 of its lookups (counted in COLD and WARM) choose between COLD and the
 * others; once every key uses the table, seven hits in eight over at least 256 lookups make
 * them request no bucket with the key (HOT: a bucket requested is one not read, and on a host
 * that maps memory in 4 KiB pages its page walk is most of a warm GET's memory cost), and
 * fewer bring them back to WARM. A page re-carved since the last burst (the store's
 * carve_epoch moved) empties the table first. */
static inline void
mc_store_front_burst(struct mc_store_front *fr, const struct mc_store *s,
		     const struct mc_front_count *c)
{
	const uint32_t epoch = __atomic_load_n(&s->carve_epoch, __ATOMIC_ACQUIRE);
	if (unlikely(epoch != fr->epoch)) {
		/* A page was re-carved: no way may be trusted (struct mc_store_front). */
		memset(fr->set, 0, sizeof(fr->set));
		fr->epoch = epoch;
	}
	fr->asked += c->asked;
	fr->hits += c->hits;
	fr->sample_asked += c->sample_asked;
	fr->sample_hits += c->sample_hits;
	if (fr->sample_asked >= 64) {
		if ((uint64_t)fr->sample_hits * 4 < fr->sample_asked)
			fr->mode = MC_FRONT_COLD;
		else if (fr->mode == MC_FRONT_COLD) {
			fr->mode = MC_FRONT_WARM;
			fr->asked = fr->hits = 0; /* all keys' from now */
		}
		fr->sample_asked = fr->sample_hits = 0;
	}
	if (fr->asked >= 256) {
		if (fr->mode != MC_FRONT_COLD)
			fr->mode = (uint64_t)fr->hits * 8 >= (uint64_t)fr->asked * 7 ? MC_FRONT_HOT
										  : MC_FRONT_WARM;
		fr->asked = fr->hits = 0;
	}
}

/* A hit found through the index, taken into the table: in the way that has its tag already,
 * else an empty one, else the next of a count of the table's takes. Not a way the item picks
 * (its CAS's low bits, as before): two hot keys of a set that picked the same way took it from
 * each other for good, while the ways a scan of cold keys had filled stayed (after the
 * bench's 1M-key case, a quarter of the 10,000 warm keys' lookups missed the table). */
static inline __attribute__((always_inline)) void
front_take(struct mc_store_front *fr, const struct mc_key *k, const struct mc_store_read *r)
{
	struct st_front_set *fs = front_set(fr, k->hash);
	const uint32_t t = front_tag(k->hash);
	uint32_t m = front_matches(fs, t);
	unsigned int j;
	if (m == 0)
		m = front_matches(fs, 0);
	j = m != 0 ? (unsigned int)__builtin_ctz(m) : fr->takes++ & 3;
	fs->htag[j] = t;
	fs->cas[j] = (uint32_t)r->cas;
	fs->it[j] = r->it;
}

/* k (its hash set) placed, and the front table fr's set requested when k uses it (then k's
 * way is MC_WAY_ASK: mc_store_front_ask reads the set once it is in), with the bucket unless
 * the table answers nearly every lookup; else (or with no table) the bucket. */
static inline __attribute__((always_inline)) void
st_place_front(const struct mc_store *s, struct mc_key *k, const struct mc_store_front *fr)
{
	if (fr == NULL || !front_used(fr, k->hash)) {
		k->way = 0;
		st_place(s, k, true);
		return;
	}
	k->way = MC_WAY_ASK;
	st_place(s, k, fr->mode != MC_FRONT_HOT);
	k->placed = MC_KEY_PLACED | MC_KEY_ASKED;
	rte_prefetch0(front_set(fr, k->hash));
}

/* mc_key_init and mc_store_prefetch for a key the text protocols delimit, in one pass over
 * its bytes: false (k not set) when one of the len bytes is at or below ' ' (a space or
 * control byte would have ended it: then it is not the key). Sets k->sum too. */
static inline __attribute__((always_inline)) bool
mc_store_key_text_hot(const struct mc_store *s, struct mc_key *k, const void *p, uint32_t len,
		      const struct mc_store_front *fr)
{
	uint64_t low, sum;
	const uint64_t h = hash_words(s->seed, p, len, &low, &sum);
	if (low != 0)
		return false;
	k->p = p;
	k->len = len;
	k->hash = h;
	k->sum = (sum & 0xffffffffu) + (sum >> 32); /* 2^32 is 1 modulo 0xffff */
	st_place_front(s, k, fr);
	return true;
}

/* mc_key_init and mc_store_prefetch in one call, with the front table fr (may be NULL) as
 * mc_store_key_text_hot has it: for the first key of any other request. */
static inline __attribute__((always_inline)) void
mc_store_key_hot(const struct mc_store *s, struct mc_key *k, const void *p, uint32_t len,
		 const struct mc_store_front *fr)
{
	k->p = p;
	k->len = len;
	k->hash = hash_words(s->seed, p, len, NULL, NULL);
	st_place_front(s, k, fr);
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
	uint32_t m;
	if (k->way == MC_WAY_FRONT) {
		/* The front table's item (its first line requested as the table was asked). */
		const struct mc_item *it = k->item;
		later[0] = (const uint8_t *)it + 64;
		later[1] = (const void *)((uintptr_t)p->use +
					  (((uintptr_t)it - (uintptr_t)p->pages) >> UNIT_SHIFT));
		return;
	}
	m = tag_matches(b, tag_of(k->hash));
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

/* What item it, found under the version *ver read as v, is for k: a bucket's (its slot read at
 * that version) or, for the front table's item, the item's own (item_cas_word). An item of
 * another key there, or a stale one's bytes, fail the key compare. *ep must stay e as well:
 * the bucket's version again, or for the front table's item the store's carve epoch. */
enum st_probe { PROBE_OTHER, PROBE_HIT, PROBE_DEAD, PROBE_CHANGED };

static inline __attribute__((always_inline)) enum st_probe
st_probe_at(struct mc_store_ctx *cx, const struct part *p, const volatile uint32_t *ver,
	    uint32_t v, const volatile uint32_t *ep, uint32_t e, const struct mc_item *it,
	    const struct mc_key *k, struct mc_store_read *r)
{
	const struct mc_store *s = cx->s;
	uint32_t klen, vlen;
	ptrdiff_t u;
	int dead;
	klen = mc_item_klen(it);
	if (klen != k->len || !key_bytes_eq(it->data, k->p, klen))
		return PROBE_OTHER;
	vlen = mc_item_vlen(it);
	/* A racing writer may have changed the item: keep reads inside the partition. */
	u = unit_of(p, it);
	if (u < 0 || (const uint8_t *)it->data + klen + vlen > p->base + p->len)
		return PROBE_CHANGED;
	r->it = it;
	r->ver = ver;
	r->v = v;
	r->ep = ep;
	r->e = e;
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

/* What slot entry e of bucket b (read at version v) holds for k (tag: k's). */
static inline __attribute__((always_inline)) enum st_probe
st_probe(struct mc_store_ctx *cx, const struct part *p, const struct bucket *b, uint32_t v,
	 uint64_t e, uint16_t tag, const struct mc_key *k, struct mc_store_read *r)
{
	if (e == 0 || (uint16_t)(e >> 48) != tag)
		return PROBE_OTHER;
	return st_probe_at(cx, p, &b->ver, v, &b->ver, v, item_at(p, e), k, r);
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

/* mc_store_read_begin, inline. The front table's item (k->way MC_WAY_FRONT) is tried first,
 * checked by its CAS; else the slot and item the item prefetch matched (k->way 1..SLOTS,
 * k->item), and on a hit there is no scan of the buckets; else both are scanned
 * (st_read_scan). A hit through the index goes into the reader's front table. */
static inline __attribute__((always_inline)) enum mc_store_status
mc_store_read_hot(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	const struct part *p;
	uint32_t bi[2];
	if (k->way == MC_WAY_FRONT) {
		const struct mc_item *it = (const struct mc_item *)k->item;
		const volatile uint32_t *cw = item_cas_word(it);
		const uint32_t c = __atomic_load_n(cw, __ATOMIC_ACQUIRE);
		p = cx->s->parts[k->part];
		/* The CAS it had when the table took it, and still in the index: the item
		 * lives, unchanged since (the protocol in store_int.h); and, checked with the
		 * copy, no page re-carved since the table's ways were taken, which could have
		 * put a client's bytes where the item was. */
		if (likely(c == k->fcas &&
			   (__atomic_load_n(&it->state, __ATOMIC_RELAXED) &
			    (MC_IT_LINKED | MC_IT_ZOMBIE)) == MC_IT_LINKED)) {
			switch (st_probe_at(cx, p, cw, c, &cx->s->carve_epoch, cx->front->epoch, it,
					    k, r)) {
			case PROBE_HIT: return MC_OK;
			case PROBE_DEAD: return MC_MISS;
			case PROBE_CHANGED: cx->st.read_retries++; break;
			default: break;
			}
		}
		/* Replaced, deleted or changed since: the index knows. */
	} else if (likely(k->way != 0 && k->way <= SLOTS)) {
		const struct bucket *b = k->bucket;
		const uint32_t vb = __atomic_load_n(&b->ver, __ATOMIC_ACQUIRE);
		const uint64_t e = __atomic_load_n(&b->slot[(size_t)k->way - 1], __ATOMIC_RELAXED);
		p = cx->s->parts[k->part];
		/* The item the prefetch found, while the slot still holds it: its reads start
		 * without waiting for the bucket's. */
		if (likely((vb & 1) == 0 && item_at(p, e) == k->item)) {
			switch (st_probe_at(cx, p, &b->ver, vb, &b->ver, vb,
					    (const struct mc_item *)k->item, k, r)) {
			case PROBE_HIT: goto hit;
			case PROBE_DEAD: return MC_MISS;
			case PROBE_CHANGED: cx->st.read_retries++; break;
			default: break; /* moved, replaced or a tag collision: look properly */
			}
		}
	}
	p = cx->s->parts[key_place(cx->s, k, bi)];
	if (st_read_scan(cx, k, p, bi, r) != MC_OK)
		return MC_MISS;
hit:
	if ((k->placed & MC_KEY_ASKED) && cx->front != NULL)
		front_take(cx->front, k, r);
	return MC_OK;
}

#endif
