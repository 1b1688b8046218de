/* The store's insides, shared by its files and by nothing else: memory layout, the inline
 * helpers of the hot paths, and the functions one file gives another.
 *
 * The locking protocol, in one place. Each partition has a spinlock; every writer (store,
 * delete, touch, incr, meta, flush, sweep, eviction, page moves) holds it. Readers hold
 * nothing: they read a bucket's version (odd while a writer changes the bucket or an item
 * linked from it), the slot, the item's header and value, and the version again, and start
 * over on any change (mc_store_read_check). Item memory is written by writers only; what a
 * reader writes (references for zero-copy replies, CLOCK and fetched bits) lives beside the
 * pages, per 64-byte unit (UNIT_SHIFT). A writer that frees, moves or rewrites item memory
 * first unlinks it or publishes an odd version, then reads its unit's reference count
 * (seq_cst); a reader increments the count, then re-checks the version (seq_cst): either the
 * writer sees the reference (the item lives on as a zombie, the page stays, incr makes a new
 * item) or the reader sees the change and drops its reference again.
 *
 * A reader's front table (struct mc_store_front) skips the buckets for the items it hit
 * lately, so such a read is checked by the item instead: by the low 32 bits of its CAS, read
 * first and again at the end, as a bucket's version is (mc_store_read_check). Every writer
 * that changes a linked item in place, or takes it out of the index, first gives it a new
 * CAS (st_item_cas_change: a new one from the partition, or, before its slot is cleared or
 * given to another item, the old one with a bit flipped: st_item_retire), then a release
 * fence, then the rest; incr in place and the free that may follow a drop read the
 * reference counts after that, as after an odd version. A touch changes only the expiry, one
 * aligned word that a reader sees before or after: either is a read that happened before or
 * after the touch. */
#ifndef MC_STORE_INT_H
#define MC_STORE_INT_H

#include "store.h"

#include <stddef.h>
#include <string.h>

#include <rte_common.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_spinlock.h>

#ifdef __SSE2__
#include <emmintrin.h>
#if defined(__SSE4_2__) && defined(__x86_64__)
#include <nmmintrin.h>
#endif
#endif

#define SLOTS 7
#define NO_PAGE UINT32_MAX
#define GUARD 4096          /* readers may read a racy key length past a chunk: stay mapped */

#define UNIT_SHIFT 6
#define UNITS_PER_PAGE (MC_PAGE_SIZE >> UNIT_SHIFT)
#define REF_MAX 64          /* readers check before adding: at most one per lcore overshoots */
#define USE_HOT MC_USE_HOT   /* CLOCK: used since the hand last passed (store.h) */
#define USE_SEEN MC_USE_SEEN /* fetched at least once */
/* What lock-free readers write lives beside the pages, never in item memory: a chunk may be
 * freed and re-carved (even for another class) while a reader still holds its pointer, and a
 * write through it would land in whatever lives there now. Every chunk is at least 72 bytes,
 * so each 64-byte unit of page memory holds the start of at most one chunk; per unit there is
 * a reference count (zero-copy replies in flight) and the use bits (CLOCK, fetched). A stale
 * reader can thus only touch the counters of the unit, which are counters whatever the page
 * holds now: its increment is undone when its version check fails, and use bits are hints. */

/* Index bucket: one cache line, a version counter (odd while a writer changes the bucket or an
 * item linked from it) and 7 slots of tag:16 | item offset in 8-byte units:48; 0 = empty. */
struct bucket {
	uint32_t ver;
	uint32_t pad;
	uint64_t slot[SLOTS];
} __rte_aligned(64);

/* The front table: sets of four ways, a set one cache line; a way is the hash's top bits
 * (odd: 0 is an empty way), the low 32 bits of the item's CAS when it was taken, and the item.
 * Its first line holds the counts that choose, burst by burst, which keys use the table and
 * whether a lookup requests the bucket too (mc_store_front_burst). */
struct st_front_set {
	uint32_t htag[4];
	uint32_t cas[4];
	const struct mc_item *it[4];
} __rte_aligned(64);

enum { MC_FRONT_COLD, MC_FRONT_WARM, MC_FRONT_HOT };

struct mc_store_front {
	uint32_t asked, hits;              /* lookups that asked the table, and its hits */
	uint32_t sample_asked, sample_hits; /* the same for the sampled keys (front_sample) */
	uint8_t mode; /* MC_FRONT_*: which keys use the table, and whether buckets are requested */
	/* The store's carve_epoch its ways were taken under. A way into a page re-carved since
	 * may point into the middle of another item's value, bytes a client chose: a read through
	 * the table holds only while the store's epoch is this one (mc_store_read_check), and the
	 * table is emptied once a burst finds it moved (mc_store_front_burst). */
	uint32_t epoch;
	uint32_t takes; /* ways replaced: which way the next one replaces (front_take) */
	struct st_front_set set[MC_STORE_FRONT_SETS] __rte_aligned(64);
};

