/* Warm restart: a clean stop's save and the reattach, at another address as a restart maps
 * the file: items, TTLs moved on by the downtime, CAS and the hash secret go on; every other
 * case starts cold with its reason. */
#include "store_test.h"

#define MB 16
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define LEN ((size_t)MB << 20)

static uint8_t meta[MC_STORE_META_SIZE];

static struct mc_store_settings
settings(unsigned int parts)
{
	return (struct mc_store_settings){
		.mem_bytes = LEN, .nparts = parts, .max_item_size = 1 << 20, .factor = 1.25,
		.chunk_min = 48, .unix_now = T0,
		.hash_seed = {0x6d63626f78ull, 0x7465737473ull},
	};
}

static int
setup_restart(void **state)
{
	(void)state;
	make(MB, 2, 1 << 20);
	memset(meta, 0, sizeof(meta));
	return 0;
}

/* The process ends: its memory shows up elsewhere in the next one (a new buffer, taken
 * before the old one goes, so the address differs), the old address holds garbage. */
static void
remap(void)
{
	void *m2 = aligned_alloc(64, LEN);
	assert_non_null(m2);
	assert_ptr_not_equal(m2, mem);
	memcpy(m2, mem, LEN);
	memset(mem, 0xa5, LEN);
	free(mem);
	mem = m2;
	s = NULL;
	memset(&cx, 0, sizeof(cx));
}

static struct mc_store *
attach(const struct mc_store_settings *st, int64_t now, char *why)
{
	int64_t down = -1;
	struct mc_store *n = mc_store_attach(mem, LEN, meta, st, now, &down, why, 256);
	if (n != NULL) {
		s = n;
		cx.s = n;
	}
	return n;
}

static unsigned int
part(const char *key)
{
	return mc_store_part_of(s, K(key).hash);
}

static uint64_t
cas_of(const char *key)
{
	static char buf[256];
	uint32_t vlen;
	uint64_t cas = 0;
	struct mc_key k = K(key);
	if (mc_store_get(&cx, &k, buf, sizeof(buf), &vlen, NULL, &cas) != MC_OK)
		return 0;
	return cas;
}

