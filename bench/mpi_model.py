#!/usr/bin/env python3
"""Scaling model of the MPI trainer (docs/PERFORMANCE.md, issue 15).

Static schedule (WB_MPI_STATIC): step time on R ranks for a batch of
B = k R examples:

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

Dynamic schedule (WB_MPI_DYNAMIC, as built in src/train_mpi.c), simulated
event by event on the same drawn batches (slots ordered by n + 64, largest
first; each rank, when free, takes the next one):
    take a slot   one fetch-and-add on rank 0's counter: a round trip, 2 alpha
                  (rank 0's own: local, 0)
    warm start    from its holder (the rank that solved the example last:
                  drawn uniformly, so remote with probability (R-1)/R): an
                  MPI_Rget, a round trip, 2 alpha + n 8 / beta
    solve         the example's measured cost (scaled to mean c)
    end           every rank's last fetch finds no slot left: 2 alpha
    exchange      an Iallgather of one int per rank, then the Iallgatherv of
                  the records, now (p + 3) 8 bytes (the slot index added):
                  2 ceil(log2 R) (alpha + delta) + (R-1)/R B (p+3) 8 / beta
    E = B c / (R (makespan + exchange))
"RDMA progress": the fetch-and-add and the gets complete without the
target's help (RDMA atomics and reads: InfiniBand/RoCE with UCX, or shared
memory). "no progress": a target answers only when it calls MPI -- between
its slots, or once its share is done (software one-sided over TCP without
an asynchronous progress thread, e.g. MPICH without
MPIR_CVAR_ASYNC_PROGRESS): each fetch waits for rank 0's current solve to
end, each get for the holder's.

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


def dynamic(pairs, R, k, trials, rng, alpha, beta, progress):
    """The built dynamic schedule (see the header): the mean makespan in
    seconds of the solves, fetches and warm-start gets of a batch (the
    exchange after it not included). pairs: (n + 64, seconds, n)."""
    acc = 0.0
    for _ in range(trials):
        drawn = [rng.choice(pairs) for _ in range(R * k)]
        order = sorted(range(len(drawn)), key=lambda b: (-drawn[b][0], b))
        free = [0.0] * R       # when each rank next calls MPI
        done = [False] * R     # its share is over: it answers at once
        nxt = 0
        while not all(done):
            r = min((q for q in range(R) if not done[q]), key=lambda q: (free[q], q))
            t = free[r]

            def served(target, at):
                # a request reaching target at time at is answered then, or
                # (no progress) when target next calls MPI
                if progress or done[target] or target == r:
                    return at
                return max(at, free[target])

            if r != 0:
                t = served(0, t + alpha) + alpha
            if nxt >= len(order):
                done[r] = True
                free[r] = t
                continue
            d = drawn[order[nxt]]
            nxt += 1
            h = rng.randrange(R)
            if h != r:
                t = served(h, t + alpha) + alpha + d[2] * 8 / beta
            free[r] = t + d[1]
        acc += max(free)
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
          "efficiency, static (n; last cost) | dynamic: exchange (ms) | dynamic: step (ms) | "
          "efficiency, dynamic (RDMA progress; no progress) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
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
            # the measured costs scaled to mean c
            scale = c / (sum(f[1] for f in first) / len(first))
            scaled = [(f[0], f[1] * scale, f[2]) for f in first]
            txd = (2 * math.ceil(math.log2(R)) * (alpha + delta)
                   + (R - 1) / R * B * (p + 3) * 8 / beta)
            mk = dynamic(scaled, R, k, trials, rng, alpha, beta, True)
            mkn = dynamic(scaled, R, k, trials, rng, alpha, beta, False)
            effd = B * c / (R * (mk + txd))
            effn = B * c / (R * (mkn + txd))
            print(f"| {R} | {k} | {B} | {k * c * 1e3:.1f} | {imb0:.3f} / {imb:.3f} | "
                  f"{tg * 1e3:.2f} | {tw * 1e3:.3f} | {tr0 * 1e3:.1f} | "
                  f"{B * c / (R * tr0):.2f} / {B * c / (R * tr):.2f} | {txd * 1e3:.2f} | "
                  f"{(mk + txd) * 1e3:.1f} | {effd:.2f}; {effn:.2f} |")
    # this machine's runs (bench/mpi_steps.sh): 2 ranks, batch 8, shared
    # memory (alpha 1 us, 10 GB/s): the modelled speed-up over one rank
    am, bm = 1e-6, 10e9
    scale = c / (sum(f[1] for f in first) / len(first))
    scaled = [(f[0], f[1] * scale, f[2]) for f in first]
    imb2 = imbalance(first, 2, 4, 2000, rng)
    mk2 = dynamic(scaled, 2, 4, 2000, rng, am, bm, True)
    tx2 = 2 * (am + delta) + 0.5 * 8 * (p + 3) * 8 / bm
    ts2 = imb2 * 4 * c + (am + delta) + 0.5 * 8 * (p + 2) * 8 / bm
    print(f"R = 2, k = 4 (batch 8; shared memory, alpha 1 us, 10 GB/s): busiest rank / "
          f"mean, static {imb2:.3f}, dynamic {mk2 / (4 * c):.3f}; modelled speed-up over "
          f"one rank: static {8 * c / ts2:.2f}x, dynamic {8 * c / (mk2 + tx2):.2f}x")
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
