#!/usr/bin/env python3
"""Side-by-side CPU per check: upledger vs Monit vs blackbox_exporter, in one run, on loopback.

Why: a checker's cost depends on the machine (this one is a small VM where syscalls and
cross-CPU wake-ups are dear), so upledger is only compared with its peers measured in the
same run, against the same targets, with the same method.

What it does:
  * Creates a private network namespace (`upledger-bench`) that has only `lo`, and re-runs
    itself inside it (nsenter), so every process it starts inherits it: no check can leave
    127.0.0.1, and a stray name lookup fails at once.
  * Starts a target farm pinned to CPU 1, under `timeout` so it dies by itself: nginx
    (`return 200 "ok"` on 127.0.0.1:28080 and on 20 more ports 28100-28119, stub_status on
    28079) and nsd (zone bench.test, 127.0.0.1:28053, rate limiting off).
  * For each scenario, waits for an idle machine, starts the checker pinned to CPU 0, lets it
    warm up, resets its peak RSS, then reads /proc/PID/stat (utime+stime+cutime+cstime) and
    /proc/PID/task/*/schedstat at both ends of the window. Checks in the window are counted by
    the farm (nginx stub_status: requests for HTTP, accepts for TCP), by upledger's
    /metrics?refresh=false (upledger_checks_total, for DNS; `refresh=false` so that nobody
    views the status page figures, which are then not recomputed in the window) or by the
    driver (blackbox).
      upledger  http/tcp/dns x {1000 probes every 1 s, 10000 every 10 s}: 1000 checks/s;
                plus schedule lag (upledger_schedule_lag_seconds) and ledger bytes per
                result (`upledger stats --json`) when the binary has them ("n/a" otherwise)
      monit     1000 `check host` tests, `set daemon 1` (http, tcp; Monit has no DNS test)
      blackbox  blackbox_exporter driven open loop at 200 probes/s by this script's `drive`
                mode (pinned to CPU 1, Prometheus' scrape headers, keep-alive connections)
  * A window that saw foreign load (machine-wide busy minus everything in the namespace)
    above 0.3 cores is redone once, then flagged.
  * Prints a markdown table and a verdict against upledger's targets on stdout, progress on
    stderr, and writes every raw figure to SCRATCH/results.json.

Safety: everything runs in the lo-only namespace; every process started runs under
`timeout` and is stopped by its own PID (also on error or Ctrl-C); the namespace is deleted
at the end. Must run as root. The farm uses other ports and another namespace than
/work/shared/bench, so both can run (not measure) at the same time.

Internal mode: `sidebyside.py drive --kind K --rate R --seconds S` is the blackbox driver.
"""
import argparse
import asyncio
import gzip
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.join(HERE, "..", "..", "target", "release", "upledger")
NETNS = "upledger-bench"
CHECKER_CPU, FARM_CPU = 0, 1
HTTP_PORT, STATUS_PORT, TCP_FIRST, TCP_N, DNS_PORT = 28080, 28079, 28100, 20, 28053
BB_PORT, UPLEDGER_PORT = 29115, 29474
UPLEDGER_RATE = 1000          # checks/s: N probes run every N/1000 s
MONIT_CHECKS, MONIT_CYCLE_S = 1000, 1
BB_RATE, BB_TARGETS = 200, 1000
BB_MODULE = {"http": "http_2xx", "tcp": "tcp_connect", "dns": "dns_a"}
IDLE_CORES, IDLE_WAIT_S, MAX_FOREIGN_CORES = 0.3, 120, 0.3
DNS_TARGET_US = 40
RSS_LIMIT_MIB = {1000: 24, 10000: 64}
LAG_LIMIT_MS, LAG_PROBES = 50, 10000
PACKED_LIMIT_B = 16
TCK = os.sysconf("SC_CLK_TCK")
# Prometheus' scrape headers: blackbox then answers OpenMetrics, gzipped, as it does in production.
PROM_HEADERS = ("Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
                "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 5\r\n")
# No proxy for anyone: reqwest, Go and urllib would otherwise honour *_proxy variables.
CHILD_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

STARTED = []  # Popen objects of the `timeout` wrappers started by this run


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def start(cmd, cpu, ttl, out):
    """Start `taskset -c CPU timeout TTL CMD` (CMD is args[5:]); `out` is a log path or
    subprocess.PIPE. taskset execs, so the Popen pid is timeout's; the daemon is its child."""
    to_log = isinstance(out, str)
    p = subprocess.Popen(["taskset", "-c", str(cpu), "timeout", str(int(ttl)), *cmd],
                         stdin=subprocess.DEVNULL, stdout=open(out, "wb") if to_log else out,
                         stderr=subprocess.STDOUT if to_log else None, env=CHILD_ENV)
    STARTED.append(p)
    return p


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []


