/* The exception path: frames the fast path does not consume go to a kernel interface that
 * carries the box's MAC and IPv4 address, through DPDK's own exception-path devices (the TAP
 * PMD, or virtio-user over vhost-net), and what the kernel sends there leaves through the
 * port. Worker q of port 0 owns exception queue q in both directions: no locks. */
#include "dp_int.h"

#include <rte_bus_vdev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXC_DESC 512
#define EXC_POOL_CACHE 64

/* ---- the fast path's side ---- */

void
mc_dp_exception_tx(struct mc_worker *w)
{
	uint16_t sent = rte_eth_tx_burst(w->exc_port, w->queue_id, w->exc_tx, w->exc_n);
	w->st.exc_to_kernel += sent;
	if (unlikely(sent < w->exc_n)) {
		/* The kernel is not keeping up: its frames are not worth a retry. */
		w->st.drop_exc_full += w->exc_n - sent;
		rte_pktmbuf_free_bulk(&w->exc_tx[sent], w->exc_n - sent);
	}
	w->exc_n = 0;
}

void
mc_dp_exception_rx(struct mc_worker *w)
{
	struct rte_mbuf *pkts[MC_BURST];
	uint16_t n, i;
	w->exc_skip = 0;
	n = rte_eth_rx_burst(w->exc_port, w->queue_id, pkts, MC_BURST);
	/* As the kernel wrote them (it fills in full checksums on a TAP without offloads). One
	 * backlog slot each, so a reply's reserved room is never taken. */
	for (i = 0; i < n; i++) {
		if (likely(mc_dp_tx_reserve(w, 1))) {
			w->st.exc_from_kernel++;
			mc_dp_tx_push(w, pkts[i]);
		} else {
			w->st.drop_tx_backlog++;
			rte_pktmbuf_free(pkts[i]);
		}
	}
}

void
mc_dp_worker_exception(struct mc_worker *w, const struct mc_exc *exc)
{
	if (exc == NULL || !exc->up || w->queue_id >= exc->queues)
		return;
	w->exc_port = exc->port_id;
	w->exc = MC_EXC_ON;
	w->exc_n = 0;
	w->exc_skip = 0;
}

/* ---- the device ---- */

/* Write value to the interface's IPv6 setting key. Returns 0, or -1 (a kernel without IPv6
 * has no file). */
static int
ipv6_conf(const char *ifname, const char *key, const char *value)
{
	char path[128];
	FILE *f;
	int ret = 0;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", ifname, key);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	if (fputs(value, f) == EOF)
		ret = -1;
	if (fclose(f) != 0)
		ret = -1;
	return ret;
}

/* No IPv6 on the interface until it is given --ip6: no link-local address, router
 * solicitations or MLD reports from it. */
static void
ipv6_off(const char *ifname)
{
	if (ipv6_conf(ifname, "disable_ipv6", "1\n") != 0 && errno != ENOENT)
		MC_LOG(WARNING, "%s: cannot turn IPv6 off: %s\n", ifname, strerror(errno));
}

/* The kernel's side of --ip6: the address only (no link-local one, no autoconfiguration, no
 * router advertisements taken, no duplicate address detection: the address is the box's and
 * usable at once), for the TCP service over IPv6. in6_ifreq as <linux/ipv6.h> has it. */
struct mc_in6_ifreq {
	struct in6_addr addr;
	uint32_t prefixlen;
	int ifindex;
};

