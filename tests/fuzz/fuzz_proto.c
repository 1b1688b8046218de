/* libFuzzer target: one datagram payload through the protocol layer and the store.
 * FUZZ_MODE 0 = ASCII, 1 = meta (the input follows "m"), 2 = binary (first byte forced to
 * 0x80), 3 = a TCP stream: the input arrives in pieces (cut where the first byte says) through
 * mc_proto_stream, as tcp/ feeds it, with a small buffer cap. After each input: the reply stays
 * within its limit and the store's accounting holds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "store/store.h"

#ifndef FUZZ_MODE
#define FUZZ_MODE 0
#endif

#define MEM (8u << 20)

static struct mc_store *s;
static struct mc_proto_conf conf = {.udp_admin = true, .udp_writes = true};
static struct mc_proto_ctx cx;
static uint8_t outbuf[1400], *spill;
static struct mc_dump dump; /* a stream's metadump, as a connection keeps one */
static const size_t spill_cap = 1u << 20;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed the stream in two pieces, as a connection would: what is not consumed waits for the
 * next piece, swallowed bytes are skipped, a close ends it. Every call sees an exact-size copy. */
static void
stream(const uint8_t *data, size_t size)
{
	uint8_t *held = NULL, proto = MC_SP_NEW;
	size_t hlen = 0, cut = size ? 1 + data[0] % size : 0, off = 1;
	uint64_t swallow = 0;
	int piece;
	cx.stream = true;
	cx.stream_cap = 4096;
	cx.dump = &dump;
	for (piece = 0; piece < 2; piece++) {
		size_t end = piece == 0 ? cut : size, n;
		uint8_t *buf;
		if (end < off)
			end = off;
		n = end - off;
		while (swallow > 0 && n > 0) {
			swallow--;
			off++;
			n--;
		}
		buf = malloc(hlen + n + 1);
		if (hlen)
			memcpy(buf, held, hlen);
		memcpy(buf + hlen, data + off, n);
		off = end;
		free(held);
		held = buf;
		hlen += n;
		while (hlen > 0) {
			struct mc_out o;
			enum mc_proto_ev ev;
			uint8_t *exact = malloc(hlen);
			size_t used, k;
			memcpy(exact, held, hlen);
			mc_out_init(&o, outbuf, sizeof(outbuf), spill, spill_cap, 1u << 20);
			used = mc_proto_stream(&cx, exact, hlen, &o, 2048, &proto, &ev);
			free(exact);
			if (used > hlen || o.len > o.limit)
				abort();
			mc_out_rewind(&o, 0);
			k = cx.swallow < hlen - used ? (size_t)cx.swallow : hlen - used;
			swallow = cx.swallow - k;
			memmove(held, held + used + k, hlen - used - k);
			hlen -= used + k;
			if (ev == MC_EV_CLOSE) {
				piece = 2;
				break;
			}
			if (ev == MC_EV_MORE || (used == 0 && k == 0))
				break;
		}
	}
	free(held);
	/* A metadump still under way goes on as its replies drain, and ends with END. */
	while (dump.active) {
		static const uint8_t none[1];
		struct mc_out o;
		enum mc_proto_ev ev;
		mc_out_init(&o, outbuf, sizeof(outbuf), spill, spill_cap, 1u << 20);
		mc_proto_stream(&cx, none, 0, &o, 2048, &proto, &ev);
		if (o.len == 0 || o.len > o.limit)
			abort();
		mc_out_rewind(&o, 0);
	}
	cx.dump = NULL;
	cx.stream = false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mc_out o;
	struct mc_store_part_stats ps;
	uint8_t *req;
	size_t len = size + (FUZZ_MODE == 1);
	if (s == NULL) {
		struct mc_store_settings set = {.mem_bytes = MEM, .nparts = 2, .max_item_size = 64 << 10,
						.factor = 1.25, .chunk_min = 48, .unix_now = 1700000000};
		void *mem = aligned_alloc(64, MEM);
		s = mc_store_create(mem, MEM, &set);
		mc_proto_ctx_init(&cx, s, &conf);
		spill = malloc(spill_cap);
	}
	if (len == 0)
		return 0;
	if (FUZZ_MODE == 3) {
		stream(data, size);
		goto check;
	}
	/* An exact-size copy: any read past the datagram is a heap overflow ASan reports. */
	req = malloc(len);
	if (FUZZ_MODE == 1) {
		req[0] = 'm';
		memcpy(req + 1, data, size);
	} else {
		memcpy(req, data, size);
		if (FUZZ_MODE == 2)
			req[0] = 0x80;
		else if (req[0] == 0x80)
			req[0] = 'g';
	}
	mc_out_init(&o, outbuf, sizeof(outbuf), spill, spill_cap, 64 << 10);
	mc_proto_execute(&cx, req, len, NULL, &o);
	free(req);
	if (o.len > o.limit)
		abort();
	mc_out_rewind(&o, 0);
check:
	mc_store_part_stats(s, &ps);
	if (ps.bytes > MEM || ps.curr_items > MEM / MC_ITEM_HDR || ps.zombies != 0)
		abort();
	return 0;
}
