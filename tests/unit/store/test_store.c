/* Store: every operation and status, memcached's expiry, CAS, incr/decr edges, slab classes,
 * eviction under full memory, items bigger than a page, references surviving replacement,
 * flush_all with delay, and a concurrent self-checking read/write stress. */
/* First: its inline helpers take names the test file makes global (s, cx). */
#include "store/store_int.h"
#include "tests/unit/store/store_test.h"

static void
test_hash_is_keyed(void **state)
{
	static uint8_t m1[4 << 20] __attribute__((aligned(64))), m2[4 << 20] __attribute__((aligned(64)));
	struct mc_store_settings set = {.nparts = 1, .max_item_size = 1024, .factor = 1.25,
					.chunk_min = 48, .hash_seed = {1, 2}};
	struct mc_store *a, *b;
	unsigned int i, same = 0;
	(void)state;
	a = mc_store_create(m1, sizeof(m1), &set);
	b = mc_store_create(m2, sizeof(m2), &set);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(mc_store_hash(a, "key", 3), mc_store_hash(b, "key", 3));
	set.hash_seed[1] = 3;
	b = mc_store_create(m2, sizeof(m2), &set);
	for (i = 0; i < 64; i++) {
		char k[16];
		int n = snprintf(k, sizeof(k), "key:%u", i);
		same += mc_store_hash(a, k, (uint32_t)n) == mc_store_hash(b, k, (uint32_t)n);
	}
	assert_int_equal(same, 0);
	set.hash_seed[0] = set.hash_seed[1] = 0;
	a = mc_store_create(m1, sizeof(m1), &set);
	b = mc_store_create(m2, sizeof(m2), &set);
	assert_int_not_equal(mc_store_hash(a, "key", 3), mc_store_hash(b, "key", 3));
}

/* mc_sum_udp is the UDP rule (complement the folded sum; 0 goes as 0xffff) for sums that
 * are 0, multiples of 0xffff (a folded 0xffff), and spread over the widths sums reach. */
static void
test_udp_sum_rule(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, sum;
	unsigned int i;
	(void)state;
	for (i = 0; i < 400000; i++) {
		uint16_t want;
		if (i < 3000)
			sum = (uint64_t)0xffff * i;
		else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			sum = x >> (i % 48); /* 16 to 64 bits wide */
		}
		want = (uint16_t)~mc_sum_fold(sum);
		if (want == 0)
			want = 0xffff;
		assert_int_equal(mc_sum_udp(sum), want);
	}
}

static void
test_set_get_modes(void **state)
{
	(void)state;
	make(16, 1, 1 << 20);
	assert_null(get("a"));
	assert_int_equal(set("a", "1", 7, 0), MC_STORED);
	assert_string_equal(get("a"), "1");
	assert_int_equal(op(MC_ADD, "a", "2", 0), MC_NOT_STORED);
	assert_int_equal(op(MC_ADD, "b", "2", 0), MC_STORED);
	assert_int_equal(op(MC_REPLACE, "c", "3", 0), MC_NOT_STORED);
	assert_int_equal(op(MC_REPLACE, "b", "22", 0), MC_STORED);
	assert_string_equal(get("b"), "22");
	assert_int_equal(op(MC_APPEND, "b", "x", 0), MC_STORED);
	assert_int_equal(op(MC_PREPEND, "b", "y", 0), MC_STORED);
	assert_string_equal(get("b"), "y22x");
	assert_int_equal(op(MC_APPEND, "nope", "x", 0), MC_NOT_STORED);
	assert_int_equal(op(MC_PREPEND, "nope", "x", 0), MC_NOT_STORED);
	/* Append keeps flags. */
	{
		struct mc_key k = K("a");
		uint32_t vlen, flags;
		char buf[16];
		assert_int_equal(op(MC_APPEND, "a", "5", 0), MC_STORED);
		assert_int_equal(mc_store_get(&cx, &k, buf, sizeof(buf), &vlen, &flags, NULL), MC_OK);
		assert_int_equal(flags, 7);
		assert_int_equal(vlen, 2);
	}
	/* Empty value. */
	assert_int_equal(set("e", "", 0, 0), MC_STORED);
	assert_string_equal(get("e"), "");
	/* 250-byte key. */
	{
		char key[251];
		memset(key, 'k', 250);
		key[250] = '\0';
		assert_int_equal(set(key, "long", 0, 0), MC_STORED);
		assert_string_equal(get(key), "long");
	}
	struct mc_store_part_stats ps;
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.curr_items, 4);
}

