/* Writers: set/add/replace/append/prepend/cas, delete, touch, incr/decr, meta's get-time
 * preparation and invalidation, flush_all. Each holds its partition's lock throughout. */
#include "store_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* The ones'-complement sum of bytes a (alen of them, summing to sa) followed by bytes summing
 * to sb: sb's bytes start at an odd offset when alen is odd. */
static inline uint16_t
sum_join(uint16_t sa, uint32_t alen, uint16_t sb)
{
	uint32_t s = (uint32_t)sa + ((alen & 1) ? rte_bswap16(sb) : sb);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)((s & 0xffff) + (s >> 16));
}

/* Writer lookup of a live item; an expired or flushed one found on the way is reclaimed. */
static struct mc_item *
find_live(const struct mc_store *s, struct part *p, const struct mc_key *k, struct bucket **b,
	  unsigned int *slot)
{
	struct mc_item *it = st_index_find(p, k, b, slot);
	int dead;
	if (it == NULL)
		return NULL;
	dead = item_dead(s, p, it->cas, it->exptime);
	if (dead) {
		st_item_reclaim(p, it, dead);
		*b = NULL;
		return NULL;
	}
	return it;
}

enum mc_store_status
mc_store_store(struct mc_store_ctx *cx, const struct mc_key *k, const struct mc_store_args *a,
	       uint64_t *cas_out)
{
	const enum mc_store_mode mode = a->mode;
	const uint64_t cas_in = a->cas_in;
	const uint8_t *val = a->val;
	const uint32_t vlen = a->vlen;
	bool stale = false;
	const struct mc_store *s = cx->s;
	struct part *p;
	struct mc_item *old, *it;
	struct bucket *ob = NULL;
	unsigned int os = 0;
	uint32_t total_v = vlen;
	enum mc_store_status rc = MC_STORED;

	cx->st.cmd_set++;
	p = part_lock(cx, k);
	old = find_live(s, p, k, &ob, &os);
	if (mode == MC_CAS) {
		if (old == NULL) {
			cx->st.cas_misses++;
			rc = MC_MISS;
			goto out;
		}
		if (old->cas != cas_in) {
			if (!a->stale_ok || cas_in >= old->cas) {
				cx->st.cas_badval++;
				rc = MC_EXISTS;
				goto out;
			}
			stale = true; /* meta I: keep it, marked stale */
		}
		cx->st.cas_hits++;
	} else if (cas_in != 0 && old != NULL && old->cas != cas_in) {
		rc = MC_EXISTS;
		goto out;
	} else if (cas_in != 0 && old == NULL && mode != MC_ADD && mode != MC_SET) {
		rc = MC_MISS;
		goto out;
	}
	if (mode == MC_ADD && old != NULL) {
		/* memcached bumps the existing item on a failed add. */
		__atomic_fetch_or(use_of(p, old), USE_HOT, __ATOMIC_RELAXED);
		rc = MC_NOT_STORED;
		goto out;
	}
	if ((mode == MC_REPLACE || mode == MC_APPEND || mode == MC_PREPEND) && old == NULL) {
		rc = MC_NOT_STORED;
		goto out;
	}
	if (mode == MC_APPEND || mode == MC_PREPEND) {
		total_v += mc_item_vlen(old);
		/* memcached: the joined item cannot be allocated, so NOT_STORED; the old stays. */
		if (mc_store_too_large(s, k->len, total_v)) {
			rc = MC_NOT_STORED;
			goto out;
		}
	}
	if (mc_store_too_large(s, k->len, total_v)) {
		rc = MC_TOO_LARGE;
		goto fail;
	}
	pin(p, old);
	it = st_item_alloc(s, p, MC_ITEM_HDR + k->len + total_v);
	unpin(p, old);
	race_point(MC_RACE_STORE_ALLOC);
	if (it == NULL) {
		rc = MC_NO_MEMORY;
		goto fail;
	}
	/* The allocation may have evicted neighbours, and the old item may have expired or been
	 * flushed meanwhile: look it up again. A mode that needs it finds it gone. */
	old = find_live(s, p, k, &ob, &os);
	if (old == NULL && mode != MC_SET && mode != MC_ADD) {
		st_item_release(p, it);
		rc = MC_NOT_STORED;
		if (mode == MC_CAS) {
			cx->st.cas_hits--;
			cx->st.cas_misses++;
			rc = MC_MISS;
		}
		goto out;
	}
	it->cas = next_cas(s, p);
	it->vk = total_v << 8 | k->len;
	memcpy(it->data, k->p, k->len);
	if (mode == MC_APPEND) {
		it->exptime = old->exptime;
		it->flags = old->flags;
		memcpy(it->data + k->len, mc_item_value(old), mc_item_vlen(old));
		memcpy(it->data + k->len + mc_item_vlen(old), val, vlen);
	} else if (mode == MC_PREPEND) {
		it->exptime = old->exptime;
		it->flags = old->flags;
		memcpy(it->data + k->len, val, vlen);
		memcpy(it->data + k->len + vlen, mc_item_value(old), mc_item_vlen(old));
	} else {
		it->exptime = stale ? old->exptime : a->exptime;
		it->flags = a->flags;
		memcpy(it->data + k->len, val, vlen);
	}
	/* The sum of a joined value from the parts' sums: what it adds is summed, not all of
	 * it again. */
	if (total_v > MC_VSUM_MAX)
		it->vsum = 0; /* not kept: no reply adds it */
	else if (mode == MC_APPEND)
		it->vsum = sum_join(old->vsum, mc_item_vlen(old), rte_raw_cksum(val, vlen));
	else if (mode == MC_PREPEND)
		it->vsum = sum_join(rte_raw_cksum(val, vlen), vlen, old->vsum);
	else
		it->vsum = rte_raw_cksum(it->data + k->len, total_v);
	st_index_link(p, it, k, old ? ob : NULL, os);
	if (stale)
		__atomic_fetch_or(&it->state, MC_IT_STALE | (old->state & MC_IT_TOKEN),
				  __ATOMIC_RELAXED);
	if (a->key_binary)
		__atomic_fetch_or(&it->state, MC_IT_KEYBIN, __ATOMIC_RELAXED);
	if (old != NULL)
		st_item_drop(p, old);
	if (cas_out)
		*cas_out = it->cas;
	goto out;
fail:
	/* memcached drops the old value when a set fails, so stale data does not linger. */
	if (mode == MC_SET && old != NULL) {
		old = find_live(s, p, k, &ob, &os);
		if (old)
			st_item_unlink(p, old);
	}
out:
	rte_spinlock_unlock(&p->lock);
	return rc;
}

