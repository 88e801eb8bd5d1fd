#!/usr/bin/env python3
# report.py: turns the comparison benchmark's raw timings (one row per phase and run) into
# medians, ratios, results.csv, results.md (the table and what each system promises) and chart.dat.
import argparse
import csv
import statistics
import sys

SYSTEMS = [
    # key, label, kind
    ("liangdi", "liangdi", "contestant"),
    ("liangdi-js", "liangdi on JetStream (1 server)", "variant"),
    ("liangdi-js3", "liangdi on JetStream (3-server cluster)", "variant"),
    ("mosquitto", "Mosquitto", "peer"),
    ("jetstream", "NATS JetStream", "peer"),
    ("zmq", "libzmq relay (limit)", "limit"),
    ("sqlite", "SQLite FULL inserts (limit)", "limit"),
]
PHASES = ["write", "store", "drain", "apply", "end to end", "end to end, applied", "online",
          "insert"]
PAYLOADS = [100, 1000]

PROMISES = [
    ("liangdi",
     "every hop's SQLite write-ahead log is fsynced before it acks: the sender's outbox "
     "write, the broker's mailbox (before PUSH_ACK; its own thread fsyncs the log while "
     "it reads the next push), the receiver's inbox together with its cursor (before "
     "ACK); the receiver then applies each batch to its tables in one transaction with "
     "its leaving the inbox. An acked record survives a power cut."),
    ("liangdi on JetStream",
     "the nodes' hops as above; the broker acks a push once JetStream has acknowledged "
     "every mailbox write (file storage: written to the OS, as in the NATS JetStream row; "
     "with three servers, stored on two of the three before the ack). Its peak RSS is the "
     "front-end's, not the NATS servers'."),
    ("Mosquitto",
     "a PUBACK means the message is in the broker's memory. Persistence is a snapshot of "
     "the whole in-memory database written every autosave_interval (1,800 s, the default, "
     "here) and at a clean shutdown, never per message: a crash loses everything since the "
     "last snapshot."),
    ("NATS JetStream",
     "file storage; a PubAck means the message was written to the OS, not fsynced. The "
     "server fsyncs on a background timer (sync_interval, 2 min by default; 2.9.10 does "
     "not accept the setting, and strace saw no fsync during a whole run). A process crash "
     "loses nothing; a power cut or OS crash can lose acked messages."),
    ("libzmq relay",
     "keeps records in memory only (no disk at all): the transport's ceiling, CURVE on, "
     "with application acks, batches of 4,096."),
    ("SQLite FULL inserts",
     "the storage ceiling: the same records inserted into one WAL database with "
     "synchronous=FULL and 16 KiB pages (as liangdi's stores) in transactions of 4,096; "
     "liangdi pays this on every hop."),
]


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_ratio(x):
    return f"{x:.2f}x" if x is not None else ""


def load(path):
    runs = {}  # (system, payload, phase) -> list of (rate, rss_kb)
    per_rep = {}  # (system, payload, rep) -> {phase: (records, seconds, rss)}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["system"], int(row["payload"]), row["rep"])
            rss = int(row["rss_kb"]) if row["rss_kb"] else None
            per_rep.setdefault(key, {})[row["phase"]] = (
                int(row["records"]), float(row["seconds"]), rss)
    for (system, payload, _rep), phases in per_rep.items():
        for phase, (n, secs, rss) in phases.items():
            if secs > 0:
                runs.setdefault((system, payload, phase), []).append((n / secs, rss))
        if "store" in phases and "drain" in phases:
            n, s1, rss = phases["store"]
            s2 = phases["drain"][1]
            if s1 + s2 > 0:
                runs.setdefault((system, payload, "end to end"), []).append((n / (s1 + s2), rss))
            if "apply" in phases and s1 + s2 + phases["apply"][1] > 0:
                s3 = phases["apply"][1]
                runs.setdefault((system, payload, "end to end, applied"), []).append(
                    (n / (s1 + s2 + s3), rss))
    return runs


def summarise(runs):
    """(system, payload, phase) -> dict(rate, mbps, rss_mb, runs)"""
    table = {}
    for key, vals in runs.items():
        rate = statistics.median(v[0] for v in vals)
        rss = [v[1] for v in vals if v[1] is not None]
        table[key] = {
            "rate": rate,
            "mbps": rate * key[1] / 1e6,
            "rss_mb": statistics.median(rss) / 1024 if rss else None,
            "runs": len(vals),
        }
    return table


