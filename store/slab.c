/* Slabs and eviction: 1 MiB pages carved into chunks per class, free lists, CLOCK eviction
 * over slab positions, page moves between classes (memcached's slab_reassign), and how an
 * item leaves: dropped from the accounting, reclaimed when dead, evicted when live. */
#include "store_int.h"

/* An item no longer in the index (retired before it left: st_item_retire), out of the
 * accounting, then freed (or a zombie). */
void
st_item_drop(struct part *p, struct mc_item *it)
{
	p->st.curr_items--;
	p->st.bytes -= item_bytes(it);
	st_item_release(p, it);
}

/* Remove a linked item from the index and the accounting; free it or leave it a zombie. */
void
st_item_unlink(struct part *p, struct mc_item *it)
{
	struct bucket *b;
	unsigned int i;
	st_item_retire(it);
	if (st_index_find_item(p, it, &b, &i)) {
		bucket_write_begin(b);
		b->slot[i] = 0;
		bucket_write_end(b);
		race_point(MC_RACE_LEFT_INDEX);
	}
	st_item_drop(p, it);
}

/* Unlink an expired (dead == 1) or flushed (2) item that a writer, the CLOCK hand or the sweep
 * came across. */
void
st_item_reclaim(struct part *p, struct mc_item *it, int dead)
{
	p->st.reclaimed++;
	if (dead == 1 && !item_seen(p, it))
		p->st.expired_unfetched++;
	st_item_unlink(p, it);
}

/* Unlink a live item to make room in class c. */
static void
item_evict(struct part *p, struct slabclass *c, struct mc_item *it)
{
	p->st.evictions++;
	c->evictions++;
	if (!item_seen(p, it))
		p->st.evicted_unfetched++;
	st_item_unlink(p, it);
}