static void
test_warm_restart_keeps_items_ttl_cas(void **state)
{
	struct mc_store_settings st = settings(2);
	struct mc_store_part_stats ps;
	static uint64_t cas[600];
	uint64_t max_cas[2] = {0, 0}, c;
	char key[32], val[64], why[256] = "";
	enum mc_store_status rc;
	int64_t down = -1;
	int i;
	(void)state;
	mc_store_clock_set(s, T0 + 100); /* now = 162 */
	for (i = 0; i < 600; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(val, sizeof(val), "value-%d-%0*d", i, i % 40, 7);
		assert_int_equal(set(key, val, (uint32_t)i, 0), MC_STORED);
		cas[i] = cas_of(key);
		max_cas[part(key)] = MAX(max_cas[part(key)], cas[i]);
	}
	/* Free chunks, so the free lists are moved too. */
	for (i = 0; i < 600; i += 3) {
		snprintf(key, sizeof(key), "key-%d", i);
		struct mc_key k = K(key);
		assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	}
	assert_int_equal(set("ttl", "short-lived", 0, mc_store_realtime(s, 300)), MC_STORED);
	assert_int_equal(set("n", "41", 0, 0), MC_STORED);
	delta("n", true, 1, &rc);
	assert_int_equal(rc, MC_OK);
	max_cas[part("ttl")] = MAX(max_cas[part("ttl")], cas_of("ttl"));
	max_cas[part("n")] = MAX(max_cas[part("n")], cas_of("n"));

	assert_int_equal(mc_store_save(s, meta, T0 + 100), 0);
	remap();
	/* 50 s later; another secret in the settings is ignored: the saved one placed the keys. */
	st.hash_seed[0] = 1;
	st.unix_now = 0;
	s = mc_store_attach(mem, LEN, meta, &st, T0 + 150, &down, why, sizeof(why));
	if (s == NULL)
		fail_msg("cold: %s", why);
	cx.s = s;
	assert_int_equal(down, 50);
	assert_int_equal(mc_store_now(s), 212);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.curr_items, 400 + 2);
	assert_int_equal(ps.zombies, 0);
	for (i = 0; i < 600; i++) {
		const char *v;
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(val, sizeof(val), "value-%d-%0*d", i, i % 40, 7);
		v = get(key);
		if (i % 3 == 0) {
			assert_null(v);
			continue;
		}
		assert_non_null(v);
		assert_string_equal(v, val);
		assert_int_equal(cas_of(key), cas[i]);
		/* And as the GET path finds it: placed and its item prefetched through the index
		 * the store keeps beside the partitions, moved with them. */
		{
			struct mc_key k = K(key);
			char buf[64];
			uint32_t vlen = 0;
			mc_store_prefetch(s, &k);
			mc_store_prefetch_item(s, &k);
			assert_int_equal(mc_store_get(&cx, &k, buf, sizeof(buf), &vlen, NULL, NULL),
					 MC_OK);
			assert_memory_equal(buf, val, vlen);
		}
	}
	assert_string_equal(get("n"), "42");
	/* The TTL counted the 50 s down: 300 - 50 = 250 s are left. */
	assert_non_null(get("ttl"));
	mc_store_clock_set(s, T0 + 150 + 249);
	assert_non_null(get("ttl"));
	mc_store_clock_set(s, T0 + 150 + 250);
	assert_null(get("ttl"));
	/* The production clock goes on from the reattached time, not from 62. */
	mc_store_clock_tick(s, 300, T0 + 450);
	assert_int_equal(mc_store_now(s), 512);
	/* CAS goes on above every one its partition handed out (each partition counts its own,
	 * stepping by the number of partitions); writes reuse the moved free lists and carve more. */
	assert_int_equal(set("after", "x", 0, 0), MC_STORED);
	assert_int_equal(set("after2", "x", 0, 0), MC_STORED);
	assert_int_equal(set("after3", "x", 0, 0), MC_STORED);
	assert_true(cas_of("after") > max_cas[part("after")]);
	assert_true(cas_of("after2") > max_cas[part("after2")]);
	assert_true(cas_of("after3") > max_cas[part("after3")]);
	c = cas_of("after");
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "new-%d", i);
		snprintf(val, sizeof(val), "fresh-%d", i);
		assert_int_equal(set(key, val, 0, 0), MC_STORED);
	}
	for (i = 1; i < 600; i += 3) {
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(val, sizeof(val), "value-%d-%0*d", i, i % 40, 7);
		assert_string_equal(get(key), val);
	}
	for (i = 0; i < 2000; i += 7) {
		snprintf(key, sizeof(key), "new-%d", i);
		snprintf(val, sizeof(val), "fresh-%d", i);
		assert_string_equal(get(key), val);
	}
	/* And a second restart, from the reattached store. */
	assert_int_equal(mc_store_save(s, meta, T0 + 450), 0);
	remap();
	assert_non_null(attach(&st, T0 + 460, why));
	assert_string_equal(get("after"), "x");
	assert_int_equal(cas_of("after"), c);
}

/* Each setting that shapes the memory, changed: cold, and the reason names it. */
static void
test_changed_settings_start_cold(void **state)
{
	static const struct {
		const char *needle;
		size_t len;
		unsigned int parts;
		uint32_t max_item;
		double factor;
		uint32_t chunk_min;
	} cases[] = {
		{"-m changed (saved 16 MiB, now 8 MiB)", LEN / 2, 2, 1 << 20, 1.25, 48},
		{"-I changed", LEN, 2, 1 << 19, 1.25, 48},
		{"-f changed (saved 1.25, now 1.5)", LEN, 2, 1 << 20, 1.5, 48},
		{"partitions changed (saved 2, now 1", LEN, 1, 1 << 20, 1.25, 48},
		{"smallest chunk changed", LEN, 2, 1 << 20, 1.25, 64},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mc_store_settings st = settings(cases[i].parts);
		char why[256] = "";
		st.max_item_size = cases[i].max_item;
		st.factor = cases[i].factor;
		st.chunk_min = cases[i].chunk_min;
		make(MB, 2, 1 << 20);
		assert_int_equal(set("k", "v", 0, 0), MC_STORED);
		assert_int_equal(mc_store_save(s, meta, T0), 0);
		remap();
		assert_null(mc_store_attach(mem, cases[i].len, meta, &st, T0, NULL, why, sizeof(why)));
		if (strstr(why, cases[i].needle) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, why, cases[i].needle);
		/* The failed attach left the metadata unclean: the old settings are no use now
		 * either (the caller created the store cold over it). */
		st = settings(2);
		assert_null(mc_store_attach(mem, LEN, meta, &st, T0, NULL, why, sizeof(why)));
		assert_non_null(strstr(why, "not stopped cleanly"));
	}
}

