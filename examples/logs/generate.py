#!/usr/bin/env python3
"""Regenerates the bundled sample logs (deterministic: same bytes every run).

    python3 examples/logs/generate.py

Three days, 2026-11-18 .. 2026-11-20 (UTC), for the services in
config/services.toml:
  payments/  JSON lines; payments.log (11-20), payments.log.1 (11-19),
             payments.log.2.gz (11-18). Errors carry unstamped Java stack traces.
  auth/      BSD syslog (RFC 3164); auth.log (11-20), auth.log.1 (11-19),
             auth.log.2.gz (11-18).
  gateway/   RFC 5424 syslog; gateway.log (11-20), gateway.log.1 (11-19 and 11-18).

The story worth searching for: on 2026-11-20 between 14:05 and 14:35 UTC the
bank connector of payments times out (payments "timeout" errors, gateway 504s
with the same request ids), and at 03:10-03:40 the same day an SSH brute
force from 203.0.113.77 hits auth.
"""
import datetime as dt
import gzip
import io
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = dt.timezone.utc
DAYS = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
INCIDENT = (dt.time(14, 5), dt.time(14, 35))
BRUTE = (dt.time(3, 10), dt.time(3, 40))

rng = random.Random(20261120)


def rid():
    return "req-%012x" % rng.getrandbits(48)


def stamps(day, n):
    start = dt.datetime.combine(day, dt.time(0, 0), UTC)
    secs = sorted(rng.randrange(0, 86400 * 1000) for _ in range(n))
    return [start + dt.timedelta(milliseconds=s) for s in secs]


def in_window(t, w):
    return w[0] <= t.time() < w[1]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


STACK = [
    "java.net.SocketTimeoutException: Read timed out after 30000 ms",
    "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
    "\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:314)",
    "\tat okhttp3.internal.connection.RealCall.execute(RealCall.kt:154)",
    "\tat com.example.payments.bank.BankGatewayClient.authorize(BankGatewayClient.java:87)",
    "\tat com.example.payments.service.ChargeService.charge(ChargeService.java:142)",
    "\tat com.example.payments.api.ChargeController.create(ChargeController.java:61)",
    "Caused by: java.io.InterruptedIOException: timeout",
    "\tat okio.AsyncTimeout.newTimeoutException(AsyncTimeout.kt:203)",
    "\t... 12 more",
]
NPE = [
    "java.lang.NullPointerException: Cannot invoke \"com.example.payments.model.Card.getBin()\" because \"card\" is null",
    "\tat com.example.payments.risk.RiskScorer.score(RiskScorer.java:56)",
    "\tat com.example.payments.service.ChargeService.charge(ChargeService.java:118)",
    "\tat com.example.payments.api.ChargeController.create(ChargeController.java:61)",
]

incident_ids = {}  # day -> request ids that timed out (shared with the gateway)


def payments_day(day):
    lines = []
    ids = []
    for t in stamps(day, 800 if day != DAYS[0] else 600):
        r = rid()
        roll = rng.random()
        rec = {"timestamp": iso(t), "service": "payments", "request_id": r}
        incident = day == DAYS[2] and in_window(t, INCIDENT)
        if incident and roll < 0.55:
            rec.update(level="ERROR", logger="com.example.payments.bank.BankGatewayClient",
                       msg="bank authorization timeout after 30000 ms", upstream="bank-gw", duration_ms=30000 + rng.randrange(0, 40))
            lines.append(json.dumps(rec))
            lines.extend(STACK)
            ids.append(r)
            continue
        if roll < 0.70:
            amt = rng.randrange(100, 250000)
            rec.update(level="INFO", logger="com.example.payments.api.ChargeController", msg="charge created",
                       amount_cents=amt, currency=rng.choice(["EUR", "USD", "GBP"]), duration_ms=rng.randrange(40, 900))
        elif roll < 0.85:
            rec.update(level="INFO", logger="com.example.payments.api.RefundController", msg="refund issued",
                       amount_cents=rng.randrange(100, 50000), duration_ms=rng.randrange(30, 400))
        elif roll < 0.93:
            rec.update(level="WARN", logger="com.example.payments.bank.BankGatewayClient",
                       msg="slow bank response", upstream="bank-gw", duration_ms=rng.randrange(2000, 9000))
        elif roll < 0.97:
            rec.update(level="WARN", logger="com.example.payments.risk.RiskScorer", msg="card declined by risk rules",
                       rule=rng.choice(["velocity", "geo-mismatch", "bin-blocklist"]))
        elif roll < 0.99:
            rec.update(level="ERROR", logger="com.example.payments.bank.BankGatewayClient",
                       msg="bank authorization timeout after 30000 ms", upstream="bank-gw", duration_ms=30000 + rng.randrange(0, 40))
            lines.append(json.dumps(rec))
            lines.extend(STACK)
            continue
        else:
            rec.update(level="ERROR", logger="com.example.payments.service.ChargeService", msg="charge failed: internal error")
            lines.append(json.dumps(rec))
            lines.extend(NPE)
            continue
        lines.append(json.dumps(rec))
    incident_ids[day] = ids
    return lines