static void
test_delete_touch(void **state)
{
	struct mc_key k;
	(void)state;
	make(16, 1, 1 << 20);
	k = K("d");
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_MISS);
	set("d", "v", 0, 0);
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	assert_null(get("d"));
	assert_int_equal(mc_store_touch(&cx, &k, 0), MC_MISS);
	set("d", "v", 0, 0);
	assert_int_equal(mc_store_touch(&cx, &k, mc_store_realtime(s, 10)), MC_TOUCHED);
	mc_store_clock_set(s, T0 + 9);
	assert_non_null(get("d"));
	mc_store_clock_set(s, T0 + 10);
	assert_null(get("d"));
	assert_int_equal(cx.st.touch_hits, 1);
	assert_int_equal(cx.st.touch_misses, 1);
	assert_int_equal(cx.st.delete_hits, 1);
	assert_int_equal(cx.st.delete_misses, 1);
}

static void
test_cas(void **state)
{
	struct mc_key k;
	uint64_t c1, c2, c3;
	(void)state;
	make(16, 1, 1 << 20);
	k = K("c");
	assert_int_equal(mc_store_store(&cx, &k,
					&(struct mc_store_args){
						.mode = MC_CAS, .val = "x", .vlen = 1, .cas_in = 1},
					NULL),
			 MC_MISS);
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = "x", .vlen = 1}, &c1),
		MC_STORED);
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){
				       .mode = MC_CAS, .val = "y", .vlen = 1, .cas_in = c1 + 1},
			       NULL),
		MC_EXISTS);
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){
				       .mode = MC_CAS, .val = "y", .vlen = 1, .cas_in = c1},
			       &c2),
		MC_STORED);
	assert_true(c2 != c1);
	assert_string_equal(get("c"), "y");
	/* Every modification makes a new CAS, touch does not. */
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_APPEND, .val = "z", .vlen = 1},
			       &c3),
		MC_STORED);
	assert_true(c3 != c2);
	assert_int_equal(mc_store_delete(&cx, &k, c2), MC_EXISTS);
	assert_int_equal(mc_store_delete(&cx, &k, c3), MC_DELETED);
	assert_int_equal(cx.st.cas_hits, 1);
	assert_int_equal(cx.st.cas_badval, 1);
	assert_int_equal(cx.st.cas_misses, 1);
}

static void
test_cas_unique_across_partitions(void **state)
{
	uint64_t seen[64];
	int i, j;
	(void)state;
	make(32, 4, 1 << 20);
	for (i = 0; i < 64; i++) {
		char key[8];
		struct mc_key k;
		snprintf(key, sizeof(key), "k%d", i);
		k = K(key);
		assert_int_equal(mc_store_store(&cx, &k,
						&(struct mc_store_args){
							.mode = MC_SET, .val = "v", .vlen = 1},
						&seen[i]),
				 MC_STORED);
		for (j = 0; j < i; j++)
			assert_true(seen[j] != seen[i]);
	}
}