def daemon_pid(p):
    """The process `timeout` runs (what is measured)."""
    for _ in range(100):
        if kids := children(p.pid):
            return kids[0]
        if p.poll() is not None:
            raise RuntimeError(f"{p.args[5:]} exited at once (status {p.returncode})")
        time.sleep(0.05)
    raise RuntimeError(f"no child under {p.args}")


def stop(p, grace=15):
    """SIGTERM to our `timeout` (it forwards it to the daemon); SIGKILL the daemon after
    `grace` s. Only PIDs we started are signalled; an unreaped Popen pid cannot be reused."""
    if p.poll() is None:
        kids = children(p.pid)
        p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"{p.args[5]} ignored SIGTERM for {grace} s: SIGKILL")
            for k in kids:
                if k in children(p.pid):
                    os.kill(k, signal.SIGKILL)
            p.wait(5)
    STARTED.remove(p)


def wait_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.1)


def http_get(port, path, timeout=10):
    with NO_PROXY.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


# ---------------------------------------------------------------- accounting

def host_busy_ticks():
    """Machine-wide busy ticks: user nice system irq softirq steal of /proc/stat's cpu line."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def user_sys_ticks(pid):
    """(utime + cutime, stime + cstime): fields 14-17 of proc_pid_stat(5)."""
    with open(f"/proc/{pid}/stat") as f:
        utime, stime, cutime, cstime = (int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15])
    return utime + cutime, stime + cstime


def stat_ticks(pid):
    """utime + stime + cutime + cstime."""
    return sum(user_sys_ticks(pid))


def bench_ticks():
    """CPU of every live process in this namespace: checker, farm, driver, this script."""
    me, total = os.readlink("/proc/self/ns/net"), 0
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{p}/ns/net") == me:
                total += stat_ticks(p)
        except OSError:
            pass  # exited meanwhile
    return total


def snap(pid):
    sched_ns = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                sched_ns += int(f.read().split()[0])
        except OSError:
            pass
    with open(f"/proc/{pid}/status") as f:
        hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    user, system = user_sys_ticks(pid)
    return {"t": time.monotonic(), "ticks": user + system, "user": user, "sys": system,
            "sched_ns": sched_ns,
            "hwm_kb": hwm_kb, "host": host_busy_ticks(), "bench": bench_ticks()}


def wait_idle():
    """Wait (at most IDLE_WAIT_S) until the machine burns < IDLE_CORES over 2 s; other jobs
    (cargo builds) would skew every figure. Returns the last busy figure, in cores."""
    deadline = time.monotonic() + IDLE_WAIT_S
    while True:
        a = host_busy_ticks()
        time.sleep(2)
        cores = (host_busy_ticks() - a) / TCK / 2
        if cores < IDLE_CORES or time.monotonic() > deadline:
            return cores
        log(f"  machine busy ({cores:.2f} cores), waiting")


def window(pid, seconds, counters):
    """Reset peak RSS, snapshot, sleep, snapshot. `counters()` reads the check counters; it is
    called outside the CPU snapshots so its own cost (rendering /metrics) is not charged."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    c0 = counters()
    s0 = snap(pid)
    time.sleep(seconds)
    s1 = snap(pid)
    c1 = counters()
    wall = s1["t"] - s0["t"]
    bench_s, host_s = (s1["bench"] - s0["bench"]) / TCK, (s1["host"] - s0["host"]) / TCK
    fig = {"wall_s": round(wall, 3), "cpu_s": (s1["ticks"] - s0["ticks"]) / TCK,
           "user_s": (s1["user"] - s0["user"]) / TCK, "sys_s": (s1["sys"] - s0["sys"]) / TCK,
           "sched_cpu_s": (s1["sched_ns"] - s0["sched_ns"]) / 1e9,
           "peak_rss_mib": round(s1["hwm_kb"] / 1024, 1),
           "host_busy_cores": round(host_s / wall, 3), "bench_cores": round(bench_s / wall, 3),
           "foreign_cores": round((host_s - bench_s) / wall, 3)}
    return fig, (s0["t"], s1["t"]), c0, c1


def farm_counters():
    """nginx stub_status (accepts, requests); each read adds one of each itself."""
    accepts, _handled, requests = http_get(STATUS_PORT, "/status").split("\n")[2].split()
    return int(accepts), int(requests)


