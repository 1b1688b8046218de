/* The front table (store.h, store_int.h): a lookup it answers reads no bucket and is checked by
 * the item's CAS instead. Every way an item changes or leaves the index must make such a read
 * miss the table or fail its check: delete, replace (with and without a reference keeping the
 * old item), incr in place (and against a reference taken through the table), invalidate,
 * touch, flush_all; and the mode that decides which keys use the table. */
/* First: its inline helpers take names the test file makes global (s, cx). */
#include "store/hot.h"
#include "tests/unit/store/store_test.h"

static struct mc_store_front *fr;

/* A store as make() makes it (mb MiB), with a front table on cx. */
static void
make_front_mb(size_t mb)
{
	make(mb, 1, 1 << 20);
	free(fr);
	fr = aligned_alloc(64, MC_STORE_FRONT_BYTES);
	assert_non_null(fr);
	memset(fr, 0, MC_STORE_FRONT_BYTES);
	cx.front = fr;
}

static void
make_front(void)
{
	make_front_mb(16);
}

/* The key as the dataplane has it after asking the table. */
static struct mc_key
FK(const char *str)
{
	struct mc_key k = K(str);
	mc_store_front_place(&cx, &k);
	return k;
}

/* Value of k through the lookup (k as FK left it), or NULL on a miss. */
static const char *
fget(struct mc_key *k)
{
	static char buf[4096];
	uint32_t vlen;
	if (mc_store_get(&cx, k, buf, sizeof(buf) - 1, &vlen, NULL, NULL) != MC_OK)
		return NULL;
	buf[vlen] = '\0';
	return buf;
}

/* The key's item in the table: k's way is MC_WAY_FRONT after asking. */
static struct mc_key
in_table(const char *key)
{
	struct mc_key k = FK(key);
	if (k.way != MC_WAY_FRONT) {
		assert_non_null(fget(&k)); /* a hit through the index takes it */
		k = FK(key);
	}
	assert_int_equal(k.way, MC_WAY_FRONT);
	return k;
}

static void
test_front_takes_and_answers(void **state)
{
	struct mc_key k;
	uint64_t retries;
	(void)state;
	make_front();
	assert_int_equal(set("a", "alpha", 0, 0), MC_STORED);
	k = FK("a");
	assert_int_equal(k.way, 0); /* not in the table yet */
	assert_string_equal(fget(&k), "alpha");
	k = FK("a");
	assert_int_equal(k.way, MC_WAY_FRONT);
	retries = cx.st.read_retries;
	assert_string_equal(fget(&k), "alpha");
	assert_int_equal(cx.st.read_retries, retries);
	/* A key never stored is never in the table; a miss takes nothing. */
	k = FK("b");
	assert_int_equal(k.way, 0);
	assert_null(fget(&k));
	assert_int_equal(FK("b").way, 0);
	/* A lookup whose key did not ask the table takes nothing either. */
	assert_int_equal(set("c", "gamma", 0, 0), MC_STORED);
	k = K("c");
	assert_string_equal(fget(&k), "gamma");
	assert_int_equal(FK("c").way, 0);
}

static void
test_front_after_delete_and_replace(void **state)
{
	struct mc_key k;
	struct mc_store_read r;
	uint8_t *ref;
	(void)state;
	make_front();
	assert_int_equal(set("d", "one", 0, 0), MC_STORED);
	k = in_table("d");
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	assert_null(fget(&k));
	/* Stored again in the same chunk (the class's free list): a new CAS, found through the
	 * index, taken again. */
	assert_int_equal(set("d", "two", 0, 0), MC_STORED);
	k = in_table("d");
	assert_string_equal(fget(&k), "two");
	/* Replaced while a reply holds the old item (a zombie, intact, its key and value as
	 * they were): the table's way must not answer with it. */
	k = in_table("d");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	ref = mc_store_read_ref(&r);
	assert_non_null(ref);
	assert_int_equal(set("d", "three", 0, 0), MC_STORED);
	assert_memory_equal(r.value, "two", 3);
	k.way = MC_WAY_FRONT; /* as the table had it before the replace */
	k.item = r.it;
	k.fcas = (uint32_t)r.cas;
	assert_string_equal(fget(&k), "three");
	mc_store_ref_put(ref);
	k = in_table("d");
	assert_string_equal(fget(&k), "three");
}

