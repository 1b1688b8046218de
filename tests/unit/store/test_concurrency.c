/* The store under concurrency: references that outlive replacement, every interleaving of a
 * lock-free reader with a writer that the race seam can reproduce, and a stress run of writers
 * and readers on threads that checks every value read. */
#include "tests/unit/store/store_test.h"

static void
test_reference_survives_replacement(void **state)
{
	struct mc_key k;
	struct mc_store_read r;
	struct mc_store_part_stats ps;
	uint8_t *ref;
	(void)state;
	make(16, 1, 1 << 20);
	k = K("ref");
	set("ref", "original", 0, 0);
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	ref = mc_store_read_ref(&r);
	assert_non_null(ref);
	/* Replace and delete: the held item stays readable and is not reused. */
	set("ref", "second", 0, 0);
	set("ref", "third!!!", 0, 0);
	assert_memory_equal(r.value, "original", 8);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 1);
	mc_store_ref_put(ref);
	/* The sweep reclaims it once released. */
	mc_store_sweep(s, 0, 100000);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 0);
	assert_string_equal(get("ref"), "third!!!");
}

/* ---- interleavings with lock-free readers, through the store's race seam ---- */

static struct mc_store_read race_r;
static uint8_t *race_ref;
static bool race_ref_taken;
static const char *race_key;
static int64_t race_clock;

/* At the seam: a reader on another lcore validates race_key and takes a zero-copy reference
 * (what a reply does before its mbufs go to TX), or the clock moves on. */
static void
race_reader(enum mc_store_race where, void *arg)
{
	struct mc_store_ctx rcx = {.s = s};
	struct mc_key k;
	(void)arg;
	if (race_clock != 0) {
		mc_store_clock_set(s, race_clock);
		return;
	}
	if (race_key == NULL || race_ref_taken)
		return;
	(void)where;
	k = K(race_key);
	if (mc_store_read_begin(&rcx, &k, &race_r) == MC_OK &&
	    (race_ref = mc_store_read_ref(&race_r)) != NULL)
		race_ref_taken = true;
}

static void
race_reset(void)
{
	mc_store_race_hook = NULL;
	race_ref_taken = false;
	race_key = NULL;
	race_clock = 0;
}

/* A 16 MiB store of 100-byte values filled until it evicts, with "first" (100 'F's) stored
 * first, so on the oldest page of its class, and kept hot all along. */
static void
fill_with_first_hot(void)
{
	char val[101], key[32];
	struct mc_store_part_stats ps;
	int i;
	make(16, 1, 1 << 20);
	memset(val, 'F', 100);
	val[100] = '\0';
	assert_int_equal(set("first", val, 0, 0), MC_STORED);
	memset(val, 'v', 100);
	for (i = 0;; i++) {
		snprintf(key, sizeof(key), "fill:%d", i);
		assert_int_equal(set(key, val, 0, 0), MC_STORED);
		assert_non_null(get("first"));
		mc_store_part_stats(s, &ps);
		if (ps.evictions > 0)
			return;
	}
}

/* A page move must not re-carve memory under a reference taken while it runs: the reply in
 * flight would send another item's bytes, and its put would corrupt the new item's count. */
static void
test_page_move_against_reference(void **state)
{
	char val[101], *mid = calloc(1, 4000);
	struct mc_store_part_stats ps;
	struct mc_key k;
	(void)state;
	fill_with_first_hot();
	/* A 4000-byte value has no page: one moves from the 100-byte class, and a reader takes
	 * a reference on "first" just as the move starts. */
	race_key = "first";
	mc_store_race_hook = race_reader;
	k = K("mid");
	mc_store_store(&cx, &k, &(struct mc_store_args){.mode = MC_SET, .val = mid, .vlen = 4000},
		       NULL);
	assert_true(race_ref_taken);
	memset(val, 'F', 100);
	assert_memory_equal(race_r.value, val, 100);
	mc_store_ref_put(race_ref);
	race_reset();
	/* Released: the move goes through now, and nothing is left pinned. */
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = mid, .vlen = 4000},
			       NULL),
		MC_STORED);
	mc_store_sweep(s, 0, 1u << 30);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 0);
	assert_true(ps.slabs_moved >= 1);
	free(mid);
}

/* A reference held on the oldest page (a reply still in a TX ring): the move passes that page
 * by and takes the next, instead of emptying the referenced page again at every attempt. */
static void
test_page_move_passes_a_referenced_page(void **state)
{
	char val[101], *mid = calloc(1, 4000);
	struct mc_store_read r;
	struct mc_key k;
	uint8_t *ref;
	(void)state;
	fill_with_first_hot();
	memset(val, 'F', 100);
	val[100] = '\0';
	k = K("first");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	ref = mc_store_read_ref(&r);
	assert_non_null(ref);
	k = K("mid");
	assert_int_equal(
		mc_store_store(&cx, &k,
			       &(struct mc_store_args){.mode = MC_SET, .val = mid, .vlen = 4000},
			       NULL),
		MC_STORED);
	assert_non_null(get("first"));
	assert_memory_equal(r.value, val, 100);
	mc_store_ref_put(ref);
	free(mid);
}

