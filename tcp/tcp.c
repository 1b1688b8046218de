/* TCP service: connections and their state machine, one epoll loop per thread, and the memory
 * they hold. See tcp.h for the shape; the protocol work is mc_proto_stream's; admin.c starts
 * and stops the threads and answers stats conns. */
#define _GNU_SOURCE
#include "tcp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

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

void
mc_tcp_conn_close(struct tcp_thread *w, struct conn *c)
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
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
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
			mc_tcp_conn_close(w, c);
		} else if (s->idle_timeout != 0 && c->stuck_since == 0 && c->inlen == 0 &&
			   now - c->last_req > s->idle_timeout) {
			w->st.conn_closed_idle++;
			mc_tcp_conn_close(w, c);
		}
	}
}

void *
mc_tcp_thread_main(void *arg)
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
				mc_tcp_conn_close(w, c);
		}
		now = now_secs();
		if (now != last_sweep) {
			last_sweep = now;
			sweep(w, now);
		}
	}
}