enum mc_store_status
mc_store_delete(struct mc_store_ctx *cx, const struct mc_key *k, uint64_t cas_in)
{
	struct part *p = part_lock(cx, k);
	struct bucket *b;
	unsigned int i;
	struct mc_item *it = find_live(cx->s, p, k, &b, &i);
	enum mc_store_status rc;
	if (it == NULL) {
		cx->st.delete_misses++;
		rc = MC_MISS;
	} else if (cas_in != 0 && it->cas != cas_in) {
		rc = MC_EXISTS;
	} else {
		cx->st.delete_hits++;
		st_item_unlink(p, it);
		rc = MC_DELETED;
	}
	rte_spinlock_unlock(&p->lock);
	return rc;
}

enum mc_store_status
mc_store_touch(struct mc_store_ctx *cx, const struct mc_key *k, uint32_t exptime)
{
	struct part *p = part_lock(cx, k);
	struct bucket *b;
	unsigned int i;
	struct mc_item *it = find_live(cx->s, p, k, &b, &i);
	enum mc_store_status rc = MC_MISS;
	cx->st.cmd_touch++;
	if (it != NULL) {
		bucket_write_begin(b);
		it->exptime = exptime;
		bucket_write_end(b);
		__atomic_fetch_or(use_of(p, it), USE_HOT, __ATOMIC_RELAXED);
		cx->st.touch_hits++;
		rc = MC_TOUCHED;
	} else {
		cx->st.touch_misses++;
	}
	rte_spinlock_unlock(&p->lock);
	return rc;
}

/* memcached's safe_strtoull (util.c) over p[0..len) as the C string memcached sees: strtoull's
 * rules, no digits or ERANGE fail, a space or the end must follow, and a negative number is
 * refused rather than wrapped. The one number parser: proto's token rules call it too. */
