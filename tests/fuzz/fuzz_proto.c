/* libFuzzer target: one datagram payload through the protocol layer and the store.
 * FUZZ_MODE 0 = ASCII, 1 = meta (the input follows "m"), 2 = binary (first byte forced to
 * 0x80). After each input: the reply stays within its limit and the store's accounting holds. */
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
static const size_t spill_cap = 1u << 20;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	mc_store_part_stats(s, &ps);
	if (ps.bytes > MEM || ps.curr_items > MEM / MC_ITEM_HDR || ps.zombies != 0)
		abort();
	return 0;
}
