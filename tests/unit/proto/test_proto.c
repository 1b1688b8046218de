/* The protocol core: the reply buffer and its caps (memory, the UDP cap's "retry over TCP"),
 * the admin and writes switches and read-only, append past the item limit in every codec,
 * decimal digits, the short copy. */
#include "tests/unit/proto/proto_test.h"

static void
test_reply_cap(void **state)
{
	size_t n;
	char big[3000];
	char req[3200];
	(void)state;
	fresh();
	memset(big, 'v', 2000);
	snprintf(req, sizeof(req), "set b 0 0 2000\r\n%.2000s\r\n", big);
	assert_string_equal(run(req), "STORED\r\n");
	/* A reply limit smaller than the value: memcached's out-of-memory error instead. */
	const char *got = run_n("get b\r\n", 7, &n, 1000);
	assert_string_equal(got, "SERVER_ERROR out of memory writing get response\r\n");
	got = run_n("get b\r\n", 7, &n, 0);
	assert_int_equal(n, strlen("VALUE b 0 2000\r\n") + 2000 + 2 + 5);
}

/* The UDP cap: a reply that would pass it is one short line telling the client to fetch it
 * over TCP, in each codec; what fitted before it stands; the whole stays under the cap. */
static void
test_udp_cap_says_retry_over_tcp(void **state)
{
	static const char line[] = MC_TOO_LARGE_UDP "\r\n";
	static char req[8192], want[8192];
	char big[3000];
	const uint8_t *r;
	size_t n, wl;
	uint64_t before;
	(void)state;
	fresh();
	memset(big, 'v', sizeof(big));
	snprintf(req, sizeof(req), "set b 0 0 2000\r\n%.2000s\r\n", big);
	assert_string_equal(run(req), "STORED\r\n");
	out_udp = true;
	before = cx.st.reply_too_large_udp;
	assert_string_equal(run_n("get b\r\n", 7, &n, 1000), line);
	assert_string_equal(run_n("mg b v\r\n", 8, &n, 1000), line);
	/* Two values fit under 4500 bytes, the third does not: it becomes the line. */
	wl = (size_t)snprintf(want, sizeof(want), "VALUE b 0 2000\r\n%.2000s\r\n"
				  "VALUE b 0 2000\r\n%.2000s\r\n%s", big, big, line);
	assert_string_equal(run_n("get b b b\r\n", 11, &n, 4500), want);
	assert_int_equal(n, wl);
	assert_true(n <= 4500);
	/* Binary GETK: status 0x0003 (too large) with the same advice. */
	memcpy(req, "\x80\x0c\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x09"
		    "\x00\x00\x00\x00\x00\x00\x00\x00" "b", 25);
	r = (const uint8_t *)run_n(req, 25, &n, 1000);
	assert_int_equal(n, 24 + strlen("Too large for UDP; retry over TCP"));
	assert_int_equal(r[0], 0x81);
	assert_int_equal(r[7], 0x03);
	assert_memory_equal(r + 24, "Too large for UDP; retry over TCP", n - 24);
	assert_int_equal(cx.st.reply_too_large_udp, before + 4);
	out_udp = false;
}

static void
test_admin_and_writes_switches(void **state)
{
	(void)state;
	fresh();
	conf.udp_admin = false;
	assert_string_equal(run("stats\r\n"), "CLIENT_ERROR stats not allowed\r\n");
	assert_string_equal(run("flush_all\r\n"), "CLIENT_ERROR flush_all not allowed\r\n");
	assert_string_equal(run("verbosity 1\r\n"), "CLIENT_ERROR verbosity not allowed\r\n");
	conf.udp_writes = false;
	assert_string_equal(run("set a 0 0 1\r\nx\r\n"), "CLIENT_ERROR writes not allowed\r\n");
	assert_string_equal(run("get a\r\n"), "END\r\n");
	conf.udp_admin = true;
	conf.udp_writes = true;
	/* stats: memcached's shape, STAT lines then END. */
	const char *st = run("stats\r\n");
	assert_non_null(strstr(st, "STAT curr_items 0\r\n"));
	assert_true(strlen(st) > 5 && strcmp(st + strlen(st) - 5, "END\r\n") == 0);
	assert_string_equal(run("stats nosuchgroup\r\n"), "ERROR\r\n");
	assert_non_null(strstr(run("stats settings\r\n"), "STAT item_size_max 1048576\r\n"));
}

/* Read-only UDP (udp_writes off) changes nothing in the store, whatever the command: gat and
 * gats would touch, mg N/T/R vivify, retime or hand out a recache token, and an oversize set
 * or ms would delete the old item (memcached's "avoid stale data" rule). */
