/* The store's lifecycle: layout of the memory, the clock, expiry rules, the sweep and the
 * statistics. See store.h for the interface and docs/DESIGN.md ("Store") for the design. */
#include "store_int.h"

#include <time.h>
#include <sys/random.h>

void (*mc_store_race_hook)(enum mc_store_race where, void *arg);
void *mc_store_race_arg;

uint32_t
st_clamp_rel(int64_t rel)
{
	if (rel < 2)
		rel = 2;
	if (rel > UINT32_MAX - MC_REALTIME_MAXDELTA)
		rel = UINT32_MAX - MC_REALTIME_MAXDELTA;
	return (uint32_t)rel;
}

void
mc_store_clock_set(struct mc_store *s, int64_t unix_now)
{
	__atomic_store_n(&s->now, st_clamp_rel(unix_now - s->started), __ATOMIC_RELEASE);
	__atomic_store_n(&s->wall_base, s->started, __ATOMIC_RELEASE);
}

void
mc_store_clock_tick(struct mc_store *s, uint64_t mono_secs, int64_t unix_now)
{
	uint32_t rel = st_clamp_rel((int64_t)s->clock_base +
				    (int64_t)RTE_MIN(mono_secs, (uint64_t)UINT32_MAX));
	uint32_t cur = __atomic_load_n(&s->now, __ATOMIC_ACQUIRE);
	/* Several lcores tick the same clock: it only moves forward. */
	while (rel > cur && !__atomic_compare_exchange_n(&s->now, &cur, rel, false,
							 __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
		;
	if (rel >= cur)
		__atomic_store_n(&s->wall_base, unix_now - (int64_t)rel, __ATOMIC_RELEASE);
}

uint32_t
mc_store_now(const struct mc_store *s)
{
	return __atomic_load_n(&s->now, __ATOMIC_ACQUIRE);
}

int64_t
mc_store_started(const struct mc_store *s)
{
	return s->started;
}

uint32_t
mc_store_realtime(const struct mc_store *s, int64_t exptime)
{
	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1; /* memcached: already expired */
	if (exptime > MC_REALTIME_MAXDELTA) {
		/* An absolute time means the wall clock's reading, whatever it did since start. */
		const int64_t base = __atomic_load_n(&s->wall_base, __ATOMIC_ACQUIRE);
		if (exptime <= base)
			return 1;
		if (exptime - base > UINT32_MAX)
			return UINT32_MAX;
		return (uint32_t)(exptime - base);
	}
	return (uint32_t)(exptime + mc_store_now(s));
}

bool
mc_store_too_large(const struct mc_store *s, uint32_t klen, uint32_t vlen)
{
	/* memcached's accounting: 48-byte item + 8 CAS + key + NUL + value + CRLF. */
	uint64_t mc_total = 48 + 8 + (uint64_t)klen + 1 + vlen + 2;
	return mc_total > s->max_item_size || MC_ITEM_HDR + (uint64_t)klen + vlen > s->max_item_size;
}

struct mc_store *
mc_store_create(void *mem, size_t len, const struct mc_store_settings *set)
{
	struct mc_store *s = mem;
	uint8_t *cur;
	size_t part_len;
	unsigned int i, c;
	double sz;

	if (set->nparts == 0 || set->nparts > MC_STORE_MAX_PARTS || set->factor < 1.01 ||
	    set->max_item_size < 1024 || set->max_item_size >= (1u << 24))
		return NULL;
	if (((uintptr_t)mem & 63) != 0 || len < sizeof(*s) + 64)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->nparts = set->nparts;
	if (set->hash_seed[0] == 0 && set->hash_seed[1] == 0) {
		if (getrandom(s->seed, sizeof(s->seed), 0) != (ssize_t)sizeof(s->seed))
			return NULL;
	} else {
		s->seed[0] = set->hash_seed[0];
		s->seed[1] = set->hash_seed[1];
	}
	s->max_item_size = set->max_item_size;
	s->mem_len = len;
	/* memcached's process_started: two seconds and one update interval in the past, so
	 * relative time starts at 62 and exptime 1 is already over. */
	s->started = (set->unix_now ? set->unix_now : (int64_t)time(NULL)) - 62;
	s->now = 62;
	s->clock_base = 62;
	s->wall_base = s->started;
	s->factor = set->factor;
	s->chunk_min = set->chunk_min ? set->chunk_min : 48;

	/* Slab classes: header + chunk_min first, growing by factor, the last = max item size. */
	sz = MC_ITEM_HDR + s->chunk_min;
	for (c = 0; c < MC_STORE_MAX_CLASSES - 1; c++) {
		uint32_t size = RTE_ALIGN_CEIL((uint32_t)sz, 8);
		if (c > 0 && size <= s->class_size[c - 1])
			size = s->class_size[c - 1] + 8;
		if (size >= set->max_item_size)
			break;
		s->class_size[c] = size;
		sz = size * set->factor;
	}
	s->class_size[c++] = RTE_ALIGN_CEIL(set->max_item_size, 8);
	s->nclasses = c;

	cur = (uint8_t *)mem + RTE_ALIGN_CEIL(sizeof(*s), 64);
	part_len = ((uint8_t *)mem + len - cur) / s->nparts;
	part_len &= ~(size_t)63;
	for (i = 0; i < s->nparts; i++) {
		struct part *p = (struct part *)cur;
		uint8_t *end = cur + part_len;
		size_t rest;
		memset(p, 0, sizeof(*p));
		rte_spinlock_init(&p->lock);
		p->idx = i;
		p->seed[0] = s->seed[0];
		p->seed[1] = s->seed[1];
		p->next_cas = i + 1;
		p->base = cur;
		p->len = part_len;
		cur += RTE_ALIGN_CEIL(sizeof(*p), 64);
		/* Index: about one eighth of the partition, so a full store of the smallest items
		 * fills its two-choice buckets to under 90%. */
		p->nbuckets = (uint32_t)RTE_MAX(part_len / (sizeof(struct bucket) * 8), (size_t)2);
		p->buckets = (struct bucket *)cur;
		s->index[i].buckets = p->buckets;
		s->index[i].nbuckets = p->nbuckets;
		memset(p->buckets, 0, (size_t)p->nbuckets * sizeof(struct bucket));
		cur += (size_t)p->nbuckets * sizeof(struct bucket);
		s->index_bytes += (size_t)p->nbuckets * sizeof(struct bucket);
		rest = end > cur + GUARD ? (size_t)(end - cur - GUARD) : 0;
		/* Pages, their next links, and the per-unit counters and use bits. */
		p->npages = (uint32_t)(rest / (MC_PAGE_SIZE + sizeof(uint32_t) + 2 * UNITS_PER_PAGE + 128));
		p->page_next = (uint32_t *)cur;
		cur += RTE_ALIGN_CEIL(p->npages * sizeof(uint32_t), 64);
		p->refs = cur;
		cur += RTE_ALIGN_CEIL((size_t)p->npages * UNITS_PER_PAGE, 64);
		p->use = cur;
		cur += RTE_ALIGN_CEIL((size_t)p->npages * UNITS_PER_PAGE, 64);
		memset(p->refs, 0, (size_t)(cur - p->refs));
		p->pages = (uint8_t *)RTE_PTR_ALIGN_CEIL(cur, 64);
		if (p->pages + (size_t)p->npages * MC_PAGE_SIZE > end - GUARD && p->npages > 0)
			p->npages--;
		if (p->npages == 0)
			return NULL;
		for (c = 0; c < s->nclasses; c++) {
			struct slabclass *sc = &p->cls[c];
			sc->size = s->class_size[c];
			sc->slab_pages = (sc->size + MC_PAGE_SIZE - 1) / MC_PAGE_SIZE;
			sc->perslab = sc->slab_pages * MC_PAGE_SIZE / sc->size;
			sc->head = sc->tail = NO_PAGE;
			sc->hand_page = sc->sweep_page = NO_PAGE;
		}
		s->parts[i] = p;
		cur = end;
	}
	return s;
}

void
mc_store_destroy(struct mc_store *s)
{
	(void)s;
}

unsigned int
mc_store_sweep(struct mc_store *s, unsigned int pi, unsigned int budget)
{
	struct part *p = s->parts[pi];
	unsigned int visited = 0, tries;
	if (!rte_spinlock_trylock(&p->lock))
		return 0;
	flush_capture(s, p);
	const unsigned int per_class = budget / s->nclasses + 16;
	for (tries = 0; tries < s->nclasses && visited < budget; tries++) {
		struct slabclass *c = &p->cls[p->sweep_cls];
		uint64_t n = RTE_MIN(c->nslabs * c->perslab, (uint64_t)per_class);
		while (n-- && visited < budget) {
			struct mc_item *it = st_hand_next(p, c, &c->sweep_page, &c->sweep_idx);
			uint8_t st;
			int dead;
			if (it == NULL)
				break;
			visited++;
			st = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
			if (st & MC_IT_LINKED) {
				dead = item_dead(s, p, it->cas, it->exptime);
				if (dead)
					st_item_reclaim(p, it, dead);
			} else if ((st & MC_IT_ZOMBIE) && !referenced(p, it)) {
				p->st.zombies--;
				st_item_release(p, it);
			}
		}
		p->sweep_cls = (p->sweep_cls + 1) % s->nclasses;
	}
	rte_spinlock_unlock(&p->lock);
	return visited;
}

void
mc_store_part_stats(const struct mc_store *s, struct mc_store_part_stats *sum)
{
	unsigned int i;
	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < s->nparts; i++) {
#define X(n) sum->n += s->parts[i]->st.n;
		MC_STORE_PART_COUNTERS(X)
#undef X
	}
}

unsigned int
mc_store_nclasses(const struct mc_store *s)
{
	return s->nclasses;
}

void
mc_store_class_stats(const struct mc_store *s, unsigned int cls, struct mc_store_class_info *ci)
{
	unsigned int i;
	memset(ci, 0, sizeof(*ci));
	if (cls >= s->nclasses)
		return;
	ci->chunk_size = s->class_size[cls];
	ci->per_slab = s->parts[0]->cls[cls].perslab;
	for (i = 0; i < s->nparts; i++) {
		const struct slabclass *c = &s->parts[i]->cls[cls];
		ci->slabs += c->nslabs;
		ci->used_chunks += c->used;
		ci->free_chunks += c->nfree + c->carve_left;
		ci->evictions += c->evictions;
	}
}

size_t
mc_store_limit_bytes(const struct mc_store *s)
{
	return s->mem_len;
}

size_t
mc_store_index_bytes(const struct mc_store *s)
{
	return s->index_bytes;
}

uint32_t
mc_store_max_item_size(const struct mc_store *s)
{
	return s->max_item_size;
}