static void
test_expiry_rules(void **state)
{
	(void)state;
	make(16, 1, 1 << 20);
	/* 0 = never. */
	set("never", "v", 0, mc_store_realtime(s, 0));
	/* Relative up to 30 days. */
	set("rel", "v", 0, mc_store_realtime(s, 100));
	set("rel30d", "v", 0, mc_store_realtime(s, 2592000));
	/* Beyond 30 days: absolute unix time. */
	set("abs", "v", 0, mc_store_realtime(s, T0 + 50));
	set("abspast", "v", 0, mc_store_realtime(s, T0 - 1000));
	set("abs30d1", "v", 0, mc_store_realtime(s, 2592001)); /* 1970: long past */
	/* Negative: already expired. */
	set("neg", "v", 0, mc_store_realtime(s, -1));
	assert_non_null(get("never"));
	assert_non_null(get("rel"));
	assert_non_null(get("rel30d"));
	assert_non_null(get("abs"));
	assert_null(get("abspast"));
	assert_null(get("abs30d1"));
	assert_null(get("neg"));
	mc_store_clock_set(s, T0 + 49);
	assert_non_null(get("abs"));
	mc_store_clock_set(s, T0 + 50);
	assert_null(get("abs"));
	assert_non_null(get("rel"));
	mc_store_clock_set(s, T0 + 100);
	assert_null(get("rel"));
	mc_store_clock_set(s, T0 + 2591999);
	assert_non_null(get("rel30d"));
	mc_store_clock_set(s, T0 + 2592000);
	assert_null(get("rel30d"));
	assert_non_null(get("never"));
	assert_true(cx.st.get_expired >= 5);
	/* Expired items are not there for add either. */
	assert_int_equal(op(MC_ADD, "rel", "new", 0), MC_STORED);
}

static void
test_flush_all(void **state)
{
	(void)state;
	make(16, 2, 1 << 20);
	set("a", "1", 0, 0);
	set("b", "2", 0, 0);
	mc_store_flush(s, 0);
	assert_null(get("a"));
	assert_null(get("b"));
	set("a", "3", 0, 0);
	assert_string_equal(get("a"), "3");
	/* Delayed: items stored before the deadline go at the deadline, later ones stay. */
	mc_store_flush(s, 10);
	set("c", "4", 0, 0);
	mc_store_clock_set(s, T0 + 9);
	assert_non_null(get("a"));
	assert_non_null(get("c"));
	mc_store_clock_set(s, T0 + 10);
	assert_null(get("a"));
	assert_null(get("c"));
	set("d", "5", 0, 0);
	assert_string_equal(get("d"), "5");
	assert_null(get("a"));
	assert_true(cx.st.get_flushed >= 4);
}

