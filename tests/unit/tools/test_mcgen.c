/* mcgen's matcher, reply checks, frames and pcap reading, fed directly: replies as UDP
 * payloads, time as TSC values given by the test (one tick = 1 ns), so nothing depends on the
 * clock. The generator must notice a dropped reply, a wrong one and a reordered one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/mcgen_match.h"
#include "tools/mcgen_net.h"
#include "tools/workload.h"

#define TIMEOUT 1000000 /* ticks */

static struct mc_wl wl;
static struct mcg_match m;

static int
setup(void **state)
{
	(void)state;
	mc_wl_defaults(&wl);
	wl.keys = 1000;
	wl.value_min = 10;
	wl.value_max = 40;
	assert_null(mc_wl_setup(&wl, true));
	assert_int_equal(mcg_match_create(&m, &wl, TIMEOUT, 1.0), 0);
	m.measuring = true;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	mcg_match_destroy(&m);
	mc_wl_teardown(&wl);
	return 0;
}

/* Issue a get of the given keys at now; returns its request id. */
static uint16_t
issue(enum mc_wl_proto proto, bool get, const uint32_t *ids, unsigned int nk, uint64_t now)
{
	uint16_t rid;
	struct mc_wl_req *r = mcg_issue(&m, now, &rid);
	r->proto = proto;
	r->get = get;
	r->known = true;
	r->mn = false;
	r->nk = (uint8_t)nk;
	memcpy(r->ids, ids, nk * sizeof(*ids));
	return rid;
}

/* Deliver one datagram of request rid at now. */
static void
dgram(uint16_t rid, uint16_t seq, uint16_t total, const void *p, size_t n, uint64_t now)
{
	uint8_t d[MC_WL_UDP_HDR + 2048];
	assert_true(n <= 2048);
	d[0] = (uint8_t)(rid >> 8);
	d[1] = (uint8_t)rid;
	d[2] = (uint8_t)(seq >> 8);
	d[3] = (uint8_t)seq;
	d[4] = (uint8_t)(total >> 8);
	d[5] = (uint8_t)total;
	d[6] = d[7] = 0;
	memcpy(d + MC_WL_UDP_HDR, p, n);
	mcg_reply(&m, d, MC_WL_UDP_HDR + n, now);
}

/* The right ASCII reply to a get of key id, written to out; returns its length. */
static size_t
ascii_hit(char *out, uint32_t id, bool end)
{
	char k[MC_WL_MAX_KEY + 1];
	size_t kl, n;
	const char *t = mc_wl_key(&wl, id, k, &kl);
	unsigned int vl = mc_wl_value_len(&wl, id);
	n = (size_t)sprintf(out, "VALUE %.*s 0 %u\r\n", (int)kl, t, vl);
	memcpy(out + n, mc_wl_value(id), vl);
	n += vl;
	n += (size_t)sprintf(out + n, "\r\n%s", end ? "END\r\n" : "");
	return n;
}

static void
test_right_reply_counted_with_its_latency(void **state)
{
	char r[512];
	uint32_t id = 7;
	uint16_t rid;
	(void)state;
	rid = issue(MC_WL_ASCII, true, &id, 1, 100);
	dgram(rid, 0, 1, r, ascii_hit(r, id, true), 350);
	assert_int_equal(m.measured.replies, 1);
	assert_int_equal(m.measured.hits, 1);
	assert_int_equal(m.measured.errors, 0);
	assert_int_equal(m.outstanding, 0);
	assert_int_equal(m.h.n, 1);
	assert_in_range(mc_hist_percentile(&m.h, 0.5), 240, 250); /* 16 steps per power of two */
	rid = issue(MC_WL_ASCII, true, &id, 1, 400);
	dgram(rid, 0, 1, "END\r\n", 5, 500);
	assert_int_equal(m.measured.misses, 1);
	assert_int_equal(m.measured.errors + m.measured.loss + m.measured.reorders, 0);
}