/* A read begun through the table and then overtaken by a writer fails its check, as a bucket
 * read does when the bucket's version moves: the check is the item's CAS. */
static void
test_front_read_check_sees_writers(void **state)
{
	struct mc_key k;
	struct mc_store_read r;
	enum mc_store_status rc;
	(void)state;
	make_front();
	/* Deleted: the item's CAS changes as it leaves the index (its chunk is freed, and its
	 * first bytes become the free list's link). */
	assert_int_equal(set("x", "12345678", 0, 0), MC_STORED);
	k = in_table("x");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	assert_true(mc_store_read_check(&r));
	k = K("x");
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	assert_false(mc_store_read_check(&r));
	/* incr in place: a new CAS before the new digits. */
	assert_int_equal(set("n", "10", 0, 0), MC_STORED);
	k = in_table("n");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	assert_int_equal(delta("n", true, 5, &rc), 15);
	assert_int_equal(rc, MC_OK);
	assert_false(mc_store_read_check(&r));
	assert_string_equal(fget(&k), "15");
	/* meta invalidate: a new CAS. */
	k = in_table("n");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	assert_int_equal(mc_store_invalidate(&cx, &k, 0, false, 0), MC_DELETED);
	assert_false(mc_store_read_check(&r));
	/* touch changes only the expiry: a read begun before it stays good. */
	assert_int_equal(set("t", "tee", 0, 0), MC_STORED);
	k = in_table("t");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	assert_int_equal(mc_store_touch(&cx, &k, (uint32_t)mc_store_realtime(s, 100)), MC_TOUCHED);
	assert_true(mc_store_read_check(&r));
}

/* Expiry, a touch into the past and flush_all all answer a miss through the table's way. */
static void
test_front_expiry_touch_flush(void **state)
{
	struct mc_key k;
	(void)state;
	make_front();
	assert_int_equal(set("e", "ee", 0, (uint32_t)mc_store_realtime(s, 5)), MC_STORED);
	k = in_table("e");
	mc_store_clock_set(s, T0 + 6);
	assert_null(fget(&k));
	assert_int_equal(cx.st.get_expired, 1);
	assert_int_equal(set("t", "tt", 0, 0), MC_STORED);
	k = in_table("t");
	assert_int_equal(mc_store_touch(&cx, &k, (uint32_t)mc_store_realtime(s, -1)), MC_TOUCHED);
	assert_null(fget(&k));
	assert_int_equal(set("f", "ff", 0, 0), MC_STORED);
	k = in_table("f");
	mc_store_flush(s, 0);
	assert_null(fget(&k));
	assert_int_equal(cx.st.get_flushed, 1);
}

/* A reader that takes a zero-copy reference through the table just as incr is about to
 * rewrite the value in place: the incr must see the reference and make a new item, and the
 * held bytes must not change. */
static struct mc_store_read race_r;
static uint8_t *race_ref;

static void
front_race_reader(enum mc_store_race where, void *arg)
{
	struct mc_store_ctx rcx = {.s = s, .front = fr};
	struct mc_key k;
	(void)arg;
	if (where != MC_RACE_DELTA_INPLACE || race_ref != NULL)
		return;
	k = K("n");
	mc_store_front_place(&rcx, &k);
	assert_int_equal(k.way, MC_WAY_FRONT);
	assert_int_equal(mc_store_read_begin(&rcx, &k, &race_r), MC_OK);
	race_ref = mc_store_read_ref(&race_r);
	assert_non_null(race_ref);
}

static void
test_front_incr_against_reference(void **state)
{
	enum mc_store_status rc;
	struct mc_key k;
	(void)state;
	make_front();
	assert_int_equal(set("n", "100", 0, 0), MC_STORED);
	(void)in_table("n");
	race_ref = NULL;
	mc_store_race_hook = front_race_reader;
	assert_int_equal(delta("n", true, 1, &rc), 101);
	mc_store_race_hook = NULL;
	assert_int_equal(rc, MC_OK);
	assert_non_null(race_ref);
	assert_memory_equal(race_r.value, "100", 3); /* the held bytes never changed */
	mc_store_ref_put(race_ref);
	k = FK("n");
	assert_string_equal(fget(&k), "101");
	k = FK("n");
	assert_string_equal(fget(&k), "101");
}

