/* The protocol over a byte stream (TCP): requests arriving in pieces are run once whole, too
 * large values are answered at once and swallowed, quit and protocol errors close, and the
 * UDP gates do not apply. A small transport below feeds bytes as a connection would. */
#include "proto_test.h"

#define CAP (64 * 1024)

/* breq with an opaque, and a body declared extra bytes longer than what is written (sent later). */
static size_t
bin_req(uint8_t *p, uint8_t op, const char *key, const void *ext, uint8_t extlen, const void *val,
	size_t vlen, uint32_t opaque, uint32_t extra)
{
	size_t n = breq(p, op, key, ext, extlen, val, vlen, 0);
	be32_put(p + 12, opaque);
	be32_put(p + 8, (uint32_t)(n - 24 + extra));
	return n;
}

/* The transport: a buffer of unconsumed bytes, swallowing, replies collected. */
static struct feed {
	uint8_t in[1 << 21];
	size_t inlen;
	uint64_t swallow;
	char out[1 << 20];
	size_t outlen;
	bool closed;
	size_t soft;
	uint8_t proto;
} f;

static void
feed_reset(void)
{
	f.inlen = 0;
	f.swallow = 0;
	f.outlen = 0;
	f.closed = false;
	f.proto = MC_SP_NEW;
	f.soft = 1 << 20;
	cx.stream = true;
	cx.stream_cap = CAP;
}

static void
feed(const void *p, size_t n)
{
	const uint8_t *b = p;
	if (f.closed)
		return;
	while (f.swallow > 0 && n > 0) {
		f.swallow--;
		b++;
		n--;
	}
	assert_true(f.inlen + n <= sizeof(f.in));
	memcpy(f.in + f.inlen, b, n);
	f.inlen += n;
	while (f.inlen > 0) {
		struct mc_out o;
		enum mc_proto_ev ev;
		size_t used, skip;
		mc_out_init(&o, outbuf, sizeof(outbuf), spill, sizeof(spill), sizeof(spill));
		used = mc_proto_stream(&cx, f.in, f.inlen, &o, f.soft, &f.proto, &ev);
		assert_true(f.outlen + o.len <= sizeof(f.out));
		memcpy(f.out + f.outlen, o.buf, o.len);
		f.outlen += o.len;
		assert_true(used <= f.inlen);
		memmove(f.in, f.in + used, f.inlen - used);
		f.inlen -= used;
		f.swallow = cx.swallow;
		skip = f.swallow < f.inlen ? (size_t)f.swallow : f.inlen;
		memmove(f.in, f.in + skip, f.inlen - skip);
		f.inlen -= skip;
		f.swallow -= skip;
		if (ev == MC_EV_CLOSE) {
			f.closed = true;
			return;
		}
		if (ev == MC_EV_MORE || used == 0)
			return;
	}
}

static void
feeds(const char *str)
{
	feed(str, strlen(str));
}

static const char *
outstr(void)
{
	f.out[f.outlen] = '\0';
	return f.out;
}

/* Whatever the pieces, the replies are those of the whole. */
static void
check_every_split(const uint8_t *req, size_t len)
{
	static char whole[1 << 16];
	size_t wlen, cut;
	fresh();
	feed_reset();
	feed(req, len);
	wlen = f.outlen;
	assert_true(wlen < sizeof(whole));
	memcpy(whole, f.out, wlen);
	assert_int_equal(f.inlen, 0);
	for (cut = 1; cut < len; cut++) {
		fresh();
		feed_reset();
		feed(req, cut);
		feed(req + cut, len - cut);
		if (f.outlen != wlen || memcmp(f.out, whole, wlen) != 0)
			fail_msg("split at %zu of %zu: %zu reply bytes, whole gave %zu", cut, len,
				 f.outlen, wlen);
	}
	/* One byte at a time too. */
	fresh();
	feed_reset();
	for (cut = 0; cut < len; cut++)
		feed(req + cut, 1);
	assert_int_equal(f.outlen, wlen);
	assert_memory_equal(f.out, whole, wlen);
}

static void
test_ascii_pipeline_in_any_pieces(void **state)
{
	static const char req[] = "set a 5 0 3\r\nabc\r\nget a\r\nincr n 1\r\nset n 0 0 1 noreply\r\n"
				  "7\r\nincr n 2\r\ngets a n\r\nappend a 0 0 2\r\nde\r\nget a\r\n"
				  "ms m 2 T0\r\nhi\r\nmg m v\r\ndelete a\r\nbogus\r\nget a m\r\n";
	(void)state;
	check_every_split((const uint8_t *)req, sizeof(req) - 1);
	assert_string_equal(outstr(), "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nNOT_FOUND\r\n9\r\n"
				      "VALUE a 5 3 1\r\nabc\r\nVALUE n 0 1 3\r\n9\r\nEND\r\n"
				      "STORED\r\nVALUE a 5 5\r\nabcde\r\nEND\r\nHD\r\nVA 2\r\nhi\r\n"
				      "DELETED\r\nERROR\r\nVALUE m 0 2\r\nhi\r\nEND\r\n");
}

