/* Introspection: a lock-free walk over the index for lru_crawler metadump (store.h). Read-only:
 * it takes no lock and writes nothing, reading each bucket under its version as the readers of
 * read.c do (store_int.h has the protocol). */
#include "store_int.h"

#define WALK_BUCKETS 256 /* buckets a call looks at, at most */

_Static_assert(MC_STORE_WALK_MIN >= SLOTS, "one bucket fits in a walk's room");

/* Copy the live items of bucket b into out (room for SLOTS). Returns the count, or -1 when a
 * writer changed the bucket meanwhile (read it again). */
static int
walk_bucket(const struct mc_store *s, const struct part *p, const struct bucket *b,
	    struct mc_store_meta *out)
{
	const uint32_t v = __atomic_load_n(&b->ver, __ATOMIC_ACQUIRE);
	unsigned int i;
	int n = 0;
	if (v & 1)
		return -1;
	for (i = 0; i < SLOTS; i++) {
		const uint64_t e = __atomic_load_n(&b->slot[i], __ATOMIC_RELAXED);
		const struct mc_item *it;
		struct mc_store_meta *m = &out[n];
		ptrdiff_t u;
		if (e == 0)
			continue;
		it = item_at(p, e);
		u = unit_of(p, it);
		/* A torn read may point anywhere in the partition: stay inside the pages (a key
		 * read past the last one stays inside GUARD). */
		if (u < 0)
			return -1;
		m->klen = mc_item_klen(it);
		m->vlen = mc_item_vlen(it);
		m->flags = it->flags;
		m->exptime = it->exptime;
		m->cas = it->cas;
		m->cls = it->cls;
		m->key_binary = (__atomic_load_n(&it->state, __ATOMIC_RELAXED) & MC_IT_KEYBIN) != 0;
		m->fetched = (__atomic_load_n(p->use + u, __ATOMIC_RELAXED) & USE_SEEN) != 0;
		if (m->klen > MC_KEY_MAX)
			return -1;
		memcpy(m->key, it->data, m->klen);
		if (item_dead(s, p, m->cas, m->exptime) == 0)
			n++;
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&b->ver, __ATOMIC_RELAXED) != v)
		return -1;
	return n;
}

unsigned int
mc_store_walk(const struct mc_store *s, uint64_t *cursor, struct mc_store_meta *out,
	      unsigned int max)
{
	unsigned int pi = (unsigned int)(*cursor >> 32), n = 0, looked = 0;
	uint32_t bi = (uint32_t)*cursor;
	if (*cursor == MC_STORE_WALK_DONE)
		return 0;
	while (pi < s->nparts && looked < WALK_BUCKETS && n + SLOTS <= max) {
		const struct part *p = s->parts[pi];
		int got;
		if (bi >= p->nbuckets) {
			pi++;
			bi = 0;
			continue;
		}
		while ((got = walk_bucket(s, p, &p->buckets[bi], out + n)) < 0)
			rte_pause();
		n += (unsigned int)got;
		bi++;
		looked++;
	}
	*cursor = pi >= s->nparts ? MC_STORE_WALK_DONE : (uint64_t)pi << 32 | bi;
	return n;
}
