/* TCP service: listeners, connections and their state machine, one epoll loop per thread. See
 * tcp.h for the shape; the protocol work is mc_proto_stream's. */
#define _GNU_SOURCE
#include "tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RBUF (64 * 1024)      /* a thread's read buffer: one read's worth */
#define OBUF (64 * 1024)      /* a thread's reply text before it spills */
#define SOFT (64 * 1024)      /* replies gathered before they are written */
#define FREE_BYTES (16 * 1024) /* what a connection may hold uncharged */
#define LINE_ROOM 4096        /* a request line, beside the largest value */
#define READS_PER_EVENT 16    /* fairness: then the next connection */
#define MAX_EVENTS 64
#define TOO_MANY "ERROR Too many open connections\r\n"

/* What a connection has not yet written: pieces of its own copy of the text and values in item
 * memory under a reference. */
struct seg {
	const uint8_t *p;
	size_t len;
	uint8_t *ref; /* the store reference to put once written, or NULL */
};
struct pending {
	size_t nseg, i;
	uint8_t *text;
	size_t text_len;
	struct seg seg[];
};

struct conn {
	int fd;
	uint8_t proto;      /* enum mc_stream_proto */
	bool closing;       /* close once the replies are written */
	uint8_t *in;        /* an unfinished request (NULL: none) */
	size_t inlen, incap;
	uint64_t swallow;   /* bytes of a refused value still to discard */
	struct mc_dump dump; /* an lru_crawler metadump under way: it goes on as replies drain */
	struct pending *out; /* replies waiting for the socket (NULL: none) */
	size_t held;        /* bytes of in and out */
	size_t charged;     /* of them, charged to the shared budget */
	uint64_t last_req;  /* when a request last completed (or the connection opened) */
	uint64_t stuck_since; /* when a partial request or a blocked reply began, 0 = neither */
	struct sockaddr_storage peer; /* for stats conns */
	struct conn *prev, *next;
};

struct tcp_thread {
	struct mc_tcp *t;
	pthread_t th;
	bool started;
	int ep, lfd, lfd6, stopfd; /* listeners: IPv4, IPv6 (-1: none) */
	struct mc_proto_ctx px;
	uint8_t *rbuf, *obuf, *spill;
	size_t spill_cap;
	struct conn *conns;
	/* Held while conns gains or loses a member, and by stats conns (mc_tcp_conns) from any
	 * thread while it walks the list; the owner walks its own list without it. */
	pthread_mutex_t conns_lock;
	struct conn *cur;     /* the connection process() runs, for stats conns */
	uint64_t opened;      /* when the listener opened, for its secs_since_last_cmd */
	bool accept_paused;   /* out of descriptors: accepting again at the next sweep */
	struct mc_tcp_stats st;
};

struct mc_tcp {
	struct mc_tcp_settings set;
	uint16_t port;
	size_t hard_cap;            /* the most one request may be buffered */
	atomic_size_t mem_used;     /* charged bytes, all connections */
	atomic_uint_fast32_t nconns;
	bool stopped;
	unsigned int nthreads;
	struct tcp_thread th[];
};

static uint64_t
now_secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* ---- memory: what a connection holds beyond FREE_BYTES is charged to the shared budget ---- */

static bool
hold(struct tcp_thread *w, struct conn *c, size_t held)
{
	struct mc_tcp *t = w->t;
	size_t want = held > FREE_BYTES ? held - FREE_BYTES : 0;
	if (want > c->charged) {
		size_t add = want - c->charged;
		size_t used = atomic_fetch_add(&t->mem_used, add);
		if (used + add > t->set.conn_memory) {
			atomic_fetch_sub(&t->mem_used, add);
			return false;
		}
	} else {
		atomic_fetch_sub(&t->mem_used, c->charged - want);
	}
	c->charged = want;
	c->held = held;
	return true;
}

