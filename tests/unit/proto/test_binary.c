/* memcached's binary protocol: every opcode, unsigned exptimes, lengths that lie and requests
 * that run past the datagram. */
#include "tests/unit/proto/proto_test.h"

static void
test_binary(void **state)
{
	uint8_t req[4096];
	const uint8_t *r;
	size_t n, len;
	const uint8_t ext8[8] = {0, 0, 0, 5, 0, 0, 0, 0};
	uint8_t ext20[20] = {0};
	(void)state;
	fresh();
	/* set, then getk: flags, key, value, CAS, opaque echoed. */
	len = breq(req, 0x01, "bk", ext8, 8, "hello", 5, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 24);
	assert_int_equal(r[0], 0x81);
	assert_int_equal(status_of(r), 0);
	assert_memory_equal(r + 12, "\xde\xad\xbe\xef", 4);
	len = breq(req, 0x0c, "bk", NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 24 + 4 + 2 + 5);
	assert_memory_equal(r + 24, "\0\0\0\5bkhello", 11);
	/* Misses: GET says Not found, GETK echoes the key, GETQ is silent until NOOP. */
	len = breq(req, 0x00, "zz", NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 1);
	assert_memory_equal(r + 24, "Not found", 9);
	len = breq(req, 0x09, "zz", NULL, 0, NULL, 0, 0);
	len += breq(req + len, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 24);
	assert_int_equal(r[1], 0x0a);
	/* add on an existing key: Data exists; replace on a missing one: Not found. */
	len = breq(req, 0x02, "bk", ext8, 8, "x", 1, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 2);
	assert_memory_equal(r + 24, "Data exists for key.", 20);
	/* incr: create with initial, then add; no-create expiry gives Not found. */
	ext20[7] = 5;  /* delta */
	ext20[15] = 100; /* initial */
	len = breq(req, 0x05, "ctr", ext20, 20, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(r[24 + 7], 100);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(r[24 + 7], 105);
	memset(ext20 + 16, 0xff, 4);
	len = breq(req, 0x05, "ctr2", ext20, 20, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 1);
	len = breq(req, 0x05, "bk", ext20, 20, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 6);
	/* Unknown opcode: Unknown command; key+extras longer than the body: same, and stop. */
	len = breq(req, 0x55, NULL, NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 0x81);
	len = breq(req, 0x00, "bk", NULL, 0, NULL, 0, 0);
	req[11] = 1; /* body length 1 < key length 2 */
	len += breq(req + len, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len - 1, &n, 0);
	assert_int_equal(status_of(r), 0x81);
	assert_int_equal(n, 24 + 15);
	/* Wrong extras for GET: Invalid arguments, and nothing after it runs. */
	len = breq(req, 0x00, "bk", "1234", 4, NULL, 0, 0);
	len += breq(req + len, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 4);
	assert_int_equal(n, 24 + 17);
	/* Body length past the datagram: memcached would wait; nothing is answered or read. */
	len = breq(req, 0x01, "tk", ext8, 8, "hello", 5, 0);
	run_n(req, len - 2, &n, 0);
	assert_int_equal(n, 0);
	req[8] = 0x7f; /* a 2 GiB body */
	run_n(req, len, &n, 0);
	assert_int_equal(n, 0);
	/* A key longer than 250: Invalid arguments. */
	{
		char k[252];
		memset(k, 'k', 251);
		k[251] = '\0';
		len = breq(req, 0x00, k, NULL, 0, NULL, 0, 0);
		r = (const uint8_t *)run_n(req, len, &n, 0);
		assert_int_equal(status_of(r), 4);
	}
	/* A header cut short. */
	run_n(req, 23, &n, 0);
	assert_int_equal(n, 0);
}

/* Binary exptimes and flush delays are uint32 on the wire and memcached takes them unsigned
 * (realtime(ntohl(...)), no EXPTIME_TO_POSITIVE_TIME): 2^31 and above are far future, not
 * "already expired". */
static void
test_binary_exptime_unsigned(void **state)
{
	uint8_t req[256], ext8[8] = {0}, ext4[4];
	const uint8_t *r;
	size_t n, len;
	(void)state;
	fresh();
	be32_put(ext8 + 4, 0x80000000u);
	len = breq(req, 0x01, "s1", ext8, 8, "v", 1, 0);
	len += breq(req + len, 0x02, "a1", ext8, 8, "v", 1, 0);
	len += breq(req + len, 0x11, "r1", ext8, 8, "v", 1, 0);
	len += breq(req + len, 0x13, "r1", ext8, 8, "w", 1, 0); /* REPLACEQ */
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 48);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(status_of(r + 24), 0);
	assert_int_equal(bget("s1"), 0);
	assert_int_equal(bget("a1"), 0);
	assert_int_equal(bget("r1"), 0);

	/* GAT and TOUCH: 0xfffffff0 is about 2106, so the item stays. */
	assert_string_equal(run("set t1 0 0 1\r\nx\r\nset t2 0 0 1\r\ny\r\n"),
			    "STORED\r\nSTORED\r\n");
	be32_put(ext4, 0xfffffff0u);
	len = breq(req, 0x1d, "t1", ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(n, 24 + 4 + 1);
	assert_int_equal(bget("t1"), 0);
	len = breq(req, 0x1c, "t2", ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(bget("t2"), 0);

	/* FLUSH with a delay of 2^31 seconds: nothing goes now. */
	be32_put(ext4, 0x80000000u);
	len = breq(req, 0x08, NULL, ext4, 4, NULL, 0, 0);
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 24);
	assert_int_equal(status_of(r), 0);
	assert_int_equal(bget("t1"), 0);
	assert_string_equal(run("get s1\r\n"), "VALUE s1 0 1\r\nv\r\nEND\r\n");
}

/* memcached reads a binary request once its header, extras and key are in; over UDP the rest
 * never comes, so a request whose key and extras run past the datagram gets no reply, while
 * one whose key and extras only overrun its own body length is "Unknown command". The parser
 * waiting for more flushes what was answered before it: those replies stand. Oracle-checked. */
static void
test_binary_key_past_datagram(void **state)
{
	uint8_t req[256];
	const uint8_t ext8[8] = {0};
	const uint8_t *r;
	size_t n, len, first;
	uint64_t inc;
	(void)state;
	fresh();
	/* keylen 10, body 5, and exactly 5 bytes: silent. */
	inc = cx.st.proto_incomplete;
	len = breq(req, 0x00, "xxxxxxxxxx", NULL, 0, NULL, 0, 0);
	req[11] = 5;
	run_n(req, 24 + 5, &n, 0);
	assert_int_equal(n, 0);
	assert_int_equal(cx.st.proto_incomplete - inc, 1);
	/* The same with 10 bytes there: the key fits, the body does not hold it. */
	r = (const uint8_t *)run_n(req, len, &n, 0);
	assert_int_equal(n, 24 + 15);
	assert_int_equal(status_of(r), 0x81);
	/* keylen 2, extras 4, body 5 and 5 bytes: silent too. */
	len = breq(req, 0x00, "xx", "eeee", 4, NULL, 0, 0);
	req[11] = 5;
	run_n(req, 24 + 5, &n, 0);
	assert_int_equal(n, 0);
	assert_int_equal(cx.st.proto_incomplete - inc, 2);

	/* Earlier replies stand: NOOP, a SET, a GET miss, then the short request. */
	len = breq(req, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	len += breq(req + len, 0x01, "kk", ext8, 8, "v", 1, 0);
	len += breq(req + len, 0x00, "zz", NULL, 0, NULL, 0, 0);
	first = len;
	len += breq(req + len, 0x00, "xxxxxxxxxx", NULL, 0, NULL, 0, 0);
	req[first + 11] = 5;
	r = (const uint8_t *)run_n(req, first + 24 + 5, &n, 0);
	assert_int_equal(n, 24 + 24 + 24 + 9);
	assert_int_equal(r[1], 0x0a);
	assert_int_equal(r[24 + 1], 0x01);
	assert_int_equal(status_of(r + 48), 1);
	assert_int_equal(cx.st.proto_incomplete - inc, 3);
	/* A header cut short after them: the same. */
	r = (const uint8_t *)run_n(req, first + 2, &n, 0);
	assert_int_equal(n, 24 + 24 + 24 + 9);
	assert_int_equal(cx.st.proto_incomplete - inc, 4);
	/* A value cut short is another matter: memcached is reading the value, not parsing, and
	 * sends nothing more (oracle: SET then a SET whose value is short: no reply at all). */
	len = breq(req, 0x01, "kk", ext8, 8, "v", 1, 0);
	len += breq(req + len, 0x01, "kk", ext8, 8, "vvvvv", 5, 0);
	run_n(req, len - 4, &n, 0);
	assert_int_equal(n, 0);
}

/* Every truncation of a valid binary pipeline and random length fields: never a read past
 * the datagram (ASan watches: the copy below is exactly the datagram), never a crash. */
static void
test_binary_lengths_that_lie(void **state)
{
	uint8_t req[512];
	const uint8_t ext8[8] = {0};
	size_t len, cut, n, i;
	(void)state;
	fresh();
	len = breq(req, 0x01, "k1", ext8, 8, "v", 1, 0);
	len += breq(req + len, 0x0d, "k1", NULL, 0, NULL, 0, 0);
	len += breq(req + len, 0x0a, NULL, NULL, 0, NULL, 0, 0);
	for (cut = 1; cut <= len; cut++) {
		uint8_t *exact = malloc(cut);
		memcpy(exact, req, cut);
		run_n(exact, cut, &n, 0);
		free(exact);
	}
	srand(7);
	for (i = 0; i < 20000; i++) {
		uint8_t *exact;
		size_t l = 24 + (size_t)(rand() % 64);
		uint8_t buf[128];
		for (size_t j = 0; j < l; j++)
			buf[j] = (uint8_t)rand();
		buf[0] = 0x80;
		buf[1] = (uint8_t)(rand() % 0x26);
		exact = malloc(l);
		memcpy(exact, buf, l);
		run_n(exact, l, &n, 0);
		free(exact);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_binary_exptime_unsigned),
		cmocka_unit_test(test_binary_key_past_datagram),
		cmocka_unit_test(test_binary_lengths_that_lie),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
