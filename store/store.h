/* The store: hugepage-backed slab allocator, hash index, CLOCK eviction, expiry, CAS, partitions,
 * memory accounting. It knows nothing of packets or protocols; callers give it keys as
 * (bytes, length, hash) and get statuses that map one to one onto memcached's answers.
 *
 * Concurrency (docs/DESIGN.md, "Concurrency"): one partition per worker. Writers of a
 * partition serialise on its spinlock (the owner lcore in the common case; a foreign lcore
 * takes the same lock, so no hand-off ring is needed and the reply leaves exactly once).
 * Readers take no lock and write nothing into item memory: they read under the bucket's
 * version counter (a seqlock) and validate after copying, retrying if a writer touched the
 * bucket meanwhile; references and use bits live beside the pages. */
#ifndef MC_STORE_H
#define MC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX 250
#define MC_ITEM_HDR 24
#define MC_PAGE_SIZE (1u << 20)
#define MC_STORE_MAX_PARTS 16
#define MC_STORE_MAX_CLASSES 64
#define MC_REALTIME_MAXDELTA (60 * 60 * 24 * 30)
#define MC_VSUM_MAX 4096 /* values this long or shorter carry their sum (vsum) */

/* A 64-bit ones'-complement accumulator (end-around carried) folded to 16 bits, not inverted:
 * the form of vsum and mc_key's sum, and of the dataplane's checksums. Adding a word to itself
 * rotated by half its width leaves the end-around-carried sum of its halves in the upper
 * half: 64 to 32 bits, then 32 to 16, in two adds. */
static inline uint16_t
mc_sum_fold(uint64_t sum)
{
	uint32_t x;
	sum += (sum >> 32) | (sum << 32);
	x = (uint32_t)(sum >> 32);
	x += (x >> 16) | (x << 16);
	return (uint16_t)(x >> 16);
}

/* The UDP checksum field for an unfolded sum: its ones' complement folded, and 0xffff where
 * that is 0 (0 means "no checksum"; 0xffff is the same value). Folding the complemented
 * 64-bit word gives exactly that, as 2^64 - 1 is 0 modulo 0xffff and the fold of a nonzero
 * word is never 0 (sums here stay far below 2^64 - 1): no test, no select. */
static inline uint16_t
mc_sum_udp(uint64_t sum)
{
	return mc_sum_fold(~sum);
}

enum mc_store_status {
	MC_OK = 0,        /* hit / done */
	MC_MISS,          /* NOT_FOUND */
	MC_STORED,
	MC_NOT_STORED,
	MC_EXISTS,
	MC_DELETED,
	MC_TOUCHED,
	MC_TOO_LARGE,     /* SERVER_ERROR object too large for cache */
	MC_NO_MEMORY,     /* SERVER_ERROR out of memory storing object */
	MC_NON_NUMERIC,   /* CLIENT_ERROR cannot increment or decrement non-numeric value */
};

enum mc_store_mode { MC_SET, MC_ADD, MC_REPLACE, MC_APPEND, MC_PREPEND, MC_CAS };

/* A write for mc_store_store. */
struct mc_store_args {
	enum mc_store_mode mode;
	uint32_t flags;
	uint32_t exptime;      /* store-relative (mc_store_realtime); ignored by append/prepend */
	const void *val;
	uint32_t vlen;
	uint64_t cas_in;       /* MC_CAS: must match; any other mode: non-zero must match (meta C) */
	bool stale_ok;         /* meta I with C: an older CAS stores the value marked stale,
				* keeping TTL and token, instead of failing */
	bool key_binary;       /* meta b: the key came base64-encoded; k flags echo it so */
};

