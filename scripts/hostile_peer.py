#!/usr/bin/env python3
"""hostile_peer.py: measure how an occams-rpc server copes with hostile clients.

Each subcommand starts its own server (--server, default build/release/examples/01_echo_server,
listening on 127.0.0.1:0 or, with --unix, on a Unix-domain socket in a temporary directory),
plays one hostile scenario against it, prints a short table of figures and stops the server
(SIGTERM by PID, then SIGKILL by PID if it has not exited after --kill-after seconds). Only the
server it started is ever signalled, and only 127.0.0.1 or a Unix socket is ever connected to.

Scenarios (issue 10, items 1-7; every loop is bounded in time and count):
  emfile         server under RLIMIT_NOFILE 64, 100 clients held open: accept-loop CPU, log bytes
  mass-close     N idle connections closed at once: CPU, drain time, latency of a fresh ping;
                 --sigterm: SIGTERM with N idle connections open, seconds until the server exits
  claim          300 headers that each claim a ~60 MiB body and send nothing more: VmSize, RSS
  stall          64 connections each send 60 MiB - 1 byte of one request and stall: RSS peak,
                 when the server closes them, whether a fresh small request is still served
  big-then-idle  20 connections each send one 60 MiB request (echoed), then idle: RSS after
  trickle        one request header, then 1 body byte every --interval s: is it ever closed?
  alloc-fail     server under RLIMIT_AS, headers claiming 60 MiB bodies until reserving fails:
                 are the failing connections closed, and is the reason logged?
  all            every scenario above, one after another, with their defaults

Figures: server CPU seconds (utime+stime from /proc/PID/stat), RSS / VmSize / peaks from
/proc/PID/status, bytes the server wrote to stderr (its log), wall-clock seconds.
Python 3 standard library only. Linux only (/proc, prlimit).
"""

import argparse
import errno
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

MAGIC = 0x4D25
REQ_HDR = struct.Struct("<HBBIQQII")  # magic ver format action seq client_id msg_len blob_len
RESP_HDR = struct.Struct("<HBBIQi")  # magic ver flag msg_len seq blob_len
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_SERVER = "build/release/examples/01_echo_server"
ECHO_ACTION = 1


def request_header(seq, action=ECHO_ACTION, msg_len=0, blob_len=0):
    return REQ_HDR.pack(MAGIC, 1, 0, action, seq, 0, msg_len, blob_len)


def ping_frame(seq):
    return request_header(seq, action=0)


def fmt_bytes(n):
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def fmt_s(x):
    return "-" if x is None else f"{x:.3f} s"


def print_table(title, rows):
    """A Markdown table: rows are (figure, value) pairs."""
    print(f"\n### {title}\n")
    w = max(len(r[0]) for r in rows)
    print(f"| {'figure'.ljust(w)} | value |")
    print(f"|{'-' * (w + 2)}|-------|")
    for k, v in rows:
        print(f"| {k.ljust(w)} | {v} |")
    sys.stdout.flush()


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------------------------------
# The server under test


