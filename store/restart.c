/* Warm restart: the metadata a clean stop writes beside the store's memory, and the reattach
 * that checks it, moves the store's pointers to where the memory is mapped now and lets the
 * clock and CAS go on. See store.h for the interface and docs/DESIGN.md ("Warm restart").
 *
 * The store holds absolute pointers in its control structures (partitions, their arrays,
 * free lists threaded through free chunks); index slots are offsets already. Rather than turn
 * the hot pointers into offsets (an add on every lookup), a reattach adds the distance
 * between the old and new mapping to each, once: a few dozen per partition, plus one per free
 * chunk. */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>

#define META_MAGIC "mcboxWR"

/* The metadata block (MC_STORE_META_SIZE bytes, the head of the file). `sum` covers the block
 * up to itself; `ctl_sum` the store's control structures (struct mc_store and every struct
 * part: slab classes, free list heads, counters), as the stop left them. */
struct meta {
	char magic[8];
	uint32_t version;       /* MC_STORE_FORMAT */
	uint32_t clean;         /* 1: written by a clean stop, and nothing has run since */
	/* What shapes the memory: any difference means a cold start. */
	uint64_t mem_len;
	uint32_t nparts;
	uint32_t max_item_size;
	double factor;
	uint32_t chunk_min;
	uint32_t nclasses;
	uint32_t layout[4];     /* this build's structure sizes */
	/* The state at the stop. */
	uint64_t base;          /* where the store was mapped */
	uint64_t seed[2];
	uint32_t now;           /* store-relative clock */
	uint32_t pad;
	int64_t wall;           /* wall clock */
	uint64_t next_cas[MC_STORE_MAX_PARTS];
	uint64_t items;
	uint32_t ctl_sum;
	uint32_t sum;
};

_Static_assert(sizeof(struct meta) <= MC_STORE_META_SIZE, "metadata outgrew its block");

static void
layout_of(uint32_t layout[4])
{
	layout[0] = (uint32_t)sizeof(struct mc_store);
	layout[1] = (uint32_t)sizeof(struct part);
	layout[2] = MC_PAGE_SIZE;
	layout[3] = MC_ITEM_HDR << 16 | UNIT_SHIFT << 8 | SLOTS;
}

static uint32_t
meta_sum(const struct meta *m)
{
	return rte_hash_crc(m, offsetof(struct meta, sum), 0x6d63626f);
}

/* The control structures of a store laid out at s (pointers as they are now). */
static uint32_t
ctl_sum(const struct mc_store *s, const uintptr_t part_at[MC_STORE_MAX_PARTS])
{
	uint32_t c = rte_hash_crc(s, sizeof(*s), 0x6374726c);
	unsigned int i;
	for (i = 0; i < s->nparts; i++)
		c = rte_hash_crc((const void *)part_at[i], sizeof(struct part), c);
	return c;
}

/* Unclean, whatever it held: from now on the memory may change. */
static void
meta_mark_unclean(struct meta *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->magic, META_MAGIC, sizeof(m->magic));
	m->version = MC_STORE_FORMAT;
	m->sum = meta_sum(m);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Every carved chunk of class c in partition p, by f. */
static void
for_each_chunk(struct part *p, struct slabclass *c, void (*f)(struct part *, struct mc_item *))
{
	uint32_t page, i, carved;
	for (page = c->head; page != NO_PAGE; page = p->page_next[page]) {
		carved = page == c->tail ? c->perslab - c->carve_left : c->perslab;
		for (i = 0; i < carved; i++)
			f(p, chunk_at(p, c, page, i));
	}
}

static void
free_zombie(struct part *p, struct mc_item *it)
{
	if (__atomic_load_n(&it->state, __ATOMIC_RELAXED) & MC_IT_ZOMBIE) {
		p->st.zombies--;
		st_item_release(p, it);
	}
}