/* meta's `ms <k> <n> I C<older>`: the item expires (or a delayed flush comes due) while the
 * new item is allocated. The store finds nothing to mark stale: NOT_FOUND, not a crash. */
static void
test_stale_store_when_item_dies_meanwhile(void **state)
{
	struct mc_key k;
	uint64_t c1;
	int round;
	(void)state;
	for (round = 0; round < 2; round++) {
		make(16, 1, 1 << 20);
		k = K("st");
		assert_int_equal(
			mc_store_store(&cx, &k,
				       &(struct mc_store_args){.mode = MC_SET,
							       .exptime = mc_store_realtime(s, 10),
							       .val = "a",
							       .vlen = 1},
				       &c1),
			MC_STORED);
		assert_int_equal(
			mc_store_store(&cx, &k,
				       &(struct mc_store_args){.mode = MC_SET,
							       .exptime = mc_store_realtime(s, 10),
							       .val = "b",
							       .vlen = 1},
				       NULL),
			MC_STORED);
		if (round == 1)
			mc_store_flush(s, 5);
		race_clock = T0 + (round == 0 ? 20 : 6);
		mc_store_race_hook = race_reader;
		assert_int_equal(mc_store_store(&cx, &k,
						&(struct mc_store_args){.mode = MC_CAS,
									.val = "c",
									.vlen = 1,
									.cas_in = c1,
									.stale_ok = true},
						NULL),
				 MC_MISS);
		race_reset();
		assert_null(get("st"));
	}
}

/* A reader whose snapshot went stale (its item deleted, the chunk reused) and who then takes
 * a reference or marks the hit used must write nothing into the chunk's new item. */
static void
test_stale_reader_writes_nothing(void **state)
{
	struct mc_key ka, kb;
	struct mc_store_read ra, rb;
	uint8_t before[64];
	(void)state;
	make(16, 1, 1 << 20);
	ka = K("a");
	kb = K("b");
	set("a", "value-a", 0, 0);
	assert_int_equal(mc_store_read_begin(&cx, &ka, &ra), MC_OK);
	assert_true(mc_store_read_check(&ra));
	/* The writer side moves on: a goes, b takes its chunk. */
	assert_int_equal(mc_store_delete(&cx, &ka, 0), MC_DELETED);
	set("b", "value-b", 0, 0);
	assert_int_equal(mc_store_read_begin(&cx, &kb, &rb), MC_OK);
	assert_ptr_equal(rb.it, ra.it);
	memcpy(before, rb.it, sizeof(before));
	assert_null(mc_store_read_ref(&ra));
	mc_store_read_touch(&ra);
	assert_memory_equal(rb.it, before, sizeof(before));
}

/* incr rewrites a value in place only when no reference holds it, and a reference taken just
 * before the rewrite is seen: the bytes a reply in flight sends never change under it. */
static void
test_incr_in_place_against_reference(void **state)
{
	enum mc_store_status rc;
	(void)state;
	make(16, 1, 1 << 20);
	set("n", "100", 0, 0);
	race_key = "n";
	mc_store_race_hook = race_reader;
	assert_int_equal(delta("n", true, 1, &rc), 101);
	assert_int_equal(rc, MC_OK);
	assert_true(race_ref_taken);
	assert_memory_equal(race_r.value, "100", 3);
	mc_store_ref_put(race_ref);
	race_reset();
	assert_string_equal(get("n"), "101");
}

/* The production clock: TTLs run on monotonic seconds, whatever the wall clock does, and an
 * absolute expiry time keeps its wall-clock meaning after the wall clock is stepped. */

#define NKEYS 2000
#define NPARTS 2
static volatile int stop_flag;
static uint64_t torn, reads_ok, front_reads;

/* Value: 8-byte counter, then 56 bytes each = counter's low byte, then the key number. */
static void
fill(char *v, uint32_t keyno, uint64_t gen, uint32_t *len)
{
	uint32_t n = 16 + (uint32_t)(gen % 200);
	memcpy(v, &gen, 8);
	memcpy(v + 8, &keyno, 4);
	memcpy(v + 12, &n, 4);
	memset(v + 16, (int)(gen & 0xff), n - 16);
	*len = n;
}

static bool
check(const char *v, uint32_t len, uint32_t keyno)
{
	uint64_t gen;
	uint32_t k, n, i;
	if (len < 16)
		return false;
	memcpy(&gen, v, 8);
	memcpy(&k, v + 8, 4);
	memcpy(&n, v + 12, 4);
	if (k != keyno || n != len || n != 16 + gen % 200)
		return false;
	for (i = 16; i < n; i++)
		if ((uint8_t)v[i] != (uint8_t)gen)
			return false;
	return true;
}