class Server:
    """A server process started by this tool; everything it writes to stderr is counted."""

    def __init__(self, args, nofile=None, as_bytes=None):
        self.path = args.server
        self.kill_after = args.kill_after
        self.tmpdir = tempfile.mkdtemp(prefix="hostile-peer-")
        listen = "127.0.0.1:0"
        if args.unix:
            listen = "unix:" + os.path.join(self.tmpdir, "srv.sock")
        # The server's stderr (its log) goes to a file: a pipe read by this tool would slow a
        # server that logs in a tight loop down to the reader's pace.
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.keep_log = getattr(args, "keep_log", False)
        self._log = open(self.log_path, "wb")
        limits = []
        if nofile is not None:
            limits.append((resource.RLIMIT_NOFILE, (nofile, nofile)))
        if as_bytes is not None:
            limits.append((resource.RLIMIT_AS, (as_bytes, as_bytes)))

        def preexec():
            for what, value in limits:
                resource.setrlimit(what, value)

        self.proc = subprocess.Popen(
            [self.path, "--listen", listen],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            preexec_fn=preexec if limits else None,
        )
        self.pid = self.proc.pid
        self.exited = None  # (status, rusage) once reaped by wait4
        ready = select.select([self.proc.stdout], [], [], 20)[0]
        line = self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            raise SystemExit(f"hostile_peer: server did not report its address (got {line!r})")
        self.addr_text = line[len("listening on "):]
        self.family, self.addr = self._parse(self.addr_text)
        time.sleep(0.3)  # the server sets up its signal handling after printing its address

    @staticmethod
    def _parse(text):
        if text.startswith("unix:") or text.startswith("/"):
            return socket.AF_UNIX, text[5:] if text.startswith("unix:") else text
        host, _, port = text.rpartition(":")
        if host != "127.0.0.1":
            raise SystemExit(f"hostile_peer: refusing to target {text!r}: only 127.0.0.1 or unix")
        return socket.AF_INET, (host, int(port))

    def log_count(self):
        """Bytes the server has written to its stderr so far."""
        try:
            return os.fstat(self._log.fileno()).st_size
        except OSError:
            return None

    def log_lines(self, n=3):
        """The last n non-empty lines of the server's log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
                tail = f.read()
        except OSError:
            return []
        lines = [ln for ln in tail.decode(errors="replace").splitlines() if ln.strip()]
        return lines[-n:]

    def connect(self, timeout=10.0, blocking=True):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.addr)
        if self.family == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not blocking:
            s.setblocking(False)
        return s

    def alive(self):
        return self.exited is None and self._reap(os.WNOHANG) is None

    def _reap(self, flags):
        if self.exited is not None:
            return self.exited
        try:
            pid, status, ru = os.wait4(self.pid, flags)
        except ChildProcessError:
            return self.exited
        if pid == self.pid:
            self.exited = (status, ru)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.exited

    def cpu(self):
        """utime + stime in seconds (from rusage once the server has exited)."""
        if self.exited is not None:
            ru = self.exited[1]
            return ru.ru_utime + ru.ru_stime
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat
        except (OSError, IndexError):
            return None

    def status(self):
        """VmRSS, VmHWM, VmSize, VmPeak in bytes."""
        out = {}
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
                        out[key] = int(rest.split()[0]) * 1024
        except OSError:
            pass
        return out

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def terminate(self, timeout):
        """SIGTERM; returns seconds until the server exited, or None after timeout."""
        t0 = time.monotonic()
        if self._reap(os.WNOHANG) is None:
            os.kill(self.pid, signal.SIGTERM)
        while time.monotonic() - t0 < timeout:
            if self._reap(os.WNOHANG) is not None:
                return time.monotonic() - t0
            time.sleep(0.005)
        return None

    def stop(self):
        if self.exited is None and self._reap(os.WNOHANG) is None:
            if self.terminate(self.kill_after) is None:
                os.kill(self.pid, signal.SIGKILL)
                self._reap(0)
        self.proc.stdout.close()
        self._log.close()
        if self.keep_log:
            print(f"server log kept in {self.log_path}")
            return
        for name in ("srv.sock", "server.log"):
            try:
                os.unlink(os.path.join(self.tmpdir, name))
            except OSError:
                pass
        os.rmdir(self.tmpdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------------------------------------
# Client helpers (all bounded)


def recv_exact(sock, n, deadline):
    """Reads n bytes before the monotonic deadline; None on EOF, error or timeout."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            k = sock.recv_into(view[got:], n - got)
        except (socket.timeout, OSError):
            return None
        if k == 0:
            return None
        got += k
    return buf


def read_response(sock, deadline, sink=None):
    """Reads one response frame; returns (flag, seq, body_len) or None. The body is discarded
    (read into sink, a reusable bytearray) unless it is small."""
    hdr = recv_exact(sock, RESP_HDR.size, deadline)
    if hdr is None:
        return None
    magic, ver, flag, msg_len, seq, blob_len = RESP_HDR.unpack(hdr)
    if magic != MAGIC or ver != 1:
        return None
    body = (msg_len + blob_len) if flag == 0 else blob_len
    left = body
    if sink is None:
        sink = bytearray(min(body, 1 << 20) or 1)
    view = memoryview(sink)
    while left > 0:
        t = deadline - time.monotonic()
        if t <= 0:
            return None
        sock.settimeout(t)
        try:
            k = sock.recv_into(view, min(left, len(sink)))
        except (socket.timeout, OSError):
            return None
        if k == 0:
            return None
        left -= k
    return flag, seq, body


def send_all(sock, data, deadline):
    view = memoryview(data)
    while view:
        t = deadline - time.monotonic()
        if t <= 0:
            return False
        sock.settimeout(t)
        try:
            k = sock.send(view)
        except (socket.timeout, OSError):
            return False
        view = view[k:]
    return True


