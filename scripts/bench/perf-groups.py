#!/usr/bin/env python3
"""Sums a `perf report --sort comm,dso,symbol` listing by where the time went.

Reads the report on stdin; prints each thread's share and, per thread, the shares of a few
groups: ECDSA (aws-lc), the kernel (in a VM mostly context switches and interrupts), the
allocator and memory copies, and the Rust crates by name.
"""
import collections
import re
import sys

LINE = re.compile(r"\s*([\d.]+)%\s+(.+?)\s{2,}(\S+)\s+\[(.)\]\s+(.*)")


def group(dso, kind, symbol):
    if kind == "k":
        return "kernel"
    if "nistz256" in symbol or symbol.startswith("aws_lc") or "ecp_" in symbol:
        return "aws-lc (ECDSA)"
    if dso.startswith("libc") or symbol.startswith(("malloc", "_int_", "cfree", "realloc")):
        return "libc (malloc, free, memcpy)"
    crate = re.match(r"<?&?(?:mut )?(?:dyn )?([a-z_0-9]+)::", symbol)
    return crate.group(1) if crate else "other"


threads = collections.Counter()
groups = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    match = LINE.match(line)
    if not match:
        continue
    share, comm, dso, kind, symbol = match.groups()
    share = float(share)
    threads[comm] += share
    groups[comm][group(dso, kind, symbol)] += share

for comm, share in threads.most_common():
    print(f"{share:6.2f}%  thread {comm}")
    for name, part in groups[comm].most_common(12):
        print(f"        {part:6.2f}%  {name}")