/* Another thread's read through its table at the moment an item has left the index (its slot
 * cleared or given to the new item) but before the writer is done: the index already answers
 * the new state to anyone, so the table must not answer the old one. The way was taken
 * before the write. */
static struct mc_key left_k;
static enum mc_store_status left_rc;
static char left_val[64];
static bool left_done;

static void
left_index_reader(enum mc_store_race where, void *arg)
{
	struct mc_store_ctx rcx = {.s = s, .front = fr};
	struct mc_key k = left_k;
	uint32_t vlen = 0;
	(void)arg;
	if (where != MC_RACE_LEFT_INDEX || left_done)
		return;
	left_done = true;
	assert_int_equal(k.way, MC_WAY_FRONT);
	left_rc = mc_store_get(&rcx, &k, left_val, sizeof(left_val) - 1, &vlen, NULL, NULL);
	left_val[left_rc == MC_OK ? vlen : 0] = '\0';
}

static void
test_front_item_leaving_the_index(void **state)
{
	struct mc_key k;
	(void)state;
	make_front();
	mc_store_race_arg = NULL;
	/* Deleted: a miss from the moment its slot is cleared. */
	assert_int_equal(set("l", "before", 0, 0), MC_STORED);
	left_k = in_table("l");
	left_done = false;
	mc_store_race_hook = left_index_reader;
	k = K("l");
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	mc_store_race_hook = NULL;
	assert_true(left_done);
	assert_int_equal(left_rc, MC_MISS);
	/* Replaced: the new value from the moment the slot holds the new item. */
	assert_int_equal(set("l", "before", 0, 0), MC_STORED);
	left_k = in_table("l");
	left_done = false;
	mc_store_race_hook = left_index_reader;
	assert_int_equal(set("l", "after", 0, 0), MC_STORED);
	mc_store_race_hook = NULL;
	assert_true(left_done);
	assert_int_equal(left_rc, MC_OK);
	assert_string_equal(left_val, "after");
	/* incr that cannot change the value in place (a reference holds it): a new item. */
	assert_int_equal(set("l", "7", 0, 0), MC_STORED);
	left_k = in_table("l");
	{
		struct mc_store_read r;
		uint8_t *ref;
		enum mc_store_status rc;
		k = left_k;
		assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
		ref = mc_store_read_ref(&r);
		assert_non_null(ref);
		left_done = false;
		mc_store_race_hook = left_index_reader;
		assert_int_equal(delta("l", true, 1, &rc), 8);
		mc_store_race_hook = NULL;
		mc_store_ref_put(ref);
	}
	assert_true(left_done);
	assert_int_equal(left_rc, MC_OK);
	assert_string_equal(left_val, "8");
}

/* A page moved to another class (page_steal) is carved anew: a way into it may point into the
 * middle of another item's value, bytes a client chose. Such a client stores, where the way's
 * item was, its header as it was (the CAS it learnt with gets, the key) with a long length:
 * the read through the way must not pass its checks and answer with the memory after it. */