# ---------------------------------------------------------------- farm

def start_farm(scratch, ttl):
    d = os.path.join(scratch, "farm")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(f"{d}/nginx-tmp")
    listens = "".join(f"    listen 127.0.0.1:{TCP_FIRST + i} backlog=4096;\n" for i in range(TCP_N))
    temp = " ".join(f"{k}_temp_path {d}/nginx-tmp/{k};" for k in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  default_type text/plain;
  keepalive_requests 1000000;
  {temp}
  server {{
    listen 127.0.0.1:{HTTP_PORT} backlog=4096;
{listens}    location / {{ return 200 "ok\\n"; }}
  }}
  server {{ listen 127.0.0.1:{STATUS_PORT}; location /status {{ stub_status; }} }}
}}
""")
    shutil.copy(os.path.join(HERE, "bench.test.zone"), d)
    with open(f"{d}/nsd.conf", "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{DNS_PORT}
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{d}"
  zonelistfile: "{d}/zone.list"
  database: ""
  xfrdfile: "{d}/xfrd.state"
  pidfile: "{d}/nsd.pid"
  logfile: "{d}/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: bench.test.zone
""")
    nginx = ["nginx", "-e", f"{d}/nginx-error.log", "-c", f"{d}/nginx.conf"]
    subprocess.run([*nginx, "-t", "-q"], check=True, timeout=30)
    start(nginx, FARM_CPU, ttl, f"{d}/nginx.out")
    start(["nsd", "-d", "-c", f"{d}/nsd.conf"], FARM_CPU, ttl, f"{d}/nsd.out")
    wait_port(HTTP_PORT)
    assert http_get(HTTP_PORT, "/t/0") == "ok\n"
    for _ in range(50):
        dig = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(DNS_PORT),
                              "@127.0.0.1", "www.bench.test", "A"],
                             capture_output=True, text=True, timeout=10)
        if dig.stdout.strip() == "127.0.0.1":
            return
        time.sleep(0.1)
    raise RuntimeError(f"nsd does not answer on 127.0.0.1:{DNS_PORT} (see {d}/nsd.log)")


# ---------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    checker: str          # upledger | monit | blackbox
    kind: str             # http | tcp | dns
    probes: int           # configured probes (blackbox: distinct targets)
    interval_s: float     # check interval (monit: cycle); blackbox: 0, it is driven
    reuse: bool = False   # upledger's reuse_connection

    def label(self):
        kind = self.kind + (", reuse" if self.reuse else "")
        return f"{self.checker} {kind} {self.probes}" + (
            f" @ {duration(self.interval_s)}" if self.interval_s else f" @ {BB_RATE}/s")


def duration(seconds):
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def upledger_config(a, sc):
    """Write and validate upledger's config for `sc`; returns the main file."""
    d = os.path.join(a.scratch, "upledger")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(f"{d}/probes.d")
    main = f"{d}/upledger.toml"
    with open(main, "w") as f:
        f.write(f"""[daemon]
ledger = "{d}/ledger"
probes_dir = "probes.d"
listen = "127.0.0.1:{UPLEDGER_PORT}"
socket = "{d}/upledger.sock"
max_concurrency = 512
[defaults]
interval = "{duration(sc.interval_s)}"
timeout = "{duration(min(5.0, sc.interval_s * 0.9))}"
""")
    reuse = "reuse_connection = true\n" if sc.reuse else ""
    target = {"http": lambda i: f'url = "http://127.0.0.1:{HTTP_PORT}/t/{i}"\n{reuse}',
              "tcp": lambda i: f'address = "127.0.0.1:{TCP_FIRST + i % TCP_N}"\n',
              "dns": lambda i: f'query = "www.bench.test"\nrecord = "A"\n'
                               f'server = "127.0.0.1:{DNS_PORT}"\n'}[sc.kind]
    with open(f"{d}/probes.d/bench.toml", "w") as f:
        f.writelines(f'[[probe]]\nname = "t{i}"\nkind = "{sc.kind}"\n{target(i)}\n'
                     for i in range(sc.probes))
    v = subprocess.run([a.bin, "validate", "--config", main], capture_output=True, text=True,
                       timeout=120)
    if v.returncode:
        lines = (v.stdout + v.stderr).splitlines()
        if len(lines) > 6:  # often one line per probe: the first few and the summary
            lines[5:-1] = ["..."]
        raise RuntimeError(f"upledger validate failed for {main}:\n" + "\n".join(lines))
    return main


