/* The store: see store.h for the interface and docs/DESIGN.md ("Store") for the design. */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <time.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_prefetch.h>
#include <rte_spinlock.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SLOTS 7
#define NO_PAGE UINT32_MAX
#define GUARD 4096          /* readers may read a racy key length past a chunk: stay mapped */

/* What lock-free readers write lives beside the pages, never in item memory: a chunk may be
 * freed and re-carved (even for another class) while a reader still holds its pointer, and a
 * write through it would land in whatever lives there now. Every chunk is at least 72 bytes,
 * so each 64-byte unit of page memory holds the start of at most one chunk; per unit there is
 * a reference count (zero-copy replies in flight) and the use bits (CLOCK, fetched). A stale
 * reader can thus only touch the counters of the unit, which are counters whatever the page
 * holds now: its increment is undone when its version check fails, and use bits are hints. */
#define UNIT_SHIFT 6
#define UNITS_PER_PAGE (MC_PAGE_SIZE >> UNIT_SHIFT)
#define REF_MAX 64          /* readers check before adding: at most one per lcore overshoots */
#define USE_HOT 0x01        /* CLOCK: used since the hand last passed */
#define USE_SEEN 0x02       /* fetched at least once */

/* Index bucket: one cache line, a version counter (odd while a writer changes the bucket or an
 * item linked from it) and 7 slots of tag:16 | item offset in 8-byte units:48; 0 = empty. */
struct bucket {
	uint32_t ver;
	uint32_t pad;
	uint64_t slot[SLOTS];
} __rte_aligned(64);

struct slabclass {
	uint32_t size;        /* chunk size */
	uint32_t perslab;
	uint32_t slab_pages;  /* pages per slab (1 unless chunks are bigger than a page) */
	uint32_t head, tail;  /* slabs of this class, linked through page_next */
	uint32_t carve_left;  /* chunks not yet handed out in the tail slab */
	struct mc_item *free; /* free list; next pointer kept in the chunk's data */
	uint64_t nslabs, used, nfree, evictions;
	uint32_t hand_page, hand_idx;   /* CLOCK hand */
	uint32_t sweep_page, sweep_idx; /* sweeper's hand */
};

struct part {
	rte_spinlock_t lock;
	uint32_t idx;
	uint64_t next_cas;      /* next CAS handed out; steps by nparts */
	uint64_t flush_cas;     /* items with a lower CAS were flushed */
	uint32_t flush_pending; /* a delayed flush_all waits for flush_deadline */
	uint32_t flush_deadline;
	uint8_t *base;          /* offsets in slots are from here */
	size_t len;
	struct bucket *buckets;
	uint32_t nbuckets;
	uint32_t npages, pages_used;
	uint8_t *pages;
	uint32_t *page_next;
	uint8_t *refs;          /* per 64-byte unit of pages: references held */
	uint8_t *use;           /* per 64-byte unit of pages: USE_* bits */
	uint32_t sweep_cls;
	uint64_t seed[2];       /* the store's hash secret, for re-hashing resident keys */
	struct slabclass cls[MC_STORE_MAX_CLASSES];
	struct mc_store_part_stats st;
} __rte_cache_aligned;

struct mc_store {
	unsigned int nparts;
	unsigned int nclasses;
	uint32_t max_item_size;
	uint64_t seed[2];       /* key hash secret */
	volatile uint32_t now;
	int64_t started;        /* memcached's process_started: wall time of relative 0 at start */
	int64_t wall_base;      /* wall time of relative 0 now (moves with the wall clock) */
	size_t mem_len;
	size_t index_bytes;
	uint32_t class_size[MC_STORE_MAX_CLASSES];
	struct part *parts[MC_STORE_MAX_PARTS];
} __rte_cache_aligned;

void (*mc_store_race_hook)(enum mc_store_race where, void *arg);
void *mc_store_race_arg;

static inline void
race_point(enum mc_store_race where)
{
	if (unlikely(mc_store_race_hook != NULL))
		mc_store_race_hook(where, mc_store_race_arg);
}

/* ---- hashing and placement ---- */