HOSTS_OK = ["198.51.100.%d" % i for i in (12, 40, 41, 77, 200)]
USERS = ["alice", "bob", "deploy", "carol", "ci-runner"]
BAD_USERS = ["admin", "root", "oracle", "test", "ubuntu", "postgres", "git", "guest"]


def auth_day(day):
    out = []
    for t in stamps(day, 700):
        stamp = t.strftime("%b ") + ("%2d" % t.day) + t.strftime(" %H:%M:%S")
        pid = rng.randrange(1000, 65000)
        brute = day == DAYS[2] and in_window(t, BRUTE)
        roll = rng.random()
        if brute and roll < 0.8:
            u = rng.choice(BAD_USERS)
            msg = "sshd[%d]: Failed password for invalid user %s from 203.0.113.77 port %d ssh2" % (pid, u, rng.randrange(30000, 65000))
        elif roll < 0.45:
            msg = "sshd[%d]: Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%s" % (
                pid, rng.choice(USERS), rng.choice(HOSTS_OK), rng.randrange(30000, 65000), "%x" % rng.getrandbits(64))
        elif roll < 0.65:
            msg = "sshd[%d]: pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)" % (pid, rng.choice(USERS), rng.randrange(1000, 1010))
        elif roll < 0.80:
            msg = "sshd[%d]: pam_unix(sshd:session): session closed for user %s" % (pid, rng.choice(USERS))
        elif roll < 0.90:
            msg = "sudo: %8s : TTY=pts/%d ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart payments" % (
                rng.choice(USERS), rng.randrange(0, 4))
        elif roll < 0.97:
            msg = "sshd[%d]: Failed password for %s from %s port %d ssh2" % (pid, rng.choice(USERS), rng.choice(HOSTS_OK), rng.randrange(30000, 65000))
        else:
            msg = "sshd[%d]: error: kex_exchange_identification: Connection closed by remote host" % pid
        out.append("%s authhost %s" % (stamp, msg))
    return out


def gateway_day(day):
    out = []
    timeouts = set(incident_ids.get(day, []))
    events = [(t, None) for t in stamps(day, 700)]
    # The gateway's view of the payments timeouts: one 504 per timed-out request.
    if timeouts:
        for i, r in enumerate(sorted(timeouts)):
            t = dt.datetime.combine(day, INCIDENT[0], UTC) + dt.timedelta(seconds=rng.randrange(0, 30 * 60), milliseconds=30020)
            events.append((t, r))
        events.sort(key=lambda e: e[0])
    for t, r in events:
        pri = 134  # local0.info
        if r is not None:
            pri = 131  # local0.err
            sd = '[req@32473 id="%s" route="POST /v1/charges" upstream="payments"]' % r
            msg = "upstream timeout: status=504 duration_ms=%d" % (30000 + rng.randrange(20, 90))
        else:
            r = rid()
            route = rng.choice(["GET /v1/charges", "POST /v1/charges", "POST /v1/refunds", "GET /healthz", "GET /v1/customers"])
            roll = rng.random()
            if roll < 0.9:
                status = 200 if route.startswith("GET") else rng.choice([200, 201])
            elif roll < 0.97:
                status = rng.choice([400, 401, 404, 429])
                pri = 132  # local0.warning
            else:
                status = rng.choice([500, 502, 503])
                pri = 131
            sd = '[req@32473 id="%s" route="%s" upstream="%s"]' % (r, route, "payments" if "/v1/" in route else "-")
            msg = "request done: status=%d duration_ms=%d bytes=%d" % (status, rng.randrange(2, 1500), rng.randrange(80, 20000))
        out.append("<%d>1 %s gw-1 gateway %d - %s %s" % (pri, iso(t), 2211, sd, msg))
    return out


def write(path, lines, gz=False):
    data = ("\n".join(lines) + "\n").encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if gz:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
            f.write(data)
        data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)


def main():
    p = {d: payments_day(d) for d in DAYS}
    write(os.path.join(HERE, "payments/payments.log.2.gz"), p[DAYS[0]], gz=True)
    write(os.path.join(HERE, "payments/payments.log.1"), p[DAYS[1]])
    write(os.path.join(HERE, "payments/payments.log"), p[DAYS[2]])
    a = {d: auth_day(d) for d in DAYS}
    write(os.path.join(HERE, "auth/auth.log.2.gz"), a[DAYS[0]], gz=True)
    write(os.path.join(HERE, "auth/auth.log.1"), a[DAYS[1]])
    write(os.path.join(HERE, "auth/auth.log"), a[DAYS[2]])
    g = {d: gateway_day(d) for d in DAYS}
    write(os.path.join(HERE, "gateway/gateway.log.1"), g[DAYS[0]] + g[DAYS[1]])
    write(os.path.join(HERE, "gateway/gateway.log"), g[DAYS[2]])


if __name__ == "__main__":
    main()
