"""The chaos and soak suite behind scripts/chaos.sh (standard library only).

It starts a private PostgreSQL cluster it may stop and start, two `leopard` server processes
on it (A: `leopard demo`, B: `leopard serve`), drives load with the bounded client of
chaos_load.py on 127.0.0.1 only, injects one fault per scenario, and checks invariants with SQL
afterwards. Each scenario prints one line `scenario: held|broken — figures`; the exit status is
non-zero when any scenario is broken.

    python3 chaos.py --bin target/release/leopard [--short] [--only NAME ...]
"""

import argparse
import base64
import glob
import http.client
import json
import os
import pwd
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chaos_load  # noqa: E402

PASSWORD = "Leopard-Demo-2026"
SECRET = "chaos-suite-secret-of-at-least-32-bytes"
HOST = "acme.localhost"
HEADER_TIMEOUT = 2
BODY_TIMEOUT = 3
SHUTDOWN_TIMEOUT = 5
LEASE = 3
RESULTS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(name, held, figures):
    RESULTS.append((name, held))
    print(f"{name}: {'held' if held else 'broken'} — {figures}", flush=True)


# ----- the cluster ----------------------------------------------------------------------------

class Cluster:
    """A private PostgreSQL cluster, run as the postgres user when this script runs as root."""

    def __init__(self, work):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            sys.exit("PostgreSQL server binaries are required (apt-get install postgresql)")
        self.bindir = os.path.dirname(bins[-1])
        self.root = os.geteuid() == 0
        # As root the data directory must be one the postgres user can reach: not under a
        # 0700 directory of root's.
        base = "/var/tmp" if self.root else work
        self.dir = tempfile.mkdtemp(prefix="leopard-chaos-pg.", dir=base)
        if self.root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.run("initdb", "-D", self.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/leopard"

    def run(self, tool, *args, check=True):
        cmd = [os.path.join(self.bindir, tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=check)

    def start(self):
        self.run("pg_ctl", "-D", self.dir, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                 "-c max_connections=400 -c fsync=off -c synchronous_commit=off", "start")

    def stop(self, mode="fast"):
        self.run("pg_ctl", "-D", self.dir, "-m", mode, "-w", "stop", check=False)

    def create_db(self):
        subprocess.run(["psql", f"postgres://postgres@127.0.0.1:{self.port}/postgres", "-qX",
                        "-c", "CREATE DATABASE leopard"], check=True, stdout=subprocess.DEVNULL)

    def sql(self, query):
        # `acme.` names the demo tenant's schema, whatever it is called.
        if getattr(self, "acme", None):
            query = query.replace("acme.", f'"{self.acme}".')
        out = subprocess.run(["psql", self.url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", query],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def remove(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# ----- the servers ----------------------------------------------------------------------------

class Server:
    def __init__(self, name, args, cluster, work, command, pool=16):
        self.name, self.args, self.cluster, self.command, self.pool = name, args, cluster, command, pool
        self.port = free_port()
        self.data = os.path.join(work, f"data-{name}")
        self.log = open(os.path.join(work, f"server-{name}.log"), "ab")
        self.proc = None

    def start(self):
        env = dict(os.environ, LEOPARD_DATABASE_URL=self.cluster.url, LEOPARD_LOG="warn")
        self.proc = subprocess.Popen(
            [self.args.bin, self.command, "--bind", f"127.0.0.1:{self.port}",
             "--pool-size", str(self.pool), "--jwt-secret", SECRET, "--data-dir", self.data,
             "--event-lease-secs", str(LEASE), "--event-poll-ms", "200",
             "--header-timeout-secs", str(HEADER_TIMEOUT), "--body-timeout-secs", str(BODY_TIMEOUT),
             "--shutdown-timeout-secs", str(SHUTDOWN_TIMEOUT), "--sse-heartbeat-secs", "1",
             # Registry changes must arrive by notice (the periodic reload is out of the way),
             # and the scheduler ticks every second, so both can be watched reconnecting.
             "--registry-reload-secs", "600", "--scheduler-interval-secs", "1"],
            env=env, stdout=self.log, stderr=self.log, cwd=self.args.work)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"server {self.name} exited; see {self.log.name}")
            if request(self.port, "GET", "/health/", timeout=1)[0] == 200:
                return
            time.sleep(0.2)
        sys.exit(f"server {self.name} never became healthy")

    def rss_kib(self, field="VmRSS"):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def client_connections(self):
        """Established TCP connections whose server side is this server's port (its clients'
        connections, not its database connections)."""
        port = f"{self.port:04X}"
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        fields = line.split()
                        if fields[1].endswith(":" + port) and fields[3] == "01":
                            count += 1
            except OSError:
                pass
        return count

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SHUTDOWN_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request(port, method, path, host=HOST, token=None, body=None, timeout=10):
    """(status, headers, body bytes); status 0 when the connection failed."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Host": host}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    except (OSError, http.client.HTTPException):
        return 0, {}, b""


def login(port, username, host=HOST):
    status, _, body = request(port, "POST", "/api/token/", host=host,
                              body={"username": username, "password": PASSWORD})
    if status != 200:
        sys.exit(f"login of {username} on {host} failed: {status} {body[:200]!r}")
    return json.loads(body)["access"]


def user_id(token):
    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user_id"])


def load(args, port, token, seconds, connections, paths, write_every=0, branch=1,
         answered="", prefix="chaos", timeout=15):
    """Starts the load client; returns the process (its stdout is the JSON result)."""
    cmd = [sys.executable, os.path.join(HERE, "chaos_load.py"), "--port", str(port),
           "--host", HOST, "--token", token, "--connections", str(connections),
           "--duration", str(seconds), "--timeout", str(timeout), "--branch", str(branch),
           "--prefix", prefix]
    for p in paths:
        cmd += ["--path", p]
    if write_every:
        cmd += ["--write-every", str(write_every)]
    if answered:
        cmd += ["--answered", answered]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def result(proc):
    out, _ = proc.communicate()
    return json.loads(out)


def leopard(args, cluster, *cli):
    env = dict(os.environ, LEOPARD_DATABASE_URL=cluster.url, LEOPARD_LOG="warn")
    return subprocess.run([args.bin, *cli], env=env, capture_output=True, text=True,
                          cwd=args.work)


def poll(port, path, token, stop, out, every=0.1):
    """Appends (time, status) of GET path every `every` s until `stop` is set."""
    while not stop.is_set():
        out.append((time.monotonic(), request(port, "GET", path, token=token, timeout=10)[0]))
        time.sleep(every)


def wait_events_settled(cluster, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = int(cluster.sql("SELECT count(*) FROM public.leopard_events "
                               "WHERE state IN ('pending', 'running')"))
        if left == 0:
            return True
        time.sleep(0.2)
    return False


def only(statuses, allowed):
    return all(int(k) in allowed for k in statuses)


# ----- scenarios ------------------------------------------------------------------------------

def pg_restart(ctx):
    a, b, cluster, token = ctx["a"], ctx["b"], ctx["cluster"], ctx["token"]
    # Events committed before the outage, held back by a pause so they are processed after.
    leopard(ctx["args"], cluster, "events", "pause", "--reason", "chaos: pg_restart")
    names = [f"pgr-{i}" for i in range(20)]
    for name in names:
        request(a.port, "POST", "/api/v1/clients/", token=token, body={
            "first_name": name, "gender": "MALE", "country": "AU", "branch_id": ctx["branch"]})
    pending = int(cluster.sql("SELECT count(*) FROM public.leopard_events WHERE state = 'pending'"))
    stop, health = threading.Event(), []
    poller = threading.Thread(target=poll, args=(a.port, "/health/", None, stop, health))
    poller.start()
    traffic = load(ctx["args"], a.port, token, 14, 16, ["/api/v1/clients/", "/api/v1/tasks/"])
    time.sleep(3)
    down = time.monotonic()
    cluster.stop("fast")
    time.sleep(4)
    cluster.start()
    up = time.monotonic()
    recovered = None
    while time.monotonic() - up < 15:
        if (request(a.port, "GET", "/health/", timeout=2)[0] == 200
                and request(a.port, "GET", "/api/v1/clients/", token=token, timeout=2)[0] == 200
                and request(b.port, "GET", "/api/v1/clients/", token=token, timeout=2)[0] == 200):
            recovered = time.monotonic() - up
            break
        time.sleep(0.05)
    outcome = result(traffic)
    stop.set()
    poller.join()
    leopard(ctx["args"], cluster, "events", "resume")
    settled = wait_events_settled(cluster, 20)
    processed = int(cluster.sql(
        "SELECT count(*) FROM public.leopard_events WHERE event_type = 'Client.CREATE' "
        f"AND state = 'completed' AND current->>'first_name' LIKE 'pgr-%'"))
    timeline = int(cluster.sql(
        "SELECT count(*) FROM acme.client_activities a JOIN acme.clients c ON c.id = a.client_id "
        "WHERE c.first_name LIKE 'pgr-%' AND a.event_id IS NOT NULL"))
    # The notification listener reconnected: a task assigned through A reaches a stream on B.
    pushed = notification_reaches(ctx, b.port, a.port, "after the restart")
    # The registry listeners reconnected: a tenant created now resolves on both servers.
    created = leopard(ctx["args"], cluster, "tenant", "create", "--slug", "pgrnew", "--name",
                      "After the restart").returncode == 0
    t0 = time.monotonic()
    resolved = None
    while created and time.monotonic() - t0 < 5:
        if all(request(p, "GET", "/api/public/tenant-info/", host="pgrnew.localhost",
                       timeout=2)[0] == 200 for p in (a.port, b.port)):
            resolved = time.monotonic() - t0
            break
        time.sleep(0.05)
    # The scheduler reconnected: a task due within the hour gets its due-soon notice.
    due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800))
    request(a.port, "POST", "/api/v1/tasks/", token=token, body={
        "title": "pgr due soon", "detail": "d", "due_date": due,
        "assigned_to": user_id(ctx["consultant"])})
    t0 = time.monotonic()
    noticed = None
    while time.monotonic() - t0 < 6:
        if int(cluster.sql("SELECT count(*) FROM acme.notifications WHERE notification_type = "
                           "'TASK_DUE_SOON' AND title = 'Task Due Soon: pgr due soon'")):
            noticed = time.monotonic() - t0
            break
        time.sleep(0.1)
    health_503 = sum(1 for t, s in health if down < t < up and s == 503)
    health_other = sum(1 for t, s in health if down < t < up and s not in (503, 200))
    held = (only(outcome["status"], {200, 503}) and outcome["bad_503"] == 0
            and not outcome["failures"] and outcome["max_ms"] <= 7000 and health_503 > 0
            and health_other == 0 and recovered is not None and recovered <= 2.0 and settled
            and processed == len(names) and pushed and resolved is not None
            and noticed is not None)
    report("pg_restart", held,
           f"down {up - down:.1f} s; answers {outcome['status']} (503 without JSON or "
           f"Retry-After: {outcome['bad_503']}, transport failures {outcome['failures'] or 0}, "
           f"slowest {outcome['max_ms']:.0f} ms); /health/ 503 x{health_503} while down; "
           f"recovered {recovered if recovered is None else round(recovered, 2)} s after the "
           f"database returned; {processed}/{len(names)} events committed before the outage "
           f"processed after it ({pending} pending at the stop, timeline entries {timeline}); "
           f"notification listener reconnected: {'yes' if pushed else 'no'}; a tenant created "
           f"after it resolved on both servers in {fmt(resolved)} s (registry listeners); the "
           f"scheduler's due-soon notice came {fmt(noticed)} s after its task")


def fmt(seconds):
    return "never" if seconds is None else f"{seconds:.2f}"


def notification_reaches(ctx, stream_port, write_port, title):
    """Opens the consultant's stream on one server and assigns a task through the other."""
    consultant = ctx["consultant"]
    sock = socket.create_connection(("127.0.0.1", stream_port), timeout=10)
    sock.sendall(f"GET /api/v1/notifications/stream/?token={consultant} HTTP/1.1\r\n"
                 f"Host: {HOST}\r\n\r\n".encode())
    buffer = b""
    deadline = time.monotonic() + 5
    while b"connection_established" not in buffer and time.monotonic() < deadline:
        buffer += sock.recv(65536)
    request(write_port, "POST", "/api/v1/tasks/", token=ctx["token"], body={
        "title": f"chaos {title}", "detail": "d", "due_date": "2031-01-01T09:00:00Z",
        "assigned_to": user_id(consultant)})
    deadline = time.monotonic() + 5
    found = False
    sock.settimeout(0.5)
    while time.monotonic() < deadline and not found:
        try:
            buffer += sock.recv(65536)
        except socket.timeout:
            pass
        found = f"chaos {title}".encode() in buffer
    sock.close()
    return found


def sigkill(ctx):
    a, b, cluster, token, args = ctx["a"], ctx["b"], ctx["cluster"], ctx["token"], ctx["args"]
    answered = os.path.join(args.work, "sigkill-answered.txt")
    traffic = load(args, a.port, token, 6, 8, ["/api/v1/clients/"], write_every=2,
                   branch=ctx["branch"], answered=answered, prefix="kill")
    time.sleep(1.5)
    leased_ids = ""
    deadline = time.monotonic() + 3
    pid = str(a.proc.pid)
    # Kill as soon as A's workers hold a lease (the events it claimed, as one snapshot).
    while time.monotonic() < deadline:
        leased_ids = cluster.sql(
            "SELECT coalesce(string_agg(quote_literal(id::text), ','), '') FROM "
            f"public.leopard_events WHERE state = 'running' AND locked_by LIKE '{pid}-%'")
        if leased_ids:
            break
        time.sleep(0.02)
    leased = len(leased_ids.split(",")) if leased_ids else 0
    a.proc.kill()
    a.proc.wait()
    outcome = result(traffic)
    settled = wait_events_settled(cluster, LEASE + 20)
    with open(answered) as f:
        names = [n for n in f.read().split("\n") if n]
    found = 0
    if names:
        listed = ",".join("'" + n + "'" for n in names)
        found = int(cluster.sql(f"SELECT count(*) FROM acme.clients WHERE first_name IN ({listed})"))
    taken_over = retried = 0
    if leased_ids:
        retried = int(cluster.sql(f"SELECT count(*) FROM public.leopard_events WHERE id::text "
                                  f"IN ({leased_ids}) AND attempts >= 2"))
        taken_over = int(cluster.sql(f"SELECT count(*) FROM public.leopard_events WHERE id::text "
                                     f"IN ({leased_ids}) AND state = 'completed'"))
    missing = int(cluster.sql(
        "SELECT count(*) FROM public.leopard_events e WHERE e.tenant_slug = 'acme' "
        "AND e.event_type = 'Client.CREATE' AND e.current->>'first_name' LIKE 'kill-%' "
        "AND NOT EXISTS (SELECT 1 FROM acme.client_activities a WHERE a.event_id = e.id)"))
    dup_timeline = int(cluster.sql("SELECT count(*) FROM (SELECT event_id FROM acme.client_activities "
                                   "WHERE event_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d"))
    dup_notes = int(cluster.sql(
        "SELECT count(*) FROM (SELECT event_id, assigned_to_id, notification_type FROM "
        "acme.notifications WHERE event_id IS NOT NULL GROUP BY 1, 2, 3 HAVING count(*) > 1) d"))
    a.start()
    held = (settled and found == len(names) and missing == 0 and dup_timeline == 0
            and dup_notes == 0 and taken_over == leased)
    report("sigkill", held,
           f"killed A with {leased} leased event(s) and requests in flight; {len(names)} writes "
           f"answered 2xx, {found} found after; {taken_over}/{leased} leased events completed "
           f"afterwards ({retried} of them re-run by B after the {LEASE} s lease, the others "
           f"finished by A before the kill landed); Client.CREATE events without their timeline entry "
           f"{missing}; duplicate timeline entries {dup_timeline}, duplicate notifications "
           f"{dup_notes}; load answers {outcome['status']}")


def overload(ctx):
    a, token, args = ctx["a"], ctx["token"], ctx["args"]
    connections = 256 if args.short else 1024
    stop, health, rss = threading.Event(), [], []
    poller = threading.Thread(target=poll, args=(a.port, "/health/", None, stop, health, 0.2))
    poller.start()
    sampler = threading.Thread(target=lambda: [rss.append(a.rss_kib()) or time.sleep(0.2)
                                               for _ in iter(lambda: stop.is_set(), True)])
    sampler.start()
    before = a.rss_kib()
    traffic = load(args, a.port, token, 6 if args.short else 12, connections,
                   ["/api/v1/clients/"], timeout=30)
    outcome = result(traffic)
    stop.set()
    poller.join()
    sampler.join()
    peak = max(rss, default=0)
    health_ok = sum(1 for _, s in health if s == 200)
    held = (only(outcome["status"], {200, 503}) and outcome["bad_503"] == 0
            and not outcome["failures"] and health_ok == len(health) and peak <= 128 * 1024)
    report("overload", held,
           f"{connections} connections on a pool of {a.pool}: {outcome['requests']} answers "
           f"{outcome['status']} ({outcome['rps']} req/s, p50 {outcome['p50_ms']} ms, p99 "
           f"{outcome['p99_ms']} ms), 503 without JSON or Retry-After {outcome['bad_503']}, "
           f"transport failures {outcome['failures'] or 0}; /health/ 200 in {health_ok}/"
           f"{len(health)} probes; RSS {before // 1024} MiB before, peak {peak // 1024} MiB")


def read_until_closed(sock, timeout=None):
    """Everything the peer sends until it closes the connection (or `timeout` passes)."""
    if timeout is not None:
        sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except OSError:
        pass
    return received


def hostile(ctx):
    a, token, args = ctx["a"], ctx["token"], ctx["args"]
    # Slow headers: closed after the header timeout.
    s = socket.create_connection(("127.0.0.1", a.port))
    s.sendall(b"GET /health/ HTTP/1.1\r\nHost: acme.loc")
    t0 = time.monotonic()
    read_until_closed(s, HEADER_TIMEOUT + 5)
    slow_headers = time.monotonic() - t0
    s.close()
    # Slow body: a 408 JSON after the body timeout.
    s = socket.create_connection(("127.0.0.1", a.port))
    s.sendall((f"POST /api/v1/clients/ HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}"
               "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"first").encode())
    t0 = time.monotonic()
    answer = read_until_closed(s, BODY_TIMEOUT + 5)
    slow_body = time.monotonic() - t0
    s.close()
    slow_body_ok = answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    # Oversized body: 413 JSON.
    status, _, body = request(a.port, "POST", "/api/v1/clients/", token=token,
                              body={"first_name": "x" * (2 * 1024 * 1024)})
    big_ok = status == 413 and b"request_too_large" in body
    # Idle connections beside real clients.
    idle_count = 2000 if args.short else 10000
    idle = []
    for _ in range(idle_count):
        try:
            idle.append(socket.create_connection(("127.0.0.1", a.port), timeout=5))
        except OSError:
            break
    opened = len(idle)
    latencies, statuses = [], {}
    for i in range(200):
        t = time.monotonic()
        st = request(a.port, "GET", "/api/v1/clients/" if i % 2 else "/health/", token=token)[0]
        latencies.append(time.monotonic() - t)
        statuses[st] = statuses.get(st, 0) + 1
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    time.sleep(HEADER_TIMEOUT + 2)
    closed = 0
    for sock in idle:
        sock.setblocking(False)
        try:
            if sock.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    # Streams of clients that went away are reclaimed (the 1 s heartbeat finds them).
    baseline = a.client_connections()
    streams = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", a.port))
        sock.sendall(f"GET /api/v1/notifications/stream/?token={token} HTTP/1.1\r\n"
                     f"Host: {HOST}\r\n\r\n".encode())
        streams.append(sock)
    time.sleep(1)
    with_streams = a.client_connections()
    for sock in streams:
        sock.close()
    time.sleep(3)
    after = a.client_connections()
    held = (slow_headers <= HEADER_TIMEOUT + 2 and slow_body_ok and slow_body <= BODY_TIMEOUT + 2
            and big_ok and opened == idle_count and statuses == {200: 200} and closed == opened
            and with_streams >= baseline + 50 and after <= baseline)
    report("hostile_clients", held,
           f"slow headers closed after {slow_headers:.1f} s; slow body answered 408 JSON after "
           f"{slow_body:.1f} s: {'yes' if slow_body_ok else 'no'}; 2 MiB body 413 JSON: "
           f"{'yes' if big_ok else 'no'}; {opened} idle connections: 200 real requests answered "
           f"{statuses}, p99 {p99:.0f} ms, {closed} idle ones closed by the header timeout; "
           f"50 abandoned streams: the server's client connections {baseline} -> "
           f"{with_streams} -> {after}")


def graceful(ctx):
    a, cluster, token, args = ctx["a"], ctx["cluster"], ctx["token"], ctx["args"]
    pid = str(a.proc.pid)
    traffic = load(args, a.port, token, 5, 8, ["/api/v1/clients/"], write_every=4,
                   branch=ctx["branch"], prefix="term")
    stream = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    stream.sendall(f"GET /api/v1/notifications/stream/?token={token} HTTP/1.1\r\n"
                   f"Host: {HOST}\r\n\r\n".encode())
    body = json.dumps({"first_name": "term-inflight", "gender": "MALE", "country": "AU",
                       "branch_id": ctx["branch"]}).encode()
    inflight = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    inflight.sendall((f"POST /api/v1/clients/ HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer "
                      f"{token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                      "\r\n\r\n").encode() + body[:10])
    time.sleep(1.5)
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    try:
        socket.create_connection(("127.0.0.1", a.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    inflight.sendall(body[10:])
    answer = read_until_closed(inflight)
    frames = read_until_closed(stream)
    try:
        a.proc.wait(SHUTDOWN_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        pass
    exited = time.monotonic() - t0 if a.proc.poll() is not None else None
    code = a.proc.returncode
    outcome = result(traffic)
    leased = int(cluster.sql("SELECT count(*) FROM public.leopard_events "
                             f"WHERE state = 'running' AND locked_by LIKE '{pid}-%'"))
    retry = b"retry: 1000" in frames
    a.start()
    held = (refused and answer.startswith(b"HTTP/1.1 201") and retry and exited is not None
            and exited <= SHUTDOWN_TIMEOUT + 2 and code == 0 and leased == 0
            and only(outcome["status"], {200, 201}))
    report("graceful_shutdown", held,
           f"in-flight request answered {answer[:12].decode(errors='replace')!r}; new "
           f"connections refused: {'yes' if refused else 'no'}; stream ended with retry: "
           f"{'yes' if retry else 'no'}; exit {code} after {exited if exited is None else round(exited, 2)} s "
           f"(bound {SHUTDOWN_TIMEOUT} s); leases left {leased}; load answers {outcome['status']}")


def isolation(ctx):
    a, b, cluster, args = ctx["a"], ctx["b"], ctx["cluster"], ctx["args"]
    count = 10 if args.short else 100
    total = 10_000 if args.short else 100_000
    t0 = time.monotonic()
    tenants = []
    for i in range(count):
        slug = f"soak{i:03d}"
        out = leopard(args, cluster, "tenant", "clone", "acme", slug)
        if out.returncode != 0:
            report("isolation_soak", False, f"cloning acme to {slug} failed: {out.stderr[-300:]}")
            return
        schema = cluster.sql(f"SELECT schema_name FROM public.leopard_tenants WHERE slug = '{slug}'")
        cluster.sql(f'UPDATE "{schema}".clients SET first_name = \'{slug}-\' || id')
        tenants.append({"slug": slug, "schema": schema, "host": f"{slug}.localhost"})
    setup = time.monotonic() - t0
    for port in (a.port, b.port):
        deadline = time.monotonic() + 10
        while request(port, "GET", "/api/public/tenant-info/", host=tenants[-1]["host"])[0] != 200:
            if time.monotonic() > deadline:
                report("isolation_soak", False, "the new tenants never resolved")
                return
            time.sleep(0.2)
    for t in tenants:
        t["token"] = login(a.port, "admin", host=t["host"])
        t["ids"] = [int(x) for x in cluster.sql(
            f'SELECT id FROM "{t["schema"]}".clients ORDER BY id LIMIT 20').split()]
    stop = threading.Event()
    killed = [0]

    def kill_connections():
        while not stop.is_set():
            time.sleep(0.5)
            try:
                killed[0] += len(cluster.sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "'leopard' AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                    "AND query NOT LIKE '%LISTEN%' ORDER BY random() LIMIT 2").split())
            except subprocess.CalledProcessError:
                pass

    killer = threading.Thread(target=kill_connections)
    killer.start()
    leaks, wrong, statuses, aborted = [], 0, {}, 0
    lock = threading.Lock()
    budget = [total]

    def soak_worker(seed):
        nonlocal wrong, aborted
        rnd = random.Random(seed)
        while True:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            t = rnd.choice(tenants)
            other = rnd.choice(tenants)
            port = rnd.choice((a.port, b.port))
            kind = rnd.random()
            if kind < 0.05:
                # An aborted request: half a request, then the connection is dropped.
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=2)
                    s.sendall(f"POST /api/v1/clients/ HTTP/1.1\r\nHost: {t['host']}\r\n"
                              f"Authorization: Bearer {t['token']}\r\nContent-Length: 90\r\n\r\n{{".encode())
                    s.close()
                except OSError:
                    pass
                with lock:
                    aborted += 1
                continue
            if kind < 0.45:
                st, _, body = request(port, "GET", "/api/v1/clients/?page_size=10", host=t["host"],
                                      token=t["token"])
            elif kind < 0.65:
                cid = rnd.choice(other["ids"])
                st, _, body = request(port, "GET", f"/api/v1/clients/{cid}/", host=t["host"],
                                      token=t["token"])
            elif kind < 0.8:
                # Another tenant's token on this tenant's host: refused.
                st, _, body = request(port, "GET", "/api/v1/clients/", host=t["host"],
                                      token=other["token"])
                if other is not t and st not in (401, 503):
                    with lock:
                        wrong += 1
            elif kind < 0.9:
                cid = rnd.choice(other["ids"])
                st, _, body = request(port, "PATCH", f"/api/v1/clients/{cid}/", host=t["host"],
                                      token=t["token"], body={"last_name": t["slug"]})
            else:
                st, _, body = request(port, "POST", "/api/v1/clients/", host=t["host"],
                                      token=t["token"], body={
                                          "first_name": f"{t['slug']}-new", "gender": "MALE",
                                          "country": "AU", "branch_id": 1})
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
            text = body.decode(errors="replace")
            for o in tenants:
                if o is not t and (f'"{o["slug"]}-' in text or f'"last_name":"{o["slug"]}"' in text):
                    with lock:
                        leaks.append((t["slug"], o["slug"]))

    workers = [threading.Thread(target=soak_worker, args=(i,)) for i in range(32)]
    t1 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    soak_time = time.monotonic() - t1
    stop.set()
    killer.join()
    foreign_rows = 0
    for t in tenants:
        foreign_rows += int(cluster.sql(
            f'SELECT count(*) FROM "{t["schema"]}".clients WHERE first_name NOT LIKE '
            f"'{t['slug']}-%' OR (last_name LIKE 'soak%' AND last_name <> '{t['slug']}')"))
    five = {k: v for k, v in statuses.items() if k >= 500 and k != 503}
    held = not leaks and wrong == 0 and foreign_rows == 0 and not five and 0 not in statuses
    report("isolation_soak", held,
           f"{count} tenants cloned from acme in {setup:.0f} s; {total} requests in "
           f"{soak_time:.0f} s over both servers ({statuses}; {aborted} aborted on purpose), "
           f"{killed[0]} database connections killed meanwhile; rows of another tenant returned "
           f"{len(leaks)}, wrong-tenant tokens accepted {wrong}, rows written into another "
           f"tenant {foreign_rows}")


SCENARIOS = {
    "pg_restart": pg_restart,
    "sigkill": sigkill,
    "overload": overload,
    "hostile_clients": hostile,
    "graceful_shutdown": graceful,
    "isolation_soak": isolation,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 30000), hard), hard))
    args.work = tempfile.mkdtemp(prefix="leopard-chaos.")
    started = time.monotonic()
    cluster = Cluster(args.work)
    servers = []
    try:
        cluster.start()
        cluster.create_db()
        a = Server("a", args, cluster, args.work, "demo")
        a.start()
        b = Server("b", args, cluster, args.work, "serve")
        b.start()
        servers = [a, b]
        cluster.acme = cluster.sql("SELECT schema_name FROM public.leopard_tenants WHERE slug = 'acme'")
        token = login(a.port, "admin")
        _, _, body = request(a.port, "GET", "/api/v1/branches/", token=token)
        branch = json.loads(body)["results"][0]["id"]
        ctx = {"a": a, "b": b, "cluster": cluster, "token": token, "args": args,
               "branch": branch, "consultant": login(a.port, "consultant")}
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            scenario(ctx)
    finally:
        for s in servers:
            s.stop()
        cluster.remove()
        if all(held for _, held in RESULTS):
            shutil.rmtree(args.work, ignore_errors=True)
        else:
            print(f"logs kept in {args.work}")
    print(f"chaos: {sum(1 for _, h in RESULTS if h)}/{len(RESULTS)} scenarios held in "
          f"{time.monotonic() - started:.0f} s")
    return 0 if RESULTS and all(held for _, held in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
