/* Readers: lock-free lookups under the bucket versions (inline in hot.h),
 * references for zero-copy replies, and the use bits, all without writing item memory
 * (store_int.h has the protocol). */
#include "hot.h"

enum mc_store_status
mc_store_read_begin(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	return mc_store_read_hot(cx, k, r);
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
