/* The stats families as memcached names them: settings, items, slabs, sizes, reset. */
#include "tests/unit/proto/proto_test.h"

static void
test_stats_sizes_and_unknown(void **state)
{
	(void)state;
	fresh();
	/* memcached 1.6.18 with its size histogram off, its default; mcbox keeps none. */
	assert_string_equal(run("stats sizes\r\n"), "STAT sizes_status disabled\r\nEND\r\n");
	assert_string_equal(run("stats nosuch\r\n"), "ERROR\r\n");
	/* Detail is never on: the empty dump, off is fine, on is refused. */
	assert_string_equal(run("stats detail dump\r\n"), "END\r\n");
	assert_string_equal(run("stats detail off\r\n"), "OK\r\n");
	assert_string_equal(run("stats detail\r\n"),
			    "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
	assert_string_equal(run("stats detail x\r\n"),
			    "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
	assert_string_equal(run("stats detail on\r\n"),
			    "SERVER_ERROR stats detail not supported\r\n");
}

static void
test_stats_settings_names(void **state)
{
	static const char *want[] = {
		"STAT maxbytes ", "STAT verbosity 0\r\n", "STAT evictions on\r\n",
		"STAT chunk_size 48\r\n", "STAT detail_enabled no\r\n", "STAT cas_enabled yes\r\n",
		"STAT item_size_max 1048576\r\n", "STAT lru_crawler yes\r\n",
		"STAT flush_enabled yes\r\n", "STAT dump_enabled yes\r\n", "STAT track_sizes no\r\n",
	};
	const char *got;
	unsigned int i;
	(void)state;
	fresh();
	got = run("stats settings\r\n");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(got, want[i]) == NULL)
			fail_msg("no %s in:\n%s", want[i], got);
	assert_non_null(strstr(run("lru_crawler disable\r\nstats settings\r\n"),
			       "STAT lru_crawler no\r\n"));
	run("lru_crawler enable\r\n");
}

/* A counter's value in a stats reply. */
static long long
stat_of(const char *reply, const char *name)
{
	char key[80];
	const char *p;
	snprintf(key, sizeof(key), "STAT %s ", name);
	p = strstr(reply, key);
	return p == NULL ? -1 : atoll(p + strlen(key));
}

/* RESET without END; counters start again from zero, gauges stay. */
static void
test_stats_reset(void **state)
{
	const char *st;
	(void)state;
	fresh();
	run("set a 0 0 1\r\nx\r\nset b 0 0 1\r\nx\r\nset a 0 0 1\r\ny\r\n");
	st = run("stats\r\n");
	assert_int_equal(stat_of(st, "total_items"), 3);
	assert_int_equal(stat_of(st, "curr_items"), 2);
	assert_string_equal(run("stats reset\r\n"), "RESET\r\n");
	st = run("stats\r\n");
	assert_int_equal(stat_of(st, "total_items"), 0);
	assert_int_equal(stat_of(st, "curr_items"), 2);
	assert_true(stat_of(st, "bytes") > 0);
	run("set c 0 0 1\r\nx\r\n");
	assert_int_equal(stat_of(run("stats\r\n"), "total_items"), 1);
	/* stats reset is admin over UDP, as stats is. */
	conf.udp_admin = false;
	assert_string_equal(run("stats reset\r\n"), "CLIENT_ERROR stats not allowed\r\n");
	conf.udp_admin = true;
	/* process_stat looks at the subcommand only. */
	assert_string_equal(run("stats reset x\r\n"), "RESET\r\n");
}

static void
test_stats_items_and_slabs(void **state)
{
	const char *got;
	(void)state;
	fresh();
	run("set a 0 0 1\r\nx\r\n");
	got = run("stats items\r\n");
	assert_non_null(strstr(got, "STAT items:1:number 1\r\n"));
	assert_non_null(strstr(got, "STAT items:1:evicted 0\r\n"));
	assert_non_null(strstr(got, "END\r\n"));
	got = run("stats slabs\r\n");
	assert_non_null(strstr(got, "STAT 1:used_chunks 1\r\n"));
	assert_non_null(strstr(got, "STAT active_slabs 1\r\n"));
	assert_non_null(strstr(got, "STAT total_malloced 1048576\r\nEND\r\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_sizes_and_unknown),
		cmocka_unit_test(test_stats_settings_names),
		cmocka_unit_test(test_stats_reset),
		cmocka_unit_test(test_stats_items_and_slabs),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
