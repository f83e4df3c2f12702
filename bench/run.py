#!/usr/bin/env python3
"""Gatehouse benchmark: Gatehouse against nginx on the same machine, in the same run.

Starts its own redis-server, a static upstream (nginx serving a 1 KiB file), an nginx
baseline (return 200, proxy_pass, auth_request -> Gatehouse; access log on), a bare
SwiftNIO reference server (bench/nio-reference, full runs only) and a release build of
Gatehouse at its default configuration (log level info, one access-log line per request,
password.queue_limit 64), creates one user and --sessions live sessions, drives every
scenario with wrk on loopback, and prints a table of medians and ratios (also written to
bench/RESULTS.md with the machine description). Every process it starts it ends, by PID.

    bench/run                 # full run: 3 rounds of 10 s per scenario, writes bench/RESULTS.md
    bench/run --quick         # 1 round of 3 s, verify only (the CI regression guard)
    bench/run --seconds 2 --rounds 1 --no-write   # a short full run while developing

Scenarios (wrk -t1 -c64 unless stated; each measured --rounds times, medians):
  nginx return 200               the verify baseline: nginx answering `return 200`
  nio reference return 200       bench/nio-reference answering GET /ok: SwiftNIO's ceiling for verify
  gatehouse verify (Redis up)    GET /auth/verify with one valid session, over and over
  gatehouse verify (cold cache)  before each round Redis FLUSHALL (which also empties the
                                 in-process cache), then all sessions in rotation
  gatehouse verify (rotation, warm)
                                 after one full pass over all sessions (Redis and the
                                 in-process cache hold them), all sessions in rotation
  gatehouse verify (rotation, restarted)
                                 before each round Gatehouse is stopped by PID, started and
                                 waited for until /healthz (it listens once it trusts Redis),
                                 then at once all sessions in rotation: in-process cache empty,
                                 Redis warm
  upstream direct                GET of the 1 KiB file straight from the static upstream
  nginx proxy_pass               the same through nginx proxy_pass (keep-alive upstream)
  nio reference proxy            the same through bench/nio-reference: SwiftNIO's ceiling for
                                 the proxy (NIOHTTP1 both sides, one keep-alive upstream
                                 connection per client connection, on its event loop)
  gatehouse proxy                GET /app/file with a valid session through Gatehouse's proxy
  nginx auth_request -> gatehouse
                                 nginx auth_request to Gatehouse's /auth/verify, then proxy_pass
  gatehouse verify at ~50% of peak
                                 paced verify (1 ms between requests per connection, enough
                                 connections for half the Redis-up peak): p50 and p99
  gatehouse login                POST /auth/login with the bench user, -c8, against the
                                 machine's Argon2id limit (bench/argon2_limit.c, all cores)
  login flood                    POST /auth/login for a new unknown email each time from -c256
                                 (four times password.queue_limit; abuse limits off, as for
                                 a flood from many addresses) while a second wrk runs the Redis-up
                                 verify at -c64: verify req/s against verify alone, logins
                                 answered 2xx per second, answers by status (503 overloaded is
                                 expected), and socket-level errors (expected none)
  gatehouse verify (Redis down)  redis-server killed (SIGKILL): verify from SQLite only
  memory and startup             RSS after touching every session; startup to /healthz,
                                 median of 5 restarts
"""

import argparse
import base64
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGON2 = {"memory_kib": 19456, "iterations": 2, "parallelism": 1}
# Connections of the login flood: four times password.queue_limit's default (64).
FLOOD_CONNECTIONS = 256


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url, headers=None, timeout=2):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return None, b""


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: timed out waiting for {what}")


