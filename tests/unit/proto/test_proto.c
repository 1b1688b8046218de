/* Protocol: tables of request bytes and the exact reply, for every command family, their
 * noreply/quiet forms, errors, and the inputs the memcached oracle cannot take (data blocks cut
 * short, binary lengths that lie, reply caps). The store runs in plain memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"
#include "proto/proto_int.h"
#include "store/store.h"

#define T0 1700000000LL

static void *mem;
static struct mc_store *s;
static struct mc_proto_conf conf = {.udp_admin = true, .udp_writes = true};
static struct mc_proto_ctx cx;
static uint8_t outbuf[1 << 16], spill[4 << 20];

/* A fresh store with memcached's -I of max_item bytes. */
static void
fresh_sized(uint32_t max_item)
{
	struct mc_store_settings set = {.mem_bytes = 16 << 20, .nparts = 1,
					.max_item_size = max_item, .factor = 1.25,
					.chunk_min = 48, .unix_now = T0};
	free(mem);
	mem = aligned_alloc(64, 16 << 20);
	s = mc_store_create(mem, 16 << 20, &set);
	assert_non_null(s);
	conf.udp_admin = true;
	conf.udp_writes = true;
	mc_proto_ctx_init(&cx, s, &conf);
}

static void
fresh(void)
{
	fresh_sized(1 << 20);
}

/* Run one datagram payload; return the reply (NUL-terminated copy) and its length. */
static bool out_udp; /* run as the UDP transport does: a cut reply says retry over TCP */
static const struct mc_key *run_hint; /* the transport's hashed first key, if any */

static const char *
run_n(const void *req, size_t len, size_t *outlen, size_t limit)
{
	static char copy[(4 << 20) + 1];
	struct mc_out o;
	mc_out_init(&o, outbuf, 1400, spill, sizeof(spill), limit ? limit : sizeof(spill));
	o.udp = out_udp;
	mc_proto_execute(&cx, req, len, run_hint, &o);
	memcpy(copy, o.buf, o.len);
	copy[o.len] = '\0';
	*outlen = o.len;
	return copy;
}

static const char *
run(const char *req)
{
	size_t n;
	return run_n(req, strlen(req), &n, 0);
}

/* A request of `head` followed by a value of vlen 'v' bytes and `tail` (malloc'd; free it). */
static char *
with_value(const char *head, size_t vlen, const char *tail, size_t *len)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *p = malloc(hl + vlen + tl + 1);
	memcpy(p, head, hl);
	memset(p + hl, 'v', vlen);
	memcpy(p + hl + vlen, tail, tl + 1);
	*len = hl + vlen + tl;
	return p;
}

struct ascii_case {
	const char *req;
	const char *want;
};

static void
check_table(const struct ascii_case *c, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		const char *got = run(c[i].req);
		if (strcmp(got, c[i].want) != 0)
			fail_msg("case %zu: %s\n  want: %s\n  got:  %s", i, c[i].req, c[i].want, got);
	}
}

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