static void
test_front_way_into_a_moved_page(void **state)
{
	static char big[2000], got[4096];
	struct part *p;
	struct mc_key k;
	struct mc_item forged;
	struct mc_store_read r;
	const uint8_t *page;
	uint32_t vlen, n, epoch;
	char key[16];
	(void)state;
	make_front_mb(4);
	p = s->parts[0];
	/* Every page to the smallest class: the third key's item is near the start of the
	 * first, which is the page a larger class will take. */
	for (n = 0; p->pages_used < p->npages; n++) {
		snprintf(key, sizeof(key), "f%06u", n);
		assert_int_equal(set(key, "v", 0, 0), MC_STORED);
	}
	assert_true(p->npages >= 2);
	k = in_table("f000002");
	memcpy(&forged, k.item, sizeof(forged));
	forged.vk = 7u | 1500u << 8; /* its key's length, and far more value than it had */
	page = p->pages + ((const uint8_t *)k.item - p->pages) / MC_PAGE_SIZE * MC_PAGE_SIZE;
	/* The new class's first item goes at the start of that page: its value, from page + 24
	 * + 3, holds the forged header and key where the way's item was. */
	memset(big, 'x', sizeof(big));
	memcpy(big + ((const uint8_t *)k.item - page) - (sizeof(struct mc_item) + 3), &forged,
	       sizeof(forged));
	memcpy(big + ((const uint8_t *)k.item - page) - 3, "f000002", 7);
	epoch = s->carve_epoch;
	{
		struct mc_key b = K("big");
		assert_int_equal(mc_store_store(&cx, &b,
						&(struct mc_store_args){.mode = MC_SET, .val = big,
									.vlen = sizeof(big)},
						NULL),
				 MC_STORED);
		assert_int_equal(p->st.slabs_moved, 1);
		assert_int_equal(mc_store_read_begin(&cx, &b, &r), MC_OK);
		assert_ptr_equal(r.it, page); /* the premise: the page was carved anew */
	}
	assert_int_equal(s->carve_epoch, epoch + 1);
	/* The forged header passes every check an item makes of itself. */
	assert_int_equal(item_cas_word(k.item)[0], k.fcas);
	assert_int_equal(mc_item_klen(k.item), 7);
	assert_memory_equal(((const struct mc_item *)k.item)->data, "f000002", 7);
	/* The key left with the page: a miss, not the bytes after the forged header. */
	assert_int_equal(mc_store_get(&cx, &k, got, sizeof(got), &vlen, NULL, NULL), MC_MISS);
	/* A burst's end empties the table (mc_store_front_place's burst of one ends after its
	 * ask): the next asks find nothing. */
	(void)FK("f000002");
	k = FK("f000002");
	assert_int_equal(k.way, 0);
	assert_int_equal(fr->epoch, s->carve_epoch);
}

/* A full set (a scan of cold keys filled it) and two hot keys that come to it: both must end up
 * in the table, whatever their items' CAS. Taking the way an item's CAS picked, two keys whose
 * CAS agreed in its low bits took one way from each other for good. */
static void
test_front_two_hot_keys_in_a_full_set(void **state)
{
	char keys[6][16], name[16];
	uint64_t want = 0, cas[2] = {0, 0};
	unsigned int n = 0, i, round;
	struct mc_key a, b;
	(void)state;
	make_front();
	/* Six keys of one set: four cold, then the two hot ones. */
	for (i = 0; n < 6; i++) {
		struct mc_key k;
		snprintf(name, sizeof(name), "s%u", i);
		k = K(name);
		if (n == 0)
			want = (k.hash >> 16) & (MC_STORE_FRONT_SETS - 1);
		if (((k.hash >> 16) & (MC_STORE_FRONT_SETS - 1)) == want)
			memcpy(keys[n++], name, sizeof(name));
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(set(keys[i], "cold", 0, 0), MC_STORED);
		(void)in_table(keys[i]);
	}
	/* The hot keys' CAS four apart: the same low bits. */
	assert_int_equal(set(keys[4], "hot", 0, 0), MC_STORED);
	for (i = 0; i < 3; i++)
		assert_int_equal(set("other", "x", 0, 0), MC_STORED);
	assert_int_equal(set(keys[5], "hot", 0, 0), MC_STORED);
	for (i = 0; i < 2; i++) {
		struct mc_store_read r;
		struct mc_key k = K(keys[4 + i]);
		assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
		cas[i] = r.cas;
	}
	assert_int_equal(cas[0] & 3, cas[1] & 3);
	for (round = 0; round < 4; round++) {
		a = FK(keys[4]);
		assert_string_equal(fget(&a), "hot");
		b = FK(keys[5]);
		assert_string_equal(fget(&b), "hot");
	}
	assert_int_equal(FK(keys[4]).way, MC_WAY_FRONT);
	assert_int_equal(FK(keys[5]).way, MC_WAY_FRONT);
}