static void
test_incr_decr(void **state)
{
	enum mc_store_status rc;
	(void)state;
	make(16, 1, 1 << 20);
	delta("n", true, 1, &rc);
	assert_int_equal(rc, MC_MISS);
	set("n", "10", 0, 0);
	assert_int_equal(delta("n", true, 5, &rc), 15);
	assert_int_equal(rc, MC_OK);
	/* Shorter result: padded with spaces in place, like memcached. */
	assert_int_equal(delta("n", false, 6, &rc), 9);
	assert_string_equal(get("n"), "9 ");
	/* Decr floors at 0. */
	assert_int_equal(delta("n", false, 100, &rc), 0);
	assert_string_equal(get("n"), "0 ");
	/* Longer result: a new item. */
	assert_int_equal(delta("n", true, 12345, &rc), 12345);
	assert_string_equal(get("n"), "12345");
	/* Incr wraps at 2^64. */
	set("w", "18446744073709551615", 0, 0);
	assert_int_equal(delta("w", true, 2, &rc), 1);
	assert_string_equal(get("w"), "1                   ");
	/* Non-numeric values. */
	set("x", "abc", 0, 0);
	delta("x", true, 1, &rc);
	assert_int_equal(rc, MC_NON_NUMERIC);
	set("x", "", 0, 0);
	delta("x", true, 1, &rc);
	assert_int_equal(rc, MC_NON_NUMERIC);
	set("x", "-1", 0, 0);
	delta("x", true, 1, &rc);
	assert_int_equal(rc, MC_NON_NUMERIC);
	set("x", "18446744073709551616", 0, 0);
	delta("x", true, 1, &rc);
	assert_int_equal(rc, MC_NON_NUMERIC);
	set("x", "12a", 0, 0);
	delta("x", true, 1, &rc);
	assert_int_equal(rc, MC_NON_NUMERIC);
	/* Spaces alone are no number (memcached: no digits); spaces around one are fine. */
	set("x", "  ", 0, 0);
	delta("x", true, 1, &rc);
	assert_int_equal(rc, MC_NON_NUMERIC);
	set("x", " 7 ", 0, 0);
	assert_int_equal(delta("x", true, 1, &rc), 8);
	assert_int_equal(rc, MC_OK);
	/* A number padded far past any copy (memcached parses the value in place). */
	{
		static char pad[1200];
		memset(pad, ' ', sizeof(pad) - 1);
		pad[0] = '7';
		set("x", pad, 0, 0);
		assert_int_equal(delta("x", true, 1, &rc), 8);
		assert_int_equal(rc, MC_OK);
		memset(pad, ' ', sizeof(pad) - 1);
		pad[700] = '7';
		set("x", pad, 0, 0);
		assert_int_equal(delta("x", true, 2, &rc), 9);
		assert_int_equal(rc, MC_OK);
	}
	/* Create with an initial value (meta N, binary). */
	{
		struct mc_key k = K("newc");
		struct mc_delta_args a = {.incr = true, .delta = 3, .create = true, .initial = 42};
		uint64_t v;
		/* Created by the call: MC_STORED (meta ma answers HD for it even with q). */
		assert_int_equal(mc_store_delta(&cx, &k, &a, &v, NULL), MC_STORED);
		assert_int_equal(v, 42);
		assert_int_equal(mc_store_delta(&cx, &k, &a, &v, NULL), MC_OK);
		assert_int_equal(v, 45);
	}
}

static void
test_too_large_and_classes(void **state)
{
	char *big;
	struct mc_key k;
	struct mc_store_class_info ci;
	unsigned int c;
	(void)state;
	make(16, 1, 1 << 20);
	k = K("big");
	/* Classes grow by the factor and are 8-byte aligned; the first holds 24 + 48 bytes. */
	mc_store_class_stats(s, 0, &ci);
	assert_int_equal(ci.chunk_size, 72);
	for (c = 1; c < mc_store_nclasses(s); c++) {
		struct mc_store_class_info a, b;
		mc_store_class_stats(s, c - 1, &a);
		mc_store_class_stats(s, c, &b);
		assert_true(b.chunk_size > a.chunk_size);
		assert_int_equal(b.chunk_size % 8, 0);
	}
	mc_store_class_stats(s, mc_store_nclasses(s) - 1, &ci);
	assert_int_equal(ci.chunk_size, 1 << 20);
	/* memcached's boundary: 48+8 header, key+1, value+2 <= item size max. */
	big = malloc(1 << 20);
	memset(big, 'b', 1 << 20);
	uint32_t fit = (1 << 20) - 48 - 8 - 3 - 1 - 2;
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = big, .vlen = fit + 1},
			       NULL),
		MC_TOO_LARGE);
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = big, .vlen = fit},
			       NULL),
		MC_STORED);
	{
		uint32_t vlen;
		static char out[1 << 20];
		assert_int_equal(mc_store_get(&cx, &k, out, sizeof(out), &vlen, NULL, NULL), MC_OK);
		assert_int_equal(vlen, fit);
		assert_memory_equal(out, big, fit);
	}
	/* Append or prepend past the limit: NOT_STORED as memcached answers (its allocation of the
	 * joined item fails), and the old value stays. */
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_APPEND, .val = "xy", .vlen = 2},
			       NULL),
		MC_NOT_STORED);
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_PREPEND, .val = "xy", .vlen = 2},
			       NULL),
		MC_NOT_STORED);
	assert_non_null(get("big"));
	/* A failed set drops the old value (memcached). */
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = big, .vlen = fit + 1},
			       NULL),
		MC_TOO_LARGE);
	assert_null(get("big"));
	free(big);
}

