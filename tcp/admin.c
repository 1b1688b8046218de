/* TCP service, the side the rest of mcbox calls: start and stop the threads (listeners,
 * buffers, descriptors), their counters summed, and stats conns, which walks every thread's
 * connections from whichever thread asks. The threads' loop is tcp.c's. */
#define _GNU_SOURCE
#include "tcp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- start and stop ---- */

static int
listen_on(const struct mc_tcp_settings *s, bool v6, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int one = 1;
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	char name[INET6_ADDRSTRLEN];
	if (fd < 0) {
		snprintf(err, errlen, "tcp: socket: %s", strerror(errno));
		return -1;
	}
	sa.sin_addr.s_addr = htonl(s->ip);
	memcpy(&sa6.sin6_addr, s->ip6, 16);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* The address may reach the kernel only once the exception path's interface has it. */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* A backlog as deep as the connections allowed (the kernel caps it at somaxconn): a burst
	 * of connects that overflows the accept queue loses final ACKs, and with syncookies the
	 * client then believes in a connection the server never saw. */
	if ((v6 ? bind(fd, (struct sockaddr *)&sa6, sizeof(sa6))
		: bind(fd, (struct sockaddr *)&sa, sizeof(sa))) != 0 ||
	    listen(fd, s->max_conns > 1024 ? (s->max_conns < 65535 ? (int)s->max_conns : 65535)
					   : 1024) != 0) {
		if (v6)
			inet_ntop(AF_INET6, s->ip6, name, sizeof(name));
		else
			snprintf(name, sizeof(name), "%u.%u.%u.%u", s->ip >> 24,
				 (s->ip >> 16) & 0xff, (s->ip >> 8) & 0xff, s->ip & 0xff);
		snprintf(err, errlen, "tcp: cannot listen on %s%s%s:%u: %s", v6 ? "[" : "", name,
			 v6 ? "]" : "", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void
thread_fini(struct tcp_thread *w)
{
	while (w->conns != NULL)
		mc_tcp_conn_close(w, w->conns);
	if (w->lfd >= 0)
		close(w->lfd);
	if (w->lfd6 >= 0)
		close(w->lfd6);
	if (w->stopfd >= 0)
		close(w->stopfd);
	if (w->ep >= 0)
		close(w->ep);
	free(w->rbuf);
	free(w->obuf);
	free(w->spill);
}

void
mc_tcp_stop(struct mc_tcp *t)
{
	unsigned int i;
	if (t == NULL || t->stopped)
		return;
	t->stopped = true;
	for (i = 0; i < t->nthreads; i++) {
		uint64_t one = 1;
		if (t->th[i].started && write(t->th[i].stopfd, &one, sizeof(one)) < 0) {
			/* an eventfd write does not fail with room in its counter */
		}
	}
	for (i = 0; i < t->nthreads; i++) {
		if (t->th[i].started)
			pthread_join(t->th[i].th, NULL);
		thread_fini(&t->th[i]);
	}
}

void
mc_tcp_free(struct mc_tcp *t)
{
	mc_tcp_stop(t);
	free(t);
}

static int
thread_init(struct mc_tcp *t, struct tcp_thread *w, struct mc_store *s,
	    const struct mc_proto_conf *conf, mc_proto_stats_fn fn, void *arg, char *err,
	    size_t errlen)
{
	struct epoll_event ev;
	w->t = t;
	w->ep = w->lfd = w->lfd6 = w->stopfd = -1;
	pthread_mutex_init(&w->conns_lock, NULL);
	w->opened = now_secs();
	mc_proto_ctx_init(&w->px, s, conf);
	w->px.stream = true;
	w->px.stats_fn = fn;
	w->px.stats_arg = arg;
	/* A reply's text spills here: a multiget of values shorter than zc_min. */
	w->spill_cap = 2 * (size_t)t->set.max_item_size + OBUF;
	w->rbuf = malloc(RBUF);
	w->obuf = malloc(OBUF);
	w->spill = malloc(w->spill_cap);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->rbuf == NULL || w->obuf == NULL || w->spill == NULL || w->ep < 0 || w->stopfd < 0) {
		snprintf(err, errlen, "tcp: out of memory or descriptors for a thread");
		return -1;
	}
	if (!t->set.ip6_only) {
		w->lfd = listen_on(&t->set, false, t->port, err, errlen);
		if (w->lfd < 0)
			return -1;
	}
	if (t->port == 0 && w->lfd >= 0) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		getsockname(w->lfd, (struct sockaddr *)&sa, &sl);
		t->port = ntohs(sa.sin_port);
	}
	if (t->set.has_ip6) {
		w->lfd6 = listen_on(&t->set, true, t->port, err, errlen);
		if (w->lfd6 < 0)
			return -1;
		if (t->port == 0) {
			struct sockaddr_in6 sa6;
			socklen_t sl = sizeof(sa6);
			getsockname(w->lfd6, (struct sockaddr *)&sa6, &sl);
			t->port = ntohs(sa6.sin6_port);
		}
	}
	ev.events = EPOLLIN;
	ev.data.ptr = w; /* a listener is known by the thread's own address (IPv4) */
	if (w->lfd >= 0)
		epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev);
	ev.data.ptr = listener_tag(w, true); /* or its lfd6 field's (IPv6) */
	if (w->lfd6 >= 0)
		epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd6, &ev);
	ev.data.ptr = NULL;
	epoll_ctl(w->ep, EPOLL_CTL_ADD, w->stopfd, &ev);
	return 0;
}