static void
test_dropped_reply_is_loss(void **state)
{
	uint32_t id[3] = {1, 2, 3};
	uint16_t rid[3];
	(void)state;
	for (int i = 0; i < 3; i++)
		rid[i] = issue(MC_WL_ASCII, false, &id[i], 1, 1000 + (uint64_t)i);
	dgram(rid[0], 0, 1, "STORED\r\n", 8, 2000);
	dgram(rid[2], 0, 1, "STORED\r\n", 8, 2001);
	mcg_expire(&m, 1001 + TIMEOUT); /* rid[1] is exactly at its timeout: not yet lost */
	assert_int_equal(m.measured.loss, 0);
	mcg_expire(&m, 1002 + TIMEOUT);
	assert_int_equal(m.measured.loss, 1);
	assert_int_equal(m.measured.replies, 2);
	assert_int_equal(m.outstanding, 0);
	/* Its reply after the timeout is late, not a reply. */
	dgram(rid[1], 0, 1, "STORED\r\n", 8, 3 * TIMEOUT);
	assert_int_equal(m.measured.late, 1);
	assert_int_equal(m.measured.replies, 2);
	/* A request still waiting at the end of a run is lost too. */
	issue(MC_WL_ASCII, false, &id[0], 1, 5 * TIMEOUT);
	mcg_expire_all(&m);
	assert_int_equal(m.measured.loss, 2);
}

static void
test_wrong_replies_are_errors(void **state)
{
	char r[512];
	uint32_t id = 5, other = 6;
	size_t n;
	uint16_t rid;
	(void)state;
	/* The value of another key. */
	rid = issue(MC_WL_ASCII, true, &id, 1, 0);
	dgram(rid, 0, 1, r, ascii_hit(r, other, true), 10);
	assert_int_equal(m.measured.errors, 1);
	assert_non_null(strstr(m.why, "not asked for"));
	/* One byte of the value changed. */
	rid = issue(MC_WL_ASCII, true, &id, 1, 0);
	n = ascii_hit(r, id, true);
	r[n - 9] ^= 1;
	dgram(rid, 0, 1, r, n, 10);
	assert_int_equal(m.measured.errors, 2);
	assert_string_equal(m.why, "wrong value bytes");
	/* A set that was not stored, and an error line. */
	rid = issue(MC_WL_ASCII, false, &id, 1, 0);
	dgram(rid, 0, 1, "NOT_STORED\r\n", 12, 10);
	assert_int_equal(m.measured.errors, 3);
	rid = issue(MC_WL_ASCII, true, &id, 1, 0);
	dgram(rid, 0, 1, "SERVER_ERROR out of memory\r\n", 28, 10);
	assert_int_equal(m.measured.errors, 4);
	assert_string_equal(m.why, "an error reply");
	/* Meta: a value of the wrong length. */
	rid = issue(MC_WL_META, true, &id, 1, 0);
	n = (size_t)sprintf(r, "VA %u\r\n", mc_wl_value_len(&wl, id) + 1);
	memcpy(r + n, mc_wl_value(id), mc_wl_value_len(&wl, id) + 1);
	n += mc_wl_value_len(&wl, id) + 1;
	memcpy(r + n, "\r\n", 2);
	dgram(rid, 0, 1, r, n + 2, 10);
	assert_int_equal(m.measured.errors, 5);
	assert_string_equal(m.why, "wrong value length");
	/* Binary: a set answered with an error status. */
	rid = issue(MC_WL_BINARY, false, &id, 1, 0);
	memset(r, 0, 24);
	r[0] = (char)0x81;
	r[1] = 0x01;
	r[7] = 0x05; /* item not stored */
	dgram(rid, 0, 1, r, 24, 10);
	assert_int_equal(m.measured.errors, 6);
	assert_int_equal(m.measured.replies, 6);
	assert_int_equal(m.outstanding, 0);
}

static void
test_reordered_reply_counted(void **state)
{
	uint32_t id[2] = {10, 11};
	uint16_t a, b;
	(void)state;
	a = issue(MC_WL_META, false, &id[0], 1, 0);
	b = issue(MC_WL_META, false, &id[1], 1, 1);
	dgram(b, 0, 1, "HD\r\n", 4, 10);
	assert_int_equal(m.measured.reorders, 0);
	dgram(a, 0, 1, "HD\r\n", 4, 11);
	assert_int_equal(m.measured.reorders, 1);
	assert_int_equal(m.measured.replies, 2);
	assert_int_equal(m.measured.errors + m.measured.loss, 0);
}

