"""Introspection over TCP against stock memcached 1.6.18: me, lru_crawler metadump (all, by
class, hash), lru_crawler's answers and errors, stats families; a large metadump read slowly
while UDP gets go on; and the UDP gates (metadump never, lru_crawler and stats reset only as
admin)."""
# lab: MCBOX_ARGS=
import re
import socket
import time

import labtest as L
from test_tcp import MemcachedTcp, tcp_exchange

MCBOX = (L.SERVER_IP, L.MC_PORT)

# Fields that depend on when a server did a thing, not on what it did; and the CAS, which
# memcached also spends on flush_all (mcbox's is checked against its own gets).
LA = re.compile(rb" la=\d+| cas=\d+")


def dump(addr, req=b"lru_crawler metadump all\r\n"):
    """One metadump on a fresh connection: everything up to and including the END line (or
    the one-line answer of a refusal). memcached's crawler may still be finishing the last
    dump for a moment (BUSY): asked again then."""
    for _ in range(50):
        out = dump_once(addr, req)
        if not out.startswith(b"BUSY"):
            return out
        time.sleep(0.1)
    return out


def dump_once(addr, req, chunk=65536):
    s = socket.create_connection(addr, timeout=10)
    try:
        s.sendall(req)
        out = b""
        while True:
            if out.endswith(b"END\r\n") or (out.endswith(b"\r\n") and not out.startswith(b"key=")
                                             and b"\n" not in out[:-1]):
                return out
            data = s.recv(chunk)
            if not data:
                return out
            out += data
    finally:
        s.close()


def lines_by_key(reply):
    """metadump lines as {key: {field: value}}; asserts memcached's shape on the way."""
    assert reply.endswith(b"END\r\n"), reply[-200:]
    out = {}
    for line in reply[:-5].split(b"\n"):
        if not line:
            continue
        fields = dict(f.split(b"=", 1) for f in line.split(b" "))
        assert list(fields) == [b"key", b"exp", b"la", b"cas", b"fetch", b"cls", b"size"], line
        assert fields[b"key"] not in out, line
        out[fields[b"key"]] = fields
    return out


SETUP = (b"set plain 0 0 5\r\nhello\r\n"
         b"set flagged 7 0 1\r\nx\r\n"
         b"set ttl 0 1000 3\r\nabc\r\n"
         b"set a%b/c 0 0 2\r\nhi\r\n"
         b"ms YmluAGtleQ== 2 b\r\nhi\r\n"
         b"get plain flagged\r\n")


def with_both(fn):
    mc = MemcachedTcp()
    try:
        for addr in (("127.0.0.1", mc.port), MCBOX):
            tcp_exchange(addr[0], addr[1], b"flush_all\r\n")
        fn(("127.0.0.1", mc.port))
    finally:
        mc.stop()


def test_me_as_memcached():
    def run(oracle):
        reqs = [b"me plain\r\n", b"me flagged\r\n", b"me a%b/c\r\n", b"me YmluAGtleQ== b\r\n",
                b"me nothere\r\n", b"me\r\n", b"me plain b\r\n", b"me " + b"k" * 251 + b"\r\n"]
        for addr in (oracle, MCBOX):
            assert tcp_exchange(addr[0], addr[1], SETUP).startswith(b"STORED\r\n" * 4)
        for req in reqs:
            want = LA.sub(b" X", tcp_exchange(oracle[0], oracle[1], req))
            got = LA.sub(b" X", tcp_exchange(L.SERVER_IP, L.MC_PORT, req))
            assert got == want, (req, want, got)
        line = tcp_exchange(L.SERVER_IP, L.MC_PORT, b"gets plain\r\n").split(b"\r\n")[0]
        me = tcp_exchange(L.SERVER_IP, L.MC_PORT, b"me plain\r\n")
        assert b" cas=%s " % line.split(b" ")[4] in me, (line, me)
        # exp is the TTL left, negated (1.6.18): within a second of each other.
        want = tcp_exchange(oracle[0], oracle[1], b"me ttl\r\n")
        got = tcp_exchange(L.SERVER_IP, L.MC_PORT, b"me ttl\r\n")
        we, ge = (int(re.search(rb" exp=(-?\d+)", r).group(1)) for r in (want, got))
        assert -1000 <= ge <= -998 and abs(we - ge) <= 1, (want, got)
        assert re.sub(rb" (exp|la|cas)=-?\d+", b"", want) == re.sub(rb" (exp|la|cas)=-?\d+", b"", got)
    with_both(run)