static int
ipv6_address(const char *ifname, const struct mc_cidr6 *ip6, char *err, size_t errlen)
{
	struct mc_in6_ifreq r;
	int fd;
	if (ipv6_conf(ifname, "addr_gen_mode", "1\n") != 0 ||
	    ipv6_conf(ifname, "accept_ra", "0\n") != 0 ||
	    ipv6_conf(ifname, "autoconf", "0\n") != 0 ||
	    ipv6_conf(ifname, "accept_dad", "0\n") != 0 ||
	    ipv6_conf(ifname, "disable_ipv6", "0\n") != 0) {
		snprintf(err, errlen, "%s: cannot turn IPv6 on: %s", ifname, strerror(errno));
		return -1;
	}
	memset(&r, 0, sizeof(r));
	memcpy(&r.addr, ip6->net, 16);
	r.prefixlen = ip6->bits;
	r.ifindex = (int)if_nametoindex(ifname);
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || r.ifindex == 0 || (ioctl(fd, SIOCSIFADDR, &r) != 0 && errno != EEXIST)) {
		snprintf(err, errlen, "%s: set IPv6 address: %s", ifname, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
mc_dp_exception_create(const char *kind, const char *ifname, const struct mc_port *port,
		       struct mc_exc *exc, char *err, size_t errlen)
{
	char args[256], mac[RTE_ETHER_ADDR_FMT_SIZE], pname[RTE_MEMPOOL_NAMESIZE];
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nb_rxd = EXC_DESC, nb_txd = EXC_DESC, q, pid;
	unsigned int nb_mbufs;
	int ret;

	memset(exc, 0, sizeof(*exc));
	memset(&conf, 0, sizeof(conf));
	snprintf(exc->ifname, sizeof(exc->ifname), "%s", ifname);
	rte_ether_format_addr(mac, sizeof(mac), &port->mac);
	if (strcmp(kind, "virtio") == 0) {
		snprintf(exc->dev, sizeof(exc->dev), "virtio_user_%s", ifname);
		snprintf(args, sizeof(args), "path=/dev/vhost-net,iface=%s,mac=%s,queues=%u,"
					     "queue_size=%u",
			 ifname, mac, port->queues, EXC_DESC);
	} else {
		snprintf(exc->dev, sizeof(exc->dev), "net_tap_%s", ifname);
		snprintf(args, sizeof(args), "iface=%s,mac=%s", ifname, mac);
	}
	ret = rte_vdev_init(exc->dev, args);
	if (ret != 0) {
		snprintf(err, errlen, "cannot create %s (%s): err=%d", exc->dev, args, ret);
		return -1;
	}
	/* Before anything brings the interface up. */
	ipv6_off(ifname);
	if (rte_eth_dev_get_port_by_name(exc->dev, &pid) != 0) {
		snprintf(err, errlen, "%s created but has no port", exc->dev);
		rte_vdev_uninit(exc->dev);
		return -1;
	}
	exc->port_id = pid;
	ret = rte_eth_dev_info_get(pid, &info);
	if (ret != 0 || port->queues > info.max_rx_queues || port->queues > info.max_tx_queues) {
		snprintf(err, errlen, "%s offers %u queue pairs, port %s has %u", exc->dev,
			 ret == 0 ? RTE_MIN(info.max_rx_queues, info.max_tx_queues) : 0,
			 port->name, port->queues);
		goto fail;
	}
	/* Its own pool: the device keeps a full ring of mbufs per RX queue, which port 0's pool
	 * was not sized for. Frames from the kernel return here once the port has sent them. */
	nb_mbufs = port->queues * (2u * EXC_DESC + 2 * MC_BURST + EXC_POOL_CACHE) + 1024;
	nb_mbufs = rte_align32pow2(nb_mbufs) - 1;
	snprintf(pname, sizeof(pname), "mc_exc_%u", pid);
	exc->pool = rte_pktmbuf_pool_create(pname, nb_mbufs, EXC_POOL_CACHE, 0,
					    RTE_MBUF_DEFAULT_BUF_SIZE, port->socket);
	if (exc->pool == NULL) {
		snprintf(err, errlen, "cannot create the %u mbufs of %s: %s", nb_mbufs, exc->dev,
			 rte_strerror(rte_errno));
		goto fail;
	}
	ret = rte_eth_dev_configure(pid, port->queues, port->queues, &conf);
	if (ret == 0)
		ret = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
	for (q = 0; ret == 0 && q < port->queues; q++) {
		ret = rte_eth_rx_queue_setup(pid, q, nb_rxd, (unsigned int)port->socket, NULL,
					     exc->pool);
		if (ret == 0)
			ret = rte_eth_tx_queue_setup(pid, q, nb_txd, (unsigned int)port->socket, NULL);
	}
	if (ret == 0)
		ret = rte_eth_dev_start(pid);
	if (ret != 0) {
		snprintf(err, errlen, "cannot set up %s with %u queue pairs: err=%d", exc->dev,
			 port->queues, ret);
		goto fail;
	}
	exc->queues = port->queues;
	exc->up = true;
	return 0;
fail:
	rte_eth_dev_close(pid);
	rte_vdev_uninit(exc->dev);
	if (exc->pool != NULL)
		rte_mempool_free(exc->pool);
	exc->pool = NULL;
	return -1;
}

void
mc_dp_exception_destroy(struct mc_exc *exc)
{
	int ret;
	if (!exc->up)
		return;
	ret = rte_eth_dev_stop(exc->port_id);
	if (ret != 0)
		MC_LOG(WARNING, "stopping %s: err=%d\n", exc->dev, ret);
	rte_eth_dev_close(exc->port_id);
	ret = rte_vdev_uninit(exc->dev);
	if (ret != 0)
		MC_LOG(WARNING, "removing %s: err=%d\n", exc->dev, ret);
	exc->up = false;
	/* The pool stays: frames from the kernel may still wait in a worker's TX backlog. */
}

/* ---- the kernel interface, set up with ioctls ---- */

static int
ifreq_ioctl(int fd, unsigned long req, struct ifreq *ifr, const char *what, char *err,
	    size_t errlen)
{
	if (ioctl(fd, req, ifr) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s: %s", ifr->ifr_name, what, strerror(errno));
	return -1;
}

static void
ifreq_addr(struct ifreq *ifr, uint32_t a)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = rte_cpu_to_be_32(a);
	memcpy(&ifr->ifr_addr, &sin, sizeof(sin));
}

int
mc_dp_exception_kernel_if(const struct mc_exc *exc, const struct mc_port *port, uint32_t ip,
			  uint32_t netmask, const struct mc_cidr6 *ip6, char *err, size_t errlen)
{
	struct ifreq ifr;
	uint16_t mtu;
	int fd, ret = -1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket for ioctls: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", exc->ifname);
	/* The port's MAC: the kernel must take frames addressed to it as its own. The TAP PMD
	 * gives it from mac=; virtio-user's tap gets one of its own, so set it then. */
	if (ifreq_ioctl(fd, SIOCGIFHWADDR, &ifr, "read MAC", err, errlen) != 0)
		goto out;
	if (memcmp(ifr.ifr_hwaddr.sa_data, port->mac.addr_bytes, RTE_ETHER_ADDR_LEN) != 0) {
		ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(ifr.ifr_hwaddr.sa_data, port->mac.addr_bytes, RTE_ETHER_ADDR_LEN);
		if (ifreq_ioctl(fd, SIOCSIFHWADDR, &ifr, "set MAC", err, errlen) != 0 ||
		    ifreq_ioctl(fd, SIOCGIFHWADDR, &ifr, "read MAC", err, errlen) != 0)
			goto out;
		if (memcmp(ifr.ifr_hwaddr.sa_data, port->mac.addr_bytes, RTE_ETHER_ADDR_LEN) != 0) {
			snprintf(err, errlen, "%s: does not keep the port's MAC", exc->ifname);
			goto out;
		}
	}
	if (rte_eth_dev_get_mtu(port->port_id, &mtu) == 0) {
		ifr.ifr_mtu = mtu;
		if (ifreq_ioctl(fd, SIOCSIFMTU, &ifr, "set MTU", err, errlen) != 0)
			goto out;
	}
	if (ip != 0) {
		ifreq_addr(&ifr, ip);
		if (ifreq_ioctl(fd, SIOCSIFADDR, &ifr, "set address", err, errlen) != 0)
			goto out;
		ifreq_addr(&ifr, netmask);
		if (ifreq_ioctl(fd, SIOCSIFNETMASK, &ifr, "set netmask", err, errlen) != 0)
			goto out;
	}
	if (ifreq_ioctl(fd, SIOCGIFFLAGS, &ifr, "read flags", err, errlen) != 0)
		goto out;
	ifr.ifr_flags |= IFF_UP;
	if (ifreq_ioctl(fd, SIOCSIFFLAGS, &ifr, "link up", err, errlen) != 0)
		goto out;
	if (ip6 != NULL && ip6->bits != 0 && ipv6_address(exc->ifname, ip6, err, errlen) != 0)
		goto out;
	ret = 0;
out:
	close(fd);
	return ret;
}