static void
test_items_bigger_than_a_page(void **state)
{
	char *big = malloc(3 << 20);
	struct mc_key k;
	static char out[3 << 20];
	uint32_t vlen, i;
	(void)state;
	make(32, 1, 4 << 20);
	k = K("huge");
	for (i = 0; i < (3u << 20); i++)
		big[i] = (char)(i * 7);
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = big, .vlen = 3 << 20},
			       NULL),
		MC_STORED);
	assert_int_equal(mc_store_get(&cx, &k, out, sizeof(out), &vlen, NULL, NULL), MC_OK);
	assert_int_equal(vlen, 3 << 20);
	assert_memory_equal(out, big, 3 << 20);
	free(big);
}

static void
test_eviction_under_full_memory(void **state)
{
	char key[32], val[32];
	int i, hits = 0;
	struct mc_store_part_stats ps;
	(void)state;
	make(8, 1, 1 << 20);
	memset(val, 'v', sizeof(val));
	/* Write far more than fits: every set succeeds, old keys are evicted. */
	for (i = 0; i < 400000; i++) {
		struct mc_key k;
		snprintf(key, sizeof(key), "key:%012d", i);
		k = K(key);
		assert_int_equal(mc_store_store(&cx, &k,
						&(struct mc_store_args){
							.mode = MC_SET, .val = val, .vlen = 32},
						NULL),
				 MC_STORED);
	}
	mc_store_part_stats(s, &ps);
	assert_true(ps.evictions > 0);
	assert_true(ps.curr_items < 400000);
	assert_true(ps.bytes <= (8u << 20));
	/* The newest keys are there. */
	for (i = 400000 - 1000; i < 400000; i++) {
		snprintf(key, sizeof(key), "key:%012d", i);
		hits += get(key) != NULL;
	}
	printf("# eviction: %d of the newest 1000 present, %" PRIu64 " evictions (%" PRIu64 " by index), %" PRIu64 " items\n", hits, ps.evictions, ps.index_evictions, ps.curr_items);
	assert_true(hits > 990);
	/* A class with no page while memory is full: a page moves over from the busiest class
	 * (memcached's slab reassign), so other sizes keep being stored. */
	{
		char *v = calloc(1, 500000);
		struct mc_key k = K("mid");
		assert_int_equal(mc_store_store(&cx, &k,
						&(struct mc_store_args){
							.mode = MC_SET, .val = v, .vlen = 500000},
						NULL),
				 MC_STORED);
		assert_int_equal(mc_store_store(&cx, &k,
						&(struct mc_store_args){
							.mode = MC_SET, .val = v, .vlen = 4000},
						NULL),
				 MC_STORED);
		mc_store_part_stats(s, &ps);
		assert_true(ps.slabs_moved >= 2);
		assert_int_equal(ps.zombies, 0);
		free(v);
	}
	/* Still consistent: the newest small keys are readable. */
	snprintf(key, sizeof(key), "key:%012d", 399999);
	assert_non_null(get(key));
}

static void
test_clock_monotonic_ttl_wall_absolute(void **state)
{
	(void)state;
	make(16, 1, 1 << 20);
	mc_store_clock_tick(s, 0, T0);
	set("rel", "v", 0, mc_store_realtime(s, 10));
	/* The wall clock jumps an hour ahead: a 10-second TTL does not expire. */
	mc_store_clock_tick(s, 1, T0 + 3600);
	assert_non_null(get("rel"));
	/* An absolute time an hour and five seconds after start is five seconds away now. */
	set("abs", "v", 0, mc_store_realtime(s, T0 + 3605));
	mc_store_clock_tick(s, 5, T0 + 3604);
	assert_non_null(get("abs"));
	mc_store_clock_tick(s, 6, T0 + 3605);
	assert_null(get("abs"));
	/* Ten monotonic seconds after the set, the TTL is over; time never runs backwards. */
	mc_store_clock_tick(s, 9, T0 + 3608);
	assert_non_null(get("rel"));
	mc_store_clock_tick(s, 10, T0 + 3609);
	assert_null(get("rel"));
	mc_store_clock_tick(s, 3, T0 + 3610);
	assert_int_equal(mc_store_now(s), 62 + 10);
}