struct mc_tcp *
mc_tcp_start(const struct mc_tcp_settings *set, struct mc_store *s,
	     const struct mc_proto_conf *conf, mc_proto_stats_fn stats_fn, void *stats_arg,
	     char *err, size_t errlen)
{
	struct mc_tcp *t;
	unsigned int i;
	if (set->threads == 0 || set->threads > MC_TCP_MAX_THREADS) {
		snprintf(err, errlen, "tcp: %u threads (1 to %d)", set->threads,
			 MC_TCP_MAX_THREADS);
		return NULL;
	}
	t = calloc(1, sizeof(*t) + set->threads * sizeof(struct tcp_thread));
	if (t == NULL) {
		snprintf(err, errlen, "tcp: out of memory");
		return NULL;
	}
	t->set = *set;
	t->port = set->port;
	{
		/* A descriptor per connection, and some to spare. */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < set->max_conns + 256u) {
			rl.rlim_cur = set->max_conns + 256u < rl.rlim_max ? set->max_conns + 256u
									  : rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	t->hard_cap = (size_t)set->max_item_size + LINE_ROOM;
	t->nthreads = set->threads;
	atomic_init(&t->mem_used, 0);
	atomic_init(&t->nconns, 0);
	for (i = 0; i < t->nthreads; i++) {
		if (thread_init(t, &t->th[i], s, conf, stats_fn, stats_arg, err, errlen) != 0) {
			t->nthreads = i + 1;
			mc_tcp_free(t);
			return NULL;
		}
	}
	for (i = 0; i < t->nthreads; i++) {
		pthread_attr_t attr;
		int rc;
		pthread_attr_init(&attr);
		if (set->cpus != NULL)
			pthread_attr_setaffinity_np(&attr, sizeof(*set->cpus), set->cpus);
		rc = pthread_create(&t->th[i].th, &attr, mc_tcp_thread_main, &t->th[i]);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			snprintf(err, errlen, "tcp: cannot start thread %u", i);
			mc_tcp_free(t);
			return NULL;
		}
		t->th[i].started = true;
		pthread_setname_np(t->th[i].th, "mcbox-tcp");
	}
	return t;
}

uint16_t
mc_tcp_port(const struct mc_tcp *t)
{
	return t->port;
}

unsigned int
mc_tcp_threads(const struct mc_tcp *t)
{
	return t->nthreads;
}

void
mc_tcp_sum(const struct mc_tcp *t, struct mc_tcp_stats *ts, struct mc_store_ctx_stats *sx,
	   struct mc_proto_stats *px)
{
	unsigned int i;
	memset(ts, 0, sizeof(*ts));
	if (t == NULL)
		return;
	ts->conn_buffer_bytes = atomic_load(&t->mem_used);
	for (i = 0; i < t->nthreads; i++) {
		const struct tcp_thread *w = &t->th[i];
#define X(n) ts->n += w->st.n;
		MC_TCP_COUNTERS(X)
#undef X
		if (sx != NULL) {
#define X(n) sx->n += w->px.sx.st.n;
			MC_STORE_CTX_COUNTERS(X)
#undef X
		}
		if (px != NULL) {
#define X(n) px->n += w->px.st.n;
			MC_PROTO_COUNTERS(X)
#undef X
		}
	}
}

