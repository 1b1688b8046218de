/* The front table through the production burst function: a worker's gets warm it into HOT
 * (stage 2 then requests no bucket, and the table is asked for the whole burst before any
 * frame executes), and there every answer is still the store's. A write earlier in the same
 * burst (delete, replace, incr in place, invalidate) or in an earlier one, a key the table
 * never had, a key stored after the table was asked, and the first keys of binary GETK and
 * meta mg: each answered as the index would. Then misses take the worker out of HOT. */
/* First: its inline helpers take names the test file makes global. */
#include "store/hot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "dataplane/dataplane.h"
#include "tests/unit/common/eal.h"
#include "tests/unit/common/frame.h"
#include "udp/udp.h"

#define NB_MBUF 1023u
#define STORE_BYTES (16u << 20)
#define NKEYS 64u
/* A value sent from item memory (zero-copy): at least the service's minimum below. */
#define BIG 1100u

static struct rte_mempool *pool;
static struct rte_ring *tx_ring;
static struct mc_config cfg;
static struct mc_worker w;
static struct mc_store *store;
static struct mc_proto_conf pconf = {.udp_admin = false, .udp_writes = true};

static int
setup(void **state)
{
	struct mc_store_settings set = {.mem_bytes = STORE_BYTES, .nparts = 1,
					.max_item_size = 64 << 10, .factor = 1.25, .chunk_min = 48};
	(void)state;
	assert_int_equal(mc_test_ring_worker("hot", NB_MBUF, &cfg, &w, &pool, &tx_ring), 0);
	store = mc_store_create(rte_malloc(NULL, STORE_BYTES, 64), STORE_BYTES, &set);
	assert_non_null(store);
	w.svc = mc_dp_service_create(store, &pconf, set.max_item_size, 0);
	assert_non_null(w.svc);
	assert_non_null(w.svc->px.sx.front);
	/* Values of 1 KiB and more sent from item memory: the reply holds the item. */
	assert_int_equal(mc_dp_service_zero_copy(w.svc, 1024, 0), 0);
	return 0;
}

/* The warm keys: 16 bytes, as a lone get's key in the benchmark. */
static const char *
key(unsigned int i)
{
	static char k[4][17];
	static unsigned int n;
	char *p = k[n++ & 3];
	snprintf(p, 17, "hotkey:%09u", i);
	return p;
}

static void
put(const char *k, const char *val)
{
	struct mc_key mk;
	mc_key_init(&mk, store, k, (uint32_t)strlen(k));
	assert_int_equal(mc_store_store(&w.svc->px.sx, &mk,
					&(struct mc_store_args){.mode = MC_SET, .val = val,
								.vlen = (uint32_t)strlen(val)},
					NULL),
			 MC_STORED);
}

/* The requests reqs[0..n) as one burst (a request's bytes and length; text when len is 0);
 * each one's reply text, its memcached frame off, into out[i] (one datagram each). */
#define REPLY_MAX 2048
static void
burst(const char *const *reqs, const size_t *lens, unsigned int n, char (*out)[REPLY_MAX])
{
	struct rte_mbuf *pkts[MC_BURST];
	void *done[MC_BURST + 1];
	unsigned int i, got;
	assert_true(n <= MC_BURST);
	for (i = 0; i < n; i++) {
		const size_t len = lens != NULL && lens[i] != 0 ? lens[i] : strlen(reqs[i]);
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint8_t *p;
		assert_non_null(m);
		p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(MC_FRAME_HDR_LEN + len));
		assert_non_null(p);
		mc_frame_request(p, mc_test_our_mac, mc_test_cli_mac, 0xc6120002u, 0xc6120001u,
				 40000, 11211, (uint16_t)(100 + i), reqs[i], len);
		pkts[i] = m;
	}
	mc_dp_handle_burst(&w, pkts, (uint16_t)n);
	mc_dp_tx_flush(&w);
	got = rte_ring_dequeue_burst(tx_ring, done, MC_BURST + 1, NULL);
	assert_int_equal(got, n);
	for (i = 0; i < n; i++) {
		static uint8_t flat[REPLY_MAX + MC_FRAME_HDR_LEN];
		struct rte_mbuf *m = done[i];
		const uint32_t len = rte_pktmbuf_pkt_len(m);
		const uint8_t *p;
		struct mc_udp_frame fh = {0};
		assert_true(len >= MC_FRAME_HDR_LEN && len - MC_FRAME_HDR_LEN < REPLY_MAX);
		p = rte_pktmbuf_read(m, 0, len, flat); /* a zero-copy reply is a chain */
		assert_non_null(p);
		assert_int_equal(mc_udp_frame_parse(p + 42, len - 42, &fh), MC_UDP_OK);
		/* In order: the i-th reply is the i-th request's. */
		assert_int_equal(fh.req_id, 100 + i);
		memcpy(out[i], p + MC_FRAME_HDR_LEN, len - MC_FRAME_HDR_LEN);
		out[i][len - MC_FRAME_HDR_LEN] = '\0';
		rte_pktmbuf_free(m);
	}
}