/* Asks of a front table, counted by the caller as they happen (a local: in registers, not a
 * chain of increments through the table's memory) and added to the table's once a burst. */
struct mc_front_count {
	uint32_t asked, hits, sample_asked, sample_hits;
};

/* The address of an item's CAS's low 32 bits: what a front-table read checks. */
static inline const volatile uint32_t *
item_cas_word(const struct mc_item *it)
{
	return (const volatile uint32_t *)(const void *)&it->cas +
	       (RTE_BYTE_ORDER == RTE_BIG_ENDIAN ? 1 : 0);
}

/* A writer's first step before it changes a linked item in place or takes it out of the
 * index (the protocol above): the new CAS, then a release fence. */
static inline void
st_item_cas_change(struct mc_item *it, uint64_t cas)
{
	__atomic_store_n(&it->cas, cas, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* An item about to leave the index (its slot cleared or given to another item): its CAS
 * changed first, a bit flipped, so that no front-table read takes it for the item it was once
 * a lookup through the index can find the change (st_item_unlink, st_index_link). */
static inline void
st_item_retire(struct mc_item *it)
{
	st_item_cas_change(it, it->cas ^ 0x80000000u);
}

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
	/* Pages re-carved for another class so far (page_steal), in what was padding: a front
	 * table's ways hold for the value they were taken under (struct mc_store_front). */
	uint32_t carve_epoch;
	int64_t started;        /* memcached's process_started: wall time of relative 0 at start */
	int64_t wall_base;      /* wall time of relative 0 now (moves with the wall clock) */
	size_t mem_len;
	size_t index_bytes;
	uint32_t class_size[MC_STORE_MAX_CLASSES];
	struct part *parts[MC_STORE_MAX_PARTS];
	/* Each partition's index, copied from it at create and attach: the GET path places a key
	 * and reads its bucket one load from here rather than two through the partition (the
	 * placement is a chain from the key's load to its bucket's prefetch). */
	struct {
		struct bucket *buckets;
		uint32_t nbuckets;
	} index[MC_STORE_MAX_PARTS];
	/* Cold: what shaped the layout (a warm restart compares them) and where the monotonic
	 * clock starts (62 when created; where the saved clock left off, moved on by the wall
	 * time that passed, after a warm restart). */
	double factor;
	uint32_t chunk_min;
	uint32_t clock_base;
} __rte_cache_aligned;

static inline void
race_point(enum mc_store_race where)
{
	if (unlikely(mc_store_race_hook != NULL))
		mc_store_race_hook(where, mc_store_race_arg);
}

/* CRC32-C of one word: rte_hash_crc_8byte's value, with the instruction itself where the
 * build has SSE4.2 (DPDK's x86 baseline), not its run-time choice made again per call. */
static inline uint32_t
crc_word(uint64_t w, uint32_t c)
{
#if defined(__SSE4_2__) && defined(__x86_64__)
	return (uint32_t)_mm_crc32_u64(c, w);
#else
	return rte_hash_crc_8byte(w, c);
#endif
}

/* 64 bits from two independent halves: the hardware CRC32-C (rte_hash_crc_8byte) and a
 * multiply-rotate pass, over the same 8-byte words in one loop, joined by a 64-bit finaliser.
 * CRC alone is linear over GF(2): keys that differ in a few digits get hashes that differ in a
 * few fixed patterns, which clusters buckets, and a second CRC with another seed adds no
 * entropy. Words are loaded with memcpy: keys sit at any alignment in the packet.
 * Keyed against hash flooding: a 128-bit per-boot secret seeds both halves and the join. The
 * multiply chain mixes the secret into every word before the multiply's carries spread it, so
 * which keys collide depends on the secret (CRC's collisions do not, but the join hides them
 * behind the keyed chain). Not a cryptographic PRF; SipHash would cost the GET path 30 to 40
 * cycles a key.
 * low (NULL: not wanted): nonzero when a key byte is at or below ' ' (space, control), found
 * in the same pass over the words (the text protocols' key end, mc_store_key_text_hot).
 * sum (NULL: not wanted): the key's ones'-complement sum as 64-bit words, end-around carried
 * and not folded, from the same loads (mc_store_key_text_hot, for a reply that echoes the key). */
static inline __attribute__((always_inline)) uint64_t
hash_words(const uint64_t seed[2], const void *key, uint32_t len, uint64_t *low, uint64_t *sum)
{
	const uint8_t *p = key;
	uint64_t m = seed[0] ^ len, w, lo = 0, su = 0;
	uint32_t n = len, c = (uint32_t)seed[1] ^ len;
	while (n >= 8) {
		memcpy(&w, p, 8);
		if (low != NULL)
			lo |= (w - 0x2121212121212121ull) & ~w;
		if (sum != NULL) {
			su += w;
			su += su < w;
		}
		c = crc_word(w, c);
		m = (m ^ w) * 0xff51afd7ed558ccdull;
		m = (m << 31) | (m >> 33);
		p += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		if (low != NULL) {
			/* The bytes past the key as 0xff, which is above ' '. */
			const uint64_t v = w | (~0ull << (8 * n));
			lo |= (v - 0x2121212121212121ull) & ~v;
		}
		if (sum != NULL) {
			su += w; /* the bytes past the key as 0: they add nothing */
			su += su < w;
		}
		c = crc_word(w, c);
		m = (m ^ w) * 0xff51afd7ed558ccdull;
		m = (m << 31) | (m >> 33);
	}
	if (low != NULL)
		*low = lo & 0x8080808080808080ull;
	if (sum != NULL)
		*sum = su;
	m ^= ((uint64_t)c << 32 | c) + seed[1];
	m ^= m >> 33;
	m *= 0xff51afd7ed558ccdull;
	m ^= m >> 33;
	m *= 0xc4ceb9fe1a85ec53ull;
	m ^= m >> 33;
	return m;
}

static inline uint64_t
hash_keyed(const uint64_t seed[2], const void *key, uint32_t len)
{
	return hash_words(seed, key, len, NULL, NULL);
}

static inline uint16_t
tag_of(uint64_t hash)
{
	uint16_t t = (uint16_t)hash;
	return t ? t : 1;
}

/* A hash's first bucket among nbuckets: all a hit usually needs. */
static inline uint32_t
bucket_first(uint32_t nbuckets, uint64_t hash)
{
	return (uint32_t)(((uint64_t)(uint32_t)(hash >> 32) * nbuckets) >> 32);
}

/* A hash's two buckets among nbuckets. */
static inline void
buckets_in(uint32_t nbuckets, uint64_t hash, uint32_t *b1, uint32_t *b2)
{
	uint32_t hi = (uint32_t)(hash >> 32);
	*b1 = bucket_first(nbuckets, hash);
	*b2 = (uint32_t)(((uint64_t)(hi ^ (tag_of(hash) * 0x9e3779b1u)) * nbuckets) >> 32);
	if (*b2 == *b1)
		*b2 = *b1 + 1 == nbuckets ? 0 : *b1 + 1;
}

static inline void
buckets_of(const struct part *p, uint64_t hash, uint32_t *b1, uint32_t *b2)
{
	buckets_in(p->nbuckets, hash, b1, b2);
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
	/* One unsigned compare: below the pages wraps to a huge offset. */
	const uintptr_t off = (uintptr_t)it - (uintptr_t)p->pages;
	if (unlikely(off >= (uintptr_t)p->npages * MC_PAGE_SIZE))
		return -1;
	return (ptrdiff_t)(off >> UNIT_SHIFT);
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

/* The slots of b whose tag is tag, slot i as bit 2i (take the index with TAG_SLOT). A filter
 * only: the caller loads each candidate slot again and the bucket version tells whether the
 * bucket changed meanwhile. With SSE2, one 16-bit compare per lane over the whole line: tags
 * are each slot's top 16 bits, lane 3 of its 64-bit word (word 0 is the version). Two signed
 * packs then narrow each word's upper half to one byte whose sign is its tag lane's result
 * (a negative 32-bit half stays negative, a positive one positive): one movemask, word w's
 * verdict in bit 2w+1. */
#define TAG_SLOT(m) ((unsigned int)__builtin_ctz(m) >> 1)
static inline uint32_t
tag_matches(const struct bucket *b, uint16_t tag)
{
#ifdef __SSE2__
	const __m128i t = _mm_set1_epi16((short)tag);
	const __m128i *v = (const __m128i *)(const void *)b;
	const __m128i lo = _mm_packs_epi32(_mm_cmpeq_epi16(_mm_load_si128(v), t),
					   _mm_cmpeq_epi16(_mm_load_si128(v + 1), t));
	const __m128i hi = _mm_packs_epi32(_mm_cmpeq_epi16(_mm_load_si128(v + 2), t),
					   _mm_cmpeq_epi16(_mm_load_si128(v + 3), t));
	return ((uint32_t)_mm_movemask_epi8(_mm_packs_epi16(lo, hi)) >> 3) & 0x1555;
#else
	uint32_t m = 0;
	unsigned int i;
	for (i = 0; i < SLOTS; i++)
		if ((uint16_t)(__atomic_load_n(&b->slot[i], __ATOMIC_RELAXED) >> 48) == tag)
			m |= 1u << (2 * i);
	return m;
#endif
}

static inline uint64_t
slot_for(const struct part *p, const struct mc_item *it, uint16_t tag)
{
	return (uint64_t)tag << 48 | (uint64_t)(((const uint8_t *)it - p->base) >> 3);
}

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

/* 0 = live, 1 = expired, 2 = flushed. Safe for readers (ordering notes in flush_capture). */
static inline int
item_dead(const struct mc_store *s, const struct part *p, uint64_t cas, uint32_t exptime)
{
	uint32_t now = __atomic_load_n(&s->now, __ATOMIC_ACQUIRE); /* mc_store_now, inline */
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

static inline unsigned int
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

static inline struct mc_item *
chunk_at(const struct part *p, const struct slabclass *c, uint32_t page, uint32_t idx)
{
	return (struct mc_item *)(p->pages + (size_t)page * MC_PAGE_SIZE + (size_t)idx * c->size);
}

/* The partition a hash belongs to (mc_store_part_of, inline for the GET path). */
static inline unsigned int
part_of(const struct mc_store *s, uint64_t hash)
{
	return (unsigned int)(((uint64_t)(uint32_t)hash * s->nparts) >> 32);
}

/* k's partition (returned) and both its buckets; the partition kept in k when it was placed
 * (mc_store_prefetch), else worked out. */
static inline unsigned int
key_place(const struct mc_store *s, const struct mc_key *k, uint32_t bi[2])
{
	const unsigned int part = likely(k->placed) ? k->part : part_of(s, k->hash);
	buckets_in(s->index[part].nbuckets, k->hash, &bi[0], &bi[1]);
	return part;
}

/* Unaligned loads for key_bytes_eq. */
static inline uint64_t
ld8(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t
ld4(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Are n key bytes equal? Inline, with loads that stay inside the n bytes: eight at a time,
 * the last eight (or four) overlapping the ones before, so no key length of 4 or more has a
 * byte loop (a call to memcmp costs more than comparing short keys). */
static inline bool
key_bytes_eq(const uint8_t *a, const uint8_t *b, uint32_t n)
{
	uint32_t i;
	if (n >= 8) {
		if (n <= 16) /* most keys: two compares, no branch between them */
			return ((ld8(a) ^ ld8(b)) | (ld8(a + n - 8) ^ ld8(b + n - 8))) == 0;
		for (i = 0; i + 8 < n; i += 8)
			if (ld8(a + i) != ld8(b + i))
				return false;
		return ld8(a + n - 8) == ld8(b + n - 8);
	}
	if (n >= 4)
		return ((ld4(a) ^ ld4(b)) | (ld4(a + n - 4) ^ ld4(b + n - 4))) == 0;
	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static inline bool
key_eq(const struct mc_item *it, const struct mc_key *k)
{
	return mc_item_klen(it) == k->len && key_bytes_eq(it->data, k->p, k->len);
}

static inline uint64_t
item_bytes(const struct mc_item *it)
{
	return MC_ITEM_HDR + mc_item_klen(it) + mc_item_vlen(it);
}

static inline bool
item_seen(const struct part *p, const struct mc_item *it)
{
	return (__atomic_load_n(use_of(p, it), __ATOMIC_RELAXED) & USE_SEEN) != 0;
}

static inline uint64_t
next_cas(const struct mc_store *s, struct part *p)
{
	uint64_t c = p->next_cas;
	__atomic_store_n(&p->next_cas, c + s->nparts, __ATOMIC_RELEASE);
	return c;
}

static inline struct part *
part_lock(struct mc_store_ctx *cx, const struct mc_key *k)
{
	struct part *p = cx->s->parts[part_of(cx->s, k->hash)];
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

/* ---- between the store's files (partition lock held) ---- */

/* index.c */
struct mc_item *st_index_find(struct part *p, const struct mc_key *k, struct bucket **bo,
			      unsigned int *so);
bool st_index_find_item(struct part *p, const struct mc_item *it, struct bucket **bo,
			unsigned int *so);
void st_index_link(struct part *p, struct mc_item *it, const struct mc_key *k,
		   struct bucket *ob, unsigned int os);
/* slab.c */
void st_item_drop(struct part *p, struct mc_item *it);
void st_item_unlink(struct part *p, struct mc_item *it);
void st_item_reclaim(struct part *p, struct mc_item *it, int dead);
void st_item_release(struct part *p, struct mc_item *it);
struct mc_item *st_hand_next(const struct part *p, const struct slabclass *c, uint32_t *page,
			     uint32_t *idx);
struct mc_item *st_item_alloc(const struct mc_store *s, struct part *p, uint32_t total);
struct mc_item *st_item_new(const struct mc_store *s, struct part *p, const struct mc_key *k,
			    const void *val, uint32_t vlen, uint32_t flags, uint32_t exptime);
/* store.c */
uint32_t st_clamp_rel(int64_t rel);

#endif