/* Item memory layout (24-byte header, then key, then value; no CRLF stored):
 *
 *  0               8       12      16      20      22  23  24
 *  +---------------+-------+-------+-------+-------+---+---+---- klen ----+---- vlen ----+
 *  | cas           |exptime| flags | vk    | vsum  |cls|st | key          | value        |
 *  +---------------+-------+-------+-------+-------+---+---+--------------+--------------+
 *  vk = vlen << 8 | klen (vlen < 16 MiB); exptime in store-relative seconds, 0 = never;
 *  vsum: the value's ones'-complement sum (rte_raw_cksum), so a reply can add it to its
 *  checksum instead of reading the value again; kept for values of up to MC_VSUM_MAX bytes;
 *  st: LINKED, ZOMBIE (unlinked, still referenced), meta's STALE, TOKEN, KEYBIN. Only writers
 *  (under the partition lock) write item memory; what readers write (references, CLOCK and
 *  fetched bits) lives beside the pages, per 64-byte unit (store.c, UNIT_SHIFT).
 */
struct mc_item {
	uint64_t cas;
	uint32_t exptime;
	uint32_t flags;
	uint32_t vk;
	uint16_t vsum;
	uint8_t cls;
	uint8_t state;
	uint8_t data[];
};

#define MC_IT_LINKED 0x01
#define MC_IT_ZOMBIE 0x02
#define MC_IT_STALE 0x10  /* meta: invalidated, served with X */
#define MC_IT_TOKEN 0x20  /* meta: a recache win (W) was handed out */
#define MC_IT_KEYBIN 0x40 /* meta: stored with a base64 (binary) key */

static inline uint32_t mc_item_klen(const struct mc_item *it) { return it->vk & 0xff; }
static inline uint32_t mc_item_vlen(const struct mc_item *it) { return it->vk >> 8; }
static inline const uint8_t *mc_item_key(const struct mc_item *it) { return it->data; }
static inline const uint8_t *mc_item_value(const struct mc_item *it)
{
	return it->data + mc_item_klen(it);
}

/* Per-thread counters (no other thread writes them); X(name). */
#define MC_STORE_CTX_COUNTERS(X)                                                               \
	X(cmd_get) X(cmd_set) X(cmd_touch) X(get_hits) X(get_misses) X(get_expired)           \
	X(get_flushed) X(delete_hits) X(delete_misses) X(incr_hits) X(incr_misses)             \
	X(decr_hits) X(decr_misses) X(cas_hits) X(cas_misses) X(cas_badval) X(touch_hits)      \
	X(touch_misses) X(read_retries)

/* Per-partition counters, kept under the partition lock; X(name). */
#define MC_STORE_PART_COUNTERS(X)                                                              \
	X(curr_items) X(total_items) X(bytes) X(evictions) X(reclaimed) X(expired_unfetched)   \
	X(evicted_unfetched) X(index_evictions) X(outofmemory) X(zombies) X(slab_pages)          \
	X(slabs_moved)

struct mc_store_ctx_stats {
#define X(n) uint64_t n;
	MC_STORE_CTX_COUNTERS(X)
#undef X
};

struct mc_store_part_stats {
#define X(n) uint64_t n;
	MC_STORE_PART_COUNTERS(X)
#undef X
};

struct mc_store;

struct mc_store_settings {
	size_t mem_bytes;        /* all of it: partitions, index, slabs */
	unsigned int nparts;     /* 1..MC_STORE_MAX_PARTS */
	uint32_t max_item_size;  /* largest item (memcached's -I) */
	double factor;           /* slab growth factor */
	uint32_t chunk_min;      /* smallest key+value space (memcached's -n, 48) */
	int64_t unix_now;        /* start time; 0 = time(NULL) */
	uint64_t hash_seed[2];   /* key hash secret; all zero = random (getrandom) at create */
};

/* A reader's front table: the items its lookups hit lately, by key hash, so that a hot key's
 * lookup reads neither of its index buckets (docs/DESIGN.md, "The front table"). Private to
 * one thread; MC_STORE_FRONT_BYTES of 64-byte aligned memory, zeroed (empty). */
struct mc_store_front;
#define MC_STORE_FRONT_SETS 8192
#define MC_STORE_FRONT_BYTES ((size_t)(MC_STORE_FRONT_SETS + 1) * 64)