/* ---- stats conns ---- */

static void
conn_stat(struct mc_out *o, int fd, const char *field, const char *v)
{
	char name[48];
	snprintf(name, sizeof(name), "%d:%s", fd, field);
	mc_proto_stat_str(o, name, v);
}

static void
conn_stat_u64(struct mc_out *o, int fd, const char *field, uint64_t v)
{
	char name[48];
	snprintf(name, sizeof(name), "%d:%s", fd, field);
	mc_proto_stat_u64(o, name, v);
}

/* memcached's form: tcp:A.B.C.D:PORT, tcp6:[ADDR]:PORT. */
static void
addr_str(char *buf, size_t len, const struct sockaddr_storage *sa)
{
	char a[INET6_ADDRSTRLEN] = "";
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "tcp6:[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "tcp:%s:%u", a, ntohs(s4->sin_port));
	}
}

/* A listener's address, as the settings have it. */
static void
listen_str(char *buf, size_t len, const struct mc_tcp *t, bool v6)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, t->set.ip6, 16);
		s6->sin6_port = htons(t->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(t->set.ip);
		s4->sin_port = htons(t->port);
	}
	addr_str(buf, len, &ss);
}

/* What memcached's conn_* state a connection is in, as far as another thread can tell: its
 * fields are read without the owner's knowledge (relaxed loads of words the owner writes), so
 * the answer is a moment's view, which is all stats conns promises. */
static const char *
conn_state(const struct tcp_thread *w, const struct conn *c, const struct mc_proto_ctx *asker)
{
	if (&w->px == asker && w->cur == c)
		return "conn_parse_cmd"; /* the connection asking */
	if (__atomic_load_n(&c->closing, __ATOMIC_RELAXED))
		return "conn_closing";
	if (__atomic_load_n(&c->out, __ATOMIC_RELAXED) != NULL)
		return "conn_mwrite";
	if (__atomic_load_n(&c->inlen, __ATOMIC_RELAXED) != 0)
		return "conn_nread";
	return "conn_waiting";
}

void
mc_tcp_conns(struct mc_tcp *t, const struct mc_proto_ctx *asker, struct mc_out *o)
{
	const uint64_t now = now_secs();
	char listen[64], listen6[64], peer[64];
	unsigned int i;
	listen_str(listen, sizeof(listen), t, false);
	listen_str(listen6, sizeof(listen6), t, true);
	for (i = 0; i < t->nthreads; i++) {
		struct tcp_thread *w = &t->th[i];
		const struct conn *c;
		if (!w->started)
			continue;
		if (w->lfd >= 0) {
			conn_stat(o, w->lfd, "addr", listen);
			conn_stat(o, w->lfd, "state", "conn_listening");
			conn_stat_u64(o, w->lfd, "secs_since_last_cmd", now - w->opened);
		}
		if (w->lfd6 >= 0) {
			conn_stat(o, w->lfd6, "addr", listen6);
			conn_stat(o, w->lfd6, "state", "conn_listening");
			conn_stat_u64(o, w->lfd6, "secs_since_last_cmd", now - w->opened);
		}
		pthread_mutex_lock(&w->conns_lock);
		for (c = w->conns; c != NULL; c = c->next) {
			const uint64_t last = __atomic_load_n(&c->last_req, __ATOMIC_RELAXED);
			addr_str(peer, sizeof(peer), &c->peer);
			conn_stat(o, c->fd, "addr", peer);
			conn_stat(o, c->fd, "listen_addr",
				  c->peer.ss_family == AF_INET6 ? listen6 : listen);
			conn_stat(o, c->fd, "state", conn_state(w, c, asker));
			conn_stat_u64(o, c->fd, "secs_since_last_cmd", now > last ? now - last : 0);
		}
		pthread_mutex_unlock(&w->conns_lock);
	}
}