class Processes:
    """Processes this run started, ended by PID at the end."""

    def __init__(self):
        self.started = []

    def start(self, args, log, env=None):
        handle = open(log, "ab")
        process = subprocess.Popen(args, stdout=handle, stderr=handle, env=env, start_new_session=True)
        self.started.append(process)
        return process

    def stop(self, process, sig=signal.SIGTERM):
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self):
        for process in reversed(self.started):
            self.stop(process)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def parse_wrk(output):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latencies = {}
    for percentile, value, unit in WRK_LATENCY.findall(output):
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        latencies[percentile] = float(value) * factor
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non2xx = int(non2xx.group(1)) if non2xx else 0
    socket_errors = sum(map(int, errors.groups())) if errors else 0
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    # Lines "status CODE COUNT" come from STATUS_COUNTS' done().
    statuses = {int(code): int(count) for code, count in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    return {
        "rps": rps, "p50": latencies.get("50"), "p99": latencies.get("99"), "errors": non2xx + socket_errors,
        "requests": requests, "non2xx": non2xx, "socket_errors": socket_errors, "statuses": statuses,
    }


def wrk_args(url, seconds, connections=64, script=None, timeout_seconds=2):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    return args + [url]


def wrk(url, seconds, connections=64, script=None):
    output = subprocess.run(wrk_args(url, seconds, connections, script), capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def wrk_one_pass(url, script, cap_seconds=300):
    """wrk until the one_pass script says "pass done" (wrk's main thread would otherwise sleep
    out its whole duration), then SIGINT, which ends wrk with its summary; the seconds taken."""
    started = time.monotonic()
    process = subprocess.Popen(wrk_args(url, cap_seconds, script=script), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.strip() == "pass done":
            process.send_signal(signal.SIGINT)
            break
    process.communicate()
    return time.monotonic() - started


def wrk_together(*runs):
    """Runs several wrk at the same time, each given as wrk_args' arguments; their results in order."""
    processes = [subprocess.Popen(wrk_args(*run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for run in runs]
    results = []
    for process in processes:
        output, error = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"bench: wrk failed: {error.strip()}")
        results.append(parse_wrk(output))
    return results


def lua_script(directory, name, body):
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        handle.write(body)
    return path


def cookie_script(directory, cookies_file, path, method="GET", delay_ms=None, one_pass=False):
    delay = f"function delay() return {delay_ms} end\n" if delay_ms else ""
    # One pass: once as many responses as there are cookies have come back (every session
    # asked for once), the script says so and stops its thread; see wrk_one_pass.
    stop = (
        "local answered = 0\nfunction response()\n  answered = answered + 1\n"
        "  if answered == #cookies then io.write(\"pass done\\n\"); io.flush(); wrk.thread:stop() end\nend\n"
    ) if one_pass else ""
    # One file per (cookies, path, pacing, pass): scripts must not overwrite each other.
    name = f"cookies-{os.path.basename(cookies_file)}-{path.strip('/').replace('/', '-')}-{delay_ms or 0}{'-pass' if one_pass else ''}.lua"
    return lua_script(directory, name, f"""
local cookies = {{}}
for line in io.lines("{cookies_file}") do cookies[#cookies + 1] = line end
local index = 0
function request()
  index = index % #cookies + 1
  return wrk.format("{method}", "{path}", {{["Cookie"] = "gatehouse_session=" .. cookies[index]}})
end
{delay}{stop}""")


LOGIN = """
wrk.method = "POST"
wrk.body = '{"email":"bench@example.com","password":"benchmark password"}'
wrk.headers["Content-Type"] = "application/json"
"""

# Logins for unknown emails, each a different one: what the per-account limit and the
# lockout do not stop (a botnet's credential-stuffing flood); the dummy hash is verified.
FLOOD_LOGIN = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
function request()
  counter = counter + 1
  local body = string.format('{"email":"flood%d-%d@example.com","password":"not the password"}', math.random(1, 1000000000), counter)
  return wrk.format(nil, nil, nil, body)
end
"""

# Counts responses by status in response() and prints "status CODE COUNT" lines at the end.
STATUS_COUNTS = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do io.write(string.format("status %d %d\\n", status, count)) end
  end
end
"""


def machine_description():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_gib = int(meminfo.readline().split()[1]) / 1024 / 1024
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return (
        f"{os.cpu_count()} × {model}, {memory_gib:.0f} GiB, Linux {platform.release()}; {swift}; {nginx}; "
        f"{wrk_version.split(' [')[0]}; Redis {redis.replace('v=', '')}; wrk and the servers share the cores, all on loopback"
    )


class Bench:
    def __init__(self, options):
        self.options = options
        self.directory = tempfile.mkdtemp(prefix="gatehouse-bench-")
        self.processes = Processes()
        self.ports = {name: free_port() for name in ("redis", "upstream", "nginx", "gatehouse", "nio")}
        self.binary = options.binary or os.path.join(ROOT, ".build", "release", "gatehouse")
        self.nio_package = os.path.join(ROOT, "bench", "nio-reference")
        self.nio_binary = os.path.join(self.nio_package, ".build", "release", "nio-reference")
        self.nio_error = None
        self.results = {}
        self.redis = None
        self.gatehouse = None

    def path(self, name):
        return os.path.join(self.directory, name)

    # Setup

    def build(self):
        if not self.options.no_build and not self.options.binary:
            subprocess.run(["swift", "build", "-c", "release", "--product", "gatehouse"], cwd=ROOT, check=True)
        subprocess.run(["gcc", "-O2", "-o", self.path("argon2_limit"), os.path.join(ROOT, "bench", "argon2_limit.c"), "-largon2", "-lpthread"], check=True)

    def build_nio_reference(self):
        """Builds bench/nio-reference (full runs only); a failure is reported, and the run goes
        on without the reference rows."""
        if self.options.no_build and os.path.exists(self.nio_binary):
            return True
        build = subprocess.run(
            ["swift", "build", "-c", "release", "--package-path", self.nio_package, "--scratch-path", os.path.join(self.nio_package, ".build")],
            capture_output=True, text=True,
        )
        if build.returncode != 0:
            self.nio_error = "build failed"
            print(f"bench: bench/nio-reference did not build, going on without its rows:\n{(build.stdout + build.stderr)[-3000:]}", flush=True)
            return False
        return True

    def start_nio_reference(self):
        self.processes.start([self.nio_binary, str(self.ports["nio"]), f"127.0.0.1:{self.ports['upstream']}"], self.path("nio-reference.log"))
        try:
            wait_for(lambda: http_status(f"http://127.0.0.1:{self.ports['nio']}/ok")[0] == 200, timeout=10, what="nio reference")
        except SystemExit as error:
            self.nio_error = "did not start"
            print(f"{error}; going on without its rows", flush=True)
            return False
        return True

    def start_redis(self):
        self.redis = self.processes.start(
            ["redis-server", "--port", str(self.ports["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.directory],
            self.path("redis.log"),
        )
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.ports["redis"]), "PING"], capture_output=True, text=True).stdout.strip() == "PONG", what="redis")

    def start_nginx(self):
        root = self.path("www")
        os.makedirs(root, exist_ok=True)
        # nginx's workers run unprivileged: let them read the files.
        os.chmod(self.directory, 0o755)
        os.chmod(root, 0o755)
        payload = ("x" * 1023 + "\n").encode()
        for name in ("file", "app-file"):
            with open(os.path.join(root, name), "wb") as handle:
                handle.write(payload)
            os.chmod(os.path.join(root, name), 0o644)
        temp = "".join(f"{kind}_temp_path {self.path(kind)};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        config = f"""
worker_processes auto;
error_log {self.path('nginx-error.log')} warn;
pid {self.path('nginx.pid')};
events {{ worker_connections 4096; }}
http {{
    # The static upstream logs nothing: it serves every proxy alike.
    access_log off;
    {temp}
    upstream static {{ server 127.0.0.1:{self.ports['upstream']}; keepalive 128; }}
    upstream gatehouse {{ server 127.0.0.1:{self.ports['gatehouse']}; keepalive 128; }}
    # The static upstream every proxy in the benchmark forwards to.
    server {{
        listen 127.0.0.1:{self.ports['upstream']};
        root {root};
        location /app/file {{ try_files /app-file =404; }}
        location /file {{ try_files /file =404; }}
    }}
    # The baselines, with nginx's default access log on as Gatehouse's is (SPEC §3).
    server {{
        listen 127.0.0.1:{self.ports['nginx']};
        access_log {self.path('nginx-access.log')};
        location = /ok {{ return 200; }}
        location /proxy/ {{
            proxy_pass http://static/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location = /_verify {{
            internal;
            proxy_pass http://gatehouse/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location /ar/ {{
            auth_request /_verify;
            auth_request_set $user $upstream_http_x_user_id;
            proxy_set_header X-User-Id $user;
            proxy_pass http://static/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
        with open(self.path("nginx.conf"), "w") as handle:
            handle.write(config)
        self.processes.start(["nginx", "-p", self.directory, "-c", self.path("nginx.conf"), "-g", "daemon off;"], self.path("nginx.log"))
        wait_for(lambda: http_status(f"http://127.0.0.1:{self.ports['nginx']}/ok")[0] == 200, what="nginx")

    def write_config(self):
        config = f"""
listen: 127.0.0.1:{self.ports['gatehouse']}
database:
  path: {self.path('gatehouse.sqlite')}
redis:
  url: redis://127.0.0.1:{self.ports['redis']}/0
cookie:
  secure: false
password:
  argon2: {{memory_kib: {ARGON2['memory_kib']}, iterations: {ARGON2['iterations']}, parallelism: {ARGON2['parallelism']}}}
trusted_proxies: [127.0.0.1]
# The login scenarios measure hashing: one address and one account would meet the abuse
# limits at once. A flood from many addresses for many emails is what they do not stop.
abuse:
  login_per_ip: 0
  login_per_account: 0
  lockout: {{max_failures: 0}}
upstreams:
  static: http://127.0.0.1:{self.ports['upstream']}
routes:
  - {{prefix: /app/, upstream: static, auth: required}}
"""
        with open(self.path("gatehouse.yaml"), "w") as handle:
            handle.write(config)

    def gatehouse_cli(self, *args, stdin=""):
        return subprocess.run([self.binary, *args, "--config", self.path("gatehouse.yaml")], input=stdin, capture_output=True, text=True, check=True).stdout

    def create_sessions(self, count):
        """One user with a known password (for logins) and `count` sessions written straight
        into SQLite the way Gatehouse writes them: only the SHA-256 of each token."""
        self.gatehouse_cli("migrate")
        self.gatehouse_cli("user", "add", "bench@example.com", stdin="benchmark password\n")
        database = sqlite3.connect(self.path("gatehouse.sqlite"))
        user_id = database.execute("SELECT id FROM users WHERE email = 'bench@example.com'").fetchone()[0]
        now = int(time.time() * 1000)
        tokens = []
        rows = []
        for _ in range(count):
            raw = secrets.token_bytes(32)
            tokens.append(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
            # Last seen at a random moment of the minute before, as under a steady load: their
            # last_seen_at writes (one a minute each) then fall due spread out, not all at once.
            seen = now - secrets.randbelow(60_000)
            rows.append((str(uuid.uuid4()), hashlib.sha256(raw).hexdigest(), user_id, seen, seen + 86_400_000, seen, "127.0.0.1", "bench"))
        database.executemany("INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        database.commit()
        database.close()
        with open(self.path("cookies.txt"), "w") as handle:
            handle.write("\n".join(tokens) + "\n")
        with open(self.path("cookie-one.txt"), "w") as handle:
            handle.write(tokens[0] + "\n")
        return tokens

    def start_gatehouse(self, ready=True, environment=None):
        """Starts Gatehouse and waits for /healthz (and, with `ready`, /readyz); the seconds to
        /healthz. `environment` adds GATEHOUSE_* overrides to the default configuration."""
        started = time.monotonic()
        env = {**os.environ, **environment} if environment else None
        self.gatehouse = self.processes.start([self.binary, "serve", "--config", self.path("gatehouse.yaml")], self.path("gatehouse.log"), env=env)
        wait_for(lambda: http_status(f"http://127.0.0.1:{self.ports['gatehouse']}/healthz")[0] == 200, what="gatehouse")
        healthy = time.monotonic() - started
        if ready:
            self.wait_ready()
        return healthy

    def wait_ready(self):
        wait_for(lambda: http_status(f"http://127.0.0.1:{self.ports['gatehouse']}/readyz")[1] == b'{"status":"ready"}', what="gatehouse ready")

    # Measurements

    def rounds(self, name, measure):
        runs = [measure() for _ in range(self.options.rounds)]
        result = {key: statistics.median([run[key] for run in runs if run.get(key) is not None]) if any(run.get(key) is not None for run in runs) else None for key in ("rps", "p50", "p99")}
        result["errors"] = sum(run["errors"] for run in runs)
        self.results[name] = result
        print(f"  {name:<40} {result['rps']:>10.0f} req/s  p50 {result['p50'] or 0:.2f} ms  p99 {result['p99'] or 0:.2f} ms  errors {result['errors']}", flush=True)
        return result

    def run(self):
        seconds = self.options.seconds
        gatehouse = f"http://127.0.0.1:{self.ports['gatehouse']}"
        nginx = f"http://127.0.0.1:{self.ports['nginx']}"
        nio = f"http://127.0.0.1:{self.ports['nio']}"
        one = cookie_script(self.directory, self.path("cookie-one.txt"), "/auth/verify")
        many = cookie_script(self.directory, self.path("cookies.txt"), "/auth/verify")
        every_session_once = cookie_script(self.directory, self.path("cookies.txt"), "/auth/verify", one_pass=True)
        reference = not self.options.quick and self.build_nio_reference() and self.start_nio_reference()

        print("verify", flush=True)
        self.rounds("nginx return 200", lambda: wrk(f"{nginx}/ok", seconds))
        if reference:
            self.rounds("nio reference return 200", lambda: wrk(f"{nio}/ok", seconds))
        self.rounds("gatehouse verify (Redis up)", lambda: wrk(f"{gatehouse}/auth/verify", seconds, script=one))
        if self.options.quick:
            return

        def cold():
            subprocess.run(["redis-cli", "-p", str(self.ports["redis"]), "FLUSHALL"], capture_output=True, check=True)
            return wrk(f"{gatehouse}/auth/verify", seconds, script=many)

        self.rounds("gatehouse verify (cold cache)", cold)

        print(f"verify, {self.options.sessions:,} sessions in rotation", flush=True)
        # Two full passes first: every session then sits in Redis and, since a request lands on
        # whichever event loop its connection belongs to and each loop caches what it reads,
        # in most loops' in-process caches. A pass at the cold rate takes sessions / ~6k s; the
        # cap only keeps a stuck run bounded.
        for name in ("first", "second"):
            taken = wrk_one_pass(f"{gatehouse}/auth/verify", every_session_once)
            print(f"  {name} pass over all sessions: {taken:.1f} s", flush=True)
        self.rounds("gatehouse verify (rotation, warm)", lambda: wrk(f"{gatehouse}/auth/verify", seconds, script=many))

        def restarted():
            # The in-process cache is empty, Redis still holds every session; the server
            # listens once it trusts Redis, so /healthz is enough before the rotation starts.
            self.processes.stop(self.gatehouse)
            self.start_gatehouse(ready=False)
            return wrk(f"{gatehouse}/auth/verify", seconds, script=many)

        self.rounds("gatehouse verify (rotation, restarted)", restarted)
        self.wait_ready()

        print("proxy (1 KiB file)", flush=True)
        self.rounds("upstream direct", lambda: wrk(f"http://127.0.0.1:{self.ports['upstream']}/file", seconds))
        self.rounds("nginx proxy_pass", lambda: wrk(f"{nginx}/proxy/file", seconds))
        if reference:
            self.rounds("nio reference proxy", lambda: wrk(f"{nio}/file", seconds))
        proxied = cookie_script(self.directory, self.path("cookie-one.txt"), "/app/file")
        self.rounds("gatehouse proxy", lambda: wrk(f"{gatehouse}/app/file", seconds, script=proxied))
        # What the access log costs: the same proxy with log level warning (no access lines),
        # then back to the default.
        self.processes.stop(self.gatehouse)
        self.start_gatehouse(environment={"GATEHOUSE_LOG_LEVEL": "warning"})
        self.rounds("gatehouse proxy (log level warning)", lambda: wrk(f"{gatehouse}/app/file", seconds, script=proxied))
        self.processes.stop(self.gatehouse)
        self.start_gatehouse()
        self.rounds("nginx auth_request -> gatehouse", lambda: wrk(f"{nginx}/ar/file", seconds, script=cookie_script(self.directory, self.path("cookie-one.txt"), "/ar/file")))

        print("latency at half of verify's peak", flush=True)
        peak = self.results["gatehouse verify (Redis up)"]["rps"]
        # wrk's delay() has millisecond granularity: pace each connection at 1 ms between
        # requests and pick the connection count that offers half the peak rate (each
        # connection then sends one request per delay + service time, ~0.2 ms unloaded).
        delay = 1
        connections = max(1, round(peak / 2 * (delay / 1000 + 0.0002)))
        paced = cookie_script(self.directory, self.path("cookie-one.txt"), "/auth/verify", delay_ms=delay)
        # wrk's pacing is coarser than that model: calibrate once, then scale the connections.
        offered = wrk(f"{gatehouse}/auth/verify", 2, connections=connections, script=paced)["rps"]
        if offered > 0:
            connections = max(1, round(connections * (peak / 2) / offered))
        self.rounds("gatehouse verify at ~50% of peak", lambda: wrk(f"{gatehouse}/auth/verify", seconds, connections=connections, script=paced))

        print("login", flush=True)
        login = lua_script(self.directory, "login.lua", LOGIN)
        self.rounds("gatehouse login", lambda: wrk(f"{gatehouse}/auth/login", seconds, connections=8, script=login))
        limit = float(subprocess.run([self.path("argon2_limit"), str(ARGON2["memory_kib"]), str(ARGON2["iterations"]), str(ARGON2["parallelism"]), str(os.cpu_count()), str(seconds)], capture_output=True, text=True, check=True).stdout)
        self.results["argon2 limit"] = {"rps": limit, "p50": None, "p99": None, "errors": 0}
        print(f"  {'argon2id limit (all cores)':<40} {limit:>10.0f} hashes/s", flush=True)

        print("login flood", flush=True)
        self.login_flood(f"{gatehouse}/auth/login", lua_script(self.directory, "login-flood.lua", FLOOD_LOGIN + STATUS_COUNTS), f"{gatehouse}/auth/verify", one)

        print("Redis down", flush=True)
        self.processes.stop(self.redis, signal.SIGKILL)
        wait_for(lambda: b"degraded" in http_status(f"{gatehouse}/readyz")[1], what="degraded")
        self.rounds("gatehouse verify (Redis down)", lambda: wrk(f"{gatehouse}/auth/verify", seconds, script=one))
        self.start_redis()
        self.wait_ready()

        print("memory and startup", flush=True)
        # Touch every session once so that all are cached, then read the resident size.
        wrk_one_pass(f"{gatehouse}/auth/verify", every_session_once)
        self.results["rss_mib"] = rss_kib(self.gatehouse.pid) / 1024
        print(f"  RSS with {self.options.sessions} live sessions: {self.results['rss_mib']:.1f} MiB", flush=True)
        startups = []
        for _ in range(5):
            self.processes.stop(self.gatehouse)
            startups.append(self.start_gatehouse())
        self.results["startup_ms"] = statistics.median(startups) * 1000
        print(f"  startup to /healthz: {self.results['startup_ms']:.0f} ms (median of 5)", flush=True)

    def login_flood(self, login_url, login_script, verify_url, verify_script):
        """Logins from FLOOD_CONNECTIONS connections, far more than password.queue_limit lets
        wait for a hash, while another wrk measures verify of a logged-in session."""
        seconds = self.options.seconds
        runs = []
        for _ in range(self.options.rounds):
            # A login waits in the queue for up to queue_limit hashes (about a second here):
            # wrk's timeout is raised so that only the server's own failures count as errors.
            flood, verify = wrk_together((login_url, seconds, FLOOD_CONNECTIONS, login_script, 10), (verify_url, seconds, 64, verify_script))
            runs.append((flood, verify))
        floods = [flood for flood, _ in runs]
        verifies = [verify for _, verify in runs]
        self.results["gatehouse verify during login flood"] = {
            "rps": statistics.median(run["rps"] for run in verifies),
            "p50": statistics.median(run["p50"] for run in verifies), "p99": statistics.median(run["p99"] for run in verifies),
            "errors": sum(run["errors"] for run in verifies),
        }
        # Every email is unknown: a 401 is a login whose (dummy) hash was checked.
        ok = [run["statuses"].get(401, 0) for run in floods]
        self.results["login flood"] = {
            "rps": statistics.median(run["rps"] for run in floods),
            "p50": statistics.median(run["p50"] for run in floods), "p99": statistics.median(run["p99"] for run in floods),
            "errors": sum(run["socket_errors"] for run in floods),
            "ok_rps": statistics.median(count / seconds for count in ok),
            "statuses": {status: sum(run["statuses"].get(status, 0) for run in floods) for status in sorted({s for run in floods for s in run["statuses"]})},
        }
        verify = self.results["gatehouse verify during login flood"]
        flood = self.results["login flood"]
        print(f"  {'gatehouse verify during login flood':<40} {verify['rps']:>10.0f} req/s  p50 {verify['p50']:.2f} ms  p99 {verify['p99']:.2f} ms  errors {verify['errors']}", flush=True)
        print(f"  {'login flood (-c' + str(FLOOD_CONNECTIONS) + ')':<40} {flood['rps']:>10.0f} answers/s, {flood['ok_rps']:.1f} logins checked/s; statuses {flood['statuses']}; socket errors {flood['errors']}", flush=True)

    # Report

    def ratio(self, name, baseline):
        if name in self.results and baseline in self.results and self.results[baseline]["rps"]:
            return self.results[name]["rps"] / self.results[baseline]["rps"]
        return None

    def report(self):
        r = self.results
        rows = []

        def row(scenario, value, baseline_name, ratio, target):
            rows.append((scenario, value, baseline_name, f"{ratio:.2f}" if ratio is not None else "–", target))

        def rps(name):
            return f"{r[name]['rps']:,.0f} req/s" if name in r else "–"

        row("verify, Redis up", rps("gatehouse verify (Redis up)"), "nginx return 200", self.ratio("gatehouse verify (Redis up)", "nginx return 200"), "≥ 0.50")
        if not self.options.quick:
            missing = f" ({self.nio_error})" if self.nio_error else ""
            sessions = f"{self.options.sessions:,} sessions"
            row("verify, Redis up", rps("gatehouse verify (Redis up)"), "nio reference return 200" + missing, self.ratio("gatehouse verify (Redis up)", "nio reference return 200"), "–")
            row(f"verify, {sessions} in rotation, warm", rps("gatehouse verify (rotation, warm)"), "nginx return 200", self.ratio("gatehouse verify (rotation, warm)", "nginx return 200"), "≥ 0.40")
            row(f"verify, {sessions} in rotation, right after a restart", rps("gatehouse verify (rotation, restarted)"), "nginx return 200", self.ratio("gatehouse verify (rotation, restarted)", "nginx return 200"), "≥ 0.15")
            row(f"verify, {sessions} in rotation, cold cache (Redis flushed)", rps("gatehouse verify (cold cache)"), "nginx return 200", self.ratio("gatehouse verify (cold cache)", "nginx return 200"), "–")
            row("verify, Redis down (SQLite only)", rps("gatehouse verify (Redis down)"), "verify, Redis up", self.ratio("gatehouse verify (Redis down)", "gatehouse verify (Redis up)"), "≥ 0.25")
            row("nio reference return 200", rps("nio reference return 200"), "nginx return 200", self.ratio("nio reference return 200", "nginx return 200"), "–")
            row("proxy 1 KiB GET", rps("gatehouse proxy"), "nio reference proxy" + missing, self.ratio("gatehouse proxy", "nio reference proxy"), "≥ 0.85")
            row("proxy 1 KiB GET", rps("gatehouse proxy"), "nginx proxy_pass", self.ratio("gatehouse proxy", "nginx proxy_pass"), "≥ 0.70 (long term)")
            row("proxy 1 KiB GET", rps("gatehouse proxy"), "nginx auth_request → gatehouse", self.ratio("gatehouse proxy", "nginx auth_request -> gatehouse"), "≥ 1.20")
            row("proxy 1 KiB GET, log level info (access log on)", rps("gatehouse proxy"), "the same at log level warning", self.ratio("gatehouse proxy", "gatehouse proxy (log level warning)"), "≥ 0.90")
            row("nio reference proxy", rps("nio reference proxy"), "nginx proxy_pass", self.ratio("nio reference proxy", "nginx proxy_pass"), "–")
            row("nginx auth_request → gatehouse → upstream", rps("nginx auth_request -> gatehouse"), "upstream direct", self.ratio("nginx auth_request -> gatehouse", "upstream direct"), "–")
            row("nginx proxy_pass", rps("nginx proxy_pass"), "upstream direct", self.ratio("nginx proxy_pass", "upstream direct"), "–")
            row("login", f"{r['gatehouse login']['rps']:,.1f} req/s", "Argon2id limit", self.ratio("gatehouse login", "argon2 limit"), "≥ 0.85")
            flood = r["login flood"]
            row(f"verify during a login flood (-c{FLOOD_CONNECTIONS})", rps("gatehouse verify during login flood"), "verify, Redis up", self.ratio("gatehouse verify during login flood", "gatehouse verify (Redis up)"), "≥ 0.50")
            login_ratio = flood["ok_rps"] / r["gatehouse login"]["rps"] if r["gatehouse login"]["rps"] else None
            row("logins checked (401) during the flood", f"{flood['ok_rps']:,.1f} req/s", "login", login_ratio, "–")
            answers = ", ".join(f"{count:,} × {status}" for status, count in flood["statuses"].items())
            row("login flood answers (all rounds)", f"{answers or 'none'}; socket errors {flood['errors']}", "", None, "503 expected, no socket errors")
            paced = r["gatehouse verify at ~50% of peak"]
            peak = r["gatehouse verify (Redis up)"]["rps"]
            row(f"verify p50 / p99 at {paced['rps']:,.0f} req/s ({paced['rps'] / peak:.0%} of peak)", f"{paced['p50']:.2f} / {paced['p99']:.2f} ms", "", None, "p99 ≤ 2 ms at 50 %")
            row(f"RSS, {self.options.sessions:,} live sessions", f"{r['rss_mib']:.1f} MiB", "", None, "≤ 128 MiB")
            row("startup to /healthz", f"{r['startup_ms']:.0f} ms", "", None, "–")
        table = ["| scenario | Gatehouse | against | ratio | target |", "|---|---|---|---|---|"]
        table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
        raw = ["| measurement | req/s (median) | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
        for name, value in r.items():
            if isinstance(value, dict):
                p50 = f"{value['p50']:.2f}" if value.get("p50") is not None else "–"
                p99 = f"{value['p99']:.2f}" if value.get("p99") is not None else "–"
                raw.append(f"| {name} | {value['rps']:,.1f} | {p50} | {p99} | {value['errors']} |")
        text = "\n".join(table) + "\n\nRaw medians:\n\n" + "\n".join(raw) + "\n"
        print("\n" + text)
        return text

    def write_results(self, text):
        header = (
            "# Benchmark results\n\n"
            f"Produced by `bench/run` on {time.strftime('%Y-%m-%d')}: {self.options.rounds} rounds of {self.options.seconds} s per "
            "scenario, medians; wrk -t1 -c64 unless stated (login -c8, paced latency with 1 ms between requests per connection and enough connections for half the peak); "
            f"login flood -c{FLOOD_CONNECTIONS} with verify -c64 beside it; "
            "Gatehouse is a release build at its default configuration (log level info, one access-log line per request, "
            "password.queue_limit 64) with Redis; nginx's baselines with their access log on; "
            "bench/nio-reference is the bare SwiftNIO ceiling (built in the same run).\n\n"
            f"Machine: {machine_description()}.\n\n"
        )
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "w") as handle:
            handle.write(header + text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one 3 s round of verify vs nginx return 200 only")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per scenario (default 3, quick 1)")
    parser.add_argument("--sessions", type=int, default=100_000, help="live sessions created (default 100000)")
    parser.add_argument("--no-build", action="store_true", help="use the existing .build/release/gatehouse")
    parser.add_argument("--binary", default=None, help="benchmark this gatehouse executable instead of building .build/release/gatehouse (an A/B of two builds)")
    parser.add_argument("--quick-sessions", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--min-verify-ratio", type=float, default=None, help="exit 1 if verify/nginx is below this")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configurations) after a run")
    options = parser.parse_args()
    options.seconds = options.seconds or (3 if options.quick else 10)
    options.rounds = options.rounds or (1 if options.quick else 3)
    if options.quick:
        options.sessions = min(options.sessions, options.quick_sessions)
    bench = Bench(options)
    finished = False
    try:
        bench.build()
        bench.start_redis()
        bench.start_nginx()
        bench.write_config()
        bench.create_sessions(options.sessions)
        bench.start_gatehouse()
        bench.run()
        text = bench.report()
        if not options.quick and not options.no_write:
            bench.write_results(text)
        finished = True
    finally:
        bench.processes.stop_all()
        # At log level info the logs grow by gigabytes over a full run: kept only to look into a failure.
        if finished and not options.keep:
            shutil.rmtree(bench.directory, ignore_errors=True)
        else:
            print(f"bench: logs and configuration kept in {bench.directory}", file=sys.stderr)
    ratio = bench.ratio("gatehouse verify (Redis up)", "nginx return 200")
    if options.min_verify_ratio is not None:
        verdict = "ok" if ratio >= options.min_verify_ratio else "TOO SLOW"
        print(f"verify / nginx return 200 = {ratio:.2f} (minimum {options.min_verify_ratio:.2f}): {verdict}")
        if ratio < options.min_verify_ratio:
            sys.exit(1)


if __name__ == "__main__":
    main()
