/* Readers: lock-free lookups under the bucket versions, references for zero-copy replies,
 * and the use bits, all without writing item memory (store_int.h has the protocol). */
#include "store_int.h"

/* What slot entry e of bucket b (read at version v) holds for k. */
enum probe { PROBE_OTHER, PROBE_HIT, PROBE_DEAD, PROBE_CHANGED };

static inline __attribute__((always_inline)) enum probe
probe(struct mc_store_ctx *cx, const struct part *p, const struct bucket *b, uint32_t v,
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

enum mc_store_status
mc_store_read_begin(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	const struct part *p;
	uint16_t tag = tag_of(k->hash);
	uint32_t bi[2], v[2], m;
	unsigned int j;

	key_place(cx->s, k, &p, bi);
	if (likely(k->way != 0)) {
		/* The slot the item prefetch matched: on a hit, no scan of the buckets. */
		const unsigned int w = k->way - 1u;
		const struct bucket *b = &p->buckets[bi[w >> 3]];
		const uint32_t vb = __atomic_load_n(&b->ver, __ATOMIC_ACQUIRE);
		if (likely((vb & 1) == 0)) {
			switch (probe(cx, p, b, vb, __atomic_load_n(&b->slot[w & 7], __ATOMIC_RELAXED),
				      tag, k, r)) {
			case PROBE_HIT: return MC_OK;
			case PROBE_DEAD: return MC_MISS;
			case PROBE_CHANGED: cx->st.read_retries++; break;
			default: break; /* moved, replaced or a tag collision: look properly */
			}
		}
	}
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
			switch (probe(cx, p, b, v[j],
				      __atomic_load_n(&b->slot[__builtin_ctz(m)], __ATOMIC_RELAXED), tag,
				      k, r)) {
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

uint8_t *
mc_store_read_ref(const struct mc_store_read *r)
{
	/* Count first, then check the version (both seq_cst); writers unlink or publish an odd
	 * version first, then read the count. Either they see this reference or this check sees
	 * their change. Checked before adding, so at most one transient add per thread passes
	 * REF_MAX and the 8-bit count never wraps. */
	if (__atomic_load_n(r->ref, __ATOMIC_RELAXED) >= REF_MAX)
		return NULL;
	__atomic_fetch_add(r->ref, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(r->ver, __ATOMIC_SEQ_CST) != r->v) {
		__atomic_fetch_sub(r->ref, 1, __ATOMIC_SEQ_CST);
		return NULL;
	}
	return r->ref;
}

void
mc_store_ref_put(uint8_t *ref)
{
	__atomic_fetch_sub(ref, 1, __ATOMIC_RELEASE);
}

enum mc_store_status
mc_store_get(struct mc_store_ctx *cx, const struct mc_key *k, void *buf, size_t cap,
	     uint32_t *vlen, uint32_t *flags, uint64_t *cas)
{
	struct mc_store_read r;
	for (;;) {
		cx->st.cmd_get++;
		if (mc_store_read_begin(cx, k, &r) != MC_OK) {
			cx->st.get_misses++;
			return MC_MISS;
		}
		memcpy(buf, r.value, r.vlen < cap ? r.vlen : cap);
		if (mc_store_read_check(&r))
			break;
		cx->st.cmd_get--;
		cx->st.read_retries++;
	}
	cx->st.get_hits++;
	mc_store_read_touch(&r);
	*vlen = r.vlen;
	if (flags)
		*flags = r.flags;
	if (cas)
		*cas = r.cas;
	return MC_OK;
}