def upledger_metrics():
    """(sum of upledger_checks_total, {le label: cumulative count} of the schedule lag)."""
    checks, lag = 0.0, {}
    # `refresh=false`: reading the counters must not make the daemon recompute the status
    # page figures (a month of availability of every probe) inside the window.
    for line in http_get(UPLEDGER_PORT, "/metrics?refresh=false").splitlines():
        if line.startswith("upledger_checks_total{"):
            checks += float(line.rsplit(" ", 1)[1])
        elif m := re.match(r'upledger_schedule_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', line):
            lag[m[1]] = float(m[2])
    return checks, lag


def quantile(q, buckets):
    """histogram_quantile over cumulative [(le, count)]: linear inside the bucket holding the
    rank (the first bucket starts at 0; a rank in +Inf gives the highest finite bound).
    Returns (value, upper bound of that bucket)."""
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return lower, le
            return lower + (le - lower) * (rank - below) / (n - below), le
        lower, below = le, n


def lag_figures(lag0, lag1):
    """p50 and p99 of the schedule lag over the window, from the bucket deltas."""
    delta = {le: n - lag0.get(le, 0) for le, n in lag1.items()}
    buckets = sorted((float(le), n) for le, n in delta.items())
    if not buckets or buckets[-1][1] <= 0:
        return None
    (p50, _), (p99, p99_le) = quantile(0.5, buckets), quantile(0.99, buckets)
    return {"count": buckets[-1][1], "p50_ms": round(p50 * 1e3, 3), "p99_ms": round(p99 * 1e3, 3),
            "p99_bucket_le_ms": f"{p99_le * 1e3:g}", "bucket_deltas": delta}


def ledger_figures(a, config):
    s = subprocess.run([a.bin, "stats", "--json", "--config", config], capture_output=True,
                       text=True, timeout=300)
    try:
        stats = json.loads(s.stdout) if s.returncode == 0 else None
    except ValueError:
        stats = None
    if not stats or not stats.get("results"):
        log(f"  `upledger stats --json` unavailable (exit {s.returncode}): ledger n/a")
        return None
    return {**stats, "packed_b_per_result": round(stats["payload_bytes"] / stats["results"], 2),
            "disk_b_per_result": round(stats["disk_bytes"] / stats["results"], 2)}


def run_upledger(a, sc, config):
    shutil.rmtree(os.path.join(a.scratch, "upledger", "ledger"), ignore_errors=True)
    p = start([a.bin, "run", "--config", config], CHECKER_CPU, a.warmup + a.window + 120,
              os.path.join(a.scratch, "upledger", "daemon.log"))
    pid = daemon_pid(p)
    wait_port(UPLEDGER_PORT)
    time.sleep(a.warmup)
    fig, _, (f0, m0), (f1, m1) = window(pid, a.window,
                                        lambda: (farm_counters(), upledger_metrics()))
    stop(p)
    farm = {"http": f1[1] - f0[1] - 1, "tcp": f1[0] - f0[0] - 1}
    by_metrics = m1[0] - m0[0]
    # DNS never reaches nginx
    counted_by_metrics = sc.kind == "dns"
    fig.update(checks=int(by_metrics if counted_by_metrics else farm[sc.kind]),
               checks_counted_by="upledger_checks_total" if counted_by_metrics else "nginx",
               checks_by_metrics=int(by_metrics), lag=lag_figures(m0[1], m1[1]),
               ledger=ledger_figures(a, config), expected_rate=sc.probes / sc.interval_s)
    return fig


