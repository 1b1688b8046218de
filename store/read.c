/* Readers: lock-free lookups under the bucket versions, references for zero-copy replies,
 * and the use bits, all without writing item memory (store_int.h has the protocol). */
#include "store_int.h"

enum mc_store_status
mc_store_read_begin(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	const struct mc_store *s = cx->s;
	const struct part *p;
	uint16_t tag = tag_of(k->hash);
	uint32_t bi[2], v[2], m;
	unsigned int j;

	key_place(s, k, &p, bi);
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
			uint64_t e = __atomic_load_n(&b->slot[__builtin_ctz(m)], __ATOMIC_RELAXED);
			const struct mc_item *it;
			uint32_t klen, vlen;
			ptrdiff_t u;
			if (e == 0 || (uint16_t)(e >> 48) != tag)
				continue;
			it = item_at(p, e);
			klen = mc_item_klen(it);
			if (klen != k->len || !key_bytes_eq(it->data, k->p, klen))
				continue;
			vlen = mc_item_vlen(it);
			/* A racing writer may have changed the item: keep reads inside the partition. */
			u = unit_of(p, it);
			if (u < 0 || (const uint8_t *)it->data + klen + vlen > p->base + p->len)
				goto changed;
			r->it = it;
			r->ver = &b->ver;
			r->v = v[j];
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
				goto changed;
			if (item_dead(s, p, r->cas, r->exptime)) {
				if (item_dead(s, p, r->cas, r->exptime) == 1)
					cx->st.get_expired++;
				else
					cx->st.get_flushed++;
				return MC_MISS;
			}
			return MC_OK;
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

bool
mc_store_read_check(const struct mc_store_read *r)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(r->ver, __ATOMIC_RELAXED) == r->v;
}

void
mc_store_read_touch(const struct mc_store_read *r)
{
	/* The unit's use bits, never the item: it may be reused by now (see UNIT_SHIFT). */
	if ((__atomic_load_n(r->use, __ATOMIC_RELAXED) & (USE_HOT | USE_SEEN)) != (USE_HOT | USE_SEEN))
		__atomic_fetch_or(r->use, USE_HOT | USE_SEEN, __ATOMIC_RELAXED);
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