/* A stale way (another key's item, a CAS that no longer matches) is only a hint. */
static void
test_front_stale_way_is_checked(void **state)
{
	struct mc_key k, o;
	(void)state;
	make_front();
	assert_int_equal(set("k", "kay", 0, 0), MC_STORED);
	assert_int_equal(set("o", "oh", 0, 0), MC_STORED);
	o = in_table("o");
	k = FK("k");
	k.way = MC_WAY_FRONT;
	k.item = o.item;
	k.fcas = o.fcas;
	assert_string_equal(fget(&k), "kay");
	k = in_table("k");
	k.fcas ^= 1;
	assert_string_equal(fget(&k), "kay");
	/* Asked but never looked up through the table (MC_WAY_ASK): the index answers. */
	k = K("k");
	k.placed = MC_KEY_PLACED | MC_KEY_ASKED;
	k.part = (uint16_t)mc_store_part_of(s, k.hash);
	k.bkt = bucket_first(s->index[k.part].nbuckets, k.hash);
	k.way = MC_WAY_ASK;
	assert_string_equal(fget(&k), "kay");
}

/* The mode: one key in eight (front_sample) asks the table while its hits are few; a quarter
 * of those hitting brings every key to it, seven in eight of all of them hitting stops the
 * buckets being requested, and the sampled keys' hits falling below a quarter goes back. */
static void
test_front_mode(void **state)
{
	/* Each step a burst's counts (asked, hits, sampled asked, sampled hits), then the mode. */
	static const struct {
		struct mc_front_count c;
		uint8_t mode;
	} steps[] = {
		{{64, 15, 64, 15}, MC_FRONT_COLD},  /* under a quarter of the sampled keys */
		{{0, 0, 64, 16}, MC_FRONT_WARM},    /* a quarter */
		{{256, 223, 0, 0}, MC_FRONT_WARM},  /* under seven in eight of all keys */
		{{256, 224, 0, 0}, MC_FRONT_HOT},   /* seven in eight */
		{{256, 100, 64, 60}, MC_FRONT_WARM}, /* all keys' hits fall, the sample's do not */
		{{0, 0, 64, 10}, MC_FRONT_COLD},    /* the sample's fall too */
	};
	unsigned int i;
	(void)state;
	make_front();
	assert_int_equal(fr->mode, MC_FRONT_COLD);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		mc_store_front_burst(fr, s, &steps[i].c);
		assert_int_equal(fr->mode, steps[i].mode);
	}
	/* A burst's counts are added to the table's: 40 and 24 sampled asks, a quarter hit. */
	{
		const struct mc_front_count c1 = {40, 10, 40, 10}, c2 = {24, 6, 24, 6};
		mc_store_front_burst(fr, s, &c1);
		assert_int_equal(fr->mode, MC_FRONT_COLD);
		mc_store_front_burst(fr, s, &c2);
		assert_int_equal(fr->mode, MC_FRONT_WARM);
		assert_int_equal(fr->asked, 0); /* every key's asks counted from here */
		fr->mode = MC_FRONT_COLD;
	}
	/* And a key uses the table in COLD only when it is sampled. */
	assert_true(front_used(fr, 0));
	assert_false(front_used(fr, 1ull << 40));
	fr->mode = MC_FRONT_WARM;
	assert_true(front_used(fr, 1ull << 40));
}

static int
teardown_front(void **state)
{
	free(fr);
	fr = NULL;
	return teardown(state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_front_takes_and_answers),
		cmocka_unit_test(test_front_after_delete_and_replace),
		cmocka_unit_test(test_front_read_check_sees_writers),
		cmocka_unit_test(test_front_expiry_touch_flush),
		cmocka_unit_test(test_front_incr_against_reference),
		cmocka_unit_test(test_front_item_leaving_the_index),
		cmocka_unit_test(test_front_way_into_a_moved_page),
		cmocka_unit_test(test_front_two_hot_keys_in_a_full_set),
		cmocka_unit_test(test_front_stale_way_is_checked),
		cmocka_unit_test(test_front_mode),
	};
	return cmocka_run_group_tests(tests, setup, teardown_front);
}
