/* lru_crawler and its metadump, and the me debug line, against memcached 1.6.18's bytes
 * (oracle-checked: tests/integration/test_ops.py compares the same with a live memcached). */
#include "tests/unit/proto/proto_test.h"

static struct mc_dump dump;

/* Run req as a stream transport does, a soft bytes at a time, until it is all consumed and no
 * dump is under way; return everything written. */
static const char *
run_stream(const char *req, size_t soft)
{
	static char all[4 << 20];
	size_t pos = 0, len = strlen(req), n = 0, rounds = 0;
	uint8_t proto = MC_SP_NEW;
	cx.stream = true;
	cx.dump = &dump;
	while (pos < len || dump.active) {
		struct mc_out o;
		enum mc_proto_ev ev;
		mc_out_init(&o, outbuf, sizeof(outbuf), spill, sizeof(spill), (size_t)1 << 40);
		pos += mc_proto_stream(&cx, (const uint8_t *)req + pos, len - pos, &o, soft, &proto,
				       &ev);
		assert_true(n + o.len < sizeof(all));
		memcpy(all + n, o.buf, o.len);
		n += o.len;
		assert_true(++rounds < 1000000);
	}
	all[n] = '\0';
	cx.stream = false;
	cx.dump = NULL;
	return all;
}

static unsigned int
count(const char *in, const char *what)
{
	unsigned int n = 0;
	for (in = strstr(in, what); in != NULL; in = strstr(in + 1, what))
		n++;
	return n;
}

/* me: exp is memcached 1.6.18's current_time - exptime (the TTL left, negated), size its
 * ITEM_ntotal (48 + 8 + key + 1 + value + 2, + 4 with flags), errors as process_meta_command. */
static void
test_me(void **state)
{
	static const struct ascii_case c[] = {
		{"set a%b 0 100 3\r\nabc\r\nme a%b\r\n",
		 "STORED\r\nME a%b exp=-100 la=0 cas=1 fetch=no cls=1 size=65\r\n"},
		{"set k2 5 0 1\r\nx\r\nget k2\r\nme k2\r\n",
		 "STORED\r\nVALUE k2 5 1\r\nx\r\nEND\r\nME k2 exp=-1 la=0 cas=2 fetch=yes cls=1 size=66\r\n"},
		{"me\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"me k2 b\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"me nope\r\n", "EN\r\n"},
		{"ms YQ== 1 b\r\nx\r\nme YQ== b\r\n",
		 "HD\r\nME YQ== exp=-1 la=0 cas=3 fetch=no cls=1 size=61\r\n"},
	};
	(void)state;
	fresh();
	check_table(c, sizeof(c) / sizeof(c[0]));
	mc_store_clock_set(s, T0 + 30);
	assert_string_equal(run("me a%b\r\n"), "ME a%b exp=-70 la=0 cas=1 fetch=no cls=1 size=65\r\n");
}

/* One line per live item, LF-ended, keys uriencoded, exp and la absolute; then END. */
static void
test_metadump_lines(void **state)
{
	char want[256];
	(void)state;
	fresh();
	assert_string_equal(run_stream("lru_crawler metadump all\r\n", 1 << 16), "END\r\n");
	run("set a%b 0 100 3\r\nabc\r\nset x 0 1 1\r\nx\r\n");
	mc_store_clock_set(s, T0 + 5); /* x has expired: left out, as memcached leaves it */
	snprintf(want, sizeof(want),
		 "key=a%%25b exp=%lld la=%lld cas=1 fetch=no cls=1 size=65\nEND\r\n", T0 + 100, T0 + 5);
	assert_string_equal(run_stream("lru_crawler metadump all\r\n", 1 << 16), want);
	assert_string_equal(run_stream("lru_crawler metadump hash\r\n", 1 << 16), want);
	assert_string_equal(run_stream("lru_crawler metadump 1\r\n", 1 << 16), want);
	assert_string_equal(run_stream("lru_crawler metadump ,1,,3\r\n", 1 << 16), want);
	assert_string_equal(run_stream("lru_crawler metadump 2\r\n", 1 << 16), "END\r\n");
	assert_string_equal(run_stream("lru_crawler metadump 63\r\n", 1 << 16), "END\r\n");
	/* The request after it waits for the dump. */
	snprintf(want, sizeof(want),
		 "key=a%%25b exp=%lld la=%lld cas=1 fetch=no cls=1 size=65\nEND\r\nMN\r\n", T0 + 100,
		 T0 + 5);
	assert_string_equal(run_stream("lru_crawler metadump all\r\nmn\r\n", 1 << 16), want);
	/* Every byte but alphanumerics and -._~ is %XX. */
	run("set -._~!:\x7f 0 0 1\r\nx\r\nflush_all\r\nset -._~!:\x7f 0 0 1\r\nx\r\n");
	assert_non_null(strstr(run_stream("lru_crawler metadump all\r\n", 1 << 16),
			       "key=-._~%21%3A%7F exp=-1 "));
}