/* 64 bits from two independent halves: the hardware CRC32-C (rte_hash_crc_8byte) and a
 * multiply-rotate pass, over the same 8-byte words in one loop, joined by a 64-bit finaliser.
 * CRC alone is linear over GF(2): keys that differ in a few digits get hashes that differ in a
 * few fixed patterns, which clusters buckets, and a second CRC with another seed adds no
 * entropy. Words are loaded with memcpy: keys sit at any alignment in the packet.
 * Keyed against hash flooding: a 128-bit per-boot secret seeds both halves and the join. The
 * multiply chain mixes the secret into every word before the multiply's carries spread it, so
 * which keys collide depends on the secret (CRC's collisions do not, but the join hides them
 * behind the keyed chain). Not a cryptographic PRF; SipHash would cost the GET path 30 to 40
 * cycles a key. */
static inline uint64_t
hash_keyed(const uint64_t seed[2], const void *key, uint32_t len)
{
	const uint8_t *p = key;
	uint64_t m = seed[0] ^ len, w;
	uint32_t n = len, c = (uint32_t)seed[1] ^ len;
	while (n >= 8) {
		memcpy(&w, p, 8);
		c = rte_hash_crc_8byte(w, c);
		m = (m ^ w) * 0xff51afd7ed558ccdull;
		m = (m << 31) | (m >> 33);
		p += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		c = rte_hash_crc_8byte(w, c);
		m = (m ^ w) * 0xff51afd7ed558ccdull;
		m = (m << 31) | (m >> 33);
	}
	m ^= ((uint64_t)c << 32 | c) + seed[1];
	m ^= m >> 33;
	m *= 0xff51afd7ed558ccdull;
	m ^= m >> 33;
	m *= 0xc4ceb9fe1a85ec53ull;
	m ^= m >> 33;
	return m;
}

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
	return (unsigned int)(((uint64_t)(uint32_t)hash * s->nparts) >> 32);
}

static inline uint16_t
tag_of(uint64_t hash)
{
	uint16_t t = (uint16_t)hash;
	return t ? t : 1;
}

static inline void
buckets_of(const struct part *p, uint64_t hash, uint32_t *b1, uint32_t *b2)
{
	uint32_t hi = (uint32_t)(hash >> 32);
	*b1 = (uint32_t)(((uint64_t)hi * p->nbuckets) >> 32);
	*b2 = (uint32_t)(((uint64_t)(hi ^ (tag_of(hash) * 0x9e3779b1u)) * p->nbuckets) >> 32);
	if (*b2 == *b1)
		*b2 = *b1 + 1 == p->nbuckets ? 0 : *b1 + 1;
}

void
mc_store_prefetch(const struct mc_store *s, uint64_t hash)
{
	const struct part *p = s->parts[mc_store_part_of(s, hash)];
	uint32_t b1, b2;
	buckets_of(p, hash, &b1, &b2);
	rte_prefetch0(&p->buckets[b1]);
	rte_prefetch0(&p->buckets[b2]);
}

static inline struct mc_item *
item_at(const struct part *p, uint64_t slot)
{
	return (struct mc_item *)(p->base + ((slot & 0xffffffffffffull) << 3));
}

/* The unit of page memory where it starts (see UNIT_SHIFT), or -1 outside the pages (only a
 * torn read gives such a pointer). */
static inline ptrdiff_t
unit_of(const struct part *p, const void *it)
{
	const uint8_t *a = it;
	if (unlikely(a < p->pages || a >= p->pages + (size_t)p->npages * MC_PAGE_SIZE))
		return -1;
	return (a - p->pages) >> UNIT_SHIFT;
}

static inline uint8_t *
refs_of(const struct part *p, const struct mc_item *it)
{
	return p->refs + unit_of(p, it);
}

static inline uint8_t *
use_of(const struct part *p, const struct mc_item *it)
{
	return p->use + unit_of(p, it);
}

/* Writers: is it referenced? seq_cst, and after the writer's unlink or odd version is
 * visible, so a reader either shows here or fails its version check (see mc_store_read_ref). */
static inline bool
referenced(const struct part *p, const struct mc_item *it)
{
	return __atomic_load_n(refs_of(p, it), __ATOMIC_SEQ_CST) != 0;
}

/* The slots of b whose tag is tag, as bits 0..SLOTS-1. A filter only: the caller loads each
 * candidate slot again and the bucket version tells whether the bucket changed meanwhile.
 * With SSE2, one 16-bit compare per lane over the whole line: tags are each slot's top 16
 * bits, lane 3 of its 64-bit word (word 0 is the version). */