static void
test_binary_pipeline_in_any_pieces(void **state)
{
	uint8_t req[512];
	size_t n = 0;
	(void)state;
	n += bin_req(req + n, 0x01, "k", "\x00\x00\x00\x07\x00\x00\x00\x00", 8, "val", 3, 1, 0);
	n += bin_req(req + n, 0x0c, "k", NULL, 0, NULL, 0, 2, 0);
	n += bin_req(req + n, 0x09, "missing", NULL, 0, NULL, 0, 3, 0);
	n += bin_req(req + n, 0x0a, NULL, NULL, 0, NULL, 0, 4, 0);
	check_every_split(req, n);
	/* SET ok, GETK hit with flags 7, GETQ miss silent, NOOP. */
	assert_int_equal(f.outlen, 24 + (24 + 4 + 1 + 3) + 24);
	assert_int_equal((uint8_t)f.out[24 + 1], 0x0c);
	assert_memory_equal(f.out + 24 + 24 + 4, "kval", 4);
	assert_int_equal((uint8_t)f.out[24 + 32 + 1], 0x0a);
}

/* A value larger than the store takes is answered at once, its bytes swallowed as they come,
 * and a set's old item is gone (memcached unlinks it); the next command runs normally. */
static void
test_too_large_value_is_answered_and_swallowed(void **state)
{
	size_t len, i;
	char *big;
	(void)state;
	fresh_sized(4096);
	feed_reset();
	feeds("set k 0 0 1\r\nx\r\n");
	big = with_value("set k 0 0 100000\r\n", 100000, "\r\nget k\r\n", &len);
	for (i = 0; i < len; i += 999)
		feed(big + i, len - i < 999 ? len - i : 999);
	free(big);
	assert_string_equal(outstr(), "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n");
	assert_false(f.closed);
	/* Within the store's limit but more than the transport may buffer: out of memory. */
	fresh_sized(1 << 20);
	feed_reset();
	big = with_value("set k 0 0 200000 noreply\r\n", 200000, "\r\nmn\r\n", &len);
	feed(big, len);
	free(big);
	assert_string_equal(outstr(), "MN\r\n");
	feed_reset();
	feeds("set k 0 0 3\r\nabc\r\n");
	big = with_value("ms k 200000\r\n", 200000, "\r\nmg k v\r\nmn\r\n", &len);
	feed(big, 100);
	assert_string_equal(outstr(), "STORED\r\nSERVER_ERROR out of memory storing object\r\n");
	feed(big + 100, len - 100);
	free(big);
	/* memcached unlinks the old item of an ms it could not store, as of a set. */
	assert_string_equal(outstr(), "STORED\r\nSERVER_ERROR out of memory storing object\r\n"
				      "EN\r\nMN\r\n");
}

static void
test_binary_too_large_and_protocol_errors(void **state)
{
	uint8_t req[256];
	size_t n;
	char *body;
	(void)state;
	fresh_sized(4096);
	feed_reset();
	/* SET with a 100000-byte value: E2BIG, then the NOOP after the swallowed body. */
	n = bin_req(req, 0x01, "k", "\x00\x00\x00\x00\x00\x00\x00\x00", 8, NULL, 0, 9, 100000);
	feed(req, n);
	body = calloc(1, 100000);
	feed(body, 100000);
	free(body);
	n = bin_req(req, 0x0a, NULL, NULL, 0, NULL, 0, 10, 0);
	feed(req, n);
	assert_int_equal(f.outlen, 24 + 10 + 24);
	assert_int_equal((uint8_t)f.out[7], 0x03); /* E2BIG */
	assert_memory_equal(f.out + 24, "Too large.", 10);
	assert_int_equal((uint8_t)f.out[34 + 1], 0x0a);
	assert_false(f.closed);
	/* A SET of 2 GiB or more: memcached reads a negative length, Invalid arguments, closed. */
	feed_reset();
	n = bin_req(req, 0x01, "k", "\x00\x00\x00\x00\x00\x00\x00\x00", 8, NULL, 0, 9, 0x90000000u);
	feed(req, n);
	assert_true(f.closed);
	assert_int_equal((uint8_t)f.out[7], 0x04);
	/* A GET whose body is longer than its key: Invalid arguments, then closed. */
	feed_reset();
	n = bin_req(req, 0x00, "k", NULL, 0, "xx", 2, 11, 0);
	feed(req, n);
	assert_true(f.closed);
	assert_int_equal((uint8_t)f.out[7], 0x04);
	/* Bad magic closes with nothing said. */
	feed_reset();
	feed("\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	     "\x00\x00\x00\x00\x42",
	     25);
	assert_true(f.closed);
	assert_int_equal(f.outlen, 24);
	/* QUIT is answered, then closed; QUITQ is not answered. */
	feed_reset();
	n = bin_req(req, 0x07, NULL, NULL, 0, NULL, 0, 12, 0);
	feed(req, n);
	assert_true(f.closed);
	assert_int_equal(f.outlen, 24);
	feed_reset();
	n = bin_req(req, 0x17, NULL, NULL, 0, NULL, 0, 13, 0);
	feed(req, n);
	assert_true(f.closed);
	assert_int_equal(f.outlen, 0);
}