struct wargs {
	unsigned int part;
};

static void *
writer(void *arg)
{
	struct wargs *wa = arg;
	struct mc_store_ctx wcx = {.s = s};
	char key[16], val[256];
	uint64_t gen = 1;
	while (!stop_flag) {
		uint32_t i, len;
		for (i = 0; i < NKEYS && !stop_flag; i++) {
			struct mc_key k;
			snprintf(key, sizeof(key), "s%u", i);
			mc_key_init(&k, s, key, (uint32_t)strlen(key));
			if (mc_store_part_of(s, k.hash) != wa->part)
				continue;
			fill(val, i, gen++, &len);
			if (gen % 7 == 0)
				mc_store_delete(&wcx, &k, 0);
			else
				mc_store_store(&wcx, &k,
					       &(struct mc_store_args){
						       .mode = MC_SET, .val = val, .vlen = len},
					       NULL);
		}
	}
	return NULL;
}

/* Reader 2 looks keys up through a front table of its own (store.h), as the dataplane does:
 * its hits read no bucket and are checked by the item's CAS. */
static void *
reader(void *arg)
{
	struct mc_store_ctx rcx = {.s = s};
	char key[16], val[256];
	uint32_t i = (uint32_t)(uintptr_t)arg;
	uint64_t bad = 0, ok = 0;
	if (i == 2) {
		rcx.front = aligned_alloc(64, MC_STORE_FRONT_BYTES);
		assert_non_null(rcx.front);
		memset(rcx.front, 0, MC_STORE_FRONT_BYTES);
	}
	while (!stop_flag) {
		struct mc_key k;
		uint32_t vlen;
		i = (i * 1103515245u + 12345u) % NKEYS;
		snprintf(key, sizeof(key), "s%u", i);
		mc_key_init(&k, s, key, (uint32_t)strlen(key));
		if (rcx.front != NULL) {
			mc_store_front_place(&rcx, &k);
			if (k.way == MC_WAY_FRONT)
				__atomic_fetch_add(&front_reads, 1, __ATOMIC_RELAXED);
		}
		if (mc_store_get(&rcx, &k, val, sizeof(val), &vlen, NULL, NULL) == MC_OK) {
			if (vlen > sizeof(val) || !check(val, vlen, i))
				bad++;
			else
				ok++;
		}
		/* And zero-copy readers: hold a reference while checking. */
		{
			struct mc_store_read r;
			uint8_t *ref;
			if (mc_store_read_begin(&rcx, &k, &r) == MC_OK &&
			    (ref = mc_store_read_ref(&r)) != NULL) {
				if (!check((const char *)r.value, r.vlen, i))
					bad++;
				mc_store_ref_put(ref);
			}
		}
	}
	__atomic_fetch_add(&torn, bad, __ATOMIC_RELAXED);
	__atomic_fetch_add(&reads_ok, ok, __ATOMIC_RELAXED);
	free(rcx.front);
	return NULL;
}

static void
test_concurrent_readers_never_see_torn_values(void **state)
{
	pthread_t w[NPARTS], r[2];
	struct wargs wa[NPARTS];
	unsigned int i;
	struct timespec ts = {0, 300 * 1000 * 1000};
	(void)state;
	make(4, NPARTS, 1 << 20); /* small: eviction and reuse happen all the time */
	stop_flag = 0;
	torn = reads_ok = front_reads = 0;
	for (i = 0; i < NPARTS; i++) {
		wa[i].part = i;
		pthread_create(&w[i], NULL, writer, &wa[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_create(&r[i], NULL, reader, (void *)(uintptr_t)(i + 1));
	nanosleep(&ts, NULL); /* bounded run time, not synchronisation */
	stop_flag = 1;
	for (i = 0; i < NPARTS; i++)
		pthread_join(w[i], NULL);
	for (i = 0; i < 2; i++)
		pthread_join(r[i], NULL);
	printf("# stress: %" PRIu64 " good reads (%" PRIu64 " of its keys found in a front table), %" PRIu64
	       " torn\n", reads_ok, front_reads, torn);
	assert_int_equal(torn, 0);
	assert_true(reads_ok > 0);
	assert_true(front_reads > 0);
	/* Every zero-copy reference was dropped: sweep leaves no zombie behind. */
	for (i = 0; i < NPARTS; i++)
		mc_store_sweep(s, i, 1u << 30);
	struct mc_store_part_stats ps;
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_survives_replacement),
		cmocka_unit_test(test_page_move_against_reference),
		cmocka_unit_test(test_page_move_passes_a_referenced_page),
		cmocka_unit_test(test_stale_store_when_item_dies_meanwhile),
		cmocka_unit_test(test_stale_reader_writes_nothing),
		cmocka_unit_test(test_incr_in_place_against_reference),
		cmocka_unit_test(test_concurrent_readers_never_see_torn_values),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