/* A thread's handle: its counters, and its front table (NULL: none). One per lcore (or test
 * thread). */
struct mc_store_ctx {
	struct mc_store *s;
	struct mc_store_front *front;
	struct mc_store_ctx_stats st;
};

/* A key: bytes, length (1..250) and the hash from mc_store_hash. */
struct mc_key {
	const uint8_t *p;
	uint32_t len;
	/* With way MC_WAY_FRONT: the low 32 bits of the item's CAS when the front table took it
	 * (the read checks the item still has them). */
	uint32_t fcas;
	uint64_t hash;
	/* mc_store_key_text_hot only: the key's ones'-complement sum (as rte_raw_cksum sums it), for
	 * a reply that echoes the key (mc_proto_lone_get); below 2^33, not folded to 16 bits
	 * (mc_sum_fold folds the reply's sum once). */
	uint64_t sum;
	/* Where it lives, once mc_store_prefetch placed it (MC_KEY_PLACED): the lookup need
	 * not work it out again. MC_KEY_ASKED as well: the front table was asked for it, and a
	 * hit through the index goes into the table. */
	uint8_t placed;
	/* The slot whose tag the item prefetch matched, 1 + its index in bucket; 0: none. The
	 * lookup tries it before scanning both buckets. A hint only: it is checked.
	 * MC_WAY_FRONT: item is the front table's, checked by its CAS (fcas) instead;
	 * MC_WAY_ASK: the front table is still to be asked (mc_store_front_ask). */
	uint8_t way;
	uint16_t part;
	uint32_t bkt; /* its first bucket (the second is worked out when needed) */
	/* With way: the item that slot held when the item prefetch read it. The lookup starts on
	 * it while it checks that the slot still holds it, so the item's reads need not wait for
	 * the bucket's. */
	const void *item;
	/* With way: the bucket that slot is in (its first), so the lookup need not find it. */
	const void *bucket;
};

/* What a read found (valid only while mc_store_read_check says so). */
struct mc_store_read {
	const struct mc_item *it;
	const volatile uint32_t *ver; /* a bucket's version (or a front-table read's CAS word) */
	uint32_t v;
	uint32_t e;                   /* and *ep as it must stay: the bucket's version again (or */
	const volatile uint32_t *ep;  /* the store's carve epoch, for a front-table read) */
	uint32_t flags;
	uint32_t vlen;
	uint32_t exptime;   /* store-relative, 0 = never */
	uint64_t cas;
	uint16_t vsum;      /* the value's ones'-complement sum, as if it began at an even offset */
	const uint8_t *value;
	bool fetched;       /* had been read before */
	uint8_t state;      /* MC_IT_* bits at the snapshot */
	uint8_t *ref;       /* the item's reference count (mc_store_read_ref) */
	uint8_t *use;       /* the item's use bits (mc_store_read_touch) */
};

/* Lay the store out in mem (len bytes, 64-byte aligned). Returns NULL if mem is too small
 * for one slab page per partition. */
struct mc_store *mc_store_create(void *mem, size_t len, const struct mc_store_settings *set);
/* Nothing to free (the memory is the caller's); provided for symmetry. */
void mc_store_destroy(struct mc_store *s);

/* Warm restart (docs/DESIGN.md, "Warm restart"). The store's memory may live in a file that
 * outlives the process; MC_STORE_META_SIZE bytes beside it (the file's head) hold its metadata:
 * format version, the settings that shape the memory, where it was mapped, the clock and wall
 * time at the stop, the CAS counters, the hash secret, a clean mark and checksums. */