static char get_req[MC_BURST][40], want[MC_BURST][REPLY_MAX];

/* A burst of gets of the warm keys from first on, each answered with its value. */
static void
gets(unsigned int first)
{
	const char *reqs[MC_BURST];
	static char out[MC_BURST][REPLY_MAX];
	unsigned int i;
	for (i = 0; i < MC_BURST; i++) {
		const unsigned int k = (first + i) % NKEYS;
		snprintf(get_req[i], sizeof(get_req[i]), "get %s\r\n", key(k));
		snprintf(want[i], sizeof(want[i]), "VALUE %s 0 8\r\nvalue%03u\r\nEND\r\n", key(k),
			 k);
		reqs[i] = get_req[i];
	}
	burst(reqs, NULL, MC_BURST, out);
	for (i = 0; i < MC_BURST; i++)
		assert_string_equal(out[i], want[i]);
}

static const struct mc_store_front *
front(void)
{
	return w.svc->px.sx.front;
}

/* Whether the table has a way for k (its tag in k's set): its lookup reads no bucket. */
static bool
in_table(const char *k)
{
	struct mc_key mk;
	mc_key_init(&mk, store, k, (uint32_t)strlen(k));
	return front_matches(front_set(front(), mk.hash), front_tag(mk.hash)) != 0;
}

/* The warm keys stored and read until the worker's table is HOT (bounded: a few hundred
 * lookups take it there). */
static void
warm(void)
{
	unsigned int i, b;
	char v[16];
	for (i = 0; i < NKEYS; i++) {
		snprintf(v, sizeof(v), "value%03u", i);
		put(key(i), v);
	}
	for (b = 0; b < 200 && front()->mode != MC_FRONT_HOT; b++)
		gets(b * MC_BURST);
	assert_int_equal(front()->mode, MC_FRONT_HOT);
	for (i = 0; i < NKEYS; i++)
		assert_true(in_table(key(i)));
}

/* A write and the get after it in one burst: the table was asked for the get (and its item
 * requested) before the write ran, so the get's read must see the way go stale. */
