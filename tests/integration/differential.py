"""The differential request list: datagrams sent to stock memcached -U and to mcbox, whose reply
streams must match after normalising what may honestly differ (CAS numbers, version strings,
remaining TTL, last-access seconds, me's internal fields).

Requests may name per-server values: {cas:KEY} is the CAS that server last returned for KEY,
{badcas:KEY} that plus 1000. Cases that make memcached's UDP connection wait for bytes that
never come (a data block cut short, a swallow larger than the datagram) are not here: they
would stall the oracle; tests/unit/proto covers them for mcbox."""
import re
import struct


def b(op, key=b"", extras=b"", value=b"", cas=0, opaque=0x11223344):
    return struct.pack("!BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                       len(key) + len(extras) + len(value), opaque, cas) + extras + key + value


def ext_set(flags=0, exp=0):
    return struct.pack("!II", flags, exp)


def ext_delta(delta, initial, exp):
    return struct.pack("!QQI", delta, initial, exp)


K250 = b"k" * 250
K251 = b"k" * 251
BIG = b"B" * 1300


def requests():
    r = []
    A = r.append
    # --- ASCII storage and retrieval ---
    A(b"get nothing\r\n")
    A(b"set a 0 0 1\r\nx\r\n")
    A(b"get a\r\n")
    A(b"gets a\r\n")
    A(b"set b 42 0 5\r\nhello\r\nget a b nothing b\r\n")
    A(b"set c 4294967295 0 0\r\n\r\nget c\r\n")
    A(b"set c 4294967296 0 1\r\nz\r\nget c\r\n")
    A(b"set c -1 0 1\r\nz\r\n")
    A(b"set c abc 0 1\r\nz\r\n")
    A(b"set c 0 abc 1\r\nz\r\n")
    A(b"set c 0 0 abc\r\nz\r\n")
    A(b"set c 0 0 -1\r\nz\r\n")
    A(b"set c 0 0 1\r\nzz\r\n")
    A(b"set c 0 0 3\r\nab\r\n\r\n")
    A(b"set c 0 0 1 noreply\r\nq\r\nget c\r\n")
    A(b"set c 0 0 1 noreply\r\nqq\r\n")
    A(b"set c 0 0 1 junk\r\nj\r\nget c\r\n")
    A(b"set c 0 0\r\n")
    A(b"set\r\n")
    A(b"add a 0 0 1\r\ny\r\n")
    A(b"add newkey 0 0 1\r\ny\r\nget newkey\r\n")
    A(b"replace nokey 0 0 1\r\ny\r\n")
    A(b"replace a 3 0 2\r\nyy\r\ngets a\r\n")
    A(b"append a 0 0 2\r\n++\r\nprepend a 0 0 2\r\n--\r\nget a\r\n")
    A(b"append nokey 0 0 2\r\n++\r\n")
    A(b"prepend nokey 0 0 2\r\n++\r\n")
    A(b"cas a 0 0 1 {cas:a}\r\nC\r\ngets a\r\n")
    A(b"cas a 0 0 1 {badcas:a}\r\nD\r\n")
    A(b"cas nokey 0 0 1 5\r\nD\r\n")
    A(b"cas a 0 0 1\r\nD\r\n")
    A(b"cas a 0 0 1 abc\r\nD\r\n")
    A(b"cas a 0 0 1 {cas:a} noreply\r\nE\r\nget a\r\n")
    A(b"set " + K250 + b" 0 0 2\r\nkk\r\nget " + K250 + b"\r\n")
    A(b"set " + K251 + b" 0 0 2\r\nkk\r\n")
    A(b"get " + K251 + b"\r\n")
    A(b"set a 0 0 1\r\nx\r\nget a " + K251 + b"\r\n")
    A(b"get " + b" ".join(b"k%d" % i for i in range(40)) + b" a\r\n")
    A(b"gets " + b" ".join([b"a"] * 30) + b"\r\n")
    A(b"get  a   b  \r\n")
    A(b"get a\r\nget b")
    A(b"get a\nget b\n")
    A(b"get a\r\n\r\n")
    A(b"\r\n")
    A(b"\n")
    A(b"GET a\r\n")
    A(b"g\r\n")
    A(b"getx a\r\n")
    A(b"get\r\n")
    A(b"bogus command here\r\n")
    A(b"get a\x00b\r\n")
    A(b"get a\r\nquit\r\nget b\r\n")
    A(b"quit\r\n")
    A(b"version\r\n")
    # --- touch, gat, delete ---
    A(b"set t 0 100 1\r\nt\r\ntouch t 200\r\ntouch nokey 10\r\n")
    A(b"touch t abc\r\n")
    A(b"touch t\r\n")
    A(b"touch t 10 noreply\r\nget t\r\n")
    A(b"gat 100 t a nokey\r\n")
    A(b"gats 100 t\r\n")
    A(b"gat abc t\r\n")
    A(b"gat 100\r\n")
    A(b"delete nokey\r\n")
    A(b"set d 0 0 1\r\nd\r\ndelete d\r\nget d\r\n")
    A(b"delete d 0\r\n")
    A(b"delete d 5\r\n")
    A(b"delete d noreply\r\n")
    A(b"delete d 0 noreply\r\n")
    A(b"delete d 0 junk\r\n")
    A(b"delete " + K251 + b"\r\n")
    A(b"set d 0 -1 1\r\nd\r\nget d\r\n")
    A(b"set d 0 1 1\r\nd\r\ntouch d -1\r\nget d\r\n")
    # --- incr/decr ---
    A(b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 6\r\nget n\r\n")
    A(b"decr n 100\r\nget n\r\n")
    A(b"incr n 123456\r\nget n\r\n")
    A(b"set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\nget n\r\n")
    A(b"incr n -1\r\n")
    A(b"incr n abc\r\n")
    A(b"incr n 18446744073709551616\r\n")
    A(b"incr n 999999999999999999999999999999\r\n")
    A(b"incr nokey 1\r\n")
    A(b"incr a 1\r\n")
    A(b"set e 0 0 0\r\n\r\nincr e 1\r\n")
    A(b"set e 0 0 3\r\n-12\r\nincr e 1\r\n")
    A(b"set e 0 0 3\r\n 12\r\nincr e 1\r\nget e\r\n")
    A(b"incr\r\n")
    A(b"incr n\r\n")
    A(b"incr n 1 noreply\r\nget n\r\n")
    A(b"decr " + K251 + b" 1\r\n")
    # --- multi-datagram replies grown with append ---
    A(b"set big 0 0 1300\r\n" + BIG + b"\r\n")
    A(b"append big 0 0 1300\r\n" + BIG + b"\r\nget big\r\n")
    A(b"append big 0 0 1300\r\n" + BIG + b"\r\n")
    A(b"append big 0 0 1300\r\n" + BIG + b"\r\n")
    A(b"get big\r\n")
    A(b"get big big\r\n")
    A(b"mg big v s\r\n")
    # --- flush_all and verbosity (mcbox runs with --udp-admin on for this test) ---
    A(b"verbosity 1\r\n")
    A(b"verbosity\r\n")
    A(b"verbosity 1 noreply\r\n")
    A(b"flush_all abc\r\n")
    A(b"flush_all 0\r\nget a b\r\n")
    A(b"set a 0 0 1\r\nx\r\nflush_all noreply\r\nget a\r\n")
    A(b"set a 0 0 1\r\nx\r\nflush_all 0 noreply\r\nget a\r\n")
    A(b"set a 0 0 1\r\nx\r\nflush_all 1 2 3\r\n")
    A(b"set a 0 0 1\r\nx\r\nset b 0 0 5\r\nhello\r\n")
    # --- meta ---
    A(b"mn\r\n")
    A(b"mn x\r\n")
    A(b"mx\r\n")
    A(b"mg\r\n")
    A(b"mg a\r\n")
    A(b"mg a v\r\n")
    A(b"mg a s v f k Oopq q\r\n")
    A(b"mg nokey v\r\n")
    A(b"mg nokey v k Oq1\r\n")
    A(b"mg nokey v q\r\nmn\r\n")
    A(b"mg a q\r\n")
    A(b"mg a v v\r\n")
    A(b"mg a vv\r\n")
    A(b"mg a zz\r\n")
    A(b"mg a O" + b"o" * 33 + b"\r\n")
    A(b"mg a O" + b"o" * 32 + b" v\r\n")
    A(b"mg a T abc\r\n")
    A(b"mg a Tabc\r\n")
    A(b"mg " + K251 + b" v\r\n")
    A(b"mg a t v\r\n")
    A(b"mg a T100 t\r\n")
    A(b"mg a h v\r\nmg a h\r\n")
    A(b"mg viv N30 v t\r\nmg viv v\r\n")
    A(b"mg YQ== b v k\r\n")
    A(b"mg !!!! b v\r\n")
    A(b"mg a c v\r\n")
    A(b"mg a " + b" ".join([b"O1"] * 1) + b" k s f\r\n")
    A(b"ms m1 2\r\nhi\r\nmg m1 v f\r\n")
    A(b"ms m1 2 F7 T0 c k Oxx\r\nhi\r\n")
    A(b"ms m1 2 q\r\nhi\r\nmn\r\n")
    A(b"ms m1 2 ME\r\nhi\r\n")
    A(b"ms m2 2 ME\r\nhi\r\n")
    A(b"ms m1 2 MA\r\n++\r\nmg m1 v\r\n")
    A(b"ms m1 2 MP\r\n--\r\nmg m1 v\r\n")
    A(b"ms nokey 2 MA\r\n++\r\n")
    A(b"ms nokey 2 MR\r\n++\r\n")
    A(b"ms m1 2 MR\r\nRR\r\nmg m1 v\r\n")
    A(b"ms m1 2 MS\r\nSS\r\n")
    A(b"ms m1 2 MX\r\nXX\r\n")
    A(b"ms m1 2 MXY\r\nXX\r\n")
    A(b"ms m1 2 C{cas:m1}\r\nCC\r\n")
    A(b"ms m1 2 C{badcas:m1}\r\nCC\r\n")
    A(b"ms m1 2 C{badcas:m1} q\r\nCC\r\n")
    A(b"ms m1 abc\r\nzz\r\n")
    A(b"ms m1 -5\r\nzz\r\n")
    A(b"ms m1\r\n")
    A(b"ms m1 2 Fabc\r\nzz\r\n")
    A(b"ms m1 2\r\nzzz\r\n")
    A(b"ms m1 2 zz\r\nzz\r\n")
    A(b"ms m1 2 T-1\r\nzz\r\nmg m1 v\r\n")
    A(b"ms " + K251 + b" 2\r\nzz\r\n")
    A(b"md nokey\r\n")
    A(b"md nokey q\r\n")
    A(b"md nokey Oxx k\r\n")
    A(b"ms m3 1\r\nx\r\nmd m3\r\nmg m3 v\r\n")
    A(b"ms m3 1\r\nx\r\nmd m3 q\r\nmn\r\n")
    A(b"ms m3 1\r\nx\r\nmd m3 C{badcas:m3}\r\n")
    A(b"md m3 zz\r\n")
    A(b"md\r\n")
    A(b"ms m4 1\r\nx\r\nmd m4 I T30\r\nmg m4 v c\r\nmg m4 v\r\n")
    A(b"ma nokey\r\n")
    A(b"ma nokey q\r\nmn\r\n")
    A(b"ma nokey N0 J13 v\r\nma nokey v\r\n")
    A(b"ma nokey MD D100 v\r\n")
    A(b"ma nokey D5 t v\r\n")
    A(b"ma nokey MX\r\n")
    A(b"ma nokey Dabc\r\n")
    A(b"ma nokey Jabc N0\r\n")
    A(b"ma a\r\n")
    A(b"ma nokey q D1\r\nma nokey v q\r\n")
    A(b"ma nokey k Oab\r\n")
    A(b"me nokey\r\n")
    A(b"ms mex 3 T0\r\nabc\r\nme mex\r\n")
    A(b"ma\r\n")
    # --- binary ---
    A(b(0x00, b"zz"))
    A(b(0x0c, b"zz"))
    A(b(0x09, b"zz") + b(0x0a))
    A(b(0x01, b"bk", ext_set(5, 0), b"hello"))
    A(b(0x00, b"bk"))
    A(b(0x0c, b"bk"))
    A(b(0x02, b"bk", ext_set(5, 0), b"hello"))
    A(b(0x03, b"nokey", ext_set(5, 0), b"hello"))
    A(b(0x03, b"bk", ext_set(6, 0), b"world") + b(0x0c, b"bk"))
    A(b(0x0e, b"bk", b"", b"++") + b(0x0f, b"bk", b"", b"--") + b(0x00, b"bk"))
    A(b(0x0e, b"nokey", b"", b"++"))
    A(b(0x05, b"ctr", ext_delta(5, 100, 0)))
    A(b(0x05, b"ctr", ext_delta(5, 100, 0)))
    A(b(0x06, b"ctr", ext_delta(500, 100, 0)) + b(0x00, b"ctr"))
    A(b(0x05, b"ctr2", ext_delta(5, 100, 0xFFFFFFFF)))
    A(b(0x05, b"bk", ext_delta(5, 100, 0)))
    A(b(0x15, b"ctr", ext_delta(1, 0, 0)) + b(0x0a))
    A(b(0x04, b"ctr"))
    A(b(0x04, b"ctr"))
    A(b(0x14, b"bk"))
    A(b(0x14, b"nokey"))
    A(b(0x0b))
    A(b(0x0a))
    A(b(0x55))
    A(b(0x55, b"", b"", b""))
    A(b(0x00, b"bk", b"1234"))
    A(b(0x00, b"bk", b"1234") + b(0x0a))
    A(b(0x00, b"k" * 251) + b(0x0a))
    A(b(0x0a) + b"\x81" + b(0x0a)[1:])
    A(b(0x0a) + b(0x07) + b(0x0a))
    A(b(0x17) + b(0x0a))
    A(b(0x01, b"q1", ext_set(1, 0), b"v") + b(0x11, b"q2", ext_set(2, 0), b"w") +
      b(0x0d, b"q1") + b(0x0d, b"q2") + b(0x0d, b"q3") + b(0x0a))
    A(b(0x01, b"bk", ext_set(0, 0), b"v", cas=12345))
    A(b(0x01, b"nokey9", ext_set(0, 0), b"v", cas=12345))
    A(b(0x12, b"q1", ext_set(0, 0), b"v"))
    A(b(0x1c, b"q1", struct.pack("!I", 100)))
    A(b(0x1d, b"q1", struct.pack("!I", 100)))
    A(b(0x23, b"q1", struct.pack("!I", 100)))
    A(b(0x23, b"nn", struct.pack("!I", 100)))
    A(b(0x1e, b"nn", struct.pack("!I", 100)) + b(0x0a))
    A(b(0x1d, b"q1", b"12"))
    A(b(0x01, b"bbig", ext_set(0, 0), BIG))
    A(b(0x0e, b"bbig", b"", BIG))
    A(b(0x00, b"bbig"))
    A(struct.pack("!BBHBBHIIQ", 0x80, 0, 10, 0, 0, 0, 5, 1, 0) + b"x" * 10)
    A(b(0x08))
    A(b(0x00, b"bk"))
    A(b(0x08, b"", struct.pack("!I", 0)) + b(0x0a))
    A(b(0x18) + b(0x0a))
    A(b"get a\r\n")
    return r


CAS_VALUE = re.compile(rb"^(VALUE \S+ \d+ \d+) (\d+)\r$", re.M)
META_CAS = re.compile(rb"^((?:VA \d+|HD|EN|NF|NS|EX)(?: \S+)*?) c(\d+)", re.M)


def learn_cas(req, reply, table):
    """Remember CAS values a reply tells, per key, for {cas:KEY} in later requests."""
    for m in re.finditer(rb"^VALUE (\S+) \d+ \d+ (\d+)\r$", reply, re.M):
        table[m.group(1)] = int(m.group(2))
    lines = reply.split(b"\r\n")
    mg_keys = re.findall(rb"^(?:mg|ms|md|ma) (\S+)", req, re.M)
    heads = [l for l in lines if re.match(rb"^(VA|HD|EN|NF|NS|EX)\b", l)]
    for key, head in zip(mg_keys, heads):
        m = re.search(rb" c(\d+)", head)
        if m:
            table[key] = int(m.group(1))


def fill(req, table):
    def sub(m):
        v = table.get(m.group(2), 0)
        return b"%d" % (v + (1000 if m.group(1) == b"badcas" else 0))
    return re.sub(rb"\{(cas|badcas):([^}]+)\}", sub, req)


def normalise(reply, binary):
    """Replace what may honestly differ between two servers by stable placeholders."""
    if binary:
        out, rest = b"", reply
        while len(rest) >= 24 and rest[0] == 0x81:
            bl = struct.unpack("!I", rest[8:12])[0]
            pkt = rest[:24 + bl]
            cas = struct.unpack("!Q", pkt[16:24])[0]
            pkt = pkt[:16] + (b"CAS=====" if cas else b"\0" * 8) + pkt[24:]
            if pkt[1] == 0x0b:
                pkt = pkt[:8] + b"\0\0\0\0" + pkt[12:24] + b"VERSION"
            out += pkt
            rest = rest[24 + bl:]
        return out + rest
    reply = re.sub(rb"^(VALUE \S+ \d+ \d+) \d+\r$", rb"\1 CAS\r", reply, flags=re.M)
    reply = re.sub(rb"(?<= )c\d+(?=[ \r])", b"cCAS", reply)
    reply = re.sub(rb"(?<= )t\d+(?=[ \r])", b"tTTL", reply)
    reply = re.sub(rb"(?<= )l\d+(?=[ \r])", b"lLA", reply)
    reply = re.sub(rb"^VERSION .*\r$", b"VERSION X\r", reply, flags=re.M)
    reply = re.sub(rb"^ME (\S+) .*\r$", rb"ME \1 ...\r", reply, flags=re.M)
    return reply


def compare(exchange_oracle, exchange_mcbox, what):
    """Send every request of the list to both servers (exchange_*(request) -> reply bytes),
    print the tally and the differences, and fail on any."""
    reqs = requests()
    cas_a, cas_m = {}, {}
    same, diffs = 0, []
    for i, req in enumerate(reqs):
        ra = exchange_oracle(fill(req, cas_a))
        rm = exchange_mcbox(fill(req, cas_m))
        learn_cas(req, ra, cas_a)
        learn_cas(req, rm, cas_m)
        binary = req[:1] == b"\x80"
        if normalise(ra, binary) == normalise(rm, binary):
            same += 1
        else:
            diffs.append((i, req[:120], ra[:300], rm[:300]))
    print("# differential%s: %d of %d requests answered identically" % (what, same, len(reqs)))
    for i, req, ra, rm in diffs:
        print("#  [%d] %r\n#     memcached: %r\n#     mcbox:     %r" % (i, req, ra, rm))
    assert not diffs, "%d replies differ" % len(diffs)