#define MC_STORE_META_SIZE 4096
#define MC_STORE_FORMAT 1
/* Reattach the store a clean stop saved in mem (len bytes) with meta: same format, settings
 * (len, set's nparts, max_item_size, factor, chunk_min; set's hash_seed and unix_now are not
 * used: the saved secret places the items), layout and checksums. Pointers are moved to mem,
 * wherever it is mapped now; the clock goes on from where it stopped plus the wall time that
 * passed (unix_now - the stop's), so TTLs count the time down too; CAS goes on. Returns the
 * store, with *down_secs (may be NULL) the seconds it was down; or NULL with the reason in
 * why, and the caller creates the store cold. Either way meta is marked unclean before mem is
 * touched: a crash from here on, or a kill, means a cold start next time. */
struct mc_store *mc_store_attach(void *mem, size_t len, void *meta,
				 const struct mc_store_settings *set, int64_t unix_now,
				 int64_t *down_secs, char *why, size_t whylen);
/* A clean stop: call with nothing left that reads, writes or references the store (workers
 * and TCP threads stopped, every zero-copy mbuf freed). Clears the reference counts, frees the
 * zombies, and writes meta, marked clean last. Returns how many references were still held
 * (0 after an orderly stop; more means a holder leaked, and its items were freed anyway). */
uint64_t mc_store_save(struct mc_store *s, void *meta, int64_t unix_now);

/* The key hash, keyed by the store's per-boot secret: which bucket a key lands in cannot be
 * computed from outside, so crafted keys cannot pile into one bucket (hash flooding). */
uint64_t mc_store_hash(const struct mc_store *s, const void *key, uint32_t len);
static inline void
mc_key_init(struct mc_key *k, const struct mc_store *s, const void *p, uint32_t len)
{
	k->p = p;
	k->len = len;
	k->hash = mc_store_hash(s, p, len);
	k->placed = 0;
	k->way = 0;
}
#define MC_KEY_PLACED 1
#define MC_KEY_ASKED 2
#define MC_WAY_ASK 0xfe
#define MC_WAY_FRONT 0xff
/* The front table asked for k (placed, its way MC_WAY_ASK or 0): on a match, k's way becomes
 * MC_WAY_FRONT and the item is prefetched; else k is left to the index (way 0). The
 * dataplane's hot path has this inline (hot.h); mc_store_read_begin then checks the item. */
void mc_store_front_place(const struct mc_store_ctx *cx, struct mc_key *k);
unsigned int mc_store_nparts(const struct mc_store *s);
unsigned int mc_store_part_of(const struct mc_store *s, uint64_t hash);
/* Place k (its partition and buckets, kept in k for the lookup) and prefetch its index
 * buckets: call for a whole burst before executing it. */
void mc_store_prefetch(const struct mc_store *s, struct mc_key *k);
/* Then, once the buckets are in: prefetch the first item whose tag matches (a hint, no check),
 * and note its slot in k for the lookup. */
void mc_store_prefetch_item(const struct mc_store *s, struct mc_key *k);

/* Clock. Store-relative time starts at 62 as memcached's does, so exptime 1 is already past.
 * tick: the production clock, from a monotonic source: whole seconds since the store started,
 * and the wall time now (absolute expiry times keep their wall-clock meaning; TTLs do not
 * jump when the wall clock is stepped). Any lcore may tick; time only moves forward.
 * set: relative time from the wall clock alone (tests and tools). */
void mc_store_clock_tick(struct mc_store *s, uint64_t mono_secs, int64_t unix_now);
void mc_store_clock_set(struct mc_store *s, int64_t unix_now);
uint32_t mc_store_now(const struct mc_store *s);
int64_t mc_store_started(const struct mc_store *s);
/* memcached's realtime(): client exptime -> store-relative (0 = never). */
uint32_t mc_store_realtime(const struct mc_store *s, int64_t exptime);

/* memcached's safe_strtoull over p[0..len): the number rules incr and every numeric token
 * follow. */
bool mc_store_strtoull(const uint8_t *p, size_t len, uint64_t *out);

/* Would memcached refuse this item as too large (its own accounting)? */
bool mc_store_too_large(const struct mc_store *s, uint32_t klen, uint32_t vlen);