static void
test_meta(void **state)
{
	static const struct ascii_case c[] = {
		{"mn\r\n", "MN\r\n"},
		{"mx\r\n", "ERROR\r\n"},
		{"mg\r\n", "ERROR\r\n"},
		{"ms m 2 F7 T0 k Oab\r\nhi\r\n", "HD km Oab\r\n"},
		{"mg m v f s k Oq\r\n", "VA 2 f7 s2 km Oq\r\nhi\r\n"},
		{"mg m t\r\n", "HD t-1\r\n"},
		{"mg nokey v k Oq\r\n", "EN knokey Oq\r\n"},
		{"mg nokey v q\r\nmn\r\n", "MN\r\n"},
		{"mg m q\r\n", "HD\r\n"},
		{"mg m zz\r\n", "CLIENT_ERROR invalid flag\r\n"},
		{"mg m v v\r\n", "CLIENT_ERROR duplicate flag\r\n"},
		{"mg m Tabc\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
		{"mg m Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", "CLIENT_ERROR opaque token too long\r\n"},
		{"ms m 2 q\r\nhi\r\nmn\r\n", "MN\r\n"},
		{"ms m 2 ME\r\nhi\r\n", "NS\r\n"},
		{"ms m 2 MA\r\n++\r\nmg m v\r\n", "HD\r\nVA 4\r\nhi++\r\n"},
		{"ms m 2 MX\r\nzz\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms m 2 C999999\r\nzz\r\n", "EX\r\n"},
		{"ms m abc\r\nzz\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"ms m\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"ms m 2\r\nzzz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"md nokey\r\nmd nokey q\r\n", "NF\r\nNF\r\n"},
		{"md m q\r\nmg m\r\n", "EN\r\n"},
		{"md m zz\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		{"ma nokey\r\n", "NF\r\n"},
		{"ma nokey N0 J13 v\r\nma nokey v\r\n", "VA 2\r\n13\r\nVA 2\r\n14\r\n"},
		{"ma nokey MD D100 v\r\n", "VA 1\r\n0\r\n"},
		{"ma nokey q\r\nma nokey q v\r\nmn\r\n", "MN\r\n"},
		{"ma nokey MX\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n"},
		{"ma nokey Dabc\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		{"me nothere\r\n", "EN\r\n"},
		{"mg YQ== b v k\r\n", "EN kYQ== b\r\n"},
		{"ms YQ== 1 b\r\nx\r\nmg YQ== b v k\r\nget a\r\n", "HD\r\nVA 1 kYQ== b\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
		{"mg !!!! b v\r\n", "CLIENT_ERROR error decoding key\r\n"},
	};
	(void)state;
	fresh();
	check_table(c, sizeof(c) / sizeof(c[0]));
	/* Vivify, win, then Z for the next client; invalidate gives X and one new win. */
	assert_string_equal(run("mg viv N30 v\r\n"), "VA 0 W\r\n\r\n");
	assert_string_equal(run("mg viv v\r\n"), "VA 0 Z\r\n\r\n");
	assert_string_equal(run("ms st 1\r\nx\r\nmd st I\r\nmg st v\r\nmg st v\r\n"),
			    "HD\r\nHD\r\nVA 1 X W\r\nx\r\nVA 1 Z X\r\nx\r\n");
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

/* Meta mode letters are upper case only (ms: S E A P R; ma: I + D -), an ma opaque over 32
 * bytes is an error whether the delta hit, missed or created, and q hides an ma hit but not
 * its creation (memcached skips the reply only on do_add_delta's OK). Oracle-checked. */
static void
test_meta_modes_and_ma_quirks(void **state)
{
	static const struct ascii_case c[] = {
		{"ms k 1 Ms\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 Me\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 Ma\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 Mp\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 Mr\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 MI\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 M+\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 MS\r\nx\r\nms k 1 MA\r\ny\r\nms k 1 MP\r\nz\r\nms k 1 MR\r\nw\r\n"
		 "ms k 1 ME\r\nq\r\nmg k v\r\n",
		 "HD\r\nHD\r\nHD\r\nHD\r\nNS\r\nVA 1\r\nw\r\n"},
		{"set c 0 0 1\r\n5\r\nma c Mi\r\nma c Md\r\n",
		 "STORED\r\nCLIENT_ERROR invalid mode for ma M token\r\n"
		 "CLIENT_ERROR invalid mode for ma M token\r\n"},
		{"ma c MI v\r\nma c M+ v\r\nma c MD v\r\nma c M- v\r\n",
		 "VA 1\r\n6\r\nVA 1\r\n7\r\nVA 1\r\n6\r\nVA 1\r\n5\r\n"},
		{"ma c MA\r\nma c MP\r\nma c MR\r\nma c MS\r\nma c ME\r\n",
		 "CLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid mode for ma M token\r\n"
		 "CLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid mode for ma M token\r\n"
		 "CLIENT_ERROR invalid mode for ma M token\r\n"},
		{"ma newkey q\r\nmn\r\n", "NF\r\nMN\r\n"},
		{"ma newkey2 N0 q\r\nmn\r\n", "HD\r\nMN\r\n"},
		{"ma newkey3 N0 q v O1\r\nmn\r\n", "VA 1 O1\r\n0\r\nMN\r\n"},
		{"set nk 0 0 1\r\n1\r\nma nk q\r\nmn\r\n", "STORED\r\nMN\r\n"},
		{"ma nk q Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg nk v\r\n",
		 "CLIENT_ERROR opaque token too long\r\nVA 1\r\n3\r\n"},
		{"ma nk v Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx k\r\nmg nk v\r\n",
		 "CLIENT_ERROR opaque token too long\r\nVA 1\r\n4\r\n"},
		{"ma nokey Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", "CLIENT_ERROR opaque token too long\r\n"},
		{"ma nokey k Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", "CLIENT_ERROR opaque token too long\r\n"},
		{"ma nokey q Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", "CLIENT_ERROR opaque token too long\r\n"},
		{"ma viv N0 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg viv v\r\n",
		 "CLIENT_ERROR opaque token too long\r\nVA 1\r\n0\r\n"},
		{"ma nokey Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", "NF Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"},
	};
	(void)state;
	fresh();
	check_table(c, sizeof(c) / sizeof(c[0]));
}

/* ma walks its flags in request order once the delta is done (memcached's final loop): t
 * prints the exptime as it stands there, T sets it, N sets it on an item just created, and a
 * too-long opaque stops the walk, so a T after it is not applied. Oracle-checked. */
static void
test_ma_flags_in_token_order(void **state)
{
	static const struct ascii_case c[] = {
		{"ma new N0 T30 t\r\nmg new t\r\n", "HD t30\r\nHD t30\r\n"},
		{"ma new2 N30 t\r\nmg new2 t\r\n", "HD t30\r\nHD t30\r\n"},
		{"ma new3 t N30\r\nmg new3 t\r\n", "HD t-1\r\nHD t30\r\n"},
		{"ma new4 T30 N0 t\r\nmg new4 t\r\n", "HD t-1\r\nHD t-1\r\n"},
		{"set k 0 100 1\r\n1\r\nma k t T30 v\r\nmg k t\r\n", "STORED\r\nVA 1 t100\r\n2\r\nHD t30\r\n"},
		{"set k 0 0 1\r\n1\r\nma k Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx T30\r\nmg k t v\r\n",
		 "STORED\r\nCLIENT_ERROR opaque token too long\r\nVA 1 t-1\r\n2\r\n"},
		{"ma k T30 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg k t v\r\n",
		 "CLIENT_ERROR opaque token too long\r\nVA 1 t30\r\n3\r\n"},
		{"set k 0 0 1\r\n1\r\nma k T30 q\r\nmg k t\r\n", "STORED\r\nHD t30\r\n"},
		{"ma nokey T30 t\r\n", "NF\r\n"},
	};
	(void)state;
	fresh();
	check_table(c, sizeof(c) / sizeof(c[0]));
}

/* ---- binary ---- */

static size_t
breq(uint8_t *p, uint8_t op, const char *key, const void *ext, uint8_t extlen, const void *val,
     size_t vlen, uint64_t cas)
{
	size_t kl = key ? strlen(key) : 0;
	uint32_t bl = (uint32_t)(kl + extlen + vlen);
	memset(p, 0, 24);
	p[0] = 0x80;
	p[1] = op;
	p[2] = (uint8_t)(kl >> 8);
	p[3] = (uint8_t)kl;
	p[4] = extlen;
	p[8] = (uint8_t)(bl >> 24);
	p[9] = (uint8_t)(bl >> 16);
	p[10] = (uint8_t)(bl >> 8);
	p[11] = (uint8_t)bl;
	memcpy(p + 12, "\xde\xad\xbe\xef", 4);
	for (int i = 0; i < 8; i++)
		p[16 + i] = (uint8_t)(cas >> (56 - 8 * i));
	if (extlen)
		memcpy(p + 24, ext, extlen);
	if (kl)
		memcpy(p + 24 + extlen, key, kl);
	if (vlen)
		memcpy(p + 24 + extlen + kl, val, vlen);
	return 24 + bl;
}

static uint16_t
status_of(const uint8_t *r)
{
	return (uint16_t)(r[6] << 8 | r[7]);
}

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

static void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Binary GET of key: its status (0 hit, 1 miss). */
static uint16_t
bget(const char *key)
{
	uint8_t req[300];
	size_t n, len = breq(req, 0x00, key, NULL, 0, NULL, 0, 0);
	return status_of((const uint8_t *)run_n(req, len, &n, 0));
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
	snprintf(want, sizeof(want), "%s", run("gets g\r\n"));
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
	req = with_value("set ap 0 0 40000\r\n", 40000, "\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "STORED\r\n");
	free(req);
	req = with_value("append ap 0 0 40000\r\n", 40000, "\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "NOT_STORED\r\n");
	free(req);
	req = with_value("prepend ap 0 0 40000 noreply\r\n", 40000, "\r\nmn\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "MN\r\n");
	free(req);
	req = with_value("ms ap 40000 MA\r\n", 40000, "\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "NS\r\n");
	free(req);
	req = with_value("ms ap 40000 MP q\r\n", 40000, "\r\nmn\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "NS\r\nMN\r\n");
	free(req);
	req = with_value("ms ap 40000 MA O123 k\r\n", 40000, "\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "NS O123 kap\r\n");
	free(req);
	req = with_value("ms ap 40000 MA N0 c\r\n", 40000, "\r\n", &len);
	assert_string_equal(run_n(req, len, &n, 0), "NS c0\r\n");
	free(req);
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

/* Binary keys: stored with ms b, echoed base64-encoded by mg b k, for lengths 1..39 (every
 * padding case). */
static void
test_base64_round_trip(void **state)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t in[64];
	char enc[128], req[512], want[512];
	int i, j;
	(void)state;
	fresh();
	for (i = 1; i < 40; i++) {
		size_t o = 0;
		for (j = 0; j < i; j++)
			in[j] = (uint8_t)(j * 37 + i);
		for (j = 0; j < i; j += 3) {
			uint32_t v = (uint32_t)in[j] << 16 | (j + 1 < i ? (uint32_t)in[j + 1] << 8 : 0) |
				     (j + 2 < i ? in[j + 2] : 0);
			enc[o++] = b64[v >> 18];
			enc[o++] = b64[(v >> 12) & 63];
			enc[o++] = j + 1 < i ? b64[(v >> 6) & 63] : '=';
			enc[o++] = j + 2 < i ? b64[v & 63] : '=';
		}
		enc[o] = '\0';
		snprintf(req, sizeof(req), "ms %s 1 b\r\nx\r\nmg %s b k v\r\n", enc, enc);
		snprintf(want, sizeof(want), "HD\r\nVA 1 k%s b\r\nx\r\n", enc);
		assert_string_equal(run(req), want);
	}
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
	};
	size_t i;
	(void)state;
	fresh();
	assert_string_equal(run("set hk 7 0 3\r\nabc\r\n"), "STORED\r\n");
	assert_string_equal(run("set 0123456789abcdef0123 4294967295 0 0\r\n\r\n"), "STORED\r\n");
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const uint8_t *req = (const uint8_t *)c[i].req;
		size_t len = strlen(c[i].req), n1, n2;
		char plain[4096];
		struct mc_store_ctx_stats st0 = cx.sx.st, st1;
		uint64_t fast;
		{
			const char *got = run_n(req, len, &n1, 0);
			memcpy(plain, got, n1 + 1);
		}
		st1 = cx.sx.st;
		fast = cx.st.cmd_get_fast;
		{
			struct mc_key hk;
			const char *hinted;
			mc_key_init(&hk, cx.sx.s, req + c[i].key_off, (uint32_t)c[i].key_len);
			run_hint = &hk;
			hinted = run_n(req, len, &n2, 0);
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
		if (cx.st.cmd_get_fast - fast != (uint64_t)c[i].fast)
			fail_msg("case %zu (%s): fast path %s", i, c[i].req,
				 c[i].fast ? "not taken" : "taken");
	}
	/* A gets reply carries the CAS; the flags print in full. */
	assert_non_null(strstr(run("get 0123456789abcdef0123\r\n"), " 4294967295 0\r\n"));
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_storage_and_errors),
		cmocka_unit_test(test_ascii_keys),
		cmocka_unit_test(test_incomplete_and_cut_short),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_number_rules),
		cmocka_unit_test(test_meta_modes_and_ma_quirks),
		cmocka_unit_test(test_ma_flags_in_token_order),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_binary_exptime_unsigned),
		cmocka_unit_test(test_gat_reads_before_touch),
		cmocka_unit_test(test_append_past_item_max),
		cmocka_unit_test(test_binary_key_past_datagram),
		cmocka_unit_test(test_binary_lengths_that_lie),
		cmocka_unit_test(test_reply_cap),
		cmocka_unit_test(test_udp_cap_says_retry_over_tcp),
		cmocka_unit_test(test_admin_and_writes_switches),
		cmocka_unit_test(test_read_only_refuses_writes),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_hinted_get_matches_tokenizer),
		cmocka_unit_test(test_decimal_digits),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