def ping(server, timeout=30.0, seq=1):
    """A fresh connection and one ping. Returns (connect_s, ping_s, ok): ping_s counts from the
    moment the ping was sent to its answer; ok is False on a timeout or closed connection."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = server.connect(timeout=timeout)
    except OSError:
        return time.monotonic() - t0, None, False
    t1 = time.monotonic()
    try:
        if not send_all(s, ping_frame(seq), deadline):
            return t1 - t0, None, False
        r = read_response(s, deadline)
        t2 = time.monotonic()
        ok = r is not None and r[0] == 0 and r[1] == seq and r[2] == 0
        return t1 - t0, (t2 - t1) if ok else None, ok
    finally:
        s.close()


def small_echo(server, timeout=10.0, payload=b"hostile-peer probe"):
    """A fresh connection and one small echo request (action 1). Returns (seconds, ok)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = server.connect(timeout=timeout)
    except OSError:
        return time.monotonic() - t0, False
    try:
        if not send_all(s, request_header(7, blob_len=len(payload)) + payload, deadline):
            return time.monotonic() - t0, False
        r = read_response(s, deadline)
        return time.monotonic() - t0, r is not None and r[0] == 0 and r[2] == len(payload)
    finally:
        s.close()


def open_idle(server, n, timeout):
    """n connections, open and idle. Stops early (and says so) at the deadline."""
    conns = []
    deadline = time.monotonic() + timeout
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            conns.append(server.connect(timeout=max(0.1, deadline - time.monotonic())))
        except OSError as e:
            print(f"hostile_peer: connect #{len(conns) + 1} failed: {e}", file=sys.stderr)
            break
    return conns


