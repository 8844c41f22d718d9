"""A bounded, self-stopping HTTP/1.1 load client for scripts/chaos.sh (standard library only).

It talks to 127.0.0.1 only, keeps N keep-alive connections busy for a fixed time (or until a
request budget is spent), reconnects after any failure, and prints one JSON object: requests
per status, transport failures (refused, reset, timed out), latency percentiles, whether every
503 carried a JSON body and `Retry-After`, and the names of the writes answered 2xx (so the
caller can check in SQL that none was lost).

    python3 chaos_load.py --port P --host acme.localhost --token T --path /api/v1/clients/ \
        --connections 16 --duration 10 [--write-every 5] [--answered FILE] [--timeout 10]
"""

import argparse
import asyncio
import json
import random
import sys
import time


class Stats:
    def __init__(self):
        self.status = {}
        self.failures = {}
        self.latencies = []
        self.bad_503 = 0
        self.answered_writes = []
        self.requests = 0

    def fail(self, kind):
        self.failures[kind] = self.failures.get(kind, 0) + 1


async def read_response(reader, timeout):
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        body = await asyncio.wait_for(reader.readexactly(n), timeout)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)
            size = int(size_line.strip().split(b";")[0], 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
            if size == 0:
                break
            body += chunk[:-2]
    return status, headers, body


async def worker(index, args, stats, stop_at, budget):
    reader = writer = None
    n = 0
    while time.monotonic() < stop_at and (budget is None or budget[0] > 0):
        if budget is not None:
            budget[0] -= 1
        n += 1
        write = args.write_every and n % args.write_every == 0
        name = None
        if write:
            name = f"{args.prefix}-{index}-{n}"
            payload = json.dumps({
                "first_name": name, "gender": "MALE", "country": "AU",
                "branch_id": args.branch,
            }).encode()
            request = (
                f"POST /api/v1/clients/ HTTP/1.1\r\nHost: {args.host}\r\n"
                f"Authorization: Bearer {args.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode() + payload
        else:
            path = random.choice(args.path)
            auth = f"Authorization: Bearer {args.token}\r\n" if args.token else ""
            request = f"GET {path} HTTP/1.1\r\nHost: {args.host}\r\n{auth}\r\n".encode()
        started = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", args.port, limit=1 << 22), args.timeout)
            writer.write(request)
            await writer.drain()
            status, headers, body = await read_response(reader, args.timeout)
        except (ConnectionRefusedError,) as e:
            stats.fail("refused")
            writer = None
            await asyncio.sleep(0.05)
            continue
        except asyncio.TimeoutError:
            stats.fail("timeout")
            writer = close(writer)
            continue
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError, IndexError):
            stats.fail("reset")
            writer = close(writer)
            await asyncio.sleep(0.01)
            continue
        stats.latencies.append(time.monotonic() - started)
        stats.requests += 1
        stats.status[status] = stats.status.get(status, 0) + 1
        if status == 503:
            try:
                ok = json.loads(body).get("code") == "unavailable" and "retry-after" in headers
            except ValueError:
                ok = False
            if not ok:
                stats.bad_503 += 1
        if write and 200 <= status < 300:
            stats.answered_writes.append(name)
        if headers.get("connection", "").lower() == "close":
            writer = close(writer)
    close(writer)


def close(writer):
    if writer is not None:
        try:
            writer.close()
        except Exception:
            pass
    return None


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="acme.localhost")
    parser.add_argument("--token", default="")
    parser.add_argument("--path", action="append", default=[])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--requests", type=int, default=0, help="stop after this many (0: none)")
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--write-every", type=int, default=0)
    parser.add_argument("--branch", type=int, default=1)
    parser.add_argument("--prefix", default="chaos")
    parser.add_argument("--answered", default="")
    args = parser.parse_args()
    if not args.path:
        args.path = ["/health/"]
    stats = Stats()
    stop_at = time.monotonic() + args.duration
    budget = [args.requests] if args.requests else None
    started = time.monotonic()
    await asyncio.gather(*(worker(i, args, stats, stop_at, budget)
                           for i in range(args.connections)))
    elapsed = time.monotonic() - started
    if args.answered:
        with open(args.answered, "w") as f:
            f.write("\n".join(stats.answered_writes))
    print(json.dumps({
        "requests": stats.requests,
        "elapsed_s": round(elapsed, 2),
        "rps": round(stats.requests / elapsed, 1) if elapsed else 0,
        "status": {str(k): v for k, v in sorted(stats.status.items())},
        "failures": stats.failures,
        "p50_ms": round(percentile(stats.latencies, 0.50), 1),
        "p99_ms": round(percentile(stats.latencies, 0.99), 1),
        "max_ms": round(max(stats.latencies, default=0) * 1000, 1),
        "bad_503": stats.bad_503,
        "writes_answered": len(stats.answered_writes),
    }))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
