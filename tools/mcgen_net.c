/* mcgen's frames, ARP and pcap reading (see mcgen_net.h). */
#include "mcgen_net.h"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t
mcg_frame_request(uint8_t *f, const struct mcg_flow *fl, uint16_t sport, size_t plen)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	memcpy(f, fl->dst_mac, 6);
	memcpy(f + 6, fl->src_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	ip->version_ihl = 0x45;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(20 + 8 + plen));
	ip->packet_id = 0;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->hdr_checksum = 0;
	ip->src_addr = rte_cpu_to_be_32(fl->src_ip);
	ip->dst_addr = rte_cpu_to_be_32(fl->dst_ip);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(fl->dport);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(8 + plen));
	udp->dgram_cksum = 0;
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	return MCG_HDRS + plen;
}

enum mcg_rx
mcg_frame_parse(const uint8_t *f, size_t len, const struct mcg_flow *fl, const uint8_t **payload,
		size_t *plen)
{
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(f + 14);
	const struct rte_udp_hdr *udp;
	size_t ihl, tot, ulen;
	if (len < 14)
		return MCG_RX_OTHER;
	if (f[12] == 0x08 && f[13] == 0x06)
		return MCG_RX_ARP;
	if (f[12] != 0x08 || f[13] != 0x00 || len < 14 + 20 || (ip->version_ihl >> 4) != 4)
		return MCG_RX_OTHER;
	ihl = (size_t)(ip->version_ihl & 15) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (ip->next_proto_id != IPPROTO_UDP || ihl < 20 || tot < ihl + 8 || 14 + tot > len ||
	    (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return MCG_RX_OTHER;
	udp = (const struct rte_udp_hdr *)(f + 14 + ihl);
	if (rte_be_to_cpu_32(ip->src_addr) != fl->dst_ip || rte_be_to_cpu_32(ip->dst_addr) != fl->src_ip ||
	    rte_be_to_cpu_16(udp->src_port) != fl->dport)
		return MCG_RX_OTHER;
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < 8 || ulen != tot - ihl)
		return MCG_RX_OTHER;
	if (rte_raw_cksum(ip, ihl) != 0xffff ||
	    (udp->dgram_cksum != 0 && __rte_ipv4_udptcp_cksum(ip, udp) != 0xffff))
		return MCG_RX_BAD_CSUM;
	*payload = (const uint8_t *)(udp + 1);
	*plen = ulen - 8;
	return MCG_RX_REPLY;
}

int
mcg_arp(uint8_t *f, size_t len, const struct mcg_flow *fl, uint8_t mac[6])
{
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(f + 14);
	uint32_t sip, tip;
	if (len < 14 + sizeof(*a) || a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || a->arp_hlen != 6 || a->arp_plen != 4)
		return 0;
	sip = rte_be_to_cpu_32(a->arp_data.arp_sip);
	tip = rte_be_to_cpu_32(a->arp_data.arp_tip);
	if (a->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) && sip == fl->dst_ip) {
		memcpy(mac, a->arp_data.arp_sha.addr_bytes, 6);
		return 2;
	}
	if (a->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) || tip != fl->src_ip)
		return 0;
	/* Answer in place: to the asker, from us. */
	memcpy(f, a->arp_data.arp_sha.addr_bytes, 6);
	memcpy(f + 6, fl->src_mac, 6);
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	a->arp_data.arp_tha = a->arp_data.arp_sha;
	a->arp_data.arp_tip = a->arp_data.arp_sip;
	memcpy(a->arp_data.arp_sha.addr_bytes, fl->src_mac, 6);
	a->arp_data.arp_sip = rte_cpu_to_be_32(fl->src_ip);
	return 1;
}

size_t
mcg_arp_request(uint8_t *f, const struct mcg_flow *fl)
{
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(f + 14);
	memset(f, 0, MCG_ARP_LEN);
	memset(f, 0xff, 6);
	memcpy(f + 6, fl->src_mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = 6;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	memcpy(a->arp_data.arp_sha.addr_bytes, fl->src_mac, 6);
	a->arp_data.arp_sip = rte_cpu_to_be_32(fl->src_ip);
	a->arp_data.arp_tip = rte_cpu_to_be_32(fl->dst_ip);
	return MCG_ARP_LEN;
}

/* ---- pcap ---- */

#define PCAP_MAX_FRAMES (4u << 20)

static uint32_t
u32(const uint8_t *p, bool swap)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return swap ? __builtin_bswap32(v) : v;
}