/* Attached and never saved (kill -9, a crash): cold. A file never saved: cold. */
static void
test_unclean_or_new_starts_cold(void **state)
{
	struct mc_store_settings st = settings(2);
	char why[256] = "";
	(void)state;
	assert_null(mc_store_attach(mem, LEN, meta, &st, T0, NULL, why, sizeof(why)));
	assert_string_equal(why, "no saved cache in the file");
	assert_null(mc_store_attach(mem, LEN, meta, &st, T0, NULL, why, sizeof(why)));
	assert_non_null(strstr(why, "not stopped cleanly"));

	make(MB, 2, 1 << 20);
	assert_int_equal(set("k", "v", 0, 0), MC_STORED);
	assert_int_equal(mc_store_save(s, meta, T0), 0);
	remap();
	assert_non_null(attach(&st, T0 + 1, why));
	assert_string_equal(get("k"), "v");
	assert_int_equal(set("k2", "v2", 0, 0), MC_STORED);
	/* Killed here: the next start finds the mark the attach left. */
	remap();
	assert_null(mc_store_attach(mem, LEN, meta, &st, T0 + 2, NULL, why, sizeof(why)));
	assert_string_equal(why, "not stopped cleanly (killed or crashed while running)");
}

/* A damaged metadata block, another format version, or memory changed after the save: cold. */
static void
test_corrupt_or_other_version_starts_cold(void **state)
{
	struct mc_store_settings st = settings(2);
	char why[256] = "";
	(void)state;
	assert_int_equal(set("k", "v", 0, 0), MC_STORED);
	assert_int_equal(mc_store_save(s, meta, T0), 0);
	meta[110] ^= 0x10; /* one bit of the saved CAS counters */
	assert_null(mc_store_attach(mem, LEN, meta, &st, T0, NULL, why, sizeof(why)));
	assert_string_equal(why, "metadata checksum mismatch (corrupt)");

	assert_int_equal(mc_store_save(s, meta, T0), 0);
	meta[8] = (uint8_t)(MC_STORE_FORMAT + 1); /* the version, before the checksum is looked at */
	assert_null(mc_store_attach(mem, LEN, meta, &st, T0, NULL, why, sizeof(why)));
	assert_non_null(strstr(why, "format version 2, this build reads 1"));

	/* Written to after the save (the checksums cover the store's control structures). */
	assert_int_equal(mc_store_save(s, meta, T0), 0);
	assert_int_equal(set("late", "v", 0, 0), MC_STORED);
	assert_null(mc_store_attach(mem, LEN, meta, &st, T0, NULL, why, sizeof(why)));
	assert_string_equal(why, "store control data checksum mismatch (corrupt)");

	/* The same store saved properly attaches. */
	assert_int_equal(mc_store_save(s, meta, T0), 0);
	remap();
	assert_non_null(attach(&st, T0, why));
	assert_string_equal(get("late"), "v");
}

/* A reference still held at the stop (a leaked holder) is counted and dropped, and the zombie
 * it kept is freed: the next process starts with no references. */
static void
test_save_drops_references_and_zombies(void **state)
{
	struct mc_store_settings st = settings(2);
	struct mc_store_part_stats ps;
	struct mc_store_read r;
	struct mc_key k;
	char why[256] = "";
	uint8_t *ref;
	(void)state;
	assert_int_equal(set("z", "old", 0, 0), MC_STORED);
	k = K("z");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	ref = mc_store_read_ref(&r);
	assert_non_null(ref);
	assert_int_equal(set("z", "new", 0, 0), MC_STORED);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 1);
	assert_int_equal(mc_store_save(s, meta, T0), 1);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 0);
	remap();
	assert_non_null(attach(&st, T0, why));
	assert_string_equal(get("z"), "new");
	/* No count left behind: the item goes at once when deleted, no zombie. */
	k = K("z");
	assert_int_equal(mc_store_read_begin(&cx, &k, &r), MC_OK);
	assert_int_equal(*r.ref, 0);
	assert_int_equal(mc_store_delete(&cx, &k, 0), MC_DELETED);
	mc_store_part_stats(s, &ps);
	assert_int_equal(ps.zombies, 0);
	assert_int_equal(ps.curr_items, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_warm_restart_keeps_items_ttl_cas, setup_restart,
						teardown),
		cmocka_unit_test_setup_teardown(test_changed_settings_start_cold, setup_restart,
						teardown),
		cmocka_unit_test_setup_teardown(test_unclean_or_new_starts_cold, setup_restart,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_or_other_version_starts_cold,
						setup_restart, teardown),
		cmocka_unit_test_setup_teardown(test_save_drops_references_and_zombies,
						setup_restart, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
