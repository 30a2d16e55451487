#!/usr/bin/env python3
"""tests/e2e/prom_check.py — reads a --metrics-file as a Prometheus server would.

    prom_check.py FILE            one JSON object on stdout: {"name{k=v,...}": value}
    prom_check.py --watch FILE STOP
        parses every version of FILE seen until the file STOP exists (a run's
        writes must never be seen half done); prints how many versions it
        parsed, and fails on the first one that does not parse or whose
        counters went down.

The text exposition format (0.0.4) is parsed by prometheus_client's own
parser (Debian's python3-prometheus-client) when it is importable, else by
the strict reader below, written from the format's description: every sample
belongs to a family declared by # TYPE before it, names and label names are
[a-zA-Z_:][a-zA-Z0-9_:]*, values are floats, no sample carries a timestamp
(node_exporter's textfile collector refuses them), no sample is repeated.
Exit 0 when it parses, 1 when not, 2 on bad usage.
"""
import json
import os
import re
import sys
import time

for extra in ("/usr/lib/python3/dist-packages",):
    if os.path.isdir(extra) and extra not in sys.path:
        sys.path.append(extra)
try:
    from prometheus_client.parser import text_string_to_metric_families
except Exception:  # pragma: no cover - depends on the machine
    text_string_to_metric_families = None

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))


class Bad(Exception):
    pass


def strict(text):
    """The samples of text, checked line by line."""
    if not text.endswith("\n"):
        raise Bad("the text does not end with a newline")
    types, out = {}, {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or not re.fullmatch(NAME, parts[2]) or parts[3] not in (
                    "counter", "gauge", "histogram", "summary", "untyped"):
                raise Bad("line %d: bad TYPE: %r" % (n, line))
            if parts[2] in types:
                raise Bad("line %d: %s typed twice" % (n, parts[2]))
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Bad("line %d: not a sample (or carries a timestamp): %r" % (n, line))
        name = m.group(1)
        if name not in types:
            raise Bad("line %d: %s has no TYPE before it" % (n, name))
        labels = dict(re.findall(LABEL, m.group(2) or ""))
        key = name + "{" + ",".join("%s=%s" % kv for kv in sorted(labels.items())) + "}"
        if key in out:
            raise Bad("line %d: %s repeated" % (n, key))
        out[key] = float(m.group(m.lastindex))
    return out


def parse(text):
    samples = strict(text)
    if text_string_to_metric_families is not None:
        theirs = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.timestamp is not None:
                    raise Bad("%s carries a timestamp" % s.name)
                key = s.name + "{" + ",".join(
                    "%s=%s" % kv for kv in sorted(s.labels.items())) + "}"
                theirs[key] = s.value
        if theirs != samples:
            raise Bad("prometheus_client reads %r, the strict reader %r" % (theirs, samples))
    return samples


def watch(path, stop):
    seen, last, prev = 0, None, {}
    while not os.path.exists(stop):
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            time.sleep(0.02)
            continue
        if text != last:
            samples = parse(text)
            for k, v in samples.items():
                if "_total{" in k and v < prev.get(k, 0):
                    raise Bad("%s went down: %s -> %s" % (k, prev[k], v))
            prev, last, seen = samples, text, seen + 1
        time.sleep(0.02)
    print(seen)


def main():
    try:
        if len(sys.argv) == 4 and sys.argv[1] == "--watch":
            watch(sys.argv[2], sys.argv[3])
        elif len(sys.argv) == 2:
            with open(sys.argv[1]) as f:
                print(json.dumps(parse(f.read()), sort_keys=True))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Bad as e:
        print("prom_check: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