def monit_rc(a, sc):
    d = os.path.join(a.scratch, "monit")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    test = {"http": lambda i: f'port {HTTP_PORT} protocol http request "/t/{i}"',
            "tcp": lambda i: f"port {TCP_FIRST + i % TCP_N} type tcp"}[sc.kind]
    rc = f"{d}/monitrc"
    with open(os.open(rc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f"set daemon {int(sc.interval_s)}\nset log {d}/monit.log\n"
                f"set pidfile {d}/monit.pid\nset idfile {d}/monit.id\n"
                f"set statefile {d}/monit.state\n")
        f.writelines(f"check host t{i} with address 127.0.0.1\n"
                     f"  if failed {test(i)} with timeout 5 seconds then alert\n"
                     for i in range(sc.probes))
    subprocess.run(["monit", "-t", "-c", rc], check=True, stdout=subprocess.DEVNULL, timeout=60)
    return rc


def run_monit(a, sc, rc):
    d = os.path.dirname(rc)
    for f in ("monit.state", "monit.log"):
        if os.path.exists(f"{d}/{f}"):
            os.remove(f"{d}/{f}")
    p = start(["monit", "-I", "-c", rc], CHECKER_CPU, a.warmup + a.window + 60, f"{d}/monit.out")
    pid = daemon_pid(p)
    time.sleep(a.warmup)
    fig, _, f0, f1 = window(pid, a.window, farm_counters)
    stop(p)
    fig["checks"] = (f1[1] - f0[1] if sc.kind == "http" else f1[0] - f0[0]) - 1
    fig["checks_counted_by"] = "nginx"
    return fig


def run_blackbox(a, sc, _):
    d = os.path.join(a.scratch, "blackbox")
    os.makedirs(d, exist_ok=True)
    ttl = a.warmup + a.window + 60
    p = start([a.blackbox, f"--config.file={HERE}/blackbox.yml",
               f"--web.listen-address=127.0.0.1:{BB_PORT}"], CHECKER_CPU, ttl, f"{d}/exporter.log")
    pid = daemon_pid(p)
    wait_port(BB_PORT)
    drv = start([sys.executable, os.path.abspath(__file__), "drive", "--kind", sc.kind,
                 "--rate", str(BB_RATE), "--seconds", str(a.warmup + a.window + 2)],
                FARM_CPU, ttl, subprocess.PIPE)
    time.sleep(a.warmup)
    fig, (t0, t1), _, _ = window(pid, a.window, lambda: None)
    out, _ = drv.communicate(timeout=ttl)
    stop(drv)
    stop(p)
    done = [(t, ok) for t, ok in json.loads(out)["done"] if t0 <= t < t1]
    fig.update(checks=len(done), checks_ok=sum(ok for _, ok in done),
               checks_counted_by="driver", expected_rate=BB_RATE)
    return fig


RUNNERS = {"upledger": (upledger_config, run_upledger), "monit": (monit_rc, run_monit),
           "blackbox": (lambda a, sc: None, run_blackbox)}


def measure(a, sc):
    """One scenario: prepare, then measure; a window with foreign load is redone once."""
    prepare, run = RUNNERS[sc.checker]
    setup = prepare(a, sc)
    for attempt in (1, 2):
        idle = wait_idle()
        log(f"{sc.label()}: measuring (attempt {attempt}, machine at {idle:.2f} cores before)")
        started = time.time()
        fig = run(a, sc, setup)
        fig.update(checker=sc.checker, kind=sc.kind, probes=sc.probes,
                   interval_s=sc.interval_s, reuse=sc.reuse, attempt=attempt,
                   busy_cores_before=round(idle, 3), started_at=time.strftime(
                       "%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                   seconds=round(time.time() - started, 1),
                   checks_per_s=round(fig["checks"] / fig["wall_s"], 1),
                   cpu_us_per_check=round(fig["cpu_s"] * 1e6 / max(fig["checks"], 1), 2),
                   user_us_per_check=round(fig["user_s"] * 1e6 / max(fig["checks"], 1), 2),
                   sys_us_per_check=round(fig["sys_s"] * 1e6 / max(fig["checks"], 1), 2),
                   sched_us_per_check=round(fig["sched_cpu_s"] * 1e6 / max(fig["checks"], 1), 2))
        log(f"  {fig['checks_per_s']} checks/s, {fig['cpu_us_per_check']} CPU-µs/check "
            f"(user {fig['user_us_per_check']}, system {fig['sys_us_per_check']}; schedstat {fig['sched_us_per_check']}), peak RSS {fig['peak_rss_mib']} MiB, "
            f"foreign load {fig['foreign_cores']:.2f} cores")
        if fig["foreign_cores"] <= MAX_FOREIGN_CORES:
            break
        log("  foreign load above the limit" + (": redoing" if attempt == 1 else ""))
    return fig


# ---------------------------------------------------------------- report

def flags(r):
    out = []
    if r["foreign_cores"] > MAX_FOREIGN_CORES:
        out.append(f"foreign load {r['foreign_cores']:.2f} cores")
    if r["busy_cores_before"] >= IDLE_CORES:
        out.append(f"not idle at start ({r['busy_cores_before']:.2f} cores)")
    if r.get("expected_rate") and r["checks_per_s"] < 0.95 * r["expected_rate"]:
        out.append(f"below {r['expected_rate']:g} checks/s")
    if "checks_ok" in r and r["checks_ok"] < r["checks"]:
        out.append(f"{r['checks'] - r['checks_ok']} probes failed")
    return "; ".join(out) or "-"


def peer(rows, checker, kind):
    return next((r for r in rows if r["checker"] == checker and r["kind"] == kind), None)


def ratio(r, other):
    return f"{r['cpu_us_per_check'] / other['cpu_us_per_check']:.2f}×" if other else "n/a"


def table(rows):
    head = ["checker", "kind", "probes", "interval", "checks/s", "CPU-µs/check (stat)",
            "CPU-µs/check (schedstat)", "peak RSS MiB", "lag p50 / p99 ms (p99 bucket ≤)",
            "B/result packed", "B/result on disk", "÷ Monit", "÷ blackbox",
            f"÷ {DNS_TARGET_US} µs target", "flags"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        mine = r["checker"] == "upledger"
        lag, led = r.get("lag"), r.get("ledger")
        cells = [r["checker"], r["kind"] + (", reuse" if r["reuse"] else ""), r["probes"],
                 duration(r["interval_s"]) if r["interval_s"] else f"driven {BB_RATE}/s",
                 r["checks_per_s"], r["cpu_us_per_check"], r["sched_us_per_check"],
                 r["peak_rss_mib"],
                 "-" if not mine else "n/a" if not lag else
                 f"{lag['p50_ms']:.2f} / {lag['p99_ms']:.2f} (≤ {lag['p99_bucket_le_ms']})",
                 "-" if not mine else led["packed_b_per_result"] if led else "n/a",
                 "-" if not mine else led["disk_b_per_result"] if led else "n/a",
                 ratio(r, peer(rows, "monit", r["kind"])) if mine and r["kind"] != "dns" else "-",
                 ratio(r, peer(rows, "blackbox", r["kind"])) if mine else "-",
                 ratio(r, {"cpu_us_per_check": DNS_TARGET_US}) if mine and r["kind"] == "dns"
                 else "-", flags(r)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def verdict(rows):
    def line(ok, what, figure):
        return f"- {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {what}: {figure}"

    out = []
    for r in (r for r in rows if r["checker"] == "upledger"):
        name, cpu = Scenario(r["checker"], r["kind"], r["probes"], r["interval_s"],
                             r["reuse"]).label(), r["cpu_us_per_check"]
        if r["kind"] in ("http", "tcp"):
            m = peer(rows, "monit", r["kind"])
            out.append(line(m and cpu <= m["cpu_us_per_check"], f"{name}: CPU/check ≤ Monit",
                            f"{cpu} vs {m['cpu_us_per_check']} µs ({ratio(r, m)})" if m
                            else f"{cpu} µs, Monit not measured"))
        else:
            out.append(line(cpu <= DNS_TARGET_US, f"{name}: CPU/check ≤ {DNS_TARGET_US} µs",
                            f"{cpu} µs"))
        if limit := RSS_LIMIT_MIB.get(r["probes"]):
            out.append(line(r["peak_rss_mib"] <= limit, f"{name}: peak RSS ≤ {limit} MiB",
                            f"{r['peak_rss_mib']} MiB"))
        if r["probes"] == LAG_PROBES:
            lag = r["lag"]
            out.append(line(lag and lag["p99_ms"] <= LAG_LIMIT_MS,
                            f"{name}: p99 schedule lag ≤ {LAG_LIMIT_MS} ms",
                            f"{lag['p99_ms']:.2f} ms" if lag else "n/a"))
        led = r["ledger"]
        out.append(line(led and led["packed_b_per_result"] <= PACKED_LIMIT_B,
                        f"{name}: ledger ≤ {PACKED_LIMIT_B} B/result packed",
                        f"{led['packed_b_per_result']} B" if led else "n/a"))
    return "\n".join(out)


# ---------------------------------------------------------------- blackbox driver (drive mode)

class Pool:
    """Keep-alive HTTP/1.1 connections to the exporter, opened on demand, at most `cap`."""

    def __init__(self, cap):
        self.idle, self.slots = [], asyncio.Semaphore(cap)

    async def get(self, path):
        async with self.slots:
            r, w = self.idle.pop() if self.idle else await asyncio.open_connection(
                "127.0.0.1", BB_PORT)
            try:
                w.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{BB_PORT}\r\n"
                        f"User-Agent: Prometheus/2.42.0\r\n{PROM_HEADERS}\r\n".encode())
                head = (await r.readuntil(b"\r\n\r\n")).decode("latin1").lower()
                if "transfer-encoding: chunked" in head:
                    body = b""
                    while n := int((await r.readuntil(b"\r\n")).strip(), 16):
                        body += (await r.readexactly(n + 2))[:-2]
                    await r.readuntil(b"\r\n")
                else:
                    body = await r.readexactly(int(head.split("content-length:")[1].split()[0]))
            except BaseException:
                w.close()
                raise
            self.idle.append((r, w))
        return gzip.decompress(body) if "content-encoding: gzip" in head else body


async def drive_loop(kind, rate, seconds):
    """Open loop: probe k is due at start + k/rate whatever the latency; returns the
    completion time (CLOCK_MONOTONIC, comparable across processes) and outcome of each."""
    target = {"http": lambda i: f"http://127.0.0.1:{HTTP_PORT}/t/{i}",
              "tcp": lambda i: f"127.0.0.1:{TCP_FIRST + i % TCP_N}",
              "dns": lambda i: f"127.0.0.1:{DNS_PORT}"}[kind]
    pool, done = Pool(16), []

    async def one(k):
        path = (f"/probe?module={BB_MODULE[kind]}&target="
                f"{urllib.parse.quote(target(k % BB_TARGETS), safe='')}")
        try:
            body = await asyncio.wait_for(pool.get(path), 10)
            ok = re.search(rb"^probe_success 1(\.0)?$", body, re.M) is not None
        except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            ok = False
        done.append((time.monotonic(), ok))

    t0, tasks = time.monotonic(), []
    for k in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, t0 + k / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(k)))
    await asyncio.gather(*tasks)
    return {"done": done}


def drive(argv):
    p = argparse.ArgumentParser(prog="sidebyside.py drive",
                                description="blackbox driver (started by the bench itself)")
    p.add_argument("--kind", choices=BB_MODULE, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(drive_loop(a.kind, a.rate, a.seconds))))


