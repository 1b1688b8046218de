/* mcgen's frames: Ethernet/IPv4/UDP around memcached requests, with their checksums; the
 * replies' headers checked on the way in; ARP (answer for our address, resolve the target's);
 * and the requests of a pcap written by scripts/mkpcap.py. Byte buffers in, byte buffers out:
 * no ports or mbufs here. */
#ifndef MC_MCGEN_NET_H
#define MC_MCGEN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workload.h"

#define MCG_HDRS (14 + 20 + 8)  /* Ethernet, IPv4, UDP */
#define MCG_MAX_PAYLOAD 1472    /* a 1514-byte frame */
#define MCG_ARP_LEN 60          /* an ARP frame padded to Ethernet's minimum */

struct mcg_flow {
	uint8_t src_mac[6], dst_mac[6];
	uint32_t src_ip, dst_ip; /* host order */
	uint16_t sport, nsports; /* requests leave from sport .. sport + nsports - 1 */
	uint16_t dport;
};

/* Write the headers in front of a payload of plen bytes already at f + MCG_HDRS, from source
 * port sport; IPv4 and UDP checksums filled. Returns the frame's length. */
size_t mcg_frame_request(uint8_t *f, const struct mcg_flow *fl, uint16_t sport, size_t plen);

enum mcg_rx {
	MCG_RX_REPLY,    /* a UDP datagram from the target's port to us: *payload, *plen */
	MCG_RX_ARP,      /* an ARP frame: give it to mcg_arp */
	MCG_RX_BAD_CSUM, /* a reply with a wrong IPv4 or UDP checksum */
	MCG_RX_OTHER,    /* anything else */
};

enum mcg_rx mcg_frame_parse(const uint8_t *f, size_t len, const struct mcg_flow *fl,
			    const uint8_t **payload, size_t *plen);

/* An ARP frame f: a request for our address becomes the reply in place (returns 1: send it);
 * a reply from the target fills *mac (returns 2); anything else returns 0. */
int mcg_arp(uint8_t *f, size_t len, const struct mcg_flow *fl, uint8_t mac[6]);
/* Write a broadcast ARP request for the target's address; returns its length. */
size_t mcg_arp_request(uint8_t *f, const struct mcg_flow *fl);

/* The memcached requests of a pcap, each with what mc_wl_classify says it is. */
struct mcg_pcap {
	uint8_t *body;     /* request payloads (after the 8-byte frame header), back to back */
	uint32_t *off;     /* frame i's payload is body[off[i] .. off[i + 1]) */
	struct mc_wl_req *req;
	uint32_t n;
	uint32_t skipped;  /* frames that are not a memcached request mcgen can check */
};

/* Read a classic pcap (microsecond or nanosecond, either byte order, Ethernet). Returns NULL
 * or what is wrong. */
const char *mcg_pcap_load(struct mcg_pcap *p, const char *path);
void mcg_pcap_free(struct mcg_pcap *p);

#endif
