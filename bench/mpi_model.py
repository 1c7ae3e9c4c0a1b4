#!/usr/bin/env python3
"""Scaling model of the MPI trainer (docs/PERFORMANCE.md, issue 15).

Step time on R ranks for a batch of B = k R examples:

    T_R = imb(R, k) * k * c  +  T_gather  +  T_warm
    T_gather = ceil(log2 R) * (alpha + delta) + (R - 1) / R * B (p + 2) 8 / beta
    T_warm   = alpha + k * nbar * 8 / beta          (a rank's warm starts)
    E(R)     = T_1 / (R T_R),   T_1 = B c           (one process: no exchange)

c: measured compute per training example (solve + adjoint + its share of
validation), one core; imb: the mean over random batches of (max over ranks
of the assigned cost) / (mean cost), with the library's assignment (largest
expected cost first onto the least-loaded rank). The batches are drawn
(with replacement) from COSTS.csv, the measured CPU time of every training
solve of a run (mpi_train --local --threads 1 --costs FILE): each drawn
solve brings its n, which the assignment sees (cost n + 64), and its real
cost, which it does not. "last cost": the same with the example's cost in
the previous epoch as the assignment's guess (tried, not used: it balanced
worse).
alpha: latency of one message on the network; delta: the trainer's sleeping
wait (a round of the collective may start up to 50 us late); beta: bytes/s.

Usage: mpi_model.py COSTS.csv C_MS [P] [ALPHA_US] [GBIT]
"""
import csv
import math
import random
import sys


def solves(path):
    """(expected, true) cost pairs: (n + 64, cost) of every first solve of
    an example, (cost in epoch e, cost in epoch e + 1) of the later ones"""
    last, every, later = {}, [], []
    with open(path) as f:
        for r in csv.reader(f):
            i, n, sec = int(r[0]), int(r[1]), float(r[2])
            if i in last:
                later.append((last[i], sec))
            every.append((n + 64.0, sec, n))
            last[i] = sec
    return every, later


def imbalance(pairs, R, k, trials, rng):
    acc = 0.0
    for _ in range(trials):
        drawn = [rng.choice(pairs) for _ in range(R * k)]
        order = sorted(range(len(drawn)), key=lambda b: (-drawn[b][0], b))
        est = [0.0] * R
        real = [0.0] * R
        for b in order:
            r = min(range(R), key=lambda q: (est[q], q))
            est[r] += drawn[b][0]
            real[r] += drawn[b][1]
        acc += max(real) / (sum(real) / R)
    return acc / trials


def dynamic(pairs, R, k, trials, rng, grab):
    """Not built: every rank takes the next slot (largest n first) when it
    is free (an MPI one-sided fetch-and-add on a shared counter, then the
    warm start fetched), paying grab seconds per example. Makespan / mean
    of the compute alone."""
    acc = 0.0
    for _ in range(trials):
        drawn = [rng.choice(pairs) for _ in range(R * k)]
        drawn.sort(key=lambda d: -d[0])
        free = [0.0] * R
        for d in drawn:
            r = min(range(R), key=lambda q: (free[q], q))
            free[r] += d[1] + grab
        acc += max(free) / (sum(d[1] for d in drawn) / R)
    return acc / trials


def main():
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    first, later = solves(sys.argv[1])
    ns = [f[2] for f in first]
    c = float(sys.argv[2]) * 1e-3
    p = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    alpha = (float(sys.argv[4]) if len(sys.argv) > 4 else 25.0) * 1e-6
    beta = (float(sys.argv[5]) if len(sys.argv) > 5 else 10.0) * 1e9 / 8
    delta = 50e-6
    nbar = sum(ns) / len(ns)
    rng = random.Random(1)
    print(f"{len(first)} solves, mean n {nbar:.0f} (min {min(ns)}, max {max(ns)}); "
          f"c = {c * 1e3:.2f} ms per example, p = {p}, alpha = {alpha * 1e6:.0f} us, "
          f"{beta * 8 / 1e9:.0f} Gb/s, delta = {delta * 1e6:.0f} us")
    print("| ranks R | examples per rank k | batch B | compute k c (ms) | imbalance (n; last "
          "cost) | gather (ms) | warm starts (ms) | step T_R (ms) | "
          "efficiency (n; last cost) | efficiency, dynamic (not built) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for R in (8, 16, 32, 64):
        for k in (1, 2, 8, 32):
            B = R * k
            trials = 200 if R * k <= 512 else 50
            imb0 = imbalance(first, R, k, trials, rng)
            imb = imbalance(later, R, k, trials, rng)
            tg = math.ceil(math.log2(R)) * (alpha + delta) + (R - 1) / R * B * (p + 2) * 8 / beta
            tw = alpha + k * nbar * 8 / beta
            tr0 = imb0 * k * c + tg + tw
            tr = imb * k * c + tg + tw
            # the measured costs scaled to c; grab: fetch-and-add + warm start
            scale = c / (sum(f[1] for f in first) / len(first))
            grab = 2 * alpha + nbar * 8 / beta
            imbd = dynamic([(f[0], f[1] * scale) for f in first], R, k, trials, rng, grab / 1.0)
            effd = B * c / (R * (imbd * k * c + tg))
            print(f"| {R} | {k} | {B} | {k * c * 1e3:.1f} | {imb0:.3f} / {imb:.3f} | "
                  f"{tg * 1e3:.2f} | {tw * 1e3:.3f} | {tr0 * 1e3:.1f} | "
                  f"{B * c / (R * tr0):.2f} / {B * c / (R * tr):.2f} | {effd:.2f} |")
    # where the exchange costs as much as the compute (imbalance aside):
    #   k c = L + k R (p + 2) 8 / beta,  L = ceil(log2 R)(alpha + delta) + alpha
    print()
    for R in (8, 64):
        L = math.ceil(math.log2(R)) * (alpha + delta) + alpha
        per = R * (p + 2) * 8 / beta + nbar * 8 / beta
        kstar = L / (c - per) if c > per else math.inf
        pstar = c * beta / (8 * R) - 2
        print(f"R = {R}: the exchange equals the compute below k = {kstar:.2f} examples per "
              f"rank (p = {p}); at any k once p > {pstar:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
