/* memcached's meta commands: flags, modes, quirks of ma, base64 keys. */
#include "tests/unit/proto/proto_test.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_meta_modes_and_ma_quirks),
		cmocka_unit_test(test_ma_flags_in_token_order),
		cmocka_unit_test(test_base64_round_trip),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(mem);
	return rc;
}