def wait_fds(server, want, timeout, at_least=True):
    """Waits until the server holds >= want fds (or <= want); returns seconds or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        n = server.fds()
        if n is None:
            return None
        if (n >= want) if at_least else (n <= want):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def close_all(conns):
    for s in conns:
        try:
            s.close()
        except OSError:
            pass
    conns.clear()


def mem_rows(st, prefix=""):
    return [
        (f"{prefix}RSS", fmt_bytes(st.get("VmRSS"))),
        (f"{prefix}VmSize", fmt_bytes(st.get("VmSize"))),
    ]


# ------------------------------------------------------------------------------------------
# Scenarios


def sc_emfile(args):
    raise_nofile(args.clients + 64)
    with Server(args, nofile=args.nofile) as srv:
        base = srv.status()
        base_fds = srv.fds()
        cpu0, log0 = srv.cpu(), srv.log_count()
        t0 = time.monotonic()
        conns = open_idle(srv, args.clients, timeout=30)
        opened = len(conns)
        # Halfway through the hold, a ping on the first connection (accepted before the fds ran
        # out): are existing connections still served during the storm?
        time.sleep(args.hold / 2)
        held_ping = None
        if conns:
            d = time.monotonic() + args.hold / 2
            tp = time.monotonic()
            if send_all(conns[0], ping_frame(99), d):
                r = read_response(conns[0], d)
                if r is not None and r[0] == 0 and r[1] == 99:
                    held_ping = time.monotonic() - tp
        time.sleep(max(0.0, t0 + args.hold - time.monotonic()))
        held = time.monotonic() - t0
        cpu1, log1 = srv.cpu(), srv.log_count()
        fds_held = srv.fds()
        sample = srv.log_lines(1)
        close_all(conns)
        # Wait for the server's fds to come back down (its accepted sockets see EOF).
        drained = wait_fds(srv, base_fds, timeout=args.hold + 10, at_least=False)
        conn_s, ping_s, ok = ping(srv, timeout=args.ping_timeout)
        cpu2, log2 = srv.cpu(), srv.log_count()
        rows = [
            ("server RLIMIT_NOFILE", str(args.nofile)),
            ("clients opened", f"{opened} of {args.clients}"),
            ("server fds while held", str(fds_held)),
            ("hold window", fmt_s(held)),
            ("server CPU in hold window", fmt_s(cpu1 - cpu0)),
            ("CPU share of one core", f"{100 * (cpu1 - cpu0) / held:.0f} %"),
            ("stderr log bytes in hold window", fmt_bytes(log1 - log0)),
            ("log rate", f"{fmt_bytes(int((log1 - log0) / held))}/s"),
            ("last log line", repr(sample[0][:100]) if sample else "-"),
            ("ping on a held (accepted) connection", fmt_s(held_ping) if held_ping is not None
             else "NOT answered"),
            (f"server fds back to {base_fds} after the closes", fmt_s(drained)),
            ("fresh connection: connect", fmt_s(conn_s)),
            ("fresh connection: ping answered", "yes" if ok else "NO"),
            ("fresh connection: ping latency", fmt_s(ping_s)),
            ("server CPU, close to ping answered", fmt_s(cpu2 - cpu1)),
            ("stderr log bytes, close to ping answered", fmt_bytes(log2 - log1)),
            ("server RSS at start", fmt_bytes(base.get("VmRSS"))),
        ]
        print_table(f"emfile: {args.clients} clients against RLIMIT_NOFILE {args.nofile}", rows)


def sc_mass_close(args):
    got = raise_nofile(args.connections + 256)
    if got < args.connections + 64:
        raise SystemExit(f"hostile_peer: RLIMIT_NOFILE {got} is too low for {args.connections}")
    with Server(args) as srv:
        base_fds = srv.fds()
        t0 = time.monotonic()
        conns = open_idle(srv, args.connections, timeout=args.open_timeout)
        open_s = time.monotonic() - t0
        accepted = wait_fds(srv, base_fds + len(conns), timeout=args.open_timeout)
        all_s = time.monotonic() - t0
        cpu_open = srv.cpu()
        st = srv.status()
        rows = [
            ("idle connections", f"{len(conns)} of {args.connections}"),
            ("open + all accepted", fmt_s(all_s) + ("" if accepted is not None else " (NOT all)")),
            ("server CPU to open them", fmt_s(cpu_open)),
            ("server fds", str(srv.fds())),
        ] + mem_rows(st, "server ")
        if args.sigterm:
            time.sleep(1)
            cpu0 = srv.cpu()
            exit_s = srv.terminate(args.window)
            cpu1 = srv.cpu()
            rows += [
                ("SIGTERM to exit", fmt_s(exit_s) if exit_s is not None
                 else f"still running after {args.window} s"),
                ("server CPU during shutdown", fmt_s(None if cpu1 is None else cpu1 - cpu0)),
                ("exit code", str(srv.proc.returncode)),
            ]
            n = len(conns)
            close_all(conns)
            print_table(f"mass-close --sigterm: SIGTERM with {n} idle connections", rows)
            return
        time.sleep(1)
        cpu0 = srv.cpu()
        t_close0 = time.monotonic()
        n = len(conns)
        close_all(conns)
        t_close = time.monotonic()
        result = {}

        def do_ping():
            result["ping"] = ping(srv, timeout=args.window)
            result["at"] = time.monotonic() - t_close

        th = threading.Thread(target=do_ping, daemon=True)
        th.start()
        drained = None
        cpu_drained = None
        while time.monotonic() - t_close < args.window:
            f = srv.fds()
            if f is not None and f <= base_fds:
                drained = time.monotonic() - t_close
                cpu_drained = srv.cpu()
                break
            time.sleep(0.02)
        th.join(args.window + 5)
        # The CPU over a fixed window after the closes, whatever happened in it.
        rest = args.settle - (time.monotonic() - t_close)
        if rest > 0:
            time.sleep(rest)
        cpu_win = srv.cpu()
        win = time.monotonic() - t_close
        conn_s, ping_s, ok = result.get("ping", (None, None, False))
        rows += [
            ("client closes took", fmt_s(t_close - t_close0)),
            ("server fds back to baseline after", fmt_s(drained) if drained is not None
             else f"not within {args.window} s"),
            ("server CPU until fds back to baseline",
             fmt_s(None if cpu_drained is None else cpu_drained - cpu0)),
            (f"server CPU in {win:.1f} s after the closes", fmt_s(cpu_win - cpu0)),
            ("fresh ping: connect", fmt_s(conn_s)),
            ("fresh ping: answered", "yes" if ok else "NO"),
            ("fresh ping: latency after send", fmt_s(ping_s)),
            ("fresh ping: answered at (s after closes)", fmt_s(result.get("at") if ok else None)),
        ]
        print_table(f"mass-close: {n} idle connections closed at once", rows)


def open_claimers(srv, n, claim):
    """Opens up to n connections that each send one request header claiming a `claim`-byte
    body and nothing more (bounded: 30 s in all); returns the ones that got it sent."""
    conns = []
    deadline = time.monotonic() + 30
    for i in range(n):
        try:
            s = srv.connect(timeout=5)
        except OSError as e:
            print(f"hostile_peer: connect #{i + 1} failed: {e}", file=sys.stderr)
            break
        if not send_all(s, request_header(1, blob_len=claim), deadline):
            s.close()
            break
        conns.append(s)
    return conns


def sc_claim(args):
    raise_nofile(args.connections + 64)
    with Server(args) as srv:
        base = srv.status()
        conns = open_claimers(srv, args.connections, args.claim)
        time.sleep(args.settle)
        st = srv.status()
        alive = srv.alive()
        # How many of the connections the server has closed (EOF or reset) by now.
        closed = 0
        for s in conns:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        rows = (
            [("connections, each claiming", f"{len(conns)} x {fmt_bytes(args.claim)} body"),
             ("claimed in total", fmt_bytes(len(conns) * args.claim))]
            + mem_rows(base, "server at start: ")
            + [("server VmSize after headers", fmt_bytes(st.get("VmSize"))),
               ("server VmPeak", fmt_bytes(st.get("VmPeak"))),
               ("server RSS after headers", fmt_bytes(st.get("VmRSS"))),
               ("server CPU", fmt_s(srv.cpu())),
               ("connections closed by the server", str(closed)),
               ("server still running", "yes" if alive else "NO")]
        )
        close_all(conns)
        print_table(f"claim: {args.connections} headers claiming {fmt_bytes(args.claim)}", rows)


class Sampler:
    """Samples the server's RSS every period seconds in a thread; keeps the peak."""

    def __init__(self, srv, period=0.05):
        self.srv, self.period = srv, period
        self.peak_rss = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self):
        while not self._stop.is_set():
            rss = self.srv.status().get("VmRSS")
            if rss:
                self.peak_rss = max(self.peak_rss, rss)
            self._stop.wait(self.period)

    def stop(self):
        self._stop.set()
        self._th.join(2)


