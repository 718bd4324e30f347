#!/usr/bin/env python3
"""make bench helpers: measure one run, the batch ratio, and the final report.

    harness.py run LABEL KIND SERVER_PID POSTMASTER_PID -- COMMAND...
        Runs COMMAND; before and after, reads the CPU time (utime + stime, in clock ticks,
        from /proc/<pid>/stat) of the server and of PostgreSQL: the postmaster's own and
        its reaped children's (cutime + cstime: a pgbench backend that exited is counted
        there, once reaped: the after-reading waits for the postmaster to be back to the
        children it had before) plus every live child's (pgrep -P). Samples the server's VmRSS every 0.2 s.
        Writes target/bench/runs/LABEL.json with the output of COMMAND (KIND: wrk, pgbench
        or loadgen says how to read it). A POSTMASTER_PID of 0 means "not on this host".
    harness.py batch PORT KEY ROUNDS
        The batch-of-100 against 5 single POSTs ratio (docs/benchmarks.md, issue 4).
    harness.py report RESULTS_DIR
        Reads runs/*.json and meta.json, writes results.json, prints the markdown table
        (and, after BENCH_STATEMENT_COST=1, the cost of each statement of
        scripts/bench/statement-cost/).
"""
import glob
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def cpu_ticks(pid, children_too=False):
    try:
        fields = stat_fields(pid)
    except (OSError, ValueError):
        return 0
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if children_too:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def postgres_children(postmaster):
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
    return [int(line) for line in children.stdout.split()]


def postgres_ticks(postmaster):
    if not postmaster:
        return None
    total = cpu_ticks(postmaster, children_too=True)
    for child in postgres_children(postmaster):
        total += cpu_ticks(child)
    return total


def wait_for_backends(postmaster, count, limit_s=3.0):
    """Waits until the postmaster has no more children than `count`: the backends of a
    client that just exited (pgbench's) end a little after it, and their CPU reaches the
    postmaster's cutime only once they are reaped. Read before that, a pgbench run's
    PostgreSQL CPU would be missing the part of its backends still exiting."""
    if not postmaster:
        return
    deadline = time.monotonic() + limit_s
    while len(postgres_children(postmaster)) > count and time.monotonic() < deadline:
        time.sleep(0.05)


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run(label, kind, server, postmaster, command):
    out_dir = os.path.join(os.environ.get("BENCH_OUT", "target/bench"), "runs")
    os.makedirs(out_dir, exist_ok=True)
    rss_max = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            rss = status_kib(server, "VmRSS")
            if rss:
                rss_max[0] = max(rss_max[0], rss)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    backends_before = len(postgres_children(postmaster)) if postmaster else 0
    server_before, pg_before = cpu_ticks(server), postgres_ticks(postmaster)
    started = time.monotonic()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.start()
    done = subprocess.run(command, capture_output=True, text=True)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    sampler.join()
    elapsed = time.monotonic() - started
    wait_for_backends(postmaster, backends_before)
    server_after, pg_after = cpu_ticks(server), postgres_ticks(postmaster)
    record = {
        "label": label,
        "kind": kind,
        "command": command,
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr[-4000:],
        "elapsed_s": elapsed,
        "server_cpu_ms": (server_after - server_before) * 1000 / TICK,
        "postgres_cpu_ms": None if pg_before is None else (pg_after - pg_before) * 1000 / TICK,
        # The load generator's own CPU (wrk, pgbench, loadgen): it shares the machine.
        "client_cpu_ms": 1000 * (children_after.ru_utime + children_after.ru_stime
                                 - children_before.ru_utime - children_before.ru_stime),
        "server_rss_max_kib": rss_max[0] or None,
        "server_hwm_kib": status_kib(server, "VmHWM"),
    }
    with open(os.path.join(out_dir, f"{label}.json"), "w") as f:
        json.dump(record, f, indent=1)
    if done.returncode != 0:
        sys.stderr.write(f"bench: {label} failed ({done.returncode}):\n{done.stderr[-2000:]}\n")
        sys.exit(1)