static void
test_sweep_reclaims_expired(void **state)
{
	int i;
	char key[16];
	struct mc_store_part_stats ps;
	(void)state;
	make(16, 1, 1 << 20);
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "e%d", i);
		set(key, "v", 0, mc_store_realtime(s, 5));
	}
	mc_store_clock_set(s, T0 + 6);
	mc_store_sweep(s, 0, 100000);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.curr_items, 0);
	assert_int_equal(ps.reclaimed, 100);
	assert_int_equal(ps.expired_unfetched, 100);
}

/* k's second bucket (mc_key keeps the first). */
static uint32_t
bkt2(const struct mc_key *k)
{
	uint32_t b1, b2;
	buckets_in(s->index[k->part].nbuckets, k->hash, &b1, &b2);
	return b2;
}

/* The slot the item prefetch noted is a hint the lookup checks: stale (deleted, replaced,
 * expired) or pointing at another key's slot or an empty one, the answer is the scan's. */
static uint32_t
get_k(struct mc_key *k, char *buf, size_t cap)
{
	uint32_t vlen = UINT32_MAX;
	if (mc_store_get(&cx, k, buf, cap, &vlen, NULL, NULL) != MC_OK)
		return UINT32_MAX;
	return vlen;
}

static void
test_slot_hint_is_checked(void **state)
{
	struct mc_key k, other;
	char buf[16], name[24];
	unsigned int w;
	(void)state;
	make(16, 1, 1 << 20);
	set("hint", "v1", 0, 0);
	k = K("hint");
	mc_store_prefetch(s, &k);
	mc_store_prefetch_item(s, &k);
	assert_in_range(k.way, 1, 7); /* in its first bucket */
	/* A neighbour in k's other bucket (its first choice, empty, so it goes there). */
	for (w = 0;; w++) {
		snprintf(name, sizeof(name), "other:%u", w);
		other = K(name);
		mc_store_prefetch(s, &other);
		if (other.bkt == bkt2(&k) && bkt2(&other) != k.bkt) {
			assert_int_equal(set(name, "o", 0, 0), MC_STORED);
			break;
		}
	}
	mc_store_prefetch_item(s, &other);
	assert_in_range(other.way, 1, 7);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "v1", 2);
	/* Deleted: a miss; set again: found wherever it went. */
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), UINT32_MAX);
	set("hint", "v22", 0, 0);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "v22", 3);
	/* Every slot of both buckets as the hint (the neighbour's among them), with the
	 * neighbour's item as the item the prefetch saw: only k's own item answers. */
	for (w = 0; w < 2 * SLOTS; w++) {
		k.way = (uint8_t)(1 + w % SLOTS);
		k.bucket = &s->index[k.part].buckets[w < SLOTS ? k.bkt : bkt2(&k)];
		k.item = other.item;
		assert_int_equal(get_k(&k, buf, sizeof(buf)), 3);
		assert_memory_equal(buf, "v22", 3);
	}
	/* Expired through the hint: a miss, counted as one. */
	set("hint", "v3", 0, (uint32_t)mc_store_realtime(s, 5));
	k = K("hint");
	mc_store_prefetch(s, &k);
	mc_store_prefetch_item(s, &k);
	mc_store_clock_set(s, T0 + 6);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), UINT32_MAX);
	assert_int_equal(cx.st.get_expired, 1);
	assert_int_equal(get_k(&other, buf, sizeof(buf)), 1);
}