static void
test_writes_in_the_same_burst(void **state)
{
	static char reqs_buf[MC_BURST][64];
	const char *reqs[MC_BURST];
	static char out[MC_BURST][REPLY_MAX], big[BIG + 1], big_reply[BIG + 64];
	unsigned int i;
	(void)state;
	warm();
	put("hotnum:000000001", "10");
	memset(big, 'B', BIG);
	big[BIG] = '\0';
	put("hotbig:000000001", big);
	snprintf(big_reply, sizeof(big_reply), "VALUE hotbig:000000001 0 %u\r\n%s\r\nEND\r\n", BIG,
		 big);
	gets(0); /* and the two keys through the index once, into the table */
	{
		const char *r[2] = {"get hotnum:000000001\r\n", "get hotbig:000000001\r\n"};
		burst(r, NULL, 2, out);
		assert_string_equal(out[0], "VALUE hotnum:000000001 0 2\r\n10\r\nEND\r\n");
		assert_string_equal(out[1], big_reply);
	}
	for (i = 0; i < 4; i++)
		gets(i * MC_BURST);
	assert_int_equal(front()->mode, MC_FRONT_HOT);
	assert_true(in_table(key(1)) && in_table(key(3)) && in_table("hotnum:000000001") &&
		    in_table("hotbig:000000001"));
	assert_false(in_table("hotnew:000000001"));
	for (i = 0; i < MC_BURST; i++) {
		snprintf(reqs_buf[i], sizeof(reqs_buf[i]), "get %s\r\n", key(i + 8));
		reqs[i] = reqs_buf[i];
	}
	reqs[0] = "get hotkey:000000001\r\n";
	snprintf(reqs_buf[1], sizeof(reqs_buf[1]), "delete %s\r\n", key(1));
	reqs[2] = "get hotkey:000000001\r\n";
	snprintf(reqs_buf[3], sizeof(reqs_buf[3]), "set %s 5 0 3\r\nnew\r\n", key(3));
	reqs[4] = "get hotkey:000000003\r\n";
	reqs[5] = "incr hotnum:000000001 5\r\n";
	reqs[6] = "get hotnum:000000001\r\n";
	reqs[7] = "get hotnew:000000001\r\n"; /* never stored: the table lacks it */
	reqs[8] = "set hotnew:000000001 0 0 2\r\nhi\r\n";
	reqs[9] = "get hotnew:000000001\r\n"; /* stored after the table was asked */
	reqs[10] = "md hotkey:000000004 I\r\n"; /* invalidate: stale, won on the next mg */
	reqs[11] = "mg hotkey:000000004 v\r\n";
	reqs[12] = "incr hotnum:000000001 1\r\n";
	reqs[13] = "gets hotnum:000000001\r\n";
	/* Replaced while the first get's reply holds the old item (a zombie, its bytes intact,
	 * until the reply is sent): the table's way to it must not answer the second. */
	reqs[14] = "get hotbig:000000001\r\n";
	reqs[15] = "set hotbig:000000001 0 0 5\r\nsmall\r\n";
	reqs[16] = "get hotbig:000000001\r\n";
	burst(reqs, NULL, MC_BURST, out);
	assert_string_equal(out[0], "VALUE hotkey:000000001 0 8\r\nvalue001\r\nEND\r\n");
	assert_string_equal(out[1], "DELETED\r\n");
	assert_string_equal(out[2], "END\r\n");
	assert_string_equal(out[3], "STORED\r\n");
	assert_string_equal(out[4], "VALUE hotkey:000000003 5 3\r\nnew\r\nEND\r\n");
	assert_string_equal(out[5], "15\r\n");
	assert_string_equal(out[6], "VALUE hotnum:000000001 0 2\r\n15\r\nEND\r\n");
	assert_string_equal(out[7], "END\r\n");
	assert_string_equal(out[8], "STORED\r\n");
	assert_string_equal(out[9], "VALUE hotnew:000000001 0 2\r\nhi\r\nEND\r\n");
	assert_string_equal(out[10], "HD\r\n");
	assert_string_equal(out[11], "VA 8 X W\r\nvalue004\r\n");
	assert_string_equal(out[12], "16\r\n");
	assert_int_equal(strncmp(out[13], "VALUE hotnum:000000001 0 2 ", 27), 0);
	assert_non_null(strstr(out[13], "\r\n16\r\nEND\r\n"));
	assert_string_equal(out[14], big_reply);
	assert_string_equal(out[15], "STORED\r\n");
	assert_string_equal(out[16], "VALUE hotbig:000000001 0 5\r\nsmall\r\nEND\r\n");
	for (i = 17; i < MC_BURST; i++) {
		char v[REPLY_MAX];
		snprintf(v, sizeof(v), "VALUE %s 0 8\r\nvalue%03u\r\nEND\r\n", key(i + 8), i + 8);
		assert_string_equal(out[i], v);
	}
	/* The next burst, with the table's ways for keys 1 and 3 as the writes left them. */
	reqs[0] = "get hotkey:000000001\r\n";
	reqs[1] = "get hotkey:000000003\r\n";
	reqs[2] = "get hotnew:000000001\r\n";
	burst(reqs, NULL, 3, out);
	assert_string_equal(out[0], "END\r\n");
	assert_string_equal(out[1], "VALUE hotkey:000000003 5 3\r\nnew\r\nEND\r\n");
	assert_string_equal(out[2], "VALUE hotnew:000000001 0 2\r\nhi\r\nEND\r\n");
	assert_true(in_table("hotnew:000000001")); /* its hit through the index took a way */
}

