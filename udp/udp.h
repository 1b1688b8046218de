/* The memcached UDP frame (8-byte header: request id, sequence number, datagram count,
 * reserved; all big-endian) and the service that answers memcached datagrams: it parses the
 * frame, runs the protocol over the payload and segments the reply into datagrams. */
#ifndef MC_UDP_H
#define MC_UDP_H

#include <stdint.h>
#include <stddef.h>

#define MC_UDP_HDR_LEN 8
#define MC_UDP_MAX_DGRAM 1400 /* memcached's UDP_MAX_PAYLOAD_SIZE, header included */
#define MC_UDP_MAX_PAYLOAD (MC_UDP_MAX_DGRAM - MC_UDP_HDR_LEN)

struct mc_udp_frame {
	uint16_t req_id;
	uint16_t seq;
	uint16_t total;
	uint16_t reserved;
};

enum mc_udp_status { MC_UDP_OK = 0, MC_UDP_SHORT = -1, MC_UDP_MULTI = -2 };

/* Parse the frame header at buf. A request must carry more than the header and be a single
 * datagram (total == 1), as memcached requires. */
int mc_udp_frame_parse(const uint8_t *buf, size_t len, struct mc_udp_frame *f);
/* Write a frame header. */
void mc_udp_frame_write(uint8_t *buf, uint16_t req_id, uint16_t seq, uint16_t total);
/* Datagrams needed for a reply of len bytes (at least 1). */
static inline uint16_t
mc_udp_dgram_count(size_t len)
{
	return (uint16_t)(len == 0 ? 1 : (len + MC_UDP_MAX_PAYLOAD - 1) / MC_UDP_MAX_PAYLOAD);
}

#include "../proto/proto.h"

/* Per-worker service state: the protocol context (with this lcore's store handle) and the
 * scratch a long reply spills into. */
struct mc_service {
	struct mc_proto_ctx px;
	uint8_t *scratch;
	size_t scratch_cap;
	uint8_t *lin;           /* a chained request is linearised here */
	uint32_t zc_min;        /* values this long go zero-copy; 0 = off */
	struct rte_mempool *zc_pool; /* zero-copy holders (shared info + item reference) */
	uint64_t zc_values;     /* values sent from item memory */
	uint64_t zc_fallbacks;  /* zero-copy replies that had to be copied after all */
	uint64_t dgrams_out;    /* reply datagrams built */
	uint64_t replies_split; /* replies that needed more than one datagram */
};

/* Largest reply kept for one request: enough for a multi-get of two maximal items. */
static inline size_t
mc_udp_scratch_size(uint32_t max_item_size)
{
	size_t n = 2 * (size_t)max_item_size + 65536;
	return n < (4u << 20) ? (4u << 20) : n;
}

struct mc_worker;
struct rte_mbuf;

/* Create a worker's service on socket: protocol context over store, reply scratch and the
 * linearising buffer. NULL if memory is short. */
struct mc_service *mc_udp_service_create(struct mc_store *store, const struct mc_proto_conf *conf,
					 uint32_t max_item_size, int socket);
/* Turn on zero-copy for values of at least min bytes (the port must take chained mbufs). */
int mc_udp_service_zero_copy(struct mc_service *svc, uint32_t min, int socket);
void mc_udp_service_destroy(struct mc_service *svc);
/* Serve the memcached datagram in m, whose L2..L4 headers have been turned into reply headers;
 * l2 is the Ethernet header length, payload_len the UDP payload length. Consumes m. */
void mc_udp_serve(struct mc_worker *w, struct rte_mbuf *m, uint16_t l2, uint16_t payload_len);
/* Burst pre-pass: if m looks like a memcached get (ASCII get/gets, mg, binary GET family),
 * hash its first key and prefetch the key's index buckets. Reads only within the first
 * segment; validation proper happens later. */
void mc_udp_prefetch(struct mc_worker *w, const struct rte_mbuf *m, unsigned int i);

#endif