def test_metadump_as_memcached():
    def run(oracle):
        for addr in (oracle, MCBOX):
            tcp_exchange(addr[0], addr[1], SETUP)
        for req in (b"lru_crawler metadump all\r\n", b"lru_crawler metadump hash\r\n",
                    b"lru_crawler metadump 1\r\n", b"lru_crawler metadump 1,2\r\n"):
            t0 = time.time()
            want, got = lines_by_key(dump(oracle, req)), lines_by_key(dump(MCBOX, req))
            assert sorted(want) == sorted(got), (req, sorted(want), sorted(got))
            assert b"a%25b%2Fc" in got and b"bin%00key" in got, sorted(got)
            for key, w in want.items():
                g = got[key]
                for f in (b"fetch", b"cls", b"size"):
                    assert g[f] == w[f], (req, key, f, w, g)
                if w[b"exp"] == b"-1":
                    assert g[b"exp"] == b"-1", (key, w, g)
                else:
                    assert abs(int(g[b"exp"]) - int(w[b"exp"])) <= 2, (key, w, g)
                # mcbox keeps no last-access time: la is the time of the dump.
                assert abs(int(g[b"la"]) - t0) <= 3, (key, g)
            # cas: the one gets reports.
            for key in (b"plain", b"flagged"):
                line = tcp_exchange(L.SERVER_IP, L.MC_PORT, b"gets " + key + b"\r\n").split(b"\r\n")[0]
                assert got[key][b"cas"] == line.split(b" ")[4], (key, got[key], line)
        assert dump(oracle, b"lru_crawler metadump 2\r\n") == dump(MCBOX, b"lru_crawler metadump 2\r\n")
    with_both(run)


def test_lru_crawler_answers_as_memcached():
    reqs = [b"lru_crawler\r\n", b"lru_crawler metadump\r\n", b"lru_crawler foo\r\n",
            b"lru_crawler foo bar\r\n", b"lru_crawler metadump all x\r\n",
            b"lru_crawler metadump 0\r\n", b"lru_crawler metadump 64\r\n",
            b"lru_crawler metadump foo\r\n", b"lru_crawler metadump 1,x\r\n",
            b"lru_crawler metadump -1\r\n", b"lru_crawler metadump ,\r\n",
            b"lru_crawler crawl 99\r\n", b"lru_crawler crawl ,\r\n",
            b"lru_crawler tocrawl 5\r\n", b"lru_crawler tocrawl x\r\n",
            b"lru_crawler sleep 2000000\r\n", b"lru_crawler sleep 100\r\n",
            b"lru_crawler enable\r\n",
            b"stats sizes\r\n", b"stats detail\r\n", b"stats detail x\r\n",
            b"stats detail off\r\n", b"stats detail dump\r\n", b"stats nosuch\r\n"]

    def run(oracle):
        try:
            for req in reqs:
                want = dump(oracle, req)
                got = dump(MCBOX, req)
                assert got == want, (req, want, got)
        finally:
            dump(MCBOX, b"lru_crawler enable\r\n")  # whatever happened, for the next tests
    with_both(run)


def test_lru_crawler_disable():
    """disable and enable, as unit-tested against memcached's words: the oracle itself is no
    use here, as memcached 1.6.18's worker blocks after "lru_crawler disable" when it runs
    one worker thread (the next command on it never answers)."""
    try:
        assert dump(MCBOX, b"lru_crawler disable\r\n") == b"OK\r\n"
        assert dump(MCBOX, b"lru_crawler metadump all\r\n") == b"CLIENT_ERROR lru crawler disabled\r\n"
        assert dump(MCBOX, b"lru_crawler crawl 1\r\n") == b"CLIENT_ERROR lru crawler disabled\r\n"
        assert b"STAT lru_crawler no\r\n" in tcp_exchange(L.SERVER_IP, L.MC_PORT, b"stats settings\r\n")
    finally:
        assert dump(MCBOX, b"lru_crawler enable\r\n") == b"OK\r\n"
    assert dump(MCBOX, b"lru_crawler enable\r\n") == b"ERROR failed to start lru crawler thread\r\n"
    assert dump(MCBOX, b"lru_crawler metadump all\r\n").endswith(b"END\r\n")