/* A reply in three datagrams, delivered 0, 2, 1: reassembled, checked, one reorder. */
static void
test_multi_datagram_reply_reassembled(void **state)
{
	static char r[8192];
	uint32_t ids[12];
	size_t n = 0;
	uint16_t rid;
	(void)state;
	wl.value_min = wl.value_max = 300;
	for (unsigned int i = 0; i < 12; i++) {
		ids[i] = 100 + i;
		n += ascii_hit(r + n, ids[i], i == 11);
	}
	assert_true(n > 2 * MC_WL_DGRAM_PAYLOAD && n < 3 * MC_WL_DGRAM_PAYLOAD);
	rid = issue(MC_WL_ASCII, true, ids, 12, 0);
	dgram(rid, 0, 3, r, MC_WL_DGRAM_PAYLOAD, 1);
	dgram(rid, 2, 3, r + 2 * MC_WL_DGRAM_PAYLOAD, n - 2 * MC_WL_DGRAM_PAYLOAD, 2);
	assert_int_equal(m.measured.replies, 0);
	dgram(rid, 1, 3, r + MC_WL_DGRAM_PAYLOAD, MC_WL_DGRAM_PAYLOAD, 3);
	assert_int_equal(m.measured.replies, 1);
	assert_int_equal(m.measured.hits, 12);
	assert_int_equal(m.measured.errors, 0);
	assert_true(m.measured.reorders >= 1);
	/* memcached's way: one message (seq 0 of 1) per object, then END. */
	rid = issue(MC_WL_ASCII, true, ids, 2, 10);
	n = ascii_hit(r, ids[0], false);
	dgram(rid, 0, 1, r, n, 11);
	n = ascii_hit(r, ids[1], false);
	dgram(rid, 0, 1, r, n, 12);
	assert_int_equal(m.measured.replies, 1);
	dgram(rid, 0, 1, "END\r\n", 5, 13);
	assert_int_equal(m.measured.replies, 2);
	assert_int_equal(m.measured.hits, 14);
	assert_int_equal(m.measured.errors, 0);
	wl.value_min = 10;
	wl.value_max = 40;
}

/* What mc_wl_build writes is what the classifier and the checks expect, in every protocol. */
static void
test_build_classify_check_round_trip(void **state)
{
	static const enum mc_wl_proto protos[] = {MC_WL_ASCII, MC_WL_META, MC_WL_BINARY};
	uint8_t b[MC_WL_REQ_MAX];
	char kb[3][MC_WL_MAX_KEY + 1];
	struct mc_wl_key k[3];
	struct mc_wl_req r;
	(void)state;
	for (unsigned int i = 0; i < 3; i++) {
		k[i].id = 20 + i;
		k[i].text = mc_wl_key(&wl, k[i].id, kb[i], &k[i].len);
	}
	for (unsigned int p = 0; p < 3; p++) {
		size_t n;
		wl.proto = protos[p];
		n = mc_wl_build(&wl, b, 0x1234, true, k, 3);
		assert_int_equal(b[0], 0x12);
		assert_int_equal(b[5], 1);
		assert_int_equal(mc_wl_classify(b + 8, n - 8, &r), 0);
		assert_int_equal(r.proto, protos[p]);
		assert_true(r.get);
		assert_int_equal(r.nk, 3);
		n = mc_wl_build(&wl, b, 1, false, k, 1);
		assert_int_equal(mc_wl_classify(b + 8, n - 8, &r), 0);
		assert_false(r.get);
	}
	wl.proto = MC_WL_ASCII;
	assert_int_equal(mc_wl_classify((const uint8_t *)"stats\r\n", 7, &r), -1);
	/* Keys are distinct: 12 and 120 padded to the same length are not one key. */
	wl.keys = 200;
	kb[0][mc_wl_key_text(&wl, kb[0], 12)] = '\0';
	kb[1][mc_wl_key_text(&wl, kb[1], 120)] = '\0';
	assert_string_not_equal(kb[0], kb[1]);
	wl.keys = 1000;
}

static const struct mcg_flow flow = {.src_mac = {2, 0, 0, 0, 0, 2}, .dst_mac = {2, 0, 0, 0, 0, 1},
				     .src_ip = 0xc6120002u, .dst_ip = 0xc6120001u, .sport = 40000,
				     .nsports = 1, .dport = 11211};

/* A request frame turned round as the server would: parsed as a reply; a flipped bit is a
 * checksum error. */