# ---------------------------------------------------------------- main

def comma_list(choices=None, cast=str):
    def parse(text):
        items = [cast(x) for x in text.split(",") if x]
        if choices and (bad := set(items) - set(choices)):
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(map(str, bad))}")
        return items
    return parse


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: sidebyside.py --only upledger --kinds http --probes 1000 "
               "--window 15 --warmup 5")
    p.add_argument("--only", type=comma_list(RUNNERS), default=list(RUNNERS),
                   help="checkers to measure (default: upledger,monit,blackbox)")
    p.add_argument("--kinds", type=comma_list(BB_MODULE), default=list(BB_MODULE),
                   help="check kinds (default: http,tcp,dns)")
    p.add_argument("--probes", type=comma_list(cast=int), default=[1000, 10000],
                   help=f"upledger probe counts, each at interval N/{UPLEDGER_RATE} s "
                        "(default: 1000,10000)")
    p.add_argument("--window", type=float, default=60, help="measured seconds (default 60)")
    p.add_argument("--warmup", type=float, default=10, help="seconds before it (default 10)")
    p.add_argument("--reuse", action="store_true",
                   help="add reuse_connection = true to upledger's http probes (a TCP check is the connect)")
    p.add_argument("--bin", default=os.path.normpath(DEFAULT_BIN),
                   help="upledger binary (default: target/release/upledger of this repo)")
    p.add_argument("--scratch", default="/tmp/upledger-bench",
                   help="configs, logs, ledger, results.json (default /tmp/upledger-bench)")
    return p.parse_args()