/* What one request may be buffered to on this connection now. */
static size_t
request_cap(struct tcp_thread *w, const struct conn *c)
{
	struct mc_tcp *t = w->t;
	size_t used = atomic_load(&t->mem_used), left;
	left = used < t->set.conn_memory ? t->set.conn_memory - used : 0;
	left += FREE_BYTES + c->charged - (c->held - c->incap);
	return left < t->hard_cap ? left : t->hard_cap;
}

static bool
in_reserve(struct tcp_thread *w, struct conn *c, size_t cap)
{
	uint8_t *p;
	if (cap <= c->incap)
		return true;
	if (!hold(w, c, c->held - c->incap + cap))
		return false;
	p = realloc(c->in, cap);
	if (p == NULL) {
		hold(w, c, c->held + c->incap - cap);
		return false;
	}
	c->in = p;
	c->incap = cap;
	return true;
}

static void
in_free(struct tcp_thread *w, struct conn *c)
{
	free(c->in);
	c->in = NULL;
	hold(w, c, c->held - c->incap);
	c->inlen = c->incap = 0;
}

static void
out_free(struct tcp_thread *w, struct conn *c)
{
	struct pending *p = c->out;
	size_t i;
	if (p == NULL)
		return;
	for (i = p->i; i < p->nseg; i++)
		if (p->seg[i].ref != NULL)
			mc_store_ref_put(p->seg[i].ref);
	hold(w, c, c->held - p->text_len);
	free(p->text);
	free(p);
	c->out = NULL;
}

/* ---- connections ---- */

static void
conn_close(struct tcp_thread *w, struct conn *c)
{
	out_free(w, c);
	in_free(w, c);
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	pthread_mutex_lock(&w->conns_lock);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->conns_lock);
	atomic_fetch_sub(&w->t->nconns, 1);
	w->st.curr_connections--;
	free(c);
}