uint64_t
mc_store_save(struct mc_store *s, void *meta, int64_t unix_now)
{
	struct meta *m = meta;
	uintptr_t part_at[MC_STORE_MAX_PARTS];
	uint64_t held = 0;
	unsigned int i, c;
	size_t u;

	meta_mark_unclean(m);
	for (i = 0; i < s->nparts; i++) {
		struct part *p = s->parts[i];
		const size_t units = (size_t)p->npages * UNITS_PER_PAGE;
		part_at[i] = (uintptr_t)p;
		flush_capture(s, p);
		/* No holder is left: a count here was leaked. The next process has none. */
		for (u = 0; u < units; u++)
			held += p->refs[u];
		memset(p->refs, 0, units);
		if (p->st.zombies != 0)
			for (c = 0; c < s->nclasses; c++)
				for_each_chunk(p, &p->cls[c], free_zombie);
		m->next_cas[i] = p->next_cas;
		m->items += p->st.curr_items;
	}
	m->mem_len = s->mem_len;
	m->nparts = s->nparts;
	m->max_item_size = s->max_item_size;
	m->factor = s->factor;
	m->chunk_min = s->chunk_min;
	m->nclasses = s->nclasses;
	layout_of(m->layout);
	m->base = (uintptr_t)s;
	m->seed[0] = s->seed[0];
	m->seed[1] = s->seed[1];
	m->now = mc_store_now(s);
	m->wall = unix_now;
	m->ctl_sum = ctl_sum(s, part_at);
	/* Clean last, and the checksum over it. */
	m->clean = 1;
	m->sum = meta_sum(m);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return held;
}

/* Why the saved store cannot be used with these settings, or NULL. */
static const char *
mismatch(const struct meta *m, size_t len, const struct mc_store_settings *set, char *why,
	 size_t whylen)
{
	const uint32_t chunk_min = set->chunk_min ? set->chunk_min : 48;
	uint32_t layout[4];
	if (m->mem_len != len)
		snprintf(why, whylen, "-m changed (saved %" PRIu64 " MiB, now %zu MiB)",
			 m->mem_len >> 20, len >> 20);
	else if (m->max_item_size != set->max_item_size)
		snprintf(why, whylen, "-I changed (saved %u bytes, now %u)", m->max_item_size,
			 set->max_item_size);
	else if (memcmp(&m->factor, &set->factor, sizeof(m->factor)) != 0)
		snprintf(why, whylen, "-f changed (saved %g, now %g)", m->factor, set->factor);
	else if (m->nparts != set->nparts)
		snprintf(why, whylen, "partitions changed (saved %u, now %u: ports x --queues)",
			 m->nparts, set->nparts);
	else if (m->chunk_min != chunk_min)
		snprintf(why, whylen, "smallest chunk changed (saved %u, now %u)", m->chunk_min,
			 chunk_min);
	else if (layout_of(layout), memcmp(layout, m->layout, sizeof(layout)) != 0)
		snprintf(why, whylen, "saved by a build with another store layout");
	else
		return NULL;
	return why;
}

/* Add delta to a pointer that must land in [lo, hi); false if it does not. */
static bool
move_ptr(void *pp, uintptr_t delta, const void *lo, const void *hi)
{
	uintptr_t v;
	memcpy(&v, pp, sizeof(v));
	v += delta;
	memcpy(pp, &v, sizeof(v));
	return v >= (uintptr_t)lo && v < (uintptr_t)hi;
}

/* Move partition p's pointers by delta; false if any lands outside the store. */
static bool
rebase_part(struct part *p, uintptr_t delta, const uint8_t *lo, const uint8_t *hi)
{
	const uint8_t *pages_end;
	unsigned int c;
	if (!move_ptr(&p->base, delta, lo, hi) || !move_ptr(&p->buckets, delta, lo, hi) ||
	    !move_ptr(&p->page_next, delta, lo, hi) || !move_ptr(&p->refs, delta, lo, hi) ||
	    !move_ptr(&p->use, delta, lo, hi) || !move_ptr(&p->pages, delta, lo, hi))
		return false;
	pages_end = p->pages + (size_t)p->npages * MC_PAGE_SIZE;
	if (p->base != (const uint8_t *)p || pages_end > hi || p->pages_used > p->npages)
		return false;
	rte_spinlock_init(&p->lock);
	for (c = 0; c < MC_STORE_MAX_CLASSES; c++) {
		struct mc_item **link = &p->cls[c].free;
		uint64_t n = 0;
		while (*link != NULL) {
			if (n++ == p->cls[c].nfree ||
			    !move_ptr(link, delta, p->pages, pages_end - MC_ITEM_HDR))
				return false;
			link = (struct mc_item **)(void *)(*link)->data;
		}
		if (n != p->cls[c].nfree)
			return false;
	}
	return true;
}