/* The memcached payload (after the frame header) of an Ethernet/IPv4/UDP frame, or NULL. */
static const uint8_t *
udp_request(const uint8_t *f, size_t len, size_t *plen)
{
	size_t off = 14, ihl, ulen;
	if (len >= 18 && f[12] == 0x81 && f[13] == 0x00) /* one VLAN tag */
		off += 4;
	if (len < off + 28 || f[off - 2] != 0x08 || f[off - 1] != 0x00 || (f[off] >> 4) != 4 ||
	    f[off + 9] != IPPROTO_UDP)
		return NULL;
	ihl = (size_t)(f[off] & 15) * 4;
	if (ihl < 20 || len < off + ihl + 8)
		return NULL;
	ulen = (size_t)f[off + ihl + 4] << 8 | f[off + ihl + 5];
	if (ulen < 8 + MC_WL_UDP_HDR + 1 || off + ihl + ulen > len)
		return NULL;
	*plen = ulen - 8 - MC_WL_UDP_HDR;
	return f + off + ihl + 8 + MC_WL_UDP_HDR;
}

static const char *
pcap_add(struct mcg_pcap *p, const uint8_t *body, size_t blen, size_t *cap, size_t *used,
	 uint32_t *ncap)
{
	struct mc_wl_req r;
	if (blen > MCG_MAX_PAYLOAD - MC_WL_UDP_HDR || mc_wl_classify(body, blen, &r) != 0) {
		p->skipped++;
		return NULL;
	}
	if (p->n + 2 > *ncap) {
		uint32_t n = *ncap ? *ncap * 2 : 1024;
		uint32_t *off = realloc(p->off, n * sizeof(*p->off));
		struct mc_wl_req *req = off ? realloc(p->req, n * sizeof(*p->req)) : NULL;
		if (off != NULL)
			p->off = off;
		if (req == NULL)
			return "out of memory for the pcap";
		p->req = req;
		*ncap = n;
	}
	if (*used + blen > *cap) {
		size_t n = (*cap + blen) * 2;
		uint8_t *nb = realloc(p->body, n);
		if (nb == NULL)
			return "out of memory for the pcap";
		p->body = nb;
		*cap = n;
	}
	memcpy(p->body + *used, body, blen);
	p->off[p->n] = (uint32_t)*used;
	p->req[p->n++] = r;
	*used += blen;
	p->off[p->n] = (uint32_t)*used;
	return NULL;
}

const char *
mcg_pcap_load(struct mcg_pcap *p, const char *path)
{
	uint8_t gh[24], rh[16], *frame = NULL;
	size_t cap = 0, used = 0;
	uint32_t ncap = 0, snap;
	const char *err = NULL;
	bool swap;
	FILE *fp = fopen(path, "rb");
	memset(p, 0, sizeof(*p));
	if (fp == NULL)
		return "cannot open the pcap";
	if (fread(gh, 1, 24, fp) != 24) {
		err = "not a pcap (short header)";
		goto out;
	}
	swap = u32(gh, false) == 0xd4c3b2a1 || u32(gh, false) == 0x4d3cb2a1;
	if (!swap && u32(gh, false) != 0xa1b2c3d4 && u32(gh, false) != 0xa1b23c4d) {
		err = "not a classic pcap (pcapng is not read; convert with editcap -F pcap)";
		goto out;
	}
	if (u32(gh + 20, swap) != 1) {
		err = "the pcap's link type is not Ethernet";
		goto out;
	}
	snap = u32(gh + 16, swap);
	frame = malloc(snap > 65535 || snap == 0 ? 65536 : snap);
	if (frame == NULL) {
		err = "out of memory";
		goto out;
	}
	while (err == NULL && fread(rh, 1, 16, fp) == 16) {
		uint32_t incl = u32(rh + 8, swap);
		const uint8_t *body;
		size_t blen;
		if (incl > 65535 || fread(frame, 1, incl, fp) != incl) {
			err = "a truncated pcap record";
			break;
		}
		if (p->n >= PCAP_MAX_FRAMES) {
			err = "more than 4M frames in the pcap";
			break;
		}
		body = udp_request(frame, incl, &blen);
		if (body == NULL)
			p->skipped++;
		else
			err = pcap_add(p, body, blen, &cap, &used, &ncap);
	}
	if (err == NULL && p->n == 0)
		err = "no memcached requests in the pcap";
out:
	free(frame);
	fclose(fp);
	if (err != NULL)
		mcg_pcap_free(p);
	return err;
}

void
mcg_pcap_free(struct mcg_pcap *p)
{
	free(p->body);
	free(p->off);
	free(p->req);
	memset(p, 0, sizeof(*p));
}