static void
watch(struct tcp_thread *w, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what the pending replies hold. Returns -1 on a dead socket, else 0 (done or blocked). */
static int
out_flush(struct tcp_thread *w, struct conn *c)
{
	struct pending *p = c->out;
	while (p->i < p->nseg) {
		struct iovec iov[64];
		size_t n = 0, j;
		ssize_t r;
		for (j = p->i; j < p->nseg && n < 64; j++, n++) {
			iov[n].iov_base = (void *)(uintptr_t)p->seg[j].p;
			iov[n].iov_len = p->seg[j].len;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
		/* sendmsg, not writev: no SIGPIPE from a peer that has gone. */
		r = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		w->st.bytes_written += (uint64_t)r;
		while (r > 0) {
			struct seg *s = &p->seg[p->i];
			size_t k = (size_t)r < s->len ? (size_t)r : s->len;
			s->p += k;
			s->len -= k;
			r -= (ssize_t)k;
			if (s->len == 0) {
				if (s->ref != NULL)
					mc_store_ref_put(s->ref);
				p->i++;
			}
		}
	}
	return 0;
}

/* Send the replies in o: written at once when the socket takes them, else kept (text copied,
 * references kept) until it does. Returns -1 when the connection must close. */
static int
send_out(struct tcp_thread *w, struct conn *c, struct mc_out *o)
{
	struct pending *p;
	size_t prev = 0, i, nseg = 0;
	uint8_t *text = NULL;
	if (o->len == 0 && o->nrefs == 0)
		return 0;
	p = malloc(sizeof(*p) + sizeof(struct seg) * (2u * o->nrefs + 1));
	if (p == NULL)
		goto fail;
	for (i = 0; i < o->nrefs; i++) {
		const struct mc_out_ref *r = &o->refs[i];
		if (r->at > prev)
			p->seg[nseg++] = (struct seg){o->buf + prev, r->at - prev, NULL};
		p->seg[nseg++] = (struct seg){r->p, r->len, r->ref};
		prev = r->at;
	}
	if (o->len > prev)
		p->seg[nseg++] = (struct seg){o->buf + prev, o->len - prev, NULL};
	o->nrefs = 0; /* the references are the pending segments' now */
	p->nseg = nseg;
	p->i = 0;
	p->text = NULL;
	p->text_len = 0;
	c->out = p;
	if (out_flush(w, c) != 0)
		return -1;
	if (p->i == p->nseg) {
		free(p);
		c->out = NULL;
		return 0;
	}
	/* The socket is full: keep a copy of the text still to go; stop reading until it is
	 * written (memcached's conn_write). */
	for (i = p->i; i < p->nseg; i++)
		if (p->seg[i].ref == NULL)
			p->text_len += p->seg[i].len;
	if (p->text_len > 0) {
		size_t off = 0;
		if (!hold(w, c, c->held + p->text_len)) {
			p->text_len = 0;
			w->st.conn_closed_memory++;
			return -1;
		}
		text = malloc(p->text_len);
		if (text == NULL)
			return -1;
		for (i = p->i; i < p->nseg; i++) {
			if (p->seg[i].ref != NULL)
				continue;
			memcpy(text + off, p->seg[i].p, p->seg[i].len);
			p->seg[i].p = text + off;
			off += p->seg[i].len;
		}
		p->text = text;
	}
	w->st.write_blocked++;
	c->stuck_since = now_secs();
	watch(w, c, EPOLLOUT);
	return 0;
fail:
	mc_out_rewind(o, 0);
	return -1;
}

/* Run what buf[0..len) holds (buf is the thread's read buffer or c->in); keep what is left of
 * an unfinished request in c->in. Returns -1 when the connection must close now. */
static int
process(struct tcp_thread *w, struct conn *c, uint8_t *buf, size_t len)
{
	struct mc_proto_ctx *cx = &w->px;
	size_t pos = 0, need = 0;
	bool ran = false;
	cx->dump = &c->dump;
	w->cur = c;
	while ((pos < len || c->dump.active) && c->out == NULL) {
		struct mc_out o;
		enum mc_proto_ev ev;
		size_t used;
		mc_out_init(&o, w->obuf, OBUF, w->spill, w->spill_cap, (size_t)1 << 40);
		o.zc_min = w->t->set.zc_min;
		cx->stream_cap = request_cap(w, c);
		used = mc_proto_stream(cx, buf + pos, len - pos, &o, SOFT, &c->proto, &ev);
		pos += used;
		ran |= used > 0;
		if (cx->swallow > 0) {
			size_t k = cx->swallow < len - pos ? (size_t)cx->swallow : len - pos;
			pos += k;
			c->swallow = cx->swallow - k;
			w->st.bytes_swallowed += k;
		}
		if (send_out(w, c, &o) != 0)
			return -1;
		if (ev == MC_EV_CLOSE) {
			c->closing = true;
			break;
		}
		if (ev == MC_EV_MORE) {
			need = cx->need;
			break;
		}
		if (used == 0 && cx->swallow == 0 && !c->dump.active)
			break;
	}
	if (ran) {
		c->last_req = now_secs();
		/* A request completed: a partial one kept now is timed from now (the read
		 * timeout is for one request's bytes, not for a busy pipelining client). */
		if (c->out == NULL)
			c->stuck_since = 0;
	}
	if (c->closing) {
		if (buf == c->in)
			c->inlen = 0;
		return c->out == NULL ? -1 : 0;
	}
	/* Keep the rest: an unfinished request, or requests waiting for the replies to go. */
	if (pos < len) {
		size_t rest = len - pos;
		if (buf == c->in) {
			memmove(c->in, c->in + pos, rest);
		} else {
			/* Room for what came and one more read, up to what the request needs:
			 * memory is taken as bytes arrive, not when a length is declared, so
			 * a client cannot reserve the budget with a few bytes. */
			size_t cap = rest + RBUF < need ? rest + RBUF : need;
			if (cap < rest)
				cap = rest;
			if (cap < 2048)
				cap = 2048;
			if (!in_reserve(w, c, cap)) {
				w->st.conn_closed_memory++;
				return -1;
			}
			memcpy(c->in, buf + pos, rest);
		}
		c->inlen = rest;
		if (c->out == NULL && c->stuck_since == 0)
			c->stuck_since = now_secs();
	} else if (c->in != NULL) {
		in_free(w, c);
	}
	if (c->inlen == 0 && c->out == NULL)
		c->stuck_since = 0;
	return 0;
}

/* Readable: read and run, at most READS_PER_EVENT reads. Returns -1 to close. */
static int
on_read(struct tcp_thread *w, struct conn *c)
{
	int reads;
	for (reads = 0; reads < READS_PER_EVENT && c->out == NULL && !c->closing; reads++) {
		uint8_t *dst;
		size_t room;
		ssize_t n;
		if (c->inlen > 0) {
			/* Grow the unfinished request's buffer, doubling: it holds at most
			 * twice what arrived. */
			size_t want = c->inlen + (c->inlen > RBUF ? c->inlen : RBUF);
			if (want > w->t->hard_cap)
				want = w->t->hard_cap;
			if (c->inlen >= want || !in_reserve(w, c, want)) {
				if (c->incap == c->inlen) {
					/* A request longer than anything memcached would take. */
					w->st.conn_closed_memory++;
					return -1;
				}
			}
			dst = c->in + c->inlen;
			room = c->incap - c->inlen;
		} else {
			dst = w->rbuf;
			room = RBUF;
		}
		n = read(c->fd, dst, room);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			w->st.conn_closed_error++;
			return -1;
		}
		w->st.bytes_read += (uint64_t)n;
		if (c->swallow > 0) {
			size_t k = c->swallow < (uint64_t)n ? (size_t)c->swallow : (size_t)n;
			c->swallow -= k;
			w->st.bytes_swallowed += k;
			memmove(dst, dst + k, (size_t)n - k);
			n -= (ssize_t)k;
			if (n == 0)
				continue;
		}
		if (dst == w->rbuf) {
			if (process(w, c, w->rbuf, (size_t)n) != 0)
				return -1;
		} else {
			c->inlen += (size_t)n;
			if (process(w, c, c->in, c->inlen) != 0)
				return -1;
		}
	}
	return 0;
}

/* Writable: go on writing; once done, read again and run what waited. Returns -1 to close. */
static int
on_write(struct tcp_thread *w, struct conn *c)
{
	if (c->out == NULL) {
		watch(w, c, EPOLLIN | EPOLLRDHUP);
		return 0;
	}
	if (out_flush(w, c) != 0)
		return -1;
	if (c->out->i < c->out->nseg)
		return 0;
	out_free(w, c);
	c->stuck_since = 0;
	if (c->closing)
		return -1;
	watch(w, c, EPOLLIN | EPOLLRDHUP);
	if (c->inlen > 0 && process(w, c, c->in, c->inlen) != 0)
		return -1;
	if (c->inlen == 0 && c->dump.active) {
		/* A metadump goes on now that its last piece has gone. */
		static uint8_t none[1];
		if (process(w, c, none, 0) != 0)
			return -1;
	}
	return 0;
}

/* The epoll tag of listener lfd (the thread's own address) or lfd6 (its lfd6 field's). */
static void *
listener_tag(struct tcp_thread *w, bool v6)
{
	return v6 ? (void *)&w->lfd6 : (void *)w;
}

static void
on_accept(struct tcp_thread *w, bool v6)
{
	struct mc_tcp *t = w->t;
	const int lfd = v6 ? w->lfd6 : w->lfd;
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		struct epoll_event ev;
		struct conn *c;
		int one = 1;
		int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The listeners would stay readable: stop watching them for a
				 * while, as memcached's listen_disabled. */
				struct epoll_event off = {.events = 0, .data.ptr = w};
				if (w->lfd >= 0)
					epoll_ctl(w->ep, EPOLL_CTL_MOD, w->lfd, &off);
				off.data.ptr = listener_tag(w, true);
				if (w->lfd6 >= 0)
					epoll_ctl(w->ep, EPOLL_CTL_MOD, w->lfd6, &off);
				w->accept_paused = true;
				w->st.listen_disabled_num++;
			}
			return; /* EAGAIN, or an error the next accept may not have */
		}
		if ((sa.ss_family == AF_INET && t->set.allowed != NULL &&
		     !t->set.allowed(t->set.allowed_arg,
				     ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr))) ||
		    (sa.ss_family == AF_INET6 && t->set.allowed6 != NULL &&
		     !t->set.allowed6(t->set.allowed_arg,
				      ((struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr))) {
			w->st.conn_not_allowed++;
			close(fd);
			continue;
		}
		if (atomic_fetch_add(&t->nconns, 1) >= t->set.max_conns) {
			atomic_fetch_sub(&t->nconns, 1);
			w->st.rejected_connections++;
			if (send(fd, TOO_MANY, sizeof(TOO_MANY) - 1, MSG_NOSIGNAL) < 0) {
				/* nothing more to say to it */
			}
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			atomic_fetch_sub(&t->nconns, 1);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->last_req = now_secs();
		c->peer = sa;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			atomic_fetch_sub(&t->nconns, 1);
			close(fd);
			free(c);
			continue;
		}
		pthread_mutex_lock(&w->conns_lock);
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		pthread_mutex_unlock(&w->conns_lock);
		w->st.curr_connections++;
		w->st.total_connections++;
	}
}

