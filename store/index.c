/* The index: the keyed hash, partitions, buckets of seven tagged slots with two-choice
 * placement and a one-step cuckoo move, and the prefetches of the burst pipeline. */
#include "hot.h"

uint64_t
mc_store_hash(const struct mc_store *s, const void *key, uint32_t len)
{
	return hash_keyed(s->seed, key, len);
}

unsigned int
mc_store_nparts(const struct mc_store *s)
{
	return s->nparts;
}

unsigned int
mc_store_part_of(const struct mc_store *s, uint64_t hash)
{
	return part_of(s, hash);
}

void
mc_store_prefetch(const struct mc_store *s, struct mc_key *k)
{
	st_place(s, k, true);
}

void
mc_store_prefetch_item(const struct mc_store *s, struct mc_key *k)
{
	const void *later[2];
	if (!k->placed)
		st_place(s, k, true);
	mc_store_prefetch_item_hot(s, k, later);
	rte_prefetch0(later[0]);
	rte_prefetch0(later[1]);
}

void
mc_store_front_place(const struct mc_store_ctx *cx, struct mc_key *k)
{
	if (!k->placed)
		st_place(cx->s, k, false);
	if (cx->front != NULL) {
		struct mc_front_count c = {0, 0, 0, 0};
		k->placed |= MC_KEY_ASKED;
		mc_store_front_ask(cx->front, cx->s, k, false, &c);
		mc_store_front_burst(cx->front, cx->s, &c);
	} else {
		k->way = 0;
	}
}

/* Find the slot holding key k; returns the item (live or not) or NULL. */
struct mc_item *
st_index_find(struct part *p, const struct mc_key *k, struct bucket **bo, unsigned int *so)
{
	uint32_t bi[2];
	uint16_t tag = tag_of(k->hash);
	unsigned int j, i;
	buckets_of(p, k->hash, &bi[0], &bi[1]);
	for (j = 0; j < 2; j++) {
		struct bucket *b = &p->buckets[bi[j]];
		for (i = 0; i < SLOTS; i++) {
			uint64_t e = b->slot[i];
			if (e != 0 && (uint16_t)(e >> 48) == tag && key_eq(item_at(p, e), k)) {
				*bo = b;
				*so = i;
				return item_at(p, e);
			}
		}
	}
	return NULL;
}

/* Find the slot of a linked item by pointer. */
bool
st_index_find_item(struct part *p, const struct mc_item *it, struct bucket **bo, unsigned int *so)
{
	uint64_t h = hash_keyed(p->seed, it->data, mc_item_klen(it));
	uint32_t bi[2];
	uint64_t want = slot_for(p, it, tag_of(h));
	unsigned int j, i;
	buckets_of(p, h, &bi[0], &bi[1]);
	for (j = 0; j < 2; j++) {
		struct bucket *b = &p->buckets[bi[j]];
		for (i = 0; i < SLOTS; i++) {
			if (b->slot[i] == want) {
				*bo = b;
				*so = i;
				return true;
			}
		}
	}
	return false;
}

/* A key goes to its second bucket only when its first has fewer free slots than this and
 * the second has more. Filled to where slab memory runs out (86% of the slots with the
 * smallest items), the index evicts as rarely as with the emptier of the two every time. */
#define FIRST_SPARE 3

/* Put new item `it` in the index: in old's slot when replacing, else a free slot of the two
 * buckets (the first preferred), else in place of a victim from the first bucket (counted as
 * an eviction). The item whose slot it takes is retired first; the caller drops it. */
void
st_index_link(struct part *p, struct mc_item *it, const struct mc_key *k, struct bucket *ob,
	   unsigned int os)
{
	uint16_t tag = tag_of(k->hash);
	uint64_t e = slot_for(p, it, tag);
	uint32_t bi[2];
	unsigned int j, i;
	__atomic_store_n(&it->state, MC_IT_LINKED, __ATOMIC_RELAXED);
	__atomic_store_n(use_of(p, it), 0, __ATOMIC_RELAXED);
	p->st.curr_items++;
	p->st.total_items++;
	p->st.bytes += item_bytes(it);
	if (ob != NULL) {
		st_item_retire(item_at(p, ob->slot[os])); /* the old item, leaving */
		bucket_write_begin(ob);
		ob->slot[os] = e;
		bucket_write_end(ob);
		race_point(MC_RACE_LEFT_INDEX);
		return;
	}
	buckets_of(p, k->hash, &bi[0], &bi[1]);
	{
		/* The first bucket while it has room to spare, so that a lookup finds nearly
		 * every key in the one bucket the burst prefetches (mc_store_prefetch_item);
		 * then the emptier of the two, which keeps the load even as the index fills. */
		unsigned int fi[2] = {SLOTS, SLOTS}, nfree[2] = {0, 0};
		for (j = 0; j < 2; j++) {
			const struct bucket *b = &p->buckets[bi[j]];
			for (i = 0; i < SLOTS; i++) {
				if (b->slot[i] == 0) {
					if (fi[j] == SLOTS)
						fi[j] = i;
					nfree[j]++;
				}
			}
		}
		j = nfree[0] >= FIRST_SPARE || nfree[0] >= nfree[1] ? 0 : 1;
		if (nfree[j] != 0) {
			struct bucket *b = &p->buckets[bi[j]];
			bucket_write_begin(b);
			b->slot[fi[j]] = e;
			bucket_write_end(b);
			return;
		}
	}
	/* Both buckets full: move one resident to its other bucket if that has room (added there
	 * before it leaves here, so readers never miss it), then take its slot. */
	for (j = 0; j < 2; j++) {
		struct bucket *b = &p->buckets[bi[j]];
		for (i = 0; i < SLOTS; i++) {
			const struct mc_item *r = item_at(p, b->slot[i]);
			uint64_t h = hash_keyed(p->seed, r->data, mc_item_klen(r));
			uint32_t a1, a2, alt;
			unsigned int x;
			buckets_of(p, h, &a1, &a2);
			alt = a1 == bi[j] ? a2 : a1;
			for (x = 0; x < SLOTS; x++) {
				struct bucket *ab = &p->buckets[alt];
				if (ab->slot[x] != 0)
					continue;
				bucket_write_begin(ab);
				ab->slot[x] = b->slot[i];
				bucket_write_end(ab);
				bucket_write_begin(b);
				b->slot[i] = e;
				bucket_write_end(b);
				return;
			}
		}
	}
	/* Still full: evict the first unreferenced entry of the first bucket (slot 0
	 * if all are referenced: it then lives on as a zombie until released). */
	{
		struct bucket *b = &p->buckets[bi[0]];
		unsigned int vs = 0;
		struct mc_item *victim;
		for (i = 0; i < SLOTS; i++) {
			if (!referenced(p, item_at(p, b->slot[i]))) {
				vs = i;
				break;
			}
		}
		victim = item_at(p, b->slot[vs]);
		st_item_retire(victim);
		bucket_write_begin(b);
		b->slot[vs] = e;
		bucket_write_end(b);
		race_point(MC_RACE_LEFT_INDEX);
		p->st.index_evictions++;
		p->st.evictions++;
		p->cls[victim->cls].evictions++;
		st_item_drop(p, victim);
	}
}