static inline uint32_t
tag_matches(const struct bucket *b, uint16_t tag)
{
#ifdef __SSE2__
	const __m128i t = _mm_set1_epi16((short)tag);
	const __m128i *v = (const __m128i *)(const void *)b;
	uint64_t m = (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(v), t)) |
		     (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(v + 1), t)) << 16 |
		     (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(v + 2), t)) << 32 |
		     (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(v + 3), t)) << 48;
	/* Bit 8w+7 says word w matched. Gather words 1..7 into bits 0..6 with one multiply:
	 * bit 8w lands on 56 + w - 1 from the term 2^(55-7w), and no two terms meet. */
	m = (m >> 7) & 0x0101010101010100ull;
	return (uint32_t)((m * 0x0001020408102040ull) >> 56) & 0x7f;
#else
	uint32_t m = 0;
	unsigned int i;
	for (i = 0; i < SLOTS; i++)
		if ((uint16_t)(__atomic_load_n(&b->slot[i], __ATOMIC_RELAXED) >> 48) == tag)
			m |= 1u << i;
	return m;
#endif
}

void
mc_store_prefetch_item(const struct mc_store *s, uint64_t hash)
{
	const struct part *p = s->parts[mc_store_part_of(s, hash)];
	const uint16_t tag = tag_of(hash);
	uint32_t bi[2];
	unsigned int j;
	buckets_of(p, hash, &bi[0], &bi[1]);
	for (j = 0; j < 2; j++) {
		const struct bucket *b = &p->buckets[bi[j]];
		uint32_t m = tag_matches(b, tag);
		while (m != 0) {
			/* Writers store whole slots, so even a stale one holds an offset inside the
			 * partition; header and key share the item's first line. */
			rte_prefetch0(item_at(p, __atomic_load_n(&b->slot[__builtin_ctz(m)],
								 __ATOMIC_RELAXED)));
			m &= m - 1;
		}
	}
}

static inline uint64_t
slot_for(const struct part *p, const struct mc_item *it, uint16_t tag)
{
	return (uint64_t)tag << 48 | (uint64_t)(((const uint8_t *)it - p->base) >> 3);
}

/* ---- time ---- */

static inline uint32_t
clamp_rel(int64_t rel)
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
	__atomic_store_n(&s->now, clamp_rel(unix_now - s->started), __ATOMIC_RELEASE);
	__atomic_store_n(&s->wall_base, s->started, __ATOMIC_RELEASE);
}