static void
test_read_only_refuses_writes(void **state)
{
	static const char refused[] = "CLIENT_ERROR writes not allowed\r\n";
	uint8_t breqbuf[64];
	const uint8_t *r;
	const uint8_t ext8[8] = {0};
	const uint8_t ext4[4] = {0, 0, 0, 100};
	char *big;
	size_t n, len;
	uint64_t before;
	(void)state;
	fresh();
	assert_string_equal(run("set g 0 0 1\r\na\r\nms m 1 T0\r\nb\r\nms r 1 T10\r\nc\r\n"
				"ms st 1\r\nd\r\nmd st I\r\n"),
			    "STORED\r\nHD\r\nHD\r\nHD\r\nHD\r\n");
	conf.udp_writes = false;
	before = cx.st.write_refused;

	assert_string_equal(run("gat 100 g\r\n"), refused);
	assert_string_equal(run("gats 100 g\r\n"), refused);
	assert_string_equal(run("gat -1 g\r\n"), refused);
	assert_string_equal(run("gat abc g\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
	assert_string_equal(run("mg g T30\r\n"), refused);
	assert_string_equal(run("mg nokey N30 v\r\n"), refused);
	assert_string_equal(run("mg r R30 v\r\n"), refused);
	assert_string_equal(run("mg g v q N30\r\n"), refused);
	assert_string_equal(run("ma g N0\r\nmd g\r\nms g 1 MA\r\nx\r\n"),
			    "CLIENT_ERROR writes not allowed\r\nCLIENT_ERROR writes not allowed\r\n"
			    "CLIENT_ERROR writes not allowed\r\n");
	assert_string_equal(run("touch g 1\r\ntouch g 1 noreply\r\nincr g 1\r\ndelete g\r\n"),
			    "CLIENT_ERROR writes not allowed\r\nCLIENT_ERROR writes not allowed\r\n"
			    "CLIENT_ERROR writes not allowed\r\n");

	/* Oversize stores: refused before the size check, so the old item stays. */
	big = with_value("set g 0 0 1048577\r\n", 1048577, "\r\n", &len);
	assert_string_equal(run_n(big, len, &n, 0), refused);
	free(big);
	big = with_value("set g 0 0 1048577 noreply\r\n", 1048577, "\r\n", &len);
	run_n(big, len, &n, 0);
	assert_int_equal(n, 0);
	free(big);
	big = with_value("ms g 1048577\r\n", 1048577, "\r\n", &len);
	assert_string_equal(run_n(big, len, &n, 0), refused);
	free(big);
	{
		uint8_t *b = malloc(24 + 8 + 1 + 1048577);
		len = breq(b, 0x01, "g", ext8, 8, NULL, 0, 0);
		b[8] = 0; /* body: extras, key and a 1 MiB + 1 value */
		b[9] = 0x10;
		b[10] = 0;
		b[11] = 0x0a;
		memset(b + len, 'v', 1048577);
		r = (const uint8_t *)run_n(b, len + 1048577, &n, 0);
		assert_int_equal(status_of(r), 0x20);
		free(b);
	}
	/* Binary GAT, GATQ and TOUCH: Auth failure. */
	len = breq(breqbuf, 0x1d, "g", ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(breqbuf, len, &n, 0);
	assert_int_equal(status_of(r), 0x20);
	len = breq(breqbuf, 0x1e, "g", ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(breqbuf, len, &n, 0);
	assert_int_equal(status_of(r), 0x20);
	len = breq(breqbuf, 0x1c, "g", ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(breqbuf, len, &n, 0);
	assert_int_equal(status_of(r), 0x20);
	/* flush_all empties nothing (admin is on in these tests), ASCII or binary. */
	assert_string_equal(run("flush_all\r\n"), refused);
	len = breq(breqbuf, 0x08, "", NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(breqbuf, len, &n, 0);
	assert_int_equal(status_of(r), 0x20);
	/* A stale item's one win is not claimed (claiming marks the item): X, no W. */
	assert_string_equal(run("mg st v\r\n"), "VA 1 X\r\nd\r\n");
	/* Each refusal counted once (the noreply one too). */
	assert_int_equal(cx.st.write_refused - before, 23);

	/* Nothing changed: the items, their TTLs, no vivified key, no recache token. */
	assert_string_equal(run("get g\r\nmg g t v\r\nmg m t v\r\nmg nokey v\r\n"),
			    "VALUE g 0 1\r\na\r\nEND\r\nVA 1 t-1\r\na\r\nVA 1 t-1\r\nb\r\nEN\r\n");
	conf.udp_writes = true;
	assert_string_equal(run("mg r R30 v\r\n"), "VA 1 W\r\nc\r\n");
	assert_string_equal(run("mg st v\r\n"), "VA 1 X W\r\nd\r\n");
}

/* An append or prepend that would grow the item past -I is NOT_STORED in memcached (the
 * joined item cannot be allocated; the old value stays): ASCII NOT_STORED, meta NS, binary
 * 0x0005 "Not stored.", quiet forms included. Oracle: memcached -I 64k. */
static void
test_append_past_item_max(void **state)
{
	static const uint8_t ops[] = {0x0e, 0x0f, 0x19, 0x1a};
	uint8_t *b;
	const uint8_t *r;
	char *req;
	size_t n, len, i;
	(void)state;
	fresh_sized(64 << 10);
	/* Each command line with a 40,000-byte data block, what follows the block, the reply. */
	static const struct {
		const char *head, *tail, *want;
	} grow[] = {
		{"set ap 0 0 40000\r\n", "\r\n", "STORED\r\n"},
		{"append ap 0 0 40000\r\n", "\r\n", "NOT_STORED\r\n"},
		{"prepend ap 0 0 40000 noreply\r\n", "\r\nmn\r\n", "MN\r\n"},
		{"ms ap 40000 MA\r\n", "\r\n", "NS\r\n"},
		{"ms ap 40000 MP q\r\n", "\r\nmn\r\n", "NS\r\nMN\r\n"},
		{"ms ap 40000 MA O123 k\r\n", "\r\n", "NS O123 kap\r\n"},
		{"ms ap 40000 MA N0 c\r\n", "\r\n", "NS c0\r\n"},
	};
	for (i = 0; i < sizeof(grow) / sizeof(grow[0]); i++) {
		req = with_value(grow[i].head, 40000, grow[i].tail, &len);
		assert_string_equal(run_n(req, len, &n, 0), grow[i].want);
		free(req);
	}
	assert_string_equal(run("mg ap s\r\n"), "HD s40000\r\n");

	b = malloc(24 + 2 + 40000);
	for (i = 0; i < sizeof(ops); i++) { /* APPEND, PREPEND, APPENDQ, PREPENDQ */
		const uint8_t op = ops[i];
		len = breq(b, op, "ap", NULL, 0, NULL, 0, 0);
		b[9] = (uint8_t)((2 + 40000) >> 16);
		b[10] = (uint8_t)((2 + 40000) >> 8);
		b[11] = (uint8_t)(2 + 40000);
		memset(b + len, 'w', 40000);
		r = (const uint8_t *)run_n(b, len + 40000, &n, 0);
		assert_int_equal(n, 24 + 11);
		assert_int_equal(r[1], op);
		assert_int_equal(status_of(r), 0x05);
		assert_memory_equal(r + 24, "Not stored.", 11);
	}
	free(b);
	assert_string_equal(run("mg ap s\r\n"), "HD s40000\r\n");
}

/* Digit counts around every power of ten, against printf. */
static void
test_decimal_digits(void **state)
{
	uint64_t p = 1;
	int i;
	(void)state;
	assert_int_equal(mc_u64_digits(0), 1);
	assert_int_equal(mc_u64_digits(UINT64_MAX), 20);
	for (i = 0; i < 20; i++, p *= 10) {
		uint64_t v[3] = {p - 1, p, p + 1};
		int j;
		for (j = 0; j < 3; j++) {
			char want[32];
			uint8_t got[32];
			unsigned int n = mc_u64_digits(v[j]);
			assert_int_equal(n, (unsigned int)snprintf(want, sizeof(want), "%llu",
								  (unsigned long long)v[j]));
			mc_put_u64(got, v[j], n);
			assert_memory_equal(got, want, n);
		}
	}
}

/* mc_copy moves exactly n bytes for every length its cases split at and around, at odd
 * alignments, and writes nothing outside them. */
static void
test_short_copy(void **state)
{
	uint8_t src[80], dst[96], want[96];
	size_t n, off;
	(void)state;
	for (n = 0; n < sizeof(src); n++)
		src[n] = (uint8_t)(n * 7 + 1);
	for (n = 0; n <= 70; n++) {
		for (off = 0; off < 3; off++) {
			memset(dst, 0xee, sizeof(dst));
			memset(want, 0xee, sizeof(want));
			memcpy(want + 8 + off, src + off, n);
			mc_copy(dst + 8 + off, src + off, n);
			assert_memory_equal(dst, want, sizeof(dst));
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_cap),
		cmocka_unit_test(test_udp_cap_says_retry_over_tcp),
		cmocka_unit_test(test_admin_and_writes_switches),
		cmocka_unit_test(test_read_only_refuses_writes),
		cmocka_unit_test(test_append_past_item_max),
		cmocka_unit_test(test_decimal_digits),
		cmocka_unit_test(test_short_copy),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
