/* memcached's ASCII commands: exact replies for storage, retrieval, keys, errors, numbers,
 * data blocks cut short, gat's order of fetch and touch, and the lone-get fast path. */
#include "tests/unit/proto/proto_test.h"

static void
test_ascii_storage_and_errors(void **state)
{
	static const struct ascii_case c[] = {
		{"set a 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"},
		{"get a a nokey\r\n", "VALUE a 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
		{"add a 0 0 1\r\ny\r\n", "NOT_STORED\r\n"},
		{"replace nokey 0 0 1\r\ny\r\n", "NOT_STORED\r\n"},
		{"append a 0 0 2\r\n++\r\nprepend a 0 0 2\r\n--\r\nget a\r\n",
		 "STORED\r\nSTORED\r\nVALUE a 0 5\r\n--x++\r\nEND\r\n"},
		{"cas nokey 0 0 1 5\r\nx\r\n", "NOT_FOUND\r\n"},
		{"cas a 0 0 1 999999\r\nx\r\n", "EXISTS\r\n"},
		{"set a 0 0 1 noreply\r\nq\r\nget a\r\n", "VALUE a 0 1\r\nq\r\nEND\r\n"},
		{"set c 4294967295 0 0\r\n\r\nget c\r\n", "STORED\r\nVALUE c 4294967295 0\r\n\r\nEND\r\n"},
		{"set c -1 0 1\r\nz\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"set c 0 0 -1\r\nz\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"set c 0 0 99999999999999999999\r\nz\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"set c 0 0 1\r\nzz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"set c 0 0 1 noreply\r\nzz\r\n", "ERROR\r\n"},
		{"set c 0 0\r\n", "ERROR\r\n"},
		{"\r\n", "ERROR\r\n"},
		{"\n", "ERROR\r\n"},
		{"GET a\r\n", "ERROR\r\n"},
		{"get\r\n", "ERROR\r\n"},
		{"incr a\r\n", "ERROR\r\n"},
		{"incr a 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"incr a -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
		{"incr a 123456789012345678901234567890\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
		{"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 6\r\nget n\r\n",
		 "STORED\r\n15\r\n9\r\nVALUE n 0 2\r\n9 \r\nEND\r\n"},
		{"incr nokey 1\r\n", "NOT_FOUND\r\n"},
		{"incr n 1 noreply\r\nget n\r\n", "VALUE n 0 2\r\n10\r\nEND\r\n"},
		{"delete n 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
		{"delete n 0\r\ndelete n\r\n", "DELETED\r\nNOT_FOUND\r\n"},
		{"touch a abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"touch a 100\r\ntouch nokey 1\r\n", "TOUCHED\r\nNOT_FOUND\r\n"},
		{"gat abc a\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"verbosity\r\n", "ERROR\r\n"},
		{"verbosity 1\r\n", "OK\r\n"},
		{"version\r\n", "VERSION " MC_VERSION_STRING "\r\n"},
		{"get a\r\nquit\r\nget a\r\n", "VALUE a 0 1\r\nq\r\nEND\r\n"},
		{"flush_all\r\nget a\r\n", "OK\r\nEND\r\n"},
	};
	(void)state;
	fresh();
	check_table(c, sizeof(c) / sizeof(c[0]));
}

static void
test_ascii_keys(void **state)
{
	char req[700];
	char k250[251], k251[252];
	(void)state;
	fresh();
	memset(k250, 'k', 250);
	k250[250] = '\0';
	memset(k251, 'k', 251);
	k251[251] = '\0';
	snprintf(req, sizeof(req), "set %s 0 0 1\r\nv\r\n", k250);
	assert_string_equal(run(req), "STORED\r\n");
	snprintf(req, sizeof(req), "set %s 0 0 1\r\nv\r\n", k251);
	assert_string_equal(run(req), "CLIENT_ERROR bad command line format\r\nERROR\r\n");
	/* An over-long key in a get culls the replies before it in the datagram. */
	snprintf(req, sizeof(req), "set a 0 0 1\r\nx\r\nget a %s\r\n", k251);
	assert_string_equal(run(req), "CLIENT_ERROR bad command line format\r\n");
	/* memcached's tokenizer splits on spaces only: control characters are key bytes. */
	assert_string_equal(run("set k\tx 0 0 1\r\nv\r\nget k\tx\r\n"),
			    "STORED\r\nVALUE k\tx 0 1\r\nv\r\nEND\r\n");
	/* A NUL ends the line as memcached sees it. */
	{
		size_t n;
		assert_string_equal(run_n("get a\0 b\r\n", 10, &n, 0), "VALUE a 0 1\r\nx\r\nEND\r\n");
	}
	/* More keys than one tokenizer pass. */
	{
		char big[600] = "get";
		int i;
		for (i = 0; i < 40; i++)
			strcat(big, " a");
		strcat(big, "\r\n");
		const char *got = run(big);
		size_t n = 0;
		for (const char *p = got; (p = strstr(p, "VALUE a")) != NULL; p++)
			n++;
		assert_int_equal(n, 40);
	}
}

static void
test_incomplete_and_cut_short(void **state)
{
	size_t n;
	(void)state;
	fresh();
	/* A partial last line: earlier replies stand, the fragment gets nothing. */
	assert_string_equal(run("set a 0 0 1\r\nx\r\nget a"), "STORED\r\n");
	/* A data block cut short: memcached waits and answers nothing for the datagram. */
	run_n("get a\r\nset k 0 0 10\r\nab", 23, &n, 0);
	assert_int_equal(n, 0);
	run_n("ms k 10\r\nab", 11, &n, 0);
	assert_int_equal(n, 0);
	assert_true(cx.st.proto_incomplete >= 3);
	/* Nothing was stored by the cut-short set. */
	assert_string_equal(run("get k\r\n"), "END\r\n");
}

/* memcached's safe_strtol is strtol and a plain store into int32_t (no range check) and
 * safe_strtoul a store into 32 bits; strtol/strtoul's own ERANGE still fails. Each reply
 * below is memcached 1.6.18's over UDP. */
static void
test_number_rules(void **state)
{
	static const struct ascii_case c[] = {
		{"set k 0 0 4294967297\r\nx\r\nget k\r\n", "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"},
		{"set k 0 0 -4294967295\r\ny\r\nget k\r\n", "STORED\r\nVALUE k 0 1\r\ny\r\nEND\r\n"},
		{"set k 0 0 2147483648\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"set k 4294967297 0 1\r\nx\r\nget k\r\n", "STORED\r\nVALUE k 1 1\r\nx\r\nEND\r\n"},
		{"set k 0 4294967297 1\r\nx\r\nmg k t v\r\n", "STORED\r\nVA 1 t1\r\nx\r\n"},
		{"set k 0 100 1\r\nx\r\ntouch k 4294967296\r\nmg k t\r\n",
		 "STORED\r\nTOUCHED\r\nHD t-1\r\n"},
		{"ms k 4294967297 T4294967306 F4294967298\r\nx\r\nmg k t f v\r\n",
		 "HD\r\nVA 1 t10 f2\r\nx\r\n"},
		{"set k 0 0 1\r\nx\r\nflush_all 4294967297\r\nget k\r\n", "STORED\r\nOK\r\nEND\r\n"},
		{"set k 0 0 1\r\nx\r\nincr k 18446744073709551616\r\nincr k -1\r\n",
		 "STORED\r\nCLIENT_ERROR invalid numeric delta argument\r\n"
		 "CLIENT_ERROR invalid numeric delta argument\r\n"},
		{"verbosity abc\r\nverbosity abc noreply\r\nverbosity 4294967297\r\n",
		 "CLIENT_ERROR bad command line format\r\nOK\r\n"},
		{"verbosity -1\r\nverbosity 1x\r\nverbosity 18446744073709551616\r\n",
		 "CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"
		 "CLIENT_ERROR bad command line format\r\n"},
	};
	(void)state;
	fresh();
	check_table(c, sizeof(c) / sizeof(c[0]));
	assert_int_equal(conf.verbosity, 1);
}

/* gat/gats and binary GAT/TOUCH fetch the item and then set its exptime (memcached's
 * item_touch is a get then a store of the time), so a past or negative exptime still
 * returns the value; the item is gone for the next command. */
static void
test_gat_reads_before_touch(void **state)
{
	uint8_t req[256], ext4[4];
	const uint8_t *r;
	char want[128];
	size_t n, len;
	uint64_t hits, misses;
	(void)state;
	fresh();
	assert_string_equal(run("set g 0 0 1\r\na\r\ngat -1 g\r\nget g\r\n"),
			    "STORED\r\nVALUE g 0 1\r\na\r\nEND\r\nEND\r\n");
	assert_string_equal(run("set g 5 0 1\r\na\r\ngat -1 g nokey g\r\nget g\r\n"),
			    "STORED\r\nVALUE g 5 1\r\na\r\nEND\r\nEND\r\n");
	assert_string_equal(run("set g 0 0 1\r\na\r\ngat 1000000000 g\r\nget g\r\n"),
			    "STORED\r\nVALUE g 0 1\r\na\r\nEND\r\nEND\r\n");
	assert_string_equal(run("set g 0 0 1\r\na\r\n"), "STORED\r\n");
	snprintf(want, sizeof(want), "%.120s", run("gets g\r\n"));
	assert_string_equal(run("gats -5 g\r\n"), want);
	assert_string_equal(run("get g\r\n"), "END\r\n");
	/* The touch counters move as before: one hit, one miss. */
	assert_string_equal(run("set g 0 0 1\r\na\r\n"), "STORED\r\n");
	hits = cx.sx.st.touch_hits;
	misses = cx.sx.st.touch_misses;
	assert_string_equal(run("gat 100 g nokey\r\n"), "VALUE g 0 1\r\na\r\nEND\r\n");
	assert_int_equal(cx.sx.st.touch_hits - hits, 1);
	assert_int_equal(cx.sx.st.touch_misses - misses, 1);

	/* Binary: 0x40000000 is 2004, before the store started, so already past. */
	be32_put(ext4, 0x40000000u);
	assert_string_equal(run("set t1 3 0 1\r\nx\r\nset t2 3 0 1\r\ny\r\nset t3 3 0 1\r\nz\r\n"),
			    "STORED\r\nSTORED\r\nSTORED\r\n");
	len = breq(req, 0x1d, "t1", ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(n, 24 + 4 + 1);
	assert_memory_equal(r + 24, "\0\0\0\3x", 5);
	assert_int_equal(bget("t1"), 1);
	len = breq(req, 0x1c, "t2", ext4, 4, NULL, 0, 0); /* TOUCH: flags, no value */
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(n, 24 + 4);
	assert_memory_equal(r + 24, "\0\0\0\3", 4);
	assert_int_equal(bget("t2"), 1);
	len = breq(req, 0x24, "t3", ext4, 4, NULL, 0, 0); /* GATKQ */
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 24 + 4 + 2 + 1);
	assert_memory_equal(r + 24, "\0\0\0\3t3z", 7);
	assert_int_equal(bget("t3"), 1);
}

/* The transport's hint (first key, its hash) lets a lone get/gets skip the tokenizer. Every
 * request must get the same bytes and counters with the hint as without, and only the exact
 * one-key forms may take the short way. */
static void
test_hinted_get_matches_tokenizer(void **state)
{
	static const struct {
		const char *req;
		size_t key_off; /* where the transport would say the key starts */
		size_t key_len;
		int fast;
	} c[] = {
		{"get hk\r\n", 4, 2, 1},
		{"gets hk\r\n", 5, 2, 1},
		{"get hk\n", 4, 2, 0},
		{"get hk \r\n", 4, 2, 0},
		{"get hk hk\r\n", 4, 2, 0},
		{"get hk\r\nget hk\r\n", 4, 2, 0},
		{"get hk\r\r\n", 4, 2, 0},
		{"get hk\tx\r\n", 4, 2, 0},
		{"gat 0 hk\r\n", 6, 2, 0},
		{"get hk\r\n", 5, 1, 0},  /* a hint for another view of the bytes */
		{"get 0123456789abcdef0123\r\n", 4, 20, 1},
		{"get 0123456789abcdef0123\r\n", 4, 19, 0},
		{"get nokey\r\n", 4, 5, 1}, /* a miss */
		{"gets big\r\n", 5, 3, 1},  /* past the first buffer: the reply spills */
	};
	/* No cap; a cap the longer hits do not fit under (the cut line instead), nor a miss's
	 * END (nothing at all). */
	static const size_t limits[] = {0, 100, 66};
	size_t k;
	char *set_big;
	size_t big_len;
	(void)state;
	fresh();
	assert_string_equal(run("set hk 7 0 3\r\nabc\r\n"), "STORED\r\n");
	assert_string_equal(run("set 0123456789abcdef0123 4294967295 0 0\r\n\r\n"), "STORED\r\n");
	set_big = with_value("set big 1 0 1500\r\n", 1500, "\r\n", &big_len);
	assert_string_equal(run(set_big), "STORED\r\n");
	free(set_big);
	for (k = 0; k < sizeof(limits) / sizeof(limits[0]) * (sizeof(c) / sizeof(c[0])); k++) {
		const size_t i = k % (sizeof(c) / sizeof(c[0])), li = k / (sizeof(c) / sizeof(c[0]));
		const uint8_t *req = (const uint8_t *)c[i].req;
		size_t len = strlen(c[i].req), n1, n2;
		static char plain[4096];
		struct mc_store_ctx_stats st0 = cx.sx.st, st1;
		struct mc_proto_stats p0 = cx.st, p1;
		uint64_t fast;
		{
			const char *got = run_n(req, len, &n1, limits[li]);
			memcpy(plain, got, n1 + 1);
		}
		st1 = cx.sx.st;
		p1 = cx.st;
		fast = cx.st.cmd_get_fast;
		{
			struct mc_key hk;
			const char *hinted;
			mc_key_init(&hk, cx.sx.s, req + c[i].key_off, (uint32_t)c[i].key_len);
			run_hint = &hk;
			hinted = run_n(req, len, &n2, limits[li]);
			run_hint = NULL;
			if (n1 != n2 || memcmp(plain, hinted, n1) != 0)
				fail_msg("case %zu (%s): without hint %s, with hint %s", i, c[i].req,
					 plain, hinted);
		}
#define X(n)                                                                                   \
	if (st1.n - st0.n != cx.sx.st.n - st1.n)                                               \
		fail_msg("case %zu (%s): %s moved by %llu, with the hint by %llu", i, c[i].req, #n, \
			 (unsigned long long)(st1.n - st0.n), (unsigned long long)(cx.sx.st.n - st1.n));
		MC_STORE_CTX_COUNTERS(X)
#undef X
#define X(n)                                                                                   \
	if (strcmp(#n, "cmd_get_fast") != 0 && p1.n - p0.n != cx.st.n - p1.n)                  \
		fail_msg("case %zu (%s): %s moved by %llu, with the hint by %llu", i, c[i].req, #n, \
			 (unsigned long long)(p1.n - p0.n), (unsigned long long)(cx.st.n - p1.n));
		MC_PROTO_COUNTERS(X)
#undef X
		if (cx.st.cmd_get_fast - fast != (uint64_t)c[i].fast)
			fail_msg("case %zu (%s): fast path %s", i, c[i].req,
				 c[i].fast ? "not taken" : "taken");
	}
	/* A gets reply carries the CAS; the flags print in full. */
	assert_non_null(strstr(run("get 0123456789abcdef0123\r\n"), " 4294967295 0\r\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_storage_and_errors),
		cmocka_unit_test(test_ascii_keys),
		cmocka_unit_test(test_incomplete_and_cut_short),
		cmocka_unit_test(test_number_rules),
		cmocka_unit_test(test_gat_reads_before_touch),
		cmocka_unit_test(test_hinted_get_matches_tokenizer),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
