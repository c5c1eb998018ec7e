#!/usr/bin/env python3
"""The peer for the scoring benchmark: a straightforward numpy implementation
of SCORING.md (hard filters, the pair score, top-N) over a random columnar
population of the same shape (1,000,000 members, Q = 100, ~90% answered).
Prints the median milliseconds per member. Not the same members as the Swift
benchmark (numpy cannot load the JSON Lines file in reasonable time), the
same work per member.

usage: scripts/bench-numpy-peer.py [members] [probes]
"""
import sys
import time

import numpy as np

members = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
probes = int(sys.argv[2]) if len(sys.argv) > 2 else 20
Q, N = 100, 5000
W = np.array([0, 1, 10, 50, 250], dtype=np.int64)
rng = np.random.default_rng(1)

k = rng.integers(2, 9, size=Q)
answered = rng.random((members, Q)) < 0.9
answer = (rng.random((members, Q)) * k).astype(np.int64)
accept = rng.integers(1, 256, size=(members, Q)) & ((1 << k) - 1)
accept[accept == 0] = 1
importance = rng.choice(5, size=(members, Q), p=[0.08, 0.22, 0.38, 0.24, 0.08])
weight = np.where(answered, W[importance], 0)
answer_bit = np.where(answered, 1 << answer, 0)
accept = np.where(answered, accept, 0)
gender = rng.choice(3, size=members, p=[0.47, 0.47, 0.06])
seeking = np.where(gender == 0, 2, 1)  # bit set: man=1, woman=2
age = np.clip(rng.normal(33, 10, members).round(), 18, 70).astype(np.int64)
age_min = np.maximum(18, age - rng.integers(1, 12, members))
age_max = np.minimum(120, age + rng.integers(1, 12, members))
ids = np.arange(1, members + 1)


def matches(a):
    ok = ((seeking[a] >> gender) & 1).astype(bool) & ((seeking >> gender[a]) & 1).astype(bool)
    ok &= (age >= age_min[a]) & (age <= age_max[a]) & (age_min <= age[a]) & (age[a] <= age_max)
    ok[a] = False
    c = np.nonzero(ok)[0]
    both = (answer_bit[c] != 0) & (answer_bit[a] != 0)
    n = both.sum(axis=1)
    dA = (weight[a] * both).sum(axis=1)
    sA = (weight[a] * (both & ((answer_bit[c] & accept[a]) != 0))).sum(axis=1)
    dB = (weight[c] * both).sum(axis=1)
    sB = (weight[c] * (both & ((accept[c] & answer_bit[a]) != 0))).sum(axis=1)
    has = (n >= 5) & (dA > 0) & (dB > 0)
    c, n, sA, dA, sB, dB = c[has], n[has], sA[has], dA[has], sB[has], dB[has]
    m = np.sqrt((sA * sB).astype(np.float64) / (dA * dB).astype(np.float64)) - 1.0 / n
    t = np.clip(np.floor(100.0 * m + 0.5), 0, 100).astype(np.int64)
    order = np.lexsort((ids[c], -t))[:N]
    return c[order], t[order]


times = []
for a in rng.integers(0, members, probes):
    start = time.perf_counter()
    matches(a)
    times.append(time.perf_counter() - start)
times.sort()
print("numpy peer: %d members, Q = %d: median %.1f ms/member over %d probes"
      % (members, Q, 1000 * times[len(times) // 2], probes))