/* The item is out of the index: free it, unless a reader still holds it. */
void
st_item_release(struct part *p, struct mc_item *it)
{
	struct slabclass *c = &p->cls[it->cls];
	/* Pairs with the reader's reference increment then version check (both seq_cst). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (referenced(p, it)) {
		__atomic_store_n(&it->state, MC_IT_ZOMBIE, __ATOMIC_RELAXED);
		p->st.zombies++;
		return;
	}
	__atomic_store_n(&it->state, 0, __ATOMIC_RELAXED);
	memcpy(it->data, &c->free, sizeof(c->free));
	c->free = it;
	c->nfree++;
	c->used--;
}

static bool
slab_grow(struct part *p, struct slabclass *c)
{
	uint32_t first;
	if (p->pages_used + c->slab_pages > p->npages)
		return false;
	first = p->pages_used;
	p->pages_used += c->slab_pages;
	p->page_next[first] = NO_PAGE;
	if (c->tail == NO_PAGE)
		c->head = first;
	else
		p->page_next[c->tail] = first;
	c->tail = first;
	c->carve_left = c->perslab;
	c->nslabs++;
	p->st.slab_pages += c->slab_pages;
	return true;
}

/* Advance a hand over the carved chunks of a class; NULL when the class has none. */
struct mc_item *
st_hand_next(const struct part *p, const struct slabclass *c, uint32_t *page, uint32_t *idx)
{
	uint32_t carved;
	if (c->head == NO_PAGE)
		return NULL;
	if (*page == NO_PAGE) {
		*page = c->head;
		*idx = 0;
	}
	carved = *page == c->tail ? c->perslab - c->carve_left : c->perslab;
	if (*idx >= carved) {
		*page = p->page_next[*page] == NO_PAGE ? c->head : p->page_next[*page];
		*idx = 0;
		carved = *page == c->tail ? c->perslab - c->carve_left : c->perslab;
		if (carved == 0)
			return NULL;
	}
	return chunk_at(p, c, *page, (*idx)++);
}

/* Reclaim one chunk of class c: expired or flushed first, then CLOCK's second chance. */
static struct mc_item *
clock_evict(const struct mc_store *s, struct part *p, struct slabclass *c)
{
	uint64_t limit = 2 * c->nslabs * c->perslab + 2;
	while (limit--) {
		struct mc_item *it = st_hand_next(p, c, &c->hand_page, &c->hand_idx);
		uint8_t st;
		if (it == NULL)
			return NULL;
		st = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
		if (st & MC_IT_LINKED) {
			int dead = item_dead(s, p, it->cas, it->exptime);
			uint8_t *use = use_of(p, it);
			const uint8_t u = __atomic_load_n(use, __ATOMIC_RELAXED);
			if (referenced(p, it))
				continue;
			if (!dead && (u & USE_HOT)) {
				__atomic_fetch_and(use, (uint8_t)~USE_HOT, __ATOMIC_RELAXED);
				continue;
			}
			if (dead)
				st_item_reclaim(p, it, dead);
			else
				item_evict(p, c, it);
			if (c->free == it) { /* freed: take it back off the list */
				memcpy(&c->free, it->data, sizeof(c->free));
				c->nfree--;
				c->used++;
				return it;
			}
		} else if ((st & MC_IT_ZOMBIE) && !referenced(p, it)) {
			p->st.zombies--;
			__atomic_store_n(&it->state, 0, __ATOMIC_RELAXED);
			return it;
		}
	}
	return NULL;
}

/* Page reassignment (memcached's slab_reassign): move a page of the class holding the most
 * pages to class dst, which has nothing to give. The oldest page no reply references is taken
 * (a reference lives until the NIC frees its mbuf, which may be long on a quiet queue, and a
 * writer's pin is one too); its items are evicted, and only then are its reference counts read
 * again (seq_cst, after the unlinks' version bumps), so a reader that took one just before its
 * item went is seen, and one that comes after fails its version check and drops it. Then the
 * page stays where it is (its chunks are free for the victim class) and the next attempt
 * passes it by. Returns true when dst got a page to carve. */
static bool
page_referenced(const struct part *p, const struct slabclass *v, uint32_t page)
{
	const uint8_t *r = p->refs + (size_t)page * UNITS_PER_PAGE;
	uint32_t i;
	for (i = 0; i < v->slab_pages * UNITS_PER_PAGE; i++)
		if (__atomic_load_n(&r[i], __ATOMIC_SEQ_CST) != 0)
			return true;
	return false;
}

#define STEAL_TRIES 8 /* pages of the victim class looked at for one without references */

static bool
page_steal(const struct mc_store *s, struct part *p, struct slabclass *dst)
{
	struct slabclass *v = NULL;
	unsigned int c, tries;
	uint32_t page, prev = NO_PAGE, i;
	for (c = 0; c < s->nclasses; c++) {
		struct slabclass *k = &p->cls[c];
		if (k != dst && k->slab_pages == dst->slab_pages && k->nslabs >= 2 &&
		    (v == NULL || k->nslabs > v->nslabs))
			v = k;
	}
	if (v == NULL)
		return false;
	/* The oldest page that is wholly carved and that no reply references. */
	for (page = v->head, tries = 0; page != NO_PAGE && tries < STEAL_TRIES;
	     prev = page, page = p->page_next[page], tries++) {
		if ((page == v->tail && v->carve_left > 0) || page_referenced(p, v, page))
			continue;
		break;
	}
	if (page == NO_PAGE || tries == STEAL_TRIES)
		return false;
	race_point(MC_RACE_STEAL);
	for (i = 0; i < v->perslab; i++) {
		struct mc_item *it = chunk_at(p, v, page, i);
		uint8_t st = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
		if (st & MC_IT_LINKED) {
			item_evict(p, v, it);
		} else if ((st & MC_IT_ZOMBIE) && !referenced(p, it)) {
			p->st.zombies--;
			st_item_release(p, it);
		}
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (page_referenced(p, v, page))
		return false;
	/* Zombies whose last reference went during the loop above: settled with the page. */
	for (i = 0; i < v->perslab; i++) {
		struct mc_item *it = chunk_at(p, v, page, i);
		if (__atomic_load_n(&it->state, __ATOMIC_RELAXED) & MC_IT_ZOMBIE) {
			__atomic_store_n(&it->state, 0, __ATOMIC_RELAXED);
			p->st.zombies--;
			v->used--;
		}
	}
	/* Every chunk of the page is free now: take them off the victim's free list. */
	{
		const uint8_t *lo = p->pages + (size_t)page * MC_PAGE_SIZE;
		const uint8_t *hi = lo + (size_t)v->slab_pages * MC_PAGE_SIZE;
		struct mc_item **link = &v->free;
		while (*link != NULL) {
			struct mc_item *it = *link;
			if ((const uint8_t *)it >= lo && (const uint8_t *)it < hi) {
				memcpy(link, it->data, sizeof(*link));
				v->nfree--;
			} else {
				link = (struct mc_item **)(void *)it->data;
			}
		}
	}
	/* Out of the victim's list (the tail, when taken, was wholly carved). */
	if (prev == NO_PAGE)
		v->head = p->page_next[page];
	else
		p->page_next[prev] = p->page_next[page];
	if (v->tail == page)
		v->tail = prev;
	v->nslabs--;
	if (v->hand_page == page)
		v->hand_page = NO_PAGE;
	if (v->sweep_page == page)
		v->sweep_page = NO_PAGE;
	p->st.slab_pages -= v->slab_pages;
	p->st.slabs_moved++;
	/* Before anything is carved from it: every front table's ways, some of which may point
	 * into this page, stop holding (mc_store_read_check, mc_store_front_burst). The store's
	 * one counter: other partitions' page moves add to it under their own locks. */
	__atomic_fetch_add((uint32_t *)(uintptr_t)&s->carve_epoch, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	/* Hand it to dst as a fresh slab. */
	p->page_next[page] = NO_PAGE;
	if (dst->tail == NO_PAGE)
		dst->head = page;
	else
		p->page_next[dst->tail] = page;
	dst->tail = page;
	dst->carve_left = dst->perslab;
	dst->nslabs++;
	p->st.slab_pages += dst->slab_pages;
	return true;
}

struct mc_item *
st_item_alloc(const struct mc_store *s, struct part *p, uint32_t total)
{
	unsigned int ci = class_for(s, total);
	struct slabclass *c;
	struct mc_item *it;
	if (ci >= s->nclasses)
		return NULL;
	c = &p->cls[ci];
	if (c->free != NULL) {
		it = c->free;
		memcpy(&c->free, it->data, sizeof(c->free));
		c->nfree--;
		c->used++;
	} else if (c->carve_left > 0 || slab_grow(p, c)) {
		it = chunk_at(p, c, c->tail, c->perslab - c->carve_left);
		c->carve_left--;
		c->used++;
	} else {
		it = clock_evict(s, p, c);
		if (it == NULL && page_steal(s, p, c)) {
			it = chunk_at(p, c, c->tail, 0);
			c->carve_left--;
			c->used++;
		}
		if (it == NULL) {
			p->st.outofmemory++;
			return NULL;
		}
	}
	it->cls = (uint8_t)ci;
	return it;
}

/* Allocate and fill a new item (not yet linked): fresh CAS, key, value. */
struct mc_item *
st_item_new(const struct mc_store *s, struct part *p, const struct mc_key *k, const void *val,
	 uint32_t vlen, uint32_t flags, uint32_t exptime)
{
	struct mc_item *it = st_item_alloc(s, p, MC_ITEM_HDR + k->len + vlen);
	if (it == NULL)
		return NULL;
	it->cas = next_cas(s, p);
	it->vk = vlen << 8 | k->len;
	it->exptime = exptime;
	it->flags = flags;
	memcpy(it->data, k->p, k->len);
	if (vlen)
		memcpy(it->data + k->len, val, vlen);
	it->vsum = vlen <= MC_VSUM_MAX ? rte_raw_cksum(it->data + k->len, vlen) : 0;
	return it;
}