def check_tools(a):
    need = {"nginx": "nginx-light", "nsd": "nsd", "dig": "bind9-dnsutils", "ip": "iproute2",
            "nsenter": "util-linux", "taskset": "util-linux", "timeout": "coreutils"}
    if "monit" in a.only:
        need["monit"] = "monit"
    missing = sorted({pkg for tool, pkg in need.items() if not shutil.which(tool)})
    a.blackbox = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if "blackbox" in a.only and not a.blackbox:
        missing.append("prometheus-blackbox-exporter")
    if missing:
        sys.exit(f"missing tools; install them with: apt-get install -y {' '.join(missing)}")
    if "upledger" in a.only and not os.access(a.bin, os.X_OK):
        sys.exit(f"no upledger binary at {a.bin}: run `cargo build --release` first")


def in_netns():
    try:
        ns = os.stat(f"/run/netns/{NETNS}")
    except FileNotFoundError:
        return False
    me = os.stat("/proc/self/ns/net")
    return (ns.st_dev, ns.st_ino) == (me.st_dev, me.st_ino)


def enter_netns():
    """Create the lo-only namespace and re-run this script inside it (does not return)."""
    if subprocess.run(["ip", "netns", "add", NETNS], capture_output=True).returncode and \
            not os.path.exists(f"/run/netns/{NETNS}"):
        sys.exit(f"cannot create network namespace {NETNS}")
    subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True)
    os.execvp("nsenter", ["nsenter", f"--net=/run/netns/{NETNS}", sys.executable,
                          os.path.abspath(__file__), *sys.argv[1:]])