struct mc_store *
mc_store_attach(void *mem, size_t len, void *meta, const struct mc_store_settings *set,
		int64_t unix_now, int64_t *down_secs, char *why, size_t whylen)
{
	struct meta m;
	struct mc_store *s = mem;
	uintptr_t part_at[MC_STORE_MAX_PARTS] = {0}, delta;
	const uint8_t *lo = mem, *hi = (const uint8_t *)mem + len;
	int64_t down;
	uint32_t base;
	unsigned int i;

	memcpy(&m, meta, sizeof(m));
	/* From here on the memory may change: unclean until the next clean stop. */
	meta_mark_unclean(meta);
	if (memcmp(m.magic, META_MAGIC, sizeof(m.magic)) != 0) {
		snprintf(why, whylen, "no saved cache in the file");
		return NULL;
	}
	if (m.version != MC_STORE_FORMAT) {
		snprintf(why, whylen, "saved in format version %u, this build reads %u", m.version,
			 MC_STORE_FORMAT);
		return NULL;
	}
	if (m.sum != meta_sum(&m)) {
		snprintf(why, whylen, "metadata checksum mismatch (corrupt)");
		return NULL;
	}
	if (!m.clean) {
		snprintf(why, whylen, "not stopped cleanly (killed or crashed while running)");
		return NULL;
	}
	if (mismatch(&m, len, set, why, whylen) != NULL)
		return NULL;
	if (((uintptr_t)mem & 63) != 0 || len < sizeof(*s) || m.nparts == 0 ||
	    m.nparts > MC_STORE_MAX_PARTS || m.nclasses > MC_STORE_MAX_CLASSES ||
	    s->nparts != m.nparts || s->nclasses != m.nclasses) {
		snprintf(why, whylen, "store header does not match the metadata (corrupt)");
		return NULL;
	}
	/* The control structures as the stop left them, before anything is moved. */
	delta = (uintptr_t)mem - (uintptr_t)m.base;
	for (i = 0; i < s->nparts; i++) {
		part_at[i] = (uintptr_t)s->parts[i] + delta;
		if (part_at[i] < (uintptr_t)lo || part_at[i] + sizeof(struct part) > (uintptr_t)hi) {
			snprintf(why, whylen, "partition %u lies outside the store (corrupt)", i);
			return NULL;
		}
	}
	if (ctl_sum(s, part_at) != m.ctl_sum) {
		snprintf(why, whylen, "store control data checksum mismatch (corrupt)");
		return NULL;
	}
	for (i = 0; i < s->nparts; i++) {
		if (!move_ptr(&s->parts[i], delta, lo, hi) || !rebase_part(s->parts[i], delta, lo, hi)) {
			snprintf(why, whylen, "partition %u's pointers do not fit the store (corrupt)", i);
			return NULL;
		}
		s->parts[i]->seed[0] = m.seed[0];
		s->parts[i]->seed[1] = m.seed[1];
		s->parts[i]->next_cas = m.next_cas[i];
		s->index[i].buckets = s->parts[i]->buckets;
		s->index[i].nbuckets = s->parts[i]->nbuckets;
	}
	s->seed[0] = m.seed[0];
	s->seed[1] = m.seed[1];
	/* The clock goes on where it stopped, moved on by the wall time that passed (none if the
	 * wall clock went back), so a TTL counts the downtime too. */
	down = unix_now > m.wall ? unix_now - m.wall : 0;
	base = st_clamp_rel((int64_t)m.now + down);
	s->clock_base = base;
	s->now = base;
	s->started = unix_now - base;
	s->wall_base = s->started;
	if (down_secs != NULL)
		*down_secs = down;
	return s;
}