static void
test_frames_and_checksums(void **state)
{
	uint8_t f[256], t[6];
	const uint8_t *p;
	size_t plen, n;
	(void)state;
	memcpy(f + MCG_HDRS, "\0\1\0\0\0\1\0\0END\r\n", 13);
	n = mcg_frame_request(f, &flow, 40001, 13);
	assert_int_equal(n, MCG_HDRS + 13);
	assert_int_equal(mcg_frame_parse(f, n, &flow, &p, &plen), MCG_RX_OTHER); /* it is ours */
	memcpy(t, f + 26, 4); /* swap addresses and ports: checksums stay right */
	memcpy(f + 26, f + 30, 4);
	memcpy(f + 30, t, 4);
	memcpy(t, f + 34, 2);
	memcpy(f + 34, f + 36, 2);
	memcpy(f + 36, t, 2);
	assert_int_equal(mcg_frame_parse(f, n, &flow, &p, &plen), MCG_RX_REPLY);
	assert_int_equal(plen, 13);
	assert_memory_equal(p + 8, "END\r\n", 5);
	f[n - 1] ^= 0x10;
	assert_int_equal(mcg_frame_parse(f, n, &flow, &p, &plen), MCG_RX_BAD_CSUM);
}

static void
test_arp_answered_and_learned(void **state)
{
	uint8_t f[64], mac[6] = {0};
	struct mcg_flow peer = flow; /* the target asking for us */
	(void)state;
	memcpy(peer.src_mac, flow.dst_mac, 6);
	peer.src_ip = flow.dst_ip;
	peer.dst_ip = flow.src_ip;
	mcg_arp_request(f, &peer);
	assert_int_equal(mcg_frame_parse(f, MCG_ARP_LEN, &flow, NULL, NULL), MCG_RX_ARP);
	assert_int_equal(mcg_arp(f, MCG_ARP_LEN, &flow, mac), 1);
	assert_memory_equal(f, flow.dst_mac, 6); /* back to the asker */
	/* That reply, seen by the target's side, teaches it our MAC. */
	assert_int_equal(mcg_arp(f, MCG_ARP_LEN, &peer, mac), 2);
	assert_memory_equal(mac, flow.src_mac, 6);
	/* A request for another address is not ours to answer. */
	peer.dst_ip = 0xc6120009u;
	mcg_arp_request(f, &peer);
	assert_int_equal(mcg_arp(f, MCG_ARP_LEN, &flow, mac), 0);
}

/* A pcap as scripts/mkpcap.py writes it (little-endian, microseconds, Ethernet). */
static void
test_pcap_read(void **state)
{
	char path[64];
	uint8_t gh[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, rh[16] = {0}, f[128];
	const char *reqs[] = {"get key:1xxxxxxxxxxx\r\n", "set key:2 0 0 1\r\nx\r\n", "stats\r\n"};
	struct mcg_pcap pc;
	FILE *fp;
	(void)state;
	snprintf(path, sizeof(path), "/tmp/test_mcgen_%d.pcap", (int)getpid());
	fp = fopen(path, "wb");
	assert_non_null(fp);
	gh[16] = 0xff;
	gh[17] = 0xff; /* snaplen 65535 */
	gh[20] = 1;    /* Ethernet */
	fwrite(gh, 1, 24, fp);
	for (int i = 0; i < 3; i++) {
		size_t plen = 8 + strlen(reqs[i]), n;
		memset(f + MCG_HDRS, 0, 8);
		f[MCG_HDRS + 5] = 1;
		memcpy(f + MCG_HDRS + 8, reqs[i], strlen(reqs[i]));
		n = mcg_frame_request(f, &flow, 40000, plen);
		rh[8] = rh[12] = (uint8_t)n;
		fwrite(rh, 1, 16, fp);
		fwrite(f, 1, n, fp);
	}
	fclose(fp);
	assert_null(mcg_pcap_load(&pc, path));
	unlink(path);
	assert_int_equal(pc.n, 2);
	assert_int_equal(pc.skipped, 1); /* stats is not a request mcgen replays */
	assert_true(pc.req[0].get);
	assert_false(pc.req[1].get);
	assert_int_equal(pc.off[1] - pc.off[0], strlen(reqs[0]));
	assert_memory_equal(pc.body + pc.off[1], reqs[1], strlen(reqs[1]));
	mcg_pcap_free(&pc);
	assert_non_null(mcg_pcap_load(&pc, "/nonexistent.pcap"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_right_reply_counted_with_its_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_reply_is_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_replies_are_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reordered_reply_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_datagram_reply_reassembled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_classify_check_round_trip, setup, teardown),
		cmocka_unit_test(test_frames_and_checksums),
		cmocka_unit_test(test_arp_answered_and_learned),
		cmocka_unit_test(test_pcap_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