def plan(a):
    """Scenarios grouped by kind, so that peers compared are measured close in time."""
    out = []
    for kind in a.kinds:
        if "upledger" in a.only:
            out += [Scenario("upledger", kind, n, n / UPLEDGER_RATE, a.reuse and kind == "http")
                    for n in a.probes]
        if "monit" in a.only and kind != "dns":
            out.append(Scenario("monit", kind, MONIT_CHECKS, MONIT_CYCLE_S))
        if "blackbox" in a.only:
            out.append(Scenario("blackbox", kind, BB_TARGETS, 0))
    return out


def versions(a):
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    out = {"nginx": first_line(["nginx", "-v"]), "nsd": first_line(["nsd", "-v"])}
    if "upledger" in a.only:
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(a.bin).st_mtime))
        out["upledger"] = f"{first_line([a.bin, '--version'])} (copy of {a.source_bin}, " \
                          f"built {built})"
    if "monit" in a.only:
        out["monit"] = first_line(["monit", "-V"])
    if "blackbox" in a.only:
        out["blackbox"] = first_line([a.blackbox, "--version"])
    return out


def main():
    if sys.argv[1:2] == ["drive"]:
        return drive(sys.argv[2:])
    a = parse_args()
    if os.geteuid() != 0:
        sys.exit("must run as root (network namespace, CPU pinning, /proc/PID/clear_refs)")
    check_tools(a)
    if not in_netns():
        enter_netns()
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        sys.exit(f"namespace {NETNS} has interfaces other than lo: refusing to run")
    # Outgoing connections take ports from 30000 up: every listener here sits below, so a
    # check's connection (or its TIME_WAIT) never holds a port a checker wants to listen on.
    for knob, value in (("ip_local_port_range", "30000 65000"), ("tcp_tw_reuse", "1")):
        with open(f"/proc/sys/net/ipv4/{knob}", "w") as f:  # this namespace's copy
            f.write(value)
    os.sched_setaffinity(0, {FARM_CPU})  # keep this script off the checker's core
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly, as on Ctrl-C
    os.makedirs(a.scratch, exist_ok=True)
    if "upledger" in a.only:  # a rebuild during the run must not change the binary under test
        a.source_bin, a.bin = a.bin, shutil.copy2(a.bin, os.path.join(a.scratch, "upledger-bin"))
    scenarios = plan(a)
    meta = {"versions": versions(a), "args": sys.argv[1:], "window_s": a.window,
            "warmup_s": a.warmup, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    rows, t_start = [], time.monotonic()
    out_path = os.path.join(a.scratch, "results.json")

    def save():  # after every scenario, so an aborted run keeps what it measured
        meta["seconds"] = round(time.monotonic() - t_start)
        with open(out_path, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)

    try:
        save()
        start_farm(a.scratch, len(scenarios) * 2 * (a.warmup + a.window + IDLE_WAIT_S + 120) + 600)
        log(f"farm up in netns {NETNS}; {len(scenarios)} scenarios, {a.warmup:g} s warm-up + "
            f"{a.window:g} s window each")
        farm = len(STARTED)
        for sc in scenarios:
            try:
                rows.append(measure(a, sc))
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                # One scenario's failure (a port taken, a checker that would not start) must
                # not cost the others: stop what it started, keep the farm, go on.
                log(f"{sc.label()}: failed, skipped: {e}")
                for p in reversed(STARTED[farm:]):
                    stop(p)
            save()
    except (RuntimeError, subprocess.SubprocessError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted")
    finally:
        for p in reversed(STARTED[:]):
            stop(p)
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
    log(f"done in {time.monotonic() - t_start:.0f} s; raw figures in {out_path}")
    print("Checkers pinned to CPU 0, farm and driver to CPU 1, all in a lo-only namespace; "
          f"{a.warmup:g} s warm-up, {a.window:g} s window. Ratios use CPU-µs/check (stat).\n")
    print("\n".join(f"- {k}: {v}" for k, v in meta["versions"].items()) + "\n")
    print(table(rows))
    if any(r["checker"] == "upledger" for r in rows):
        print("\n### Verdict\n")
        print(verdict(rows))


if __name__ == "__main__":
    main()