def parse_wrk(text):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "requests": int(total.group(1)) if total else None,
        "errors": (int(bad.group(1)) if bad else 0)
        + (sum(int(g) for g in errors.groups()) if errors else 0),
    }


def parse_pgbench(text):
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    total = re.search(r"number of transactions actually processed: (\d+)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "transactions": int(total.group(1)) if total else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def per_request(ms, count):
    if ms is None or not count:
        return None
    return round(ms / count, 4)


def report(results_dir):
    with open(os.path.join(results_dir, "meta.json")) as f:
        meta = json.load(f)
    runs = {}
    for path in glob.glob(os.path.join(results_dir, "runs", "*.json")):
        with open(path) as f:
            record = json.load(f)
        runs[record["label"]] = record
    scenarios = []
    for name in meta["scenarios"]:
        entry = {"scenario": name, "title": meta["titles"].get(name, name)}

        def api_of(record):
            wrk = parse_wrk(record["stdout"])
            return {
                **wrk,
                "server_cpu_ms_per_request": per_request(record["server_cpu_ms"], wrk["requests"]),
                "postgres_cpu_ms_per_request": per_request(record["postgres_cpu_ms"], wrk["requests"]),
                "server_rss_max_kib": record["server_rss_max_kib"],
            }

        def pgbench_of(record):
            parsed = parse_pgbench(record["stdout"])
            return {
                **parsed,
                "postgres_cpu_ms_per_transaction": per_request(
                    record["postgres_cpu_ms"], parsed["transactions"]),
            }

        # The API and pgbench -j 1 in turn (`<name>-api-<n>`, `<name>-pgbench-j1-<n>`; a
        # single unnumbered pair from older runs reads the same): each pair's ratio, their
        # median, and the pair whose ratio is the median as the figures shown.
        pairs = []
        for n in range(1, 100):
            api, pg = runs.get(f"{name}-api-{n}"), runs.get(f"{name}-pgbench-j1-{n}")
            if not (api and pg):
                break
            pairs.append((api_of(api), pgbench_of(pg)))
        if not pairs and runs.get(f"{name}-api") and runs.get(f"{name}-pgbench-j1"):
            pairs.append((api_of(runs[f"{name}-api"]), pgbench_of(runs[f"{name}-pgbench-j1"])))
        ratios = [round(a["rps"] / p["tps"], 3) if a.get("rps") and p.get("tps") else None
                  for a, p in pairs]
        if pairs:
            known = sorted((r, i) for i, r in enumerate(ratios) if r is not None)
            middle = known[(len(known) - 1) // 2][1] if known else 0
            entry["api"], entry["pgbench_j1"] = pairs[middle]
            entry["pairs"] = [{"api_rps": a.get("rps"), "pgbench_j1_tps": p.get("tps"),
                               "ratio_j1": r,
                               "server_cpu_ms_per_request": a.get("server_cpu_ms_per_request"),
                               "postgres_cpu_ms_per_request": a.get("postgres_cpu_ms_per_request"),
                               "pgbench_postgres_cpu_ms_per_transaction":
                                   p.get("postgres_cpu_ms_per_transaction")}
                              for (a, p), r in zip(pairs, ratios)]
        j2 = runs.get(f"{name}-pgbench-j2")
        if j2:
            entry["pgbench_j2"] = pgbench_of(j2)
        for share in ("50", "80"):
            run_ = runs.get(f"{name}-open-{share}")
            if run_:
                try:
                    entry[f"open_loop_{share}"] = json.loads(run_["stdout"])
                except ValueError:
                    entry[f"open_loop_{share}"] = None
        api_rps = entry.get("api", {}).get("rps")
        for jobs in ("j1", "j2"):
            tps = entry.get(f"pgbench_{jobs}", {}).get("tps")
            entry[f"ratio_{jobs}"] = round(api_rps / tps, 3) if api_rps and tps else None
        scenarios.append(entry)
    hwm = [r.get("server_hwm_kib") for r in runs.values() if r.get("server_hwm_kib")]
    batch = runs.get("batch")
    # BENCH_STATEMENT_COST: pgbench runs labelled `cost-<order>-<variant>-x<statements per
    # exchange>-c<clients>`, each figure per statement, not per pgbench transaction.
    statement_cost = []
    for label in sorted(l for l in runs if l.startswith("cost-")):
        found = re.fullmatch(r"cost-\d+-(.+)-x(\d+)-c(\d+)", label)
        if not found:
            continue
        record, per_exchange = runs[label], int(found.group(2))
        parsed = parse_pgbench(record["stdout"])
        statements = (parsed["transactions"] or 0) * per_exchange
        statement_cost.append({
            "variant": found.group(1),
            "statements_per_exchange": per_exchange,
            "clients": int(found.group(3)),
            "statements_per_s": round(parsed["tps"] * per_exchange) if parsed["tps"] else None,
            "postgres_cpu_ms_per_statement": per_request(record["postgres_cpu_ms"], statements),
            "client_cpu_ms_per_statement": per_request(record["client_cpu_ms"], statements),
        })
    results = {
        **{k: v for k, v in meta.items() if k not in ("scenarios", "titles")},
        "server_hwm_kib": max(hwm) if hwm else None,
        "scenarios": scenarios,
        "batch": json.loads(batch["stdout"]) if batch and batch["stdout"].strip() else None,
    }
    if statement_cost:
        results["statement_cost"] = statement_cost
    with open(os.path.join(results_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(markdown(results))


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown(results):
    lines = [
        f"Machine: {results['machine']}; PostgreSQL: {results['postgres']}; "
        f"dataset: {results['dataset']}; c={results['clients']}, {results['duration_s']} s per run; "
        f"start-up to first 200 on /healthz: {fmt(results['startup_ms'], 0)} ms; "
        f"server peak RSS (VmHWM): {fmt((results['server_hwm_kib'] or 0) / 1024, 1)} MiB.",
        "",
        "| scenario | API req/s | pgbench -j1 tps | -j2 tps | API / -j1 (median pair) | API / -j2 "
        "| CPU-ms/req server + PostgreSQL (pgbench PostgreSQL) "
        "| p50 / p99 / p99.9 ms at 50% | at 80% | RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["scenarios"]:
        api = s.get("api", {})
        j1, j2 = s.get("pgbench_j1", {}), s.get("pgbench_j2", {})

        def lat(key):
            o = s.get(key) or {}
            if not o:
                return "n/a"
            errors = f", {o['errors']} errors" if o.get("errors") else ""
            return (f"{fmt(o.get('p50_ms'), 2)} / {fmt(o.get('p99_ms'), 2)} / "
                    f"{fmt(o.get('p999_ms'), 2)} ({fmt(o.get('achieved_rate'))}/s{errors})")

        cpu = (f"{fmt(api.get('server_cpu_ms_per_request'), 3)} + "
               f"{fmt(api.get('postgres_cpu_ms_per_request'), 3)} "
               f"({fmt(j1.get('postgres_cpu_ms_per_transaction'), 3)})")
        rss = api.get("server_rss_max_kib")
        pair_ratios = [p["ratio_j1"] for p in s.get("pairs", []) if p.get("ratio_j1") is not None]
        spread = (f" ({min(pair_ratios):.2f}-{max(pair_ratios):.2f} in {len(pair_ratios)} pairs)"
                  if len(pair_ratios) > 1 else "")
        api_errors = f" ({api['errors']} errors)" if api.get("errors") else ""
        lines.append(
            f"| {s['title']} | {fmt(api.get('rps'))}{api_errors} | {fmt(j1.get('tps'))} "
            f"| {fmt(j2.get('tps'))} | {fmt(s.get('ratio_j1'), 2)}{spread} | {fmt(s.get('ratio_j2'), 2)} "
            f"| {cpu} | {lat('open_loop_50')} | {lat('open_loop_80')} "
            f"| {fmt(rss / 1024 if rss else None, 1)} |")
    batch = results.get("batch")
    if batch:
        lines += ["", f"Batch of 100 contacts, one call: median {batch['batch_ms']:.2f} ms; "
                      f"5 single POSTs: median {batch['singles_ms']:.2f} ms; "
                      f"ratio {batch['ratio']:.2f} (below 1.00: the batch is faster)."]
        if "large_post_ms" in batch:
            lines += ["", f"POST of a {batch['large_body_bytes'] / 1024:.1f} KiB contact "
                          f"(custom fields): median {batch['large_post_ms']:.2f} ms, slowest "
                          f"{batch['large_post_max_ms']:.2f} ms; a small POST: median "
                          f"{batch['small_post_ms']:.2f} ms ({batch['rounds']} of each)."]
    cost = results.get("statement_cost")
    if cost:
        lines += ["", "What PostgreSQL spends per statement (pgbench -M prepared, as crm_app; "
                      "scripts/bench/statement-cost/):", "",
                  "| statement | per exchange | clients | statements/s "
                  "| PostgreSQL CPU-ms per statement | pgbench CPU-ms per statement |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for c in cost:
            lines.append(
                f"| {c['variant']} | {c['statements_per_exchange']} | {c['clients']} "
                f"| {fmt(c['statements_per_s'])} | {fmt(c['postgres_cpu_ms_per_statement'], 4)} "
                f"| {fmt(c['client_cpu_ms_per_statement'], 4)} |")
    return "\n".join(lines)


def batch(port, key, rounds):
    import http.client
    import statistics
    import uuid

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(path, body):
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"{path} answered {response.status}")

    def contact():
        return {"firstName": "Bench", "email": f"{uuid.uuid4().hex}@bench.example",
                "tags": ["bench"]}

    batches, singles = [], []
    for _ in range(rounds):
        # Bodies are made before the clock starts: the figure is the server's, not the
        # client's JSON encoding (100 items take the client about 0.3 ms to build).
        batch_body = json.dumps({"mode": "create", "items": [contact() for _ in range(100)]})
        single_bodies = [json.dumps(contact()) for _ in range(5)]
        start = time.perf_counter()
        post("/v1/contacts/batch", batch_body)
        batches.append(time.perf_counter() - start)
        start = time.perf_counter()
        for body in single_bodies:
            post("/v1/contacts", body)
        singles.append(time.perf_counter() - start)
    b, s = statistics.median(batches), statistics.median(singles)

    # Issue 14 point 6: a contact with ~20 KiB of custom fields (50 keys x 400 characters)
    # against a small one, one after another on the same connection. A statement that
    # leaves the client in more than one write used to wait for the server's delayed
    # ACK (Nagle, 40 ms); the slowest of them shows it if it ever comes back.
    def large():
        body = contact()
        body["customFields"] = {f"field{i}": "x" * 400 for i in range(50)}
        return json.dumps(body)

    larges, smalls = [], []
    for _ in range(rounds):
        large_body, small_body = large(), json.dumps(contact())
        start = time.perf_counter()
        post("/v1/contacts", large_body)
        larges.append(time.perf_counter() - start)
        start = time.perf_counter()
        post("/v1/contacts", small_body)
        smalls.append(time.perf_counter() - start)
    print(json.dumps({"rounds": rounds, "batch_ms": b * 1000, "singles_ms": s * 1000,
                      "ratio": b / s,
                      "large_body_bytes": len(large()),
                      "large_post_ms": statistics.median(larges) * 1000,
                      "large_post_max_ms": max(larges) * 1000,
                      "small_post_ms": statistics.median(smalls) * 1000}))


def main(argv):
    if len(argv) >= 7 and argv[0] == "run" and argv[5] == "--":
        run(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[6:])
    elif len(argv) == 4 and argv[0] == "batch":
        batch(int(argv[1]), argv[2], int(argv[3]))
    elif len(argv) == 2 and argv[0] == "report":
        report(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