def sc_stall(args):
    raise_nofile(args.connections + 64)
    body = args.size
    to_send = REQ_HDR.size + body - 1  # the whole frame but its last byte
    chunk = memoryview(bytes(1 << 20))
    with Server(args) as srv:
        base = srv.status()
        samp = Sampler(srv)
        t0 = time.monotonic()
        end = t0 + args.duration
        conns = []
        for _ in range(args.connections):
            try:
                s = srv.connect(timeout=5, blocking=False)
            except OSError as e:
                print(f"hostile_peer: connect failed: {e}", file=sys.stderr)
                break
            conns.append({"s": s, "hdr": request_header(1, blob_len=body), "sent": 0,
                          "done_at": None, "eof_at": None, "progress_at": time.monotonic()})
        probe = None
        probe_at = None
        sending_done_at = None
        while time.monotonic() < end:
            open_ = [c for c in conns if c["eof_at"] is None]
            if not open_:
                break
            wr = [c["s"] for c in open_ if c["sent"] < to_send]
            rd = [c["s"] for c in open_]
            r, w, _ = select.select(rd, wr, [], 0.05)
            now = time.monotonic()
            by_sock = {c["s"]: c for c in open_}
            for s in r:
                c = by_sock[s]
                try:
                    if s.recv(65536) == b"":
                        c["eof_at"] = now
                except BlockingIOError:
                    pass
                except OSError:
                    c["eof_at"] = now
            for s in w:
                c = by_sock[s]
                if c["eof_at"] is not None:
                    continue
                for _ in range(8):  # a few sends per turn, so no connection starves the others
                    left = to_send - c["sent"]
                    if left <= 0:
                        break
                    if c["sent"] < REQ_HDR.size:
                        data = memoryview(c["hdr"])[c["sent"]:]
                    else:
                        data = chunk[: min(len(chunk), left)]
                    try:
                        k = s.send(data)
                    except BlockingIOError:
                        break
                    except OSError:
                        c["eof_at"] = now
                        break
                    c["sent"] += k
                    c["progress_at"] = now
                if c["sent"] >= to_send and c["done_at"] is None:
                    c["done_at"] = now
            # The probe: once every connection has sent everything, or made no progress for 2 s
            # (the server stopped reading), or is closed, or halfway through the run.
            if probe is None:
                settled = all(c["sent"] >= to_send or c["eof_at"] is not None
                              or now - c["progress_at"] > 2 for c in conns)
                if settled or now - t0 > args.duration / 2:
                    sending_done_at = now - t0
                    probe_at = now - t0
                    probe = {}

                    def run_probe(p=probe):
                        p["r"] = small_echo(srv, timeout=max(1.0, args.duration / 3))
                        p["rss"] = srv.status().get("VmRSS")

                    threading.Thread(target=run_probe, daemon=True).start()
                    probe["rss_at_probe"] = srv.status().get("VmRSS")
        rss_end = srv.status().get("VmRSS")
        samp.stop()
        time.sleep(0.2)
        if probe is not None and "r" not in probe:
            time.sleep(max(1.0, args.duration / 3))
        st = srv.status()
        sent_full = sum(1 for c in conns if c["sent"] >= to_send)
        eofs = sorted(c["eof_at"] - t0 for c in conns if c["eof_at"] is not None)
        stall_to_eof = sorted(c["eof_at"] - c["progress_at"] for c in conns
                              if c["eof_at"] is not None)
        total_sent = sum(c["sent"] for c in conns)
        rows = (
            [("connections", f"{len(conns)}, each sending {to_send} of a "
              f"{REQ_HDR.size + body}-byte frame"),
             ("run bounded at", fmt_s(args.duration)),
             ("sent in full", f"{sent_full} of {len(conns)}"),
             ("bytes sent in total", fmt_bytes(total_sent)),
             ("all settled (sent / stuck / closed) at", fmt_s(sending_done_at))]
            + mem_rows(base, "server at start: ")
            + [("server RSS peak (sampled every 50 ms)", fmt_bytes(samp.peak_rss)),
               ("server VmHWM", fmt_bytes(st.get("VmHWM"))),
               ("server RSS at the end of the run", fmt_bytes(rss_end)),
               ("server VmSize at the end of the run", fmt_bytes(st.get("VmSize"))),
               ("server CPU", fmt_s(srv.cpu())),
               ("connections closed by the server", f"{len(eofs)} of {len(conns)}"),
               ("closed at (s after start) min / median / max",
                " / ".join(fmt_s(x) for x in (eofs[0], eofs[len(eofs) // 2], eofs[-1]))
                if eofs else "none"),
               ("closed after their last byte sent, min / max",
                f"{fmt_s(stall_to_eof[0])} / {fmt_s(stall_to_eof[-1])}" if eofs else "-"),
               ("probe: small echo on a fresh connection sent at", fmt_s(probe_at))]
        )
        if probe is not None and "r" in probe:
            secs, ok = probe["r"]
            rows.append(("probe: served", f"{'yes' if ok else 'NO'} ({fmt_s(secs)})"))
        else:
            rows.append(("probe: served", "NO (no answer)"))
        rows.append(("server log lines (last)", repr(srv.log_lines(1)[:1])[:100]))
        close_all([c["s"] for c in conns])
        print_table(f"stall: {len(conns)} connections stalled 1 byte short of "
                    f"{fmt_bytes(body)} bodies", rows)


def sc_big_then_idle(args):
    raise_nofile(args.connections + 64)
    body = args.size
    payload = bytes(body)
    sink = bytearray(1 << 20)
    with Server(args) as srv:
        base = srv.status()
        conns = []
        ok = 0
        t0 = time.monotonic()
        for i in range(args.connections):
            try:
                s = srv.connect(timeout=10)
            except OSError as e:
                print(f"hostile_peer: connect failed: {e}", file=sys.stderr)
                break
            conns.append(s)
            deadline = time.monotonic() + args.timeout
            if send_all(s, request_header(i + 1, blob_len=body), deadline) and \
                    send_all(s, payload, deadline):
                r = read_response(s, deadline, sink)
                if r is not None and r[0] == 0 and r[2] == body:
                    ok += 1
        busy = time.monotonic() - t0
        st_after = srv.status()
        time.sleep(args.idle)
        st = srv.status()
        rows = (
            [("connections", f"{len(conns)}, one {fmt_bytes(body)} echo each"),
             ("echoes answered in full", f"{ok} of {len(conns)}"),
             ("time to send and read them all", fmt_s(busy))]
            + mem_rows(base, "server at start: ")
            + [("server RSS right after the last echo", fmt_bytes(st_after.get("VmRSS"))),
               (f"server RSS after {args.idle:g} s idle", fmt_bytes(st.get("VmRSS"))),
               ("server VmSize after idle", fmt_bytes(st.get("VmSize"))),
               ("server VmHWM", fmt_bytes(st.get("VmHWM"))),
               ("server CPU", fmt_s(srv.cpu()))]
        )
        n = len(conns)
        close_all(conns)
        time.sleep(1)
        rows.append(("server RSS 1 s after closing them", fmt_bytes(srv.status().get("VmRSS"))))
        print_table(f"big-then-idle: {n} connections after one "
                    f"{fmt_bytes(body)} request each", rows)


def sc_trickle(args):
    with Server(args) as srv:
        s = srv.connect(timeout=5)
        body = args.body
        t0 = time.monotonic()
        s.sendall(request_header(1, blob_len=body))
        sent = 0
        closed_at = None
        how = None
        end = t0 + args.duration
        next_at = t0 + args.interval
        while time.monotonic() < end and closed_at is None:
            r = select.select([s], [], [], max(0.0, min(next_at, end) - time.monotonic()))[0]
            if r:
                try:
                    data = s.recv(65536)
                    if data == b"":
                        closed_at, how = time.monotonic() - t0, "EOF"
                    else:
                        how = f"got {len(data)} bytes"
                except OSError as e:
                    closed_at, how = time.monotonic() - t0, f"error: {e.strerror}"
                continue
            if time.monotonic() >= next_at and sent < body - 1:
                try:
                    s.send(b"\0")
                    sent += 1
                except OSError as e:
                    closed_at, how = time.monotonic() - t0, f"send error: {e.strerror}"
                next_at += args.interval
        s.close()
        rows = [
            ("request", f"header claiming a {body}-byte body, then 1 byte every "
             f"{args.interval:g} s"),
            ("run bounded at", fmt_s(args.duration)),
            ("body bytes sent", str(sent)),
            ("closed by the server", "yes" if closed_at is not None else "NO"),
            ("closed after (s from the header)", fmt_s(closed_at)),
            ("how", how or "-"),
            ("server log bytes", str(srv.log_count())),
            ("server log (last line)", repr(srv.log_lines(1)[:1])[:100]),
        ]
        print_table(f"trickle: 1 byte every {args.interval:g} s", rows)


def sc_alloc_fail(args):
    with Server(args, as_bytes=args.as_limit) as srv:
        base = srv.status()
        conns = open_claimers(srv, args.connections, args.claim)
        t0 = time.monotonic()
        for s in conns:
            s.setblocking(False)
        eof_at = {}
        while time.monotonic() - t0 < args.wait and len(eof_at) < len(conns):
            r = select.select([s for s in conns if s not in eof_at], [], [], 0.1)[0]
            for s in r:
                try:
                    if s.recv(65536) == b"":
                        eof_at[s] = time.monotonic() - t0
                except BlockingIOError:
                    pass
                except OSError:
                    eof_at[s] = time.monotonic() - t0
        st = srv.status()
        alive = srv.alive()
        probe_s, probe_ok = small_echo(srv, timeout=10) if alive else (None, False)
        ts = sorted(eof_at.values())
        rows = (
            [("server RLIMIT_AS", fmt_bytes(args.as_limit)),
             ("connections, each claiming", f"{len(conns)} x {fmt_bytes(args.claim)} body")]
            + mem_rows(base, "server at start: ")
            + [("server VmSize after headers", fmt_bytes(st.get("VmSize"))),
               ("bodies reserved (VmSize growth / claim)",
                f"{(st.get('VmSize', 0) - base.get('VmSize', 0)) // args.claim}"),
               ("connections closed by the server", f"{len(ts)} of {len(conns)} within "
                f"{args.wait:g} s" + (f" (last at {fmt_s(ts[-1])})" if ts else "")),
               ("connections left open, neither read nor closed",
                str(len(conns) - len(ts))),
               ("server log bytes", str(srv.log_count())),
               ("server log (last line)", repr(srv.log_lines(1)[:1])[:100]),
               ("server still running", "yes" if alive else "NO"),
               ("probe: small echo on a fresh connection",
                f"{'yes' if probe_ok else 'NO'} ({fmt_s(probe_s)})")]
        )
        close_all(conns)
        print_table(f"alloc-fail: headers claiming {fmt_bytes(args.claim)} under RLIMIT_AS "
                    f"{fmt_bytes(args.as_limit)}", rows)


# ------------------------------------------------------------------------------------------


def add_emfile(p):
    p.add_argument("--nofile", type=int, default=64, help="server RLIMIT_NOFILE (64)")
    p.add_argument("--clients", type=int, default=100, help="client connections (100)")
    p.add_argument("--hold", type=float, default=10, help="seconds to hold them open (10)")
    p.add_argument("--ping-timeout", type=float, default=20, help="bound on the ping (20 s)")


def add_mass_close(p):
    p.add_argument("-n", "--connections", type=int, default=10000, help="idle connections")
    p.add_argument("--sigterm", action="store_true", help="SIGTERM instead of closing them")
    p.add_argument("--window", type=float, default=60,
                   help="bound on the drain / the ping / the exit (60 s)")
    p.add_argument("--settle", type=float, default=10,
                   help="the CPU figure covers at least this many seconds after the closes")
    p.add_argument("--open-timeout", type=float, default=120, help="bound on opening them")


def add_claim(p):
    p.add_argument("-n", "--connections", type=int, default=300)
    p.add_argument("--claim", type=int, default=60 * MIB, help="claimed body bytes (60 MiB)")
    p.add_argument("--settle", type=float, default=2, help="seconds before measuring (2)")


def add_stall(p):
    p.add_argument("-n", "--connections", type=int, default=64)
    p.add_argument("--size", type=int, default=60 * MIB, help="body bytes (60 MiB)")
    p.add_argument("--duration", type=float, default=30, help="bound on the run (30 s)")


def add_big(p):
    p.add_argument("-n", "--connections", type=int, default=20)
    p.add_argument("--size", type=int, default=60 * MIB, help="blob bytes (60 MiB)")
    p.add_argument("--idle", type=float, default=5, help="seconds idle before measuring (5)")
    p.add_argument("--timeout", type=float, default=60, help="bound on each echo (60 s)")


def add_trickle(p):
    p.add_argument("--interval", type=float, default=2, help="seconds between bytes (2)")
    p.add_argument("--duration", type=float, default=20, help="bound on the run (20 s)")
    p.add_argument("--body", type=int, default=1000, help="claimed body bytes (1000)")


def add_alloc_fail(p):
    p.add_argument("--as-limit", type=int, default=512 * MIB, help="server RLIMIT_AS (512 MiB)")
    p.add_argument("-n", "--connections", type=int, default=16)
    p.add_argument("--claim", type=int, default=60 * MIB, help="claimed body bytes (60 MiB)")
    p.add_argument("--wait", type=float, default=10,
                   help="seconds to wait for the server to close them (10)")


SCENARIOS = [
    ("emfile", sc_emfile, add_emfile, "accept loop under fd exhaustion (item 1)"),
    ("mass-close", sc_mass_close, add_mass_close, "many idle connections closed (item 2)"),
    ("claim", sc_claim, add_claim, "memory reserved on a header's word (item 3)"),
    ("stall", sc_stall, add_stall, "no server-wide budget for request bytes (item 4)"),
    ("big-then-idle", sc_big_then_idle, add_big, "buffers kept after a big request (item 5)"),
    ("alloc-fail", sc_alloc_fail, add_alloc_fail, "bad_alloc in a connection (item 6)"),
    ("trickle", sc_trickle, add_trickle, "a body trickled 1 byte at a time (item 7)"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=DEFAULT_SERVER,
                        help=f"server binary to start (default {DEFAULT_SERVER})")
    common.add_argument("--unix", action="store_true", help="listen on a Unix-domain socket")
    common.add_argument("--keep-log", action="store_true",
                        help="keep the server's stderr log file (its path is printed)")
    common.add_argument("--kill-after", type=float, default=30,
                        help="SIGKILL the server if SIGTERM has not ended it after this long")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, _, add, helptext in SCENARIOS:
        add(sub.add_parser(name, parents=[common], help=helptext))
    p_all = sub.add_parser("all", parents=[common], help="every scenario with its defaults")
    p_all.add_argument("--skip", default="", help="comma-separated scenarios to skip")
    args = ap.parse_args()
    if not os.access(args.server, os.X_OK):
        raise SystemExit(f"hostile_peer: no server binary at {args.server} (--server PATH)")
    print(f"server: {os.path.abspath(args.server)}")
    if args.cmd != "all":
        dict((n, f) for n, f, _, _ in SCENARIOS)[args.cmd](args)
        return
    skip = set(filter(None, args.skip.split(",")))
    for name, fn, add, _ in SCENARIOS:
        if name in skip:
            continue
        p = argparse.ArgumentParser(add_help=False)
        add(p)
        sub_args = p.parse_args([])
        for k in ("server", "unix", "kill_after", "keep_log"):
            setattr(sub_args, k, getattr(args, k))
        fn(sub_args)
        time.sleep(2)  # let the machine settle between scenarios
        if name == "mass-close":
            sub_args = p.parse_args(["--sigterm"])
            for k in ("server", "unix", "kill_after", "keep_log"):
                setattr(sub_args, k, getattr(args, k))
            fn(sub_args)
            time.sleep(2)


def _on_sigterm(signo, frame):
    raise SystemExit(128 + signo)  # unwinds through Server.stop, which ends the server


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