bool
mc_store_strtoull(const uint8_t *p, size_t len, uint64_t *out)
{
	char buf[512], *end;
	unsigned long long ull;
	size_t skip = 0, n;
	bool cut;
	/* strtoull skips leading white space itself; skipped here too, so that a long run of it
	 * cannot push the number out of the copy. A value may be longer than the copy (an incr
	 * on a space-padded number): then the byte after the copy decides, as memcached, which
	 * parses the value in place, would see it. */
	while (skip < len && isspace(p[skip]))
		skip++;
	n = len - skip;
	cut = n >= sizeof(buf);
	if (cut)
		n = sizeof(buf) - 1;
	memcpy(buf, p + skip, n);
	buf[n] = '\0';
	errno = 0;
	ull = strtoull(buf, &end, 10);
	if (errno == ERANGE || end == buf)
		return false;
	if (*end == '\0' && cut) {
		if (!isspace(p[skip + n]))
			return false;
	} else if (!isspace((unsigned char)*end) && *end != '\0') {
		return false;
	}
	if ((long long)ull < 0 && memchr(p, '-', len) != NULL)
		return false;
	*out = ull;
	return true;
}

enum mc_store_status
mc_store_delta(struct mc_store_ctx *cx, const struct mc_key *k, const struct mc_delta_args *a,
	       uint64_t *value, uint64_t *cas_out)
{
	const struct mc_store *s = cx->s;
	struct part *p = part_lock(cx, k);
	struct bucket *b;
	unsigned int i;
	struct mc_item *it = find_live(s, p, k, &b, &i);
	enum mc_store_status rc = MC_OK;
	uint64_t v;
	char buf[24];
	int res;
	bool in_place = false;
	uint64_t old_cas;

	if (it == NULL) {
		if (a->incr)
			cx->st.incr_misses++;
		else
			cx->st.decr_misses++;
		if (!a->create) {
			rc = MC_MISS;
			goto out;
		}
		v = a->initial;
		res = snprintf(buf, sizeof(buf), "%" PRIu64, v);
		it = st_item_new(s, p, k, buf, (uint32_t)res, a->flags, a->exptime);
		if (it == NULL) {
			rc = MC_NO_MEMORY;
			goto out;
		}
		st_index_link(p, it, k, NULL, 0);
		*value = v;
		if (cas_out)
			*cas_out = it->cas;
		rc = MC_STORED;
		goto out;
	}
	if (a->cas_in != 0 && it->cas != a->cas_in) {
		rc = MC_EXISTS;
		goto out;
	}
	if (mc_item_vlen(it) == 0 || !mc_store_strtoull(mc_item_value(it), mc_item_vlen(it), &v)) {
		rc = MC_NON_NUMERIC;
		goto out;
	}
	if (a->incr) {
		v += a->delta;
		cx->st.incr_hits++;
	} else {
		v = v < a->delta ? 0 : v - a->delta;
		cx->st.decr_hits++;
	}
	res = snprintf(buf, sizeof(buf), "%" PRIu64, v);
	if ((uint32_t)res <= mc_item_vlen(it)) {
		/* In place, padded with spaces, new CAS: exactly memcached's behaviour, unless a
		 * reply in flight references the value. The odd version is published before the
		 * references are read (the order st_item_release relies on): a reader that takes one
		 * later fails its version check; one that took it earlier shows here. */
		race_point(MC_RACE_DELTA_INPLACE);
		bucket_write_begin(b);
		/* The new CAS before the references are read, as the odd version: a front-table
		 * reader's reference shows here, or its check sees the new CAS. Put back if the
		 * value cannot change here after all. */
		old_cas = it->cas;
		st_item_cas_change(it, next_cas(s, p));
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!referenced(p, it)) {
			memcpy((uint8_t *)mc_item_value(it), buf, (size_t)res);
			memset((uint8_t *)mc_item_value(it) + res, ' ', mc_item_vlen(it) - (uint32_t)res);
			if (mc_item_vlen(it) <= MC_VSUM_MAX)
				it->vsum = rte_raw_cksum(mc_item_value(it), mc_item_vlen(it));
			in_place = true;
		} else {
			st_item_cas_change(it, old_cas);
		}
		bucket_write_end(b);
	}
	if (!in_place) {
		struct mc_item *nit;
		const uint32_t fl = it->flags, ex = it->exptime;
		pin(p, it);
		nit = st_item_new(s, p, k, buf, (uint32_t)res, fl, ex);
		unpin(p, it);
		if (nit == NULL) {
			rc = MC_NO_MEMORY;
			goto out;
		}
		it = find_live(s, p, k, &b, &i);
		st_index_link(p, nit, k, it ? b : NULL, i);
		if (it != NULL)
			st_item_drop(p, it);
		it = nit;
	}
	*value = v;
	if (cas_out)
		*cas_out = it->cas;
