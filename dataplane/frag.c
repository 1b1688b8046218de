/* Reassembly of IPv4 and IPv6 fragments with DPDK's rte_ip_frag: a memcached request over UDP
 * must be one datagram, and a set larger than the MTU arrives in fragments. Each worker has its
 * own table (no lock): at most MC_FRAG_MAX_DGRAMS datagrams in progress, each of at most
 * RTE_LIBRTE_IP_FRAG_MAX_FRAG fragments, none older than MC_FRAG_TIMEOUT_MS. What the table
 * gives up (a timeout, an overlap or duplicate, too many fragments, no room) goes to the
 * worker's death row and is freed after the burst, counted as frag_dropped.
 *
 * Before a fragment reaches the table it must be UDP, untagged (the library's key has no VLAN),
 * from an allowed source (checked by the IP parse), non-empty, a multiple of 8 bytes unless last, within 64 KiB, in one segment, and
 * a first fragment must hold the whole UDP header (RFC 1858's tiny fragments): else
 * drop_ip_frag. The library's own checks vary between DPDK releases, so these do not rely on
 * them. A reassembled datagram is a chain whose L4 checksum the parse verifies in software. */
#define ALLOW_EXPERIMENTAL_API /* rte_ip_frag_table_del_expired_entries */
#include "dp_int.h"

#include <rte_cycles.h>
#include <rte_ip_frag.h>
#include <rte_malloc.h>

#define FRAG_BUCKETS 64      /* hash buckets of a table */
#define FRAG_BUCKET_ENTRIES 8 /* entries a bucket (the table holds 512; at most
			       * MC_FRAG_MAX_DGRAMS of them in use) */
#define FRAG_UDP_MIN 8       /* a first fragment must carry the UDP header */

/* Every fragment of a burst can make the table give up at most one datagram and itself. */
_Static_assert(MC_BURST <= RTE_IP_FRAG_DEATH_ROW_LEN, "death row too short for a burst");

/* The checks before the table, common to both families: ofs and len in bytes. */
static bool
frag_ok(const struct rte_mbuf *m, uint32_t ofs, uint32_t len, bool more, uint32_t hdr)
{
	if (len == 0 || (more && (len & 7) != 0) || ofs + len + hdr > UINT16_MAX)
		return false;
	if (ofs == 0 && len < FRAG_UDP_MIN)
		return false;
	return m->nb_segs == 1;
}

/* The reassembled datagram: its checksum verdict from the NIC was about one fragment. */
static struct rte_mbuf *
whole(struct mc_worker *w, struct rte_mbuf *d)
{
	w->st.frag_reassembled++;
	d->ol_flags &= ~(RTE_MBUF_F_RX_L4_CKSUM_MASK | RTE_MBUF_F_RX_IP_CKSUM_MASK);
	return d;
}

struct rte_mbuf *
mc_dp_frag4(struct mc_worker *w, struct mc_frame *f, struct rte_ipv4_hdr *ip, uint16_t tot)
{
	struct rte_mbuf *m = f->m, *d;
	const uint16_t fo = rte_be_to_cpu_16(ip->fragment_offset);
	const uint32_t ofs = (uint32_t)(fo & RTE_IPV4_HDR_OFFSET_MASK) * RTE_IPV4_HDR_OFFSET_UNITS;
	const uint32_t len = tot - (uint32_t)sizeof(*ip);
	/* Untagged only: the library's key has no VLAN, so fragments from two VLANs would meet. */
	if (w->frag == NULL || ip->next_proto_id != IPPROTO_UDP || f->l2 != sizeof(struct rte_ether_hdr) ||
	    !frag_ok(m, ofs, len, (fo & RTE_IPV4_HDR_MF_FLAG) != 0, sizeof(*ip))) {
		f->kind = MC_FRAME_DROP;
		f->drop = MC_DP_CTR_drop_ip_frag;
		return NULL;
	}
	w->st.frag_received++;
	m->l2_len = f->l2;
	m->l3_len = sizeof(*ip);
	d = rte_ipv4_frag_reassemble_packet(w->frag, &w->dr, m, rte_rdtsc(), ip);
	if (d == NULL) {
		f->kind = MC_FRAME_HELD;
		return NULL;
	}
	return whole(w, d);
}

struct rte_mbuf *
mc_dp_frag6(struct mc_worker *w, struct mc_frame *f, struct rte_ipv6_hdr *ip6, uint16_t off,
	    uint16_t end)
{
	struct rte_mbuf *m = f->m, *d;
	struct rte_ipv6_fragment_ext *fh;
	uint16_t fd;
	uint32_t ofs, len;
	bool more;
	/* The library takes only a fragment header right after the IPv6 header. */
	if (off != f->l2 + sizeof(*ip6) || (uint32_t)off + sizeof(*fh) > end ||
	    (uint32_t)off + sizeof(*fh) > rte_pktmbuf_data_len(m))
		goto refuse;
	fh = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_fragment_ext *, off);
	fd = rte_be_to_cpu_16(fh->frag_data);
	ofs = (uint32_t)(fd >> 3) * 8;
	more = (fd & 1) != 0;
	len = (uint32_t)end - off - sizeof(*fh);
	if (fh->next_header != IPPROTO_UDP)
		goto refuse;
	if (ofs == 0 && !more) {
		/* An atomic fragment (RFC 6946): the whole datagram; cut the header out. */
		uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
		memmove(p + sizeof(*fh), p, off);
		rte_pktmbuf_adj(m, sizeof(*fh));
		ip6 = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, f->l2);
		ip6->proto = IPPROTO_UDP;
		ip6->payload_len = rte_cpu_to_be_16((uint16_t)(rte_be_to_cpu_16(ip6->payload_len) -
							       sizeof(*fh)));
		return m;
	}
	if (w->frag == NULL || f->l2 != sizeof(struct rte_ether_hdr) || !frag_ok(m, ofs, len, more, 0))
		goto refuse;
	w->st.frag_received++;
	m->l2_len = f->l2;
	m->l3_len = sizeof(*ip6) + sizeof(*fh);
	d = rte_ipv6_frag_reassemble_packet(w->frag, &w->dr, m, rte_rdtsc(), ip6, fh);
	if (d == NULL) {
		f->kind = MC_FRAME_HELD;
		return NULL;
	}
	return whole(w, d);
refuse:
	f->kind = MC_FRAME_DROP;
	f->drop = MC_DP_CTR_drop_ip_frag;
	return NULL;
}

void
mc_dp_frag_flush(struct mc_worker *w)
{
	w->st.frag_dropped += w->dr.cnt;
	rte_ip_frag_free_death_row(&w->dr, 0);
}

void
mc_dp_frag_expire(struct mc_worker *w, uint64_t now)
{
	if (w->frag == NULL)
		return;
	rte_ip_frag_table_del_expired_entries(w->frag, &w->dr, now);
	if (w->dr.cnt != 0)
		mc_dp_frag_flush(w);
}

int
mc_dp_frag_init(struct mc_worker *w, int socket)
{
	const uint64_t cycles = rte_get_tsc_hz() / 1000 * MC_FRAG_TIMEOUT_MS;
	w->frag = rte_ip_frag_table_create(FRAG_BUCKETS, FRAG_BUCKET_ENTRIES, MC_FRAG_MAX_DGRAMS,
					   cycles, socket);
	return w->frag != NULL ? 0 : -1;
}

void
mc_dp_frag_fini(struct mc_worker *w)
{
	if (w->dr.cnt != 0)
		mc_dp_frag_flush(w);
	if (w->frag != NULL)
		rte_ip_frag_table_destroy(w->frag);
	w->frag = NULL;
}