/* Many items, a small reply at a time: each exactly once, END once, at the end. */
static void
test_metadump_chunks(void **state)
{
	char req[64];
	const char *got;
	unsigned int i;
	(void)state;
	fresh();
	for (i = 0; i < 3000; i++) {
		snprintf(req, sizeof(req), "set key:%u 0 0 1\r\nv\r\n", i);
		assert_string_equal(run(req), "STORED\r\n");
	}
	run("set big 0 0 2000\r\n"); /* a data block missing: nothing stored */
	got = run_stream("lru_crawler metadump all\r\nmn\r\n", 512);
	assert_int_equal(count(got, "key=key%3A"), 3000);
	assert_int_equal(count(got, "\nEND\r\nMN\r\n"), 1);
	assert_int_equal(strlen(strstr(got, "END\r\n")), 9);
	for (i = 0; i < 3000; i += 97) {
		snprintf(req, sizeof(req), "key=key%%3A%u exp=", i);
		assert_int_equal(count(got, req), 1);
	}
	/* By class: a 2000-byte value lives in a larger class than the small ones. */
	{
		size_t n;
		char *set = with_value("set big 0 0 2000\r\n", 2000, "\r\n", &n);
		assert_string_equal(run_n(set, n, &n, 0), "STORED\r\n");
		free(set);
	}
	got = run_stream("lru_crawler metadump 1\r\n", 4096);
	assert_int_equal(count(got, "key="), 3000);
	assert_null(strstr(got, "key=big "));
	got = run_stream("lru_crawler metadump all\r\n", 4096);
	assert_int_equal(count(got, "key="), 3001);
}

/* process_lru_crawler_command's answers, and mcbox's gates. */
static void
test_crawler_errors(void **state)
{
	static const struct ascii_case udp[] = {
		{"lru_crawler\r\n", "ERROR\r\n"},
		{"lru_crawler metadump\r\n", "ERROR\r\n"},
		{"lru_crawler foo\r\n", "ERROR\r\n"},
		{"lru_crawler foo bar\r\n", "ERROR\r\n"},
		{"lru_crawler metadump all x\r\n", "ERROR\r\n"},
		{"lru_crawler enable\r\n", "ERROR failed to start lru crawler thread\r\n"},
		{"lru_crawler crawl all\r\n", "OK\r\n"},
		{"lru_crawler crawl 99\r\n", "BADCLASS invalid class id\r\n"},
		{"lru_crawler crawl ,\r\n", "NOTSTARTED no items to crawl\r\n"},
		{"lru_crawler tocrawl 5\r\n", "OK\r\n"},
		{"lru_crawler tocrawl x\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"lru_crawler sleep 2000000\r\n", "CLIENT_ERROR sleep must be one second or less\r\n"},
		{"lru_crawler sleep 100\r\n", "OK\r\n"},
		{"lru_crawler metadump all\r\n", "CLIENT_ERROR metadump not allowed over UDP\r\n"},
		{"lru_crawler disable\r\nlru_crawler disable\r\nlru_crawler metadump all\r\n"
		 "lru_crawler crawl 1\r\nlru_crawler enable\r\n",
		 "OK\r\nOK\r\nCLIENT_ERROR lru crawler disabled\r\nCLIENT_ERROR lru crawler disabled\r\nOK\r\n"},
	};
	static const char *bad[] = {"0", "64", "foo", "1,x", "-1", "1,64"};
	char req[64];
	unsigned int i;
	(void)state;
	fresh();
	check_table(udp, sizeof(udp) / sizeof(udp[0]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(req, sizeof(req), "lru_crawler metadump %s\r\n", bad[i]);
		assert_string_equal(run_stream(req, 1 << 16), "BADCLASS invalid class id\r\n");
	}
	assert_string_equal(run_stream("lru_crawler metadump ,\r\n", 1 << 16),
			    "NOTSTARTED no items to crawl\r\n");
	/* safe_strtoul keeps 32 bits: 2^32 + 1 is class 1. */
	assert_string_equal(run_stream("lru_crawler metadump 4294967297\r\n", 1 << 16), "END\r\n");
	/* UDP without udp_admin: refused like stats, and counted. */
	i = (unsigned int)cx.st.admin_refused;
	conf.udp_admin = false;
	assert_string_equal(run("lru_crawler metadump all\r\n"),
			    "CLIENT_ERROR lru_crawler not allowed\r\n");
	assert_int_equal(cx.st.admin_refused, i + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_me),
		cmocka_unit_test(test_metadump_lines),
		cmocka_unit_test(test_metadump_chunks),
		cmocka_unit_test(test_crawler_errors),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