/* memcached closes a connection whose line runs past 2048 bytes without a newline, unless it
 * is a get (a large multiget); quit closes after the replies before it. */
static void
test_long_lines_and_quit(void **state)
{
	static char line[4096];
	(void)state;
	fresh();
	feed_reset();
	memset(line, 'x', sizeof(line));
	feed(line, 2048);
	assert_false(f.closed);
	feed(line, 1);
	assert_true(f.closed);
	assert_int_equal(f.outlen, 0);
	feed_reset();
	memcpy(line, "get ", 4);
	feed(line, sizeof(line));
	assert_false(f.closed);
	assert_int_equal(f.inlen, sizeof(line));
	feed_reset();
	feeds("version\r\nquit\r\nversion\r\n");
	assert_true(f.closed);
	assert_string_equal(outstr(), "VERSION " MC_VERSION_STRING "\r\n");
}

/* A stream is TCP: stats, flush_all and writes are allowed whatever the UDP gates say. */
static void
test_udp_gates_do_not_apply(void **state)
{
	(void)state;
	fresh();
	conf.udp_admin = false;
	conf.udp_writes = false;
	feed_reset();
	feeds("set a 0 0 1\r\n1\r\nflush_all\r\nget a\r\nverbosity 1\r\n");
	assert_string_equal(outstr(), "STORED\r\nOK\r\nEND\r\nOK\r\n");
	conf.verbosity = 0;
	/* Binary STAT: packets, then the empty one that ends them. */
	{
		uint8_t req[64];
		size_t n = bin_req(req, 0x10, "settings", NULL, 0, NULL, 0, 5, 0);
		feed_reset();
		feed(req, n);
		assert_true(f.outlen > 2 * 24);
		assert_int_equal((uint8_t)f.out[f.outlen - 24 + 1], 0x10);
		assert_int_equal((uint8_t)f.out[f.outlen - 24 + 11], 0); /* empty body */
	}
}

/* A request waiting for its data block is counted once, when it runs. */
static void
test_waiting_requests_counted_once(void **state)
{
	uint64_t meta, ascii;
	int i;
	(void)state;
	fresh();
	feed_reset();
	meta = cx.st.cmd_meta;
	ascii = cx.st.cmd_ascii;
	feeds("ms k 10\r\n");
	for (i = 0; i < 10; i++)
		feed("x", 1);
	feeds("\r\n");
	assert_string_equal(outstr(), "HD\r\n");
	assert_int_equal(cx.st.cmd_meta, meta + 1);
	assert_int_equal(cx.st.cmd_ascii, ascii + 1);
}

/* With o holding soft bytes the stream stops between requests; the rest runs on the next
 * call, and nothing is lost or repeated. */
static void
test_stops_at_the_soft_limit(void **state)
{
	static const char req[] = "set a 0 0 3\r\nabc\r\nget a\r\nget a\r\nget a\r\nget a\r\n";
	(void)state;
	fresh();
	feed_reset();
	f.soft = 10;
	feed(req, sizeof(req) - 1);
	assert_int_equal(f.inlen, 0);
	assert_string_equal(outstr(), "STORED\r\nVALUE a 0 3\r\nabc\r\nEND\r\nVALUE a 0 3\r\nabc\r\n"
				      "END\r\nVALUE a 0 3\r\nabc\r\nEND\r\nVALUE a 0 3\r\nabc\r\nEND\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_pipeline_in_any_pieces),
		cmocka_unit_test(test_binary_pipeline_in_any_pieces),
		cmocka_unit_test(test_too_large_value_is_answered_and_swallowed),
		cmocka_unit_test(test_binary_too_large_and_protocol_errors),
		cmocka_unit_test(test_long_lines_and_quit),
		cmocka_unit_test(test_udp_gates_do_not_apply),
		cmocka_unit_test(test_stops_at_the_soft_limit),
		cmocka_unit_test(test_waiting_requests_counted_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