/* The item the prefetch saw is a hint as well: replaced since while a reference keeps the old
 * one's memory as it was (a zombie, its key and value intact), the lookup reads the new one;
 * deleted, a miss. */
static void
test_item_hint_is_checked(void **state)
{
	static const char longer[] = "a value long enough for another slab class";
	struct mc_store_read r;
	struct mc_key k;
	char buf[64];
	const void *seen;
	uint8_t *ref;
	(void)state;
	make(16, 1, 1 << 20);
	assert_int_equal(set("ih", "short", 0, 0), MC_STORED);
	k = K("ih");
	mc_store_prefetch(s, &k);
	mc_store_prefetch_item(s, &k);
	assert_in_range(k.way, 1, 7);
	seen = k.item;
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	ref = mc_store_read_ref(&r);
	assert_non_null(ref);
	assert_int_equal(set("ih", longer, 0, 0), MC_STORED);
	assert_ptr_equal(k.item, seen);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), sizeof(longer) - 1);
	assert_memory_equal(buf, longer, sizeof(longer) - 1);
	mc_store_ref_put(ref);
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), UINT32_MAX);
}

/* Keys go to their first bucket while it has room to spare, so the item prefetch, which
 * reads only that bucket, finds them; past that, to the emptier bucket, and a key placed
 * second is still found (the prefetch then requests the second bucket and notes no slot). */