void
mc_store_clock_tick(struct mc_store *s, uint64_t mono_secs, int64_t unix_now)
{
	uint32_t rel = clamp_rel(62 + (int64_t)RTE_MIN(mono_secs, (uint64_t)UINT32_MAX));
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

/* ---- layout ---- */

static unsigned int
class_for(const struct mc_store *s, uint64_t total)
{
	unsigned int lo = 0, hi = s->nclasses;
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		if (s->class_size[mid] < total)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo; /* == nclasses when too big */
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
	s->wall_base = s->started;

	/* Slab classes: header + chunk_min first, growing by factor, the last = max item size. */
	sz = MC_ITEM_HDR + (set->chunk_min ? set->chunk_min : 48);
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

/* ---- seqlock on buckets ---- */

static inline void
bucket_write_begin(struct bucket *b)
{
	__atomic_store_n(&b->ver, b->ver + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void
bucket_write_end(struct bucket *b)
{
	__atomic_store_n(&b->ver, b->ver + 1, __ATOMIC_RELEASE);
}

/* ---- liveness ---- */

/* 0 = live, 1 = expired, 2 = flushed. Safe for readers (ordering notes in flush_capture). */
static inline int
item_dead(const struct mc_store *s, const struct part *p, uint64_t cas, uint32_t exptime)
{
	uint32_t now = mc_store_now(s);
	uint64_t nc;
	if (exptime != 0 && exptime <= now)
		return 1;
	nc = __atomic_load_n(&p->next_cas, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&p->flush_pending, __ATOMIC_ACQUIRE)) {
		/* No write has happened since the deadline (a write captures first), so every
		 * CAS below next_cas was stored before it. */
		if (now >= p->flush_deadline && cas < nc)
			return 2;
	}
	if (cas < __atomic_load_n(&p->flush_cas, __ATOMIC_ACQUIRE))
		return 2;
	return 0;
}

/* Writers call this first: turn a due delayed flush into a CAS bound. */
static inline void
flush_capture(const struct mc_store *s, struct part *p)
{
	if (unlikely(p->flush_pending) && mc_store_now(s) >= p->flush_deadline) {
		__atomic_store_n(&p->flush_cas, p->next_cas, __ATOMIC_RELEASE);
		__atomic_store_n(&p->flush_pending, 0, __ATOMIC_RELEASE);
	}
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

/* ---- index (writer side, partition lock held) ---- */

static inline bool
key_eq(const struct mc_item *it, const struct mc_key *k)
{
	return mc_item_klen(it) == k->len && memcmp(it->data, k->p, k->len) == 0;
}

/* Find the slot holding key k; returns the item (live or not) or NULL. */
static struct mc_item *
index_find(struct part *p, const struct mc_key *k, struct bucket **bo, unsigned int *so)
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
static bool
index_find_item(struct part *p, const struct mc_item *it, struct bucket **bo, unsigned int *so)
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

static void item_release(struct part *p, struct mc_item *it);

static inline uint64_t
item_bytes(const struct mc_item *it)
{
	return MC_ITEM_HDR + mc_item_klen(it) + mc_item_vlen(it);
}

/* An item no longer in the index: out of the accounting, then freed (or a zombie). */
static void
item_drop(struct part *p, struct mc_item *it)
{
	p->st.curr_items--;
	p->st.bytes -= item_bytes(it);
	item_release(p, it);
}

/* Remove a linked item from the index and the accounting; free it or leave it a zombie. */
static void
item_unlink(struct part *p, struct mc_item *it)
{
	struct bucket *b;
	unsigned int i;
	if (index_find_item(p, it, &b, &i)) {
		bucket_write_begin(b);
		b->slot[i] = 0;
		bucket_write_end(b);
	}
	item_drop(p, it);
}

static inline bool
item_seen(const struct part *p, const struct mc_item *it)
{
	return (__atomic_load_n(use_of(p, it), __ATOMIC_RELAXED) & USE_SEEN) != 0;
}

/* Unlink an expired (dead == 1) or flushed (2) item that a writer, the CLOCK hand or the sweep
 * came across. */
static void
item_reclaim(struct part *p, struct mc_item *it, int dead)
{
	p->st.reclaimed++;
	if (dead == 1 && !item_seen(p, it))
		p->st.expired_unfetched++;
	item_unlink(p, it);
}

/* Unlink a live item to make room in class c. */
static void
item_evict(struct part *p, struct slabclass *c, struct mc_item *it)
{
	p->st.evictions++;
	c->evictions++;
	if (!item_seen(p, it))
		p->st.evicted_unfetched++;
	item_unlink(p, it);
}

/* The item is out of the index: free it, unless a reader still holds it. */
static void
item_release(struct part *p, struct mc_item *it)
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

/* ---- slab allocation ---- */

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

static inline struct mc_item *
chunk_at(const struct part *p, const struct slabclass *c, uint32_t page, uint32_t idx)
{
	return (struct mc_item *)(p->pages + (size_t)page * MC_PAGE_SIZE + (size_t)idx * c->size);
}

/* Advance a hand over the carved chunks of a class; NULL when the class has none. */
static struct mc_item *
hand_next(const struct part *p, const struct slabclass *c, uint32_t *page, uint32_t *idx)
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
		struct mc_item *it = hand_next(p, c, &c->hand_page, &c->hand_idx);
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
				item_reclaim(p, it, dead);
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

/* Page reassignment (memcached's slab_reassign): move the oldest page of the class holding the
 * most pages to class dst, which has nothing to give. Every item on the page is unlinked first;
 * only then are the page's reference counts read (seq_cst, after the unlinks' version bumps), so
 * a reader that took a reference before its item went is seen here, and one that comes after
 * fails its version check and drops it again. A referenced page stays where it is (its items
 * are gone; the free chunks serve the victim class). Returns true when dst got a page. */
static bool
page_steal(const struct mc_store *s, struct part *p, struct slabclass *dst)
{
	struct slabclass *v = NULL;
	unsigned int c;
	uint32_t page, i;
	for (c = 0; c < s->nclasses; c++) {
		struct slabclass *k = &p->cls[c];
		if (k != dst && k->slab_pages == dst->slab_pages && k->nslabs >= 2 &&
		    (v == NULL || k->nslabs > v->nslabs))
			v = k;
	}
	if (v == NULL)
		return false;
	page = v->head;
	race_point(MC_RACE_STEAL);
	for (i = 0; i < v->perslab; i++) {
		struct mc_item *it = chunk_at(p, v, page, i);
		uint8_t st = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
		if (st & MC_IT_LINKED) {
			item_evict(p, v, it);
		} else if ((st & MC_IT_ZOMBIE) && !referenced(p, it)) {
			p->st.zombies--;
			item_release(p, it);
		}
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	{
		const uint8_t *r = p->refs + (size_t)page * UNITS_PER_PAGE;
		for (i = 0; i < v->slab_pages * UNITS_PER_PAGE; i++)
			if (__atomic_load_n(&r[i], __ATOMIC_SEQ_CST) != 0)
				return false;
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
	v->head = p->page_next[page];
	v->nslabs--;
	if (v->hand_page == page)
		v->hand_page = NO_PAGE;
	if (v->sweep_page == page)
		v->sweep_page = NO_PAGE;
	p->st.slab_pages -= v->slab_pages;
	p->st.slabs_moved++;
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

static struct mc_item *
item_alloc(const struct mc_store *s, struct part *p, uint32_t total)
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

static inline uint64_t
next_cas(const struct mc_store *s, struct part *p)
{
	uint64_t c = p->next_cas;
	__atomic_store_n(&p->next_cas, c + s->nparts, __ATOMIC_RELEASE);
	return c;
}

/* Allocate and fill a new item (not yet linked): fresh CAS, key, value. */
static struct mc_item *
item_new(const struct mc_store *s, struct part *p, const struct mc_key *k, const void *val,
	 uint32_t vlen, uint32_t flags, uint32_t exptime)
{
	struct mc_item *it = item_alloc(s, p, MC_ITEM_HDR + k->len + vlen);
	if (it == NULL)
		return NULL;
	it->cas = next_cas(s, p);
	it->vk = vlen << 8 | k->len;
	it->exptime = exptime;
	it->flags = flags;
	memcpy(it->data, k->p, k->len);
	if (vlen)
		memcpy(it->data + k->len, val, vlen);
	return it;
}

/* Put new item `it` in the index: in old's slot when replacing, else a free slot of the two
 * buckets, else in place of a victim from the first bucket (counted as an eviction). */
static void
index_link(struct part *p, struct mc_item *it, const struct mc_key *k, struct bucket *ob,
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
		bucket_write_begin(ob);
		ob->slot[os] = e;
		bucket_write_end(ob);
		return;
	}
	buckets_of(p, k->hash, &bi[0], &bi[1]);
	{
		/* Two choices: the emptier bucket keeps the load even. */
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
		j = nfree[1] > nfree[0] ? 1 : 0;
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
		bucket_write_begin(b);
		b->slot[vs] = e;
		bucket_write_end(b);
		p->st.index_evictions++;
		p->st.evictions++;
		p->cls[victim->cls].evictions++;
		item_drop(p, victim);
	}
}

/* Writer lookup of a live item; an expired or flushed one found on the way is reclaimed. */
static struct mc_item *
find_live(const struct mc_store *s, struct part *p, const struct mc_key *k, struct bucket **b,
	  unsigned int *slot)
{
	struct mc_item *it = index_find(p, k, b, slot);
	int dead;
	if (it == NULL)
		return NULL;
	dead = item_dead(s, p, it->cas, it->exptime);
	if (dead) {
		item_reclaim(p, it, dead);
		*b = NULL;
		return NULL;
	}
	return it;
}

static inline struct part *
part_lock(struct mc_store_ctx *cx, const struct mc_key *k)
{
	struct part *p = cx->s->parts[mc_store_part_of(cx->s, k->hash)];
	rte_spinlock_lock(&p->lock);
	flush_capture(cx->s, p);
	return p;
}

/* Keep it from being evicted or moved while the writer allocates (lock held). */
static inline void
pin(const struct part *p, const struct mc_item *it)
{
	if (it)
		__atomic_fetch_add(refs_of(p, it), 1, __ATOMIC_ACQ_REL);
}

static inline void
unpin(const struct part *p, const struct mc_item *it)
{
	if (it)
		__atomic_fetch_sub(refs_of(p, it), 1, __ATOMIC_ACQ_REL);
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
	it = item_alloc(s, p, MC_ITEM_HDR + k->len + total_v);
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
		item_release(p, it);
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
	index_link(p, it, k, old ? ob : NULL, os);
	if (stale)
		__atomic_fetch_or(&it->state, MC_IT_STALE | (old->state & MC_IT_TOKEN),
				  __ATOMIC_RELAXED);
	if (a->key_binary)
		__atomic_fetch_or(&it->state, MC_IT_KEYBIN, __ATOMIC_RELAXED);
	if (old != NULL)
		item_drop(p, old);
	if (cas_out)
		*cas_out = it->cas;
	goto out;
fail:
	/* memcached drops the old value when a set fails, so stale data does not linger. */
	if (mode == MC_SET && old != NULL) {
		old = find_live(s, p, k, &ob, &os);
		if (old)
			item_unlink(p, old);
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
		item_unlink(p, it);
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

/* memcached's safe_strtoull over a value followed by CRLF. */
static bool
value_to_u64(const uint8_t *v, uint32_t vlen, uint64_t *out)
{
	char buf[300];
	char *end;
	unsigned long long ull;
	uint32_t n = vlen < sizeof(buf) - 3 ? vlen : (uint32_t)sizeof(buf) - 3;
	memcpy(buf, v, n);
	memcpy(buf + n, "\r\n", 3);
	errno = 0;
	ull = strtoull(buf, &end, 10);
	if (errno == ERANGE)
		return false;
	if (isspace((unsigned char)*end) || (*end == '\0' && end != buf)) {
		if ((long long)ull < 0 && memchr(buf, '-', n) != NULL)
			return false;
		*out = ull;
		return true;
	}
	return false;
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
		it = item_new(s, p, k, buf, (uint32_t)res, a->flags, a->exptime);
		if (it == NULL) {
			rc = MC_NO_MEMORY;
			goto out;
		}
		index_link(p, it, k, NULL, 0);
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
	if (mc_item_vlen(it) == 0 || !value_to_u64(mc_item_value(it), mc_item_vlen(it), &v)) {
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
		 * references are read (the order item_release relies on): a reader that takes one
		 * later fails its version check; one that took it earlier shows here. */
		race_point(MC_RACE_DELTA_INPLACE);
		bucket_write_begin(b);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!referenced(p, it)) {
			it->cas = next_cas(s, p);
			memcpy((uint8_t *)mc_item_value(it), buf, (size_t)res);
			memset((uint8_t *)mc_item_value(it) + res, ' ', mc_item_vlen(it) - (uint32_t)res);
			in_place = true;
		}
		bucket_write_end(b);
	}
	if (!in_place) {
		struct mc_item *nit;
		const uint32_t fl = it->flags, ex = it->exptime;
		pin(p, it);
		nit = item_new(s, p, k, buf, (uint32_t)res, fl, ex);
		unpin(p, it);
		if (nit == NULL) {
			rc = MC_NO_MEMORY;
			goto out;
		}
		it = find_live(s, p, k, &b, &i);
		index_link(p, nit, k, it ? b : NULL, i);
		if (it != NULL)
			item_drop(p, it);
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
		it = item_new(s, p, k, NULL, 0, 0, a->viv_exptime);
		if (it == NULL) {
			rc = MC_NO_MEMORY;
			goto out;
		}
		index_link(p, it, k, NULL, 0);
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
		if (set_ttl)
			it->exptime = ttl;
		it->cas = next_cas(cx->s, p);
		bucket_write_end(b);
		__atomic_fetch_or(&it->state, MC_IT_STALE, __ATOMIC_RELAXED);
		__atomic_fetch_and(&it->state, (uint8_t)~MC_IT_TOKEN, __ATOMIC_RELAXED);
	}
	rte_spinlock_unlock(&p->lock);
	return rc;
}

/* ---- readers ---- */

enum mc_store_status
mc_store_read_begin(struct mc_store_ctx *cx, const struct mc_key *k, struct mc_store_read *r)
{
	const struct mc_store *s = cx->s;
	const struct part *p = s->parts[mc_store_part_of(s, k->hash)];
	uint16_t tag = tag_of(k->hash);
	uint32_t bi[2], v[2], m;
	unsigned int j;

	buckets_of(p, k->hash, &bi[0], &bi[1]);
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
			if (klen != k->len || memcmp(it->data, k->p, klen) != 0)
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

/* ---- background sweep ---- */

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
			struct mc_item *it = hand_next(p, c, &c->sweep_page, &c->sweep_idx);
			uint8_t st;
			int dead;
			if (it == NULL)
				break;
			visited++;
			st = __atomic_load_n(&it->state, __ATOMIC_RELAXED);
			if (st & MC_IT_LINKED) {
				dead = item_dead(s, p, it->cas, it->exptime);
				if (dead)
					item_reclaim(p, it, dead);
			} else if ((st & MC_IT_ZOMBIE) && !referenced(p, it)) {
				p->st.zombies--;
				item_release(p, it);
			}
		}
		p->sweep_cls = (p->sweep_cls + 1) % s->nclasses;
	}
	rte_spinlock_unlock(&p->lock);
	return visited;
}

/* ---- statistics ---- */

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