/* Readers: begin finds the item and snapshots its header; check validates the snapshot (call
 * it after using header fields and again after copying the value; on false, start over).
 * Expired and flushed items are misses. begin counts nothing: the caller decides hit/miss. */
enum mc_store_status mc_store_read_begin(struct mc_store_ctx *cx, const struct mc_key *k,
					 struct mc_store_read *r);
static inline bool
mc_store_read_check(const struct mc_store_read *r)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return ((__atomic_load_n(r->ver, __ATOMIC_RELAXED) ^ r->v) |
		(__atomic_load_n(r->ep, __ATOMIC_RELAXED) ^ r->e)) == 0;
}
/* Mark a validated hit as used (CLOCK and fetched bits; writes only when not yet set). Safe
 * even if the item was replaced since: it writes nothing into item memory. */
#define MC_USE_HOT 0x01  /* CLOCK: used since the hand last passed */
#define MC_USE_SEEN 0x02 /* fetched at least once */
static inline void
mc_store_read_touch(const struct mc_store_read *r)
{
	/* The unit's use bits, never the item: it may be reused by now (see UNIT_SHIFT). */
	if ((__atomic_load_n(r->use, __ATOMIC_RELAXED) & (MC_USE_HOT | MC_USE_SEEN)) !=
	    (MC_USE_HOT | MC_USE_SEEN))
		__atomic_fetch_or(r->use, MC_USE_HOT | MC_USE_SEEN, __ATOMIC_RELAXED);
}
/* Take a reference on a validated hit so its memory outlives replacement, deletion and page
 * moves (zero-copy replies). Returns the reference for mc_store_ref_put, or NULL if the item
 * changed meanwhile (mc_store_read_check fails: start over) or is referenced too often (the
 * check passes: copy instead). */
uint8_t *mc_store_read_ref(const struct mc_store_read *r);
/* Drop a reference taken with mc_store_read_ref. Any thread. */
void mc_store_ref_put(uint8_t *ref);

/* Convenience: copy out value (at most cap bytes) with retries; for tests and tools. */
enum mc_store_status mc_store_get(struct mc_store_ctx *cx, const struct mc_key *k, void *buf,
				  size_t cap, uint32_t *vlen, uint32_t *flags, uint64_t *cas);

/* Writers. cas_out (may be NULL) gets the new item's CAS. */
enum mc_store_status mc_store_store(struct mc_store_ctx *cx, const struct mc_key *k,
				    const struct mc_store_args *a, uint64_t *cas_out);
/* Delete; cas_in non-zero requires a match (EXISTS otherwise). */
enum mc_store_status mc_store_delete(struct mc_store_ctx *cx, const struct mc_key *k,
				     uint64_t cas_in);
/* Touch (new exptime); returns MC_TOUCHED or MC_MISS. */
enum mc_store_status mc_store_touch(struct mc_store_ctx *cx, const struct mc_key *k,
				    uint32_t exptime);

/* incr/decr. memcached's rules: 64-bit unsigned, incr wraps, decr floors at 0, the value must
 * be a decimal number; a shorter result is padded with spaces in place, a longer one re-made.
 * With create set (meta N / binary initial), a miss stores `initial` with exptime/flags and
 * returns MC_STORED; a hit returns MC_OK. */
struct mc_delta_args {
	bool incr;
	uint64_t delta;
	bool create;
	uint64_t initial;
	uint32_t exptime;
	uint32_t flags;
	uint64_t cas_in;   /* non-zero: must match (EXISTS otherwise) */
};
enum mc_store_status mc_store_delta(struct mc_store_ctx *cx, const struct mc_key *k,
				    const struct mc_delta_args *a, uint64_t *value,
				    uint64_t *cas_out);

/* meta get with N/R/T, atomically under the partition lock: vivify a missing item (empty
 * value, viv_exptime), set a new TTL, decide the recache win (W) and report Z/X. */