def ratios(table, system, payload, phase, kind):
    """liangdi / this row, for the peer and limit rows."""
    if kind in ("contestant", "variant"):
        return None, None
    mine_phase = "end to end" if phase == "insert" else phase
    mine = table.get(("liangdi", payload, mine_phase))
    this = table.get((system, payload, phase))
    if mine is None or this is None or this["rate"] == 0:
        return None, None
    r = mine["rate"] / this["rate"]
    return (r, None) if kind == "peer" else (None, r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--versions", default="")
    ap.add_argument("--commit", default="")
    ap.add_argument("--n", required=True, help="records of 100 and of 1,000 bytes: A,B")
    ap.add_argument("--reps", required=True)
    ap.add_argument("--load", default="", help="the machine's load averages during the run")
    ap.add_argument("--note", action="append", default=[])
    a = ap.parse_args()

    table = summarise(load(a.raw))
    n_small, n_large = (int(x) for x in a.n.split(","))

    rows = []
    for system, label, kind in SYSTEMS:
        for payload in PAYLOADS:
            for phase in PHASES:
                cell = table.get((system, payload, phase))
                if cell is None:
                    continue
                peer_r, limit_r = ratios(table, system, payload, phase, kind)
                rows.append({
                    "system": label, "key": system, "phase": phase, "payload": payload,
                    "records_per_s": cell["rate"], "mb_per_s": cell["mbps"],
                    "peak_rss_mb": cell["rss_mb"], "runs": cell["runs"],
                    "liangdi_over_peer": peer_r, "liangdi_over_limit": limit_r,
                })

    with open(f"{a.out}/results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["system", "phase", "payload_bytes", "records_per_s", "mb_per_s",
                    "peak_rss_mb", "runs", "liangdi_over_peer", "liangdi_over_limit"])
        for r in rows:
            w.writerow([r["system"], r["phase"], r["payload"], f"{r['records_per_s']:.0f}",
                        f"{r['mb_per_s']:.2f}",
                        "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.1f}",
                        r["runs"],
                        "" if r["liangdi_over_peer"] is None else f"{r['liangdi_over_peer']:.3f}",
                        "" if r["liangdi_over_limit"] is None else f"{r['liangdi_over_limit']:.3f}"])

    lines = []
    lines.append(f"Run of {a.date} (China Standard Time) on {a.machine}; liangdi built from {a.commit}; "
                 f"{a.versions}.")
    lines.append("")
    lines.append(f"N = {n_small:,} records of 100 bytes and {n_large:,} of 1,000 bytes; "
                 f"records/s is the median of {a.reps} runs; peak RSS is the relay's "
                 "(the broker's for liangdi) VmHWM.")
    if a.load:
        lines.append("")
        lines.append(f"Load average (1, 5, 15 min): {a.load}; every process of every system "
                     "shares these cores, so figures taken under other load are lower.")
    lines.append("")
    lines.append("| system | phase | payload | records/s | MB/s | peak RSS | liangdi ÷ peer "
                 "| liangdi ÷ limit |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        rss = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f} MB"
        lines.append(f"| {r['system']} | {r['phase']} | {r['payload']:,} B | "
                     f"{fmt_int(r['records_per_s'])} | {r['mb_per_s']:.1f} | {rss} | "
                     f"{fmt_ratio(r['liangdi_over_peer'])} | {fmt_ratio(r['liangdi_over_limit'])} |")
    lines.append("")
    lines.append("Phases: *store* = sender to relay, every record acked by the relay; "
                 "*drain* = the receiver, offline until then, connects and takes every record "
                 "with acknowledgement (liangdi: into its inbox, fsynced, before each ack; the "
                 "phase ends when the inbox, polled from outside every millisecond, holds all "
                 "N, just before the last ack leaves; the others' end when their receiving "
                 "client exits); "
                 "*end to end* = N / (store + drain); *apply* (liangdi only) = the receiver's "
                 "sync, after the drain, applying the records to its tables until it exits, "
                 "work the other receivers do not do at all; *end to end, applied* = N / "
                 "(store + drain + apply); *online* (liangdi "
                 "rows only) = the receiver runs `liangdi daemon` throughout, from the sender's "
                 "`liangdi sync` until the receiver's store holds all N; *write* (liangdi only, "
                 "not part of end to end) = the sender's own transactions that put the records "
                 "in its outbox; *insert* = the SQLite limit. Every phase is timed from outside "
                 "the processes, start-up and connection included.")
    lines.append("")
    lines.append("Targets (end to end, as the job defines it: the receiver has taken every "
                 "record with acknowledgement; in brackets, liangdi with the apply to its "
                 "tables counted too, which the other receivers do not do):")
    for payload in PAYLOADS:
        mine = table.get(("liangdi", payload, "end to end"))
        applied = table.get(("liangdi", payload, "end to end, applied"))
        for other, phase, want, name in [("mosquitto", "end to end", 2.0, "Mosquitto"),
                                         ("jetstream", "end to end", 1.5, "JetStream"),
                                         ("sqlite", "insert", 0.25, "SQLite FULL inserts")]:
            theirs = table.get((other, payload, phase))
            if mine is None or theirs is None:
                lines.append(f"- {payload:,} B, liangdi ÷ {name}: not measured")
                continue
            r = mine["rate"] / theirs["rate"]
            verdict = "met" if r >= want else "NOT met"
            also = f" (applied: {applied['rate'] / theirs['rate']:.2f})" if applied else ""
            lines.append(f"- {payload:,} B, liangdi ÷ {name}: {r:.2f} (target ≥ {want:g}): "
                         f"{verdict}{also}")
    lines.append("")
    lines.append("The job's ceiling from this run's limits: the receiver is offline while "
                 "the records are stored, so the store and the drain follow one another, and "
                 "each pays the transport of its hop (the libzmq relay's rate for "
                 "that phase) and a durable write (SQLite's insert rate); taking for each "
                 "phase only the slower of the two, end to end can reach about N / (N / "
                 "store ceiling + N / drain ceiling). An estimate, not a bound: liangdi keeps the records "
                 "of one push as one row, which costs less per record than the limit's row "
                 "each, and at 1,000 bytes the bytes written dominate:")
    for payload in PAYLOADS:
        sql = table.get(("sqlite", payload, "insert"))
        relay = [table.get(("zmq", payload, ph)) for ph in ("store", "drain")]
        mine = table.get(("liangdi", payload, "end to end"))
        if sql is None or None in relay or mine is None:
            lines.append(f"- {payload:,} B: not measured")
            continue
        caps = [min(r["rate"], sql["rate"]) for r in relay]
        ceiling = 1.0 / sum(1.0 / c for c in caps)
        needs = []
        for other, want, name in [("mosquitto", 2.0, "twice Mosquitto"),
                                  ("jetstream", 1.5, "1.5 times JetStream")]:
            theirs = table.get((other, payload, "end to end"))
            if theirs is not None:
                goal = want * theirs["rate"]
                where = "above" if goal > ceiling else "within"
                needs.append(f"{name} is {fmt_int(goal)}, {where} it")
        lines.append(f"- {payload:,} B: about {fmt_int(ceiling)} records/s; liangdi reaches "
                     f"{mine['rate'] / ceiling:.2f} of it" + "".join("; " + n for n in needs) + ".")
    lines.append("")
    lines.append("What each system promises on a crash (read the figures with this in mind):")
    for name, text in PROMISES:
        lines.append(f"- **{name}**: {text}")
    for note in a.note:
        lines.append("")
        lines.append(f"Note: {note}")
    text = "\n".join(lines) + "\n"
    with open(f"{a.out}/results.md", "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)

    # chart.dat: one line per system, end-to-end records/s (insert for SQLite) per payload,
    # liangdi with its receiver online right after liangdi.
    with open(f"{a.out}/chart.dat", "w", encoding="utf-8") as f:
        f.write("# system  records/s at 100 B  at 1,000 B  (end to end; insert for SQLite; "
                "0 = not measured)\n")
        for system, label, _kind in SYSTEMS:
            series = [(label, "insert" if system == "sqlite" else "end to end")]
            if system == "liangdi":
                series.append(("liangdi, applied", "end to end, applied"))
                series.append(("liangdi, receiver online", "online"))
            elif system.startswith("liangdi-"):
                series.append((label + ", receiver online", "online"))
            for name, phase in series:
                cells = [table.get((system, p, phase)) for p in PAYLOADS]
                if any(cells):
                    f.write(f"\"{name}\" " +
                            " ".join(f"{c['rate']:.0f}" if c else "0" for c in cells) + "\n")

if __name__ == "__main__":
    main()