static int
cmp_u64(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Two keys with the same 16-bit tag in the same first bucket (found among 200,000 by their
 * hashes): each is found, though the item prefetch and the scan meet the other's slot first
 * for one of them (tag_matches' candidates taken in turn). */
static void
test_tag_collision_in_one_bucket(void **state)
{
	enum { N = 200000 };
	static uint64_t h[N];
	static char a[24], b[24];
	struct mc_key ka, kb;
	char buf[16];
	unsigned int i, x = N, y = N;
	(void)state;
	make(16, 1, 1 << 20);
	for (i = 0; i < N; i++) {
		char name[24];
		struct mc_key k;
		snprintf(name, sizeof(name), "tc:%u", i);
		k = K(name);
		mc_store_prefetch(s, &k);
		h[i] = (uint64_t)tag_of(k.hash) << 48 | (uint64_t)k.bkt << 20 | i;
	}
	qsort(h, N, sizeof(h[0]), cmp_u64);
	for (i = 1; i < N && x == N; i++)
		if (h[i] >> 20 == h[i - 1] >> 20) {
			x = (unsigned int)(h[i - 1] & 0xfffff);
			y = (unsigned int)(h[i] & 0xfffff);
		}
	assert_int_not_equal(x, N);
	snprintf(a, sizeof(a), "tc:%u", x);
	snprintf(b, sizeof(b), "tc:%u", y);
	assert_int_equal(set(a, "va", 0, 0), MC_STORED);
	assert_int_equal(set(b, "vbb", 0, 0), MC_STORED);
	ka = K(a);
	kb = K(b);
	mc_store_prefetch(s, &ka);
	mc_store_prefetch(s, &kb);
	assert_int_equal(ka.bkt, kb.bkt);
	assert_int_equal(tag_of(ka.hash), tag_of(kb.hash));
	/* The scan alone, then through the item prefetch's hint. */
	assert_int_equal(get_k(&ka, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "va", 2);
	assert_int_equal(get_k(&kb, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "vbb", 3);
	mc_store_prefetch_item(s, &ka);
	mc_store_prefetch_item(s, &kb);
	assert_ptr_equal(ka.item, kb.item); /* the first match, one key's item, for both */
	assert_int_equal(get_k(&ka, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "va", 2);
	assert_int_equal(get_k(&kb, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "vbb", 3);
}

static void
test_first_bucket_first(void **state)
{
	static char names[8][24];
	struct mc_key first, k;
	char buf[16];
	unsigned int n = 0, w;
	(void)state;
	make(16, 1, 1 << 20);
	first = K("first");
	mc_store_prefetch(s, &first);
	/* Five more keys whose first bucket is first's, each with an empty second bucket. */
	for (w = 0; n < 6; w++) {
		snprintf(names[n], sizeof(names[n]), "fill:%u", w);
		k = K(names[n]);
		mc_store_prefetch(s, &k);
		if (k.bkt == first.bkt && bkt2(&k) != bkt2(&first))
			n++;
	}
	assert_int_equal(set("first", "f", 0, 0), MC_STORED);
	/* Four into the first bucket, though the second is emptier: 2 of 7 slots left. */
	for (n = 0; n < 4; n++) {
		assert_int_equal(set(names[n], "v", 0, 0), MC_STORED);
		k = K(names[n]);
		mc_store_prefetch(s, &k);
		mc_store_prefetch_item(s, &k);
		assert_in_range(k.way, 1, 7);
	}
	/* The fifth to its (empty) second bucket. */
	assert_int_equal(set(names[4], "second", 0, 0), MC_STORED);
	k = K(names[4]);
	mc_store_prefetch(s, &k);
	mc_store_prefetch_item(s, &k);
	assert_int_equal(k.way, 0);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "second", 6);
	/* A key not stored: no slot noted, a miss. */
	k = K(names[5]);
	mc_store_prefetch(s, &k);
	mc_store_prefetch_item(s, &k);
	assert_int_equal(k.way, 0);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), UINT32_MAX);
	k = K("first");
	mc_store_prefetch(s, &k);
	mc_store_prefetch_item(s, &k);
	assert_in_range(k.way, 1, 7);
	assert_int_equal(get_k(&k, buf, sizeof(buf)), 1);
}

/* The lookup's key compare, whose loads overlap: every length to 40 and the longest key, equal,
 * and unequal at each byte in turn. Each key is alone in its heap block, so a load past its
 * end is an ASan error. */
static void
test_key_compare_every_length(void **state)
{
	uint32_t n, i;
	(void)state;
	for (n = 0; n <= MC_KEY_MAX; n = n < 40 ? n + 1 : (n < MC_KEY_MAX ? MC_KEY_MAX : n + 1)) {
		uint8_t *a = malloc(n + !n), *b = malloc(n + !n);
		assert_non_null(a);
		assert_non_null(b);
		for (i = 0; i < n; i++)
			a[i] = b[i] = (uint8_t)('a' + (i * 7) % 26);
		assert_true(key_bytes_eq(a, b, n));
		for (i = 0; i < n; i++) {
			b[i] ^= 0x20;
			assert_false(key_bytes_eq(a, b, n));
			b[i] ^= 0x20;
		}
		free(a);
		free(b);
	}
}

/* ---- concurrency: one writer per partition, readers on other threads ---- */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_keyed),
		cmocka_unit_test(test_udp_sum_rule),
		cmocka_unit_test(test_set_get_modes),
		cmocka_unit_test(test_delete_touch),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_cas_unique_across_partitions),
		cmocka_unit_test(test_expiry_rules),
		cmocka_unit_test(test_flush_all),
		cmocka_unit_test(test_incr_decr),
		cmocka_unit_test(test_too_large_and_classes),
		cmocka_unit_test(test_items_bigger_than_a_page),
		cmocka_unit_test(test_eviction_under_full_memory),
		cmocka_unit_test(test_clock_monotonic_ttl_wall_absolute),
		cmocka_unit_test(test_sweep_reclaims_expired),
		cmocka_unit_test(test_slot_hint_is_checked),
		cmocka_unit_test(test_tag_collision_in_one_bucket),
		cmocka_unit_test(test_first_bucket_first),
		cmocka_unit_test(test_key_compare_every_length),
		cmocka_unit_test(test_item_hint_is_checked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