out:
	rte_spinlock_unlock(&p->lock);
	return rc;
}

enum mc_store_status
mc_store_meta_prep(struct mc_store_ctx *cx, const struct mc_key *k, const struct mc_meta_args *a,
		   struct mc_meta_res *res)
{
	const struct mc_store *s = cx->s;
	struct part *p = part_lock(cx, k);
	struct bucket *b;
	unsigned int i;
	struct mc_item *it = find_live(s, p, k, &b, &i);
	enum mc_store_status rc = MC_OK;
	uint8_t st;

	memset(res, 0, sizeof(*res));
	if (it == NULL) {
		if (!a->vivify) {
			rc = MC_MISS;
			goto out;
		}
		it = st_item_new(s, p, k, NULL, 0, 0, a->viv_exptime);
		if (it == NULL) {
			rc = MC_NO_MEMORY;
			goto out;
		}
		st_index_link(p, it, k, NULL, 0);
		__atomic_fetch_or(&it->state, MC_IT_TOKEN, __ATOMIC_RELAXED);
		res->created = true;
		res->won = true;
		goto out;
	}
	st = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
	if (a->set_ttl) {
		bucket_write_begin(b);
		it->exptime = a->ttl;
		bucket_write_end(b);
	}
	if (a->recache && !(st & MC_IT_TOKEN) && it->exptime != 0 && it->exptime < a->recache_time)
		res->won = true;
	res->token = (st & MC_IT_TOKEN) != 0;
	res->stale = (st & MC_IT_STALE) != 0;
	if (res->stale && !res->token)
		res->won = true;
	if (res->won)
		__atomic_fetch_or(&it->state, MC_IT_TOKEN, __ATOMIC_RELAXED);
out:
	rte_spinlock_unlock(&p->lock);
	return rc;
}

enum mc_store_status
mc_store_invalidate(struct mc_store_ctx *cx, const struct mc_key *k, uint64_t cas_in,
		    bool set_ttl, uint32_t ttl)
{
	struct part *p = part_lock(cx, k);
	struct bucket *b;
	unsigned int i;
	struct mc_item *it = find_live(cx->s, p, k, &b, &i);
	enum mc_store_status rc = MC_DELETED;
	if (it == NULL) {
		rc = MC_MISS;
	} else if (cas_in != 0 && it->cas != cas_in) {
		rc = MC_EXISTS;
	} else {
		bucket_write_begin(b);
		st_item_cas_change(it, next_cas(cx->s, p));
		if (set_ttl)
			it->exptime = ttl;
		bucket_write_end(b);
		__atomic_fetch_or(&it->state, MC_IT_STALE, __ATOMIC_RELAXED);
		__atomic_fetch_and(&it->state, (uint8_t)~MC_IT_TOKEN, __ATOMIC_RELAXED);
	}
	rte_spinlock_unlock(&p->lock);
	return rc;
}

void
mc_store_flush(struct mc_store *s, uint32_t delay)
{
	unsigned int i;
	for (i = 0; i < s->nparts; i++) {
		struct part *p = s->parts[i];
		rte_spinlock_lock(&p->lock);
		if (delay == 0) {
			__atomic_store_n(&p->flush_cas, p->next_cas, __ATOMIC_RELEASE);
			__atomic_store_n(&p->flush_pending, 0, __ATOMIC_RELEASE);
		} else {
			flush_capture(s, p);
			p->flush_deadline = mc_store_now(s) + delay;
			__atomic_store_n(&p->flush_pending, 1, __ATOMIC_RELEASE);
		}
		rte_spinlock_unlock(&p->lock);
	}
}