/* The first key of requests other than a lone get goes through the table too: binary GETK
 * and meta mg, hits and a delete between them. */
static void
test_binary_and_meta_first_keys(void **state)
{
	static uint8_t getk[2][40];
	const char *reqs[6];
	size_t lens[6] = {0};
	char out[6][REPLY_MAX];
	unsigned int j;
	(void)state;
	for (j = 0; j < 4; j++)
		gets(32); /* keys 32-63: the ones the test above leaves as they were */
	assert_int_equal(front()->mode, MC_FRONT_HOT);
	for (j = 0; j < 2; j++) {
		memset(getk[j], 0, 24);
		getk[j][0] = 0x80;
		getk[j][1] = 0x0c; /* GETK */
		getk[j][3] = 16;
		getk[j][11] = 16;
		memcpy(getk[j] + 24, key(20), 16);
	}
	reqs[0] = (const char *)getk[0];
	lens[0] = 40;
	reqs[1] = "mg hotkey:000000021 v k\r\n";
	reqs[2] = "delete hotkey:000000020\r\n";
	reqs[3] = (const char *)getk[1];
	lens[3] = 40;
	reqs[4] = "ms hotkey:000000021 2\r\nzz\r\n";
	reqs[5] = "mg hotkey:000000021 v\r\n";
	burst(reqs, lens, 6, out);
	/* GETK's response: 24-byte header, 4 bytes of flags, the key, the value. */
	assert_int_equal((uint8_t)out[0][0], 0x81);
	assert_int_equal((uint8_t)out[0][7], 0); /* status: no error */
	assert_memory_equal(out[0] + 24 + 4, key(20), 16);
	assert_memory_equal(out[0] + 24 + 4 + 16, "value020", 8);
	assert_string_equal(out[1], "VA 8 khotkey:000000021\r\nvalue021\r\n");
	assert_string_equal(out[2], "DELETED\r\n");
	assert_int_equal((uint8_t)out[3][0], 0x81);
	assert_int_equal((uint8_t)out[3][7], 1); /* key not found */
	assert_string_equal(out[4], "HD\r\n");
	assert_string_equal(out[5], "VA 2\r\nzz\r\n");
}

/* A run of misses takes the worker out of HOT (stage 2 requests buckets again), every one
 * answered END; the warm keys bring it back. */
static void
test_misses_leave_hot(void **state)
{
	static char reqs_buf[MC_BURST][40];
	const char *reqs[MC_BURST];
	static char out[MC_BURST][REPLY_MAX];
	unsigned int i, b;
	(void)state;
	for (b = 0; b < 4; b++)
		gets(32);
	assert_int_equal(front()->mode, MC_FRONT_HOT);
	for (b = 0; b < 16 && front()->mode == MC_FRONT_HOT; b++) {
		for (i = 0; i < MC_BURST; i++) {
			snprintf(reqs_buf[i], sizeof(reqs_buf[i]), "get hotmiss:%09u\r\n",
				 b * MC_BURST + i);
			reqs[i] = reqs_buf[i];
		}
		burst(reqs, NULL, MC_BURST, out);
		for (i = 0; i < MC_BURST; i++)
			assert_string_equal(out[i], "END\r\n");
	}
	assert_int_not_equal(front()->mode, MC_FRONT_HOT);
	for (b = 0; b < 200 && front()->mode != MC_FRONT_HOT; b++)
		gets(32);
	assert_int_equal(front()->mode, MC_FRONT_HOT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_in_the_same_burst),
		cmocka_unit_test(test_binary_and_meta_first_keys),
		cmocka_unit_test(test_misses_leave_hot),
	};
	int rc;
	mc_test_eal_init(NULL);
	rc = cmocka_run_group_tests(tests, setup, NULL);
	mc_test_eal_cleanup();
	return rc;
}