def test_stats_families():
    def run(oracle):
        for addr in (oracle, MCBOX):
            tcp_exchange(addr[0], addr[1], SETUP)
        # The names mcbox shares with memcached carry the same values where both know them.
        want = stats(oracle, b"settings")
        got = stats(MCBOX, b"settings")
        for name in (b"maxconns", b"evictions", b"chunk_size", b"detail_enabled", b"cas_enabled",
                     b"item_size_max", b"lru_crawler", b"dump_enabled", b"flush_enabled",
                     b"growth_factor", b"track_sizes", b"idle_timeout", b"verbosity"):
            assert got.get(name) == want.get(name), (name, want.get(name), got.get(name))
        assert got[b"tcpport"] == b"11211" and got[b"udpport"] == b"11211", got
        items = stats(MCBOX, b"items")
        assert int(items[b"items:1:number"]) >= 5 and b"items:1:evicted" in items, items
        slabs = stats(MCBOX, b"slabs")
        assert int(slabs[b"1:used_chunks"]) >= 5 and int(slabs[b"active_slabs"]) >= 1, slabs
        # reset: RESET without END, counters from zero, gauges kept.
        before = stats(MCBOX, b"")
        assert int(before[b"get_hits"]) >= 2 and int(before[b"curr_items"]) >= 5, before
        assert tcp_exchange(L.SERVER_IP, L.MC_PORT, b"stats reset\r\n") == b"RESET\r\n"
        after = stats(MCBOX, b"")
        assert int(after[b"get_hits"]) == 0 and int(after[b"total_items"]) == 0, after
        assert after[b"curr_items"] == before[b"curr_items"], (before, after)
        assert int(after[b"curr_connections"]) >= 1, after
        assert tcp_exchange(oracle[0], oracle[1], b"stats reset\r\n") == b"RESET\r\n"
        # conns: memcached's four fields a connection, listeners as conn_listening.
        for addr, me in ((oracle, b"127.0.0.1"), (MCBOX, L.CLIENT_IP.encode())):
            conns = tcp_exchange(addr[0], addr[1], b"stats conns\r\n")
            assert b":state conn_listening\r\n" in conns and b":state conn_parse_cmd\r\n" in conns, conns
            assert re.search(rb"STAT \d+:addr tcp:" + re.escape(me) + rb":\d+\r\nSTAT \d+:listen_addr tcp:", conns), conns
    with_both(run)


def stats(addr, group):
    req = b"stats " + group + b"\r\n" if group else b"stats\r\n"
    reply = tcp_exchange(addr[0], addr[1], req)
    assert reply.endswith(b"END\r\n"), reply
    return dict(line.split(b" ", 2)[1:] for line in reply[:-5].split(b"\r\n") if line)


def test_large_dump_read_slowly_while_udp_serves():
    """20,000 items dumped to a reader with a small window that reads in pieces: every key
    once, END once at the end, and UDP gets answered all the while (the dump takes no lock and
    waits on the socket, not on the store)."""
    n = 20000
    reqs = b"".join(b"set ops:%d 0 0 4\r\nvalu\r\n" % i for i in range(n))
    assert tcp_exchange(L.SERVER_IP, L.MC_PORT, reqs) == b"STORED\r\n" * n
    u = L.UdpClient()
    blocked = L.telemetry()["write_blocked"]
    s = socket.create_connection(MCBOX, timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"lru_crawler metadump all\r\nmn\r\n")
    out = b""
    worst = 0.0
    gets = 0
    while not out.endswith(b"END\r\nMN\r\n"):
        data = s.recv(8192)
        assert data, out[-200:]
        out += data
        if gets < 200 and len(out) > gets * 4000:
            t0 = time.time()
            assert u.request(b"get ops:%d\r\n" % gets, idle=0) == b"VALUE ops:%d 0 4\r\nvalu\r\nEND\r\n" % gets
            worst = max(worst, time.time() - t0)
            gets += 1
            time.sleep(0.001)
    s.close()
    got = lines_by_key(out[:-4])
    assert sum(1 for k in got if k.startswith(b"ops%3A")) == n, len(got)
    assert out.count(b"END\r\n") == 1
    assert gets >= 50 and worst < 0.5, (gets, worst)
    # The reader was slower than the dump: it waited on the socket and went on as it drained.
    assert L.telemetry()["write_blocked"] > blocked


def test_udp_gates():
    """Over UDP (udp_admin off by default): lru_crawler and stats reset are refused like stats;
    me, a read, is answered as over TCP."""
    u = L.UdpClient()
    assert tcp_exchange(L.SERVER_IP, L.MC_PORT, b"set udpme 0 0 1\r\nx\r\n") == b"STORED\r\n"
    assert u.request(b"lru_crawler metadump all\r\n") == b"CLIENT_ERROR lru_crawler not allowed\r\n"
    assert u.request(b"lru_crawler disable\r\n") == b"CLIENT_ERROR lru_crawler not allowed\r\n"
    assert u.request(b"stats reset\r\n") == b"CLIENT_ERROR stats not allowed\r\n"
    assert u.request(b"me udpme\r\n") == tcp_exchange(L.SERVER_IP, L.MC_PORT, b"me udpme\r\n")
    # The refusals were counted, and the crawler is still on.
    assert L.telemetry()["admin_refused"] >= 3
    assert dump(MCBOX, b"lru_crawler metadump 99\r\n") == b"BADCLASS invalid class id\r\n"


if __name__ == "__main__":
    raise SystemExit(L.run(L.collect(globals())))