/* Once a second: close connections idle too long, and those whose partial request or blocked
 * reply has lasted past the read timeout (a slow drip, or a client that does not read). */
static void
sweep(struct tcp_thread *w, uint64_t now)
{
	const struct mc_tcp_settings *s = &w->t->set;
	struct conn *c = w->conns, *next;
	if (w->accept_paused) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
		if (w->lfd >= 0)
			epoll_ctl(w->ep, EPOLL_CTL_MOD, w->lfd, &ev);
		ev.data.ptr = listener_tag(w, true);
		if (w->lfd6 >= 0)
			epoll_ctl(w->ep, EPOLL_CTL_MOD, w->lfd6, &ev);
		w->accept_paused = false;
	}
	/* Times are whole seconds: a request that began at second S has lasted at least N seconds
	 * only when now > S + N (at S + N it may have lasted a millisecond past a boundary). */
	for (; c != NULL; c = next) {
		next = c->next;
		if (s->read_timeout != 0 && c->stuck_since != 0 &&
		    now - c->stuck_since > s->read_timeout) {
			w->st.conn_closed_slow++;
			conn_close(w, c);
		} else if (s->idle_timeout != 0 && c->stuck_since == 0 && c->inlen == 0 &&
			   now - c->last_req > s->idle_timeout) {
			w->st.conn_closed_idle++;
			conn_close(w, c);
		}
	}
}

static void *
thread_main(void *arg)
{
	struct tcp_thread *w = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t last_sweep = now_secs();
	for (;;) {
		int n = epoll_wait(w->ep, evs, MAX_EVENTS, 1000), i;
		uint64_t now;
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int rc = 0;
			if (c == NULL)
				return NULL; /* the stop eventfd */
			if (c == (struct conn *)(uintptr_t)w ||
			    c == (struct conn *)listener_tag(w, true)) {
				on_accept(w, c != (struct conn *)(uintptr_t)w);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				rc = on_write(w, c);
			else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				rc = on_read(w, c);
			if (rc != 0)
				conn_close(w, c);
		}
		now = now_secs();
		if (now != last_sweep) {
			last_sweep = now;
			sweep(w, now);
		}
	}
}

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
			snprintf(name, sizeof(name), "%u.%u.%u.%u", s->ip >> 24, (s->ip >> 16) & 0xff,
				 (s->ip >> 8) & 0xff, s->ip & 0xff);
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
		conn_close(w, w->conns);
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
		rc = pthread_create(&t->th[i].th, &attr, thread_main, &t->th[i]);
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