struct mc_meta_args {
	bool vivify;
	uint32_t viv_exptime;
	bool set_ttl;
	uint32_t ttl;
	bool recache;
	uint32_t recache_time;
};
struct mc_meta_res {
	bool created;  /* vivified now */
	bool won;      /* W */
	bool token;    /* Z: a win had been handed out before */
	bool stale;    /* X */
};
enum mc_store_status mc_store_meta_prep(struct mc_store_ctx *cx, const struct mc_key *k,
					const struct mc_meta_args *a, struct mc_meta_res *res);
/* meta delete with I: mark stale, clear the token, new CAS, optionally a new TTL. */
enum mc_store_status mc_store_invalidate(struct mc_store_ctx *cx, const struct mc_key *k,
					 uint64_t cas_in, bool set_ttl, uint32_t ttl);

/* flush_all: items stored before now + delay (seconds; 0 = now) become invalid. */
void mc_store_flush(struct mc_store *s, uint32_t delay);

/* Bounded background work on one partition: reclaim expired/flushed items and released
 * zombies among at most `budget` chunks. Returns chunks visited. */
unsigned int mc_store_sweep(struct mc_store *s, unsigned int part, unsigned int budget);

/* Test seam for interleavings no single thread can otherwise produce: when set, called at
 * these points with the partition lock held, so a test can act there as a lock-free reader or
 * move the clock. NULL in production; it is read on cold paths only. */
enum mc_store_race {
	MC_RACE_STEAL,          /* page_steal chose a victim page, before unlinking its items */
	MC_RACE_DELTA_INPLACE,  /* incr/decr is about to rewrite a value in place */
	MC_RACE_STORE_ALLOC,    /* a store allocated the new item, before re-finding the old */
	MC_RACE_LEFT_INDEX,     /* an item's slot was cleared or given to another item, before
				 * the item is dropped */
};
extern void (*mc_store_race_hook)(enum mc_store_race where, void *arg);
extern void *mc_store_race_arg;

/* Introspection (lru_crawler metadump): a walk over the index without locks, a few buckets a
 * call, so it never holds up a writer or the fast path. Each bucket is read under its version
 * and read again if a writer changed it meanwhile; expired and flushed items are left out. Not
 * a snapshot: an item stored, deleted or moved between buckets during the walk may be seen
 * once, twice or not at all, as memcached's crawler may. */
struct mc_store_meta {
	uint32_t klen, vlen, flags;
	uint32_t exptime;  /* store-relative, 0 = never */
	uint64_t cas;
	uint8_t cls;       /* 0-based slab class */
	bool fetched;
	bool key_binary;   /* stored with meta's b flag */
	uint8_t key[MC_KEY_MAX];
};
#define MC_STORE_WALK_MIN 8 /* out must hold at least this many: one bucket's worth */
#define MC_STORE_WALK_DONE UINT64_MAX
/* From *cursor (0 to start), copy the live items of the next buckets into out[0..max), at most
 * max items and 256 buckets; *cursor moves past the buckets read and is MC_STORE_WALK_DONE
 * once the last partition's last bucket is done. Returns the items copied. */
unsigned int mc_store_walk(const struct mc_store *s, uint64_t *cursor, struct mc_store_meta *out,
			   unsigned int max);

/* Statistics. */
void mc_store_part_stats(const struct mc_store *s, struct mc_store_part_stats *sum);
struct mc_store_class_info {
	uint32_t chunk_size;
	uint32_t per_slab;
	uint64_t slabs;
	uint64_t used_chunks;
	uint64_t free_chunks;
	uint64_t evictions;
};
unsigned int mc_store_nclasses(const struct mc_store *s);
void mc_store_class_stats(const struct mc_store *s, unsigned int cls, struct mc_store_class_info *ci);
size_t mc_store_limit_bytes(const struct mc_store *s);
size_t mc_store_index_bytes(const struct mc_store *s);
uint32_t mc_store_max_item_size(const struct mc_store *s);

#endif
