#!/usr/bin/env python3
"""bench_torch: PyTorch autograd (float64, one thread) on the derivative
benchmark, for comparison with libwiberg's implicit adjoint.

Reads the P1 data (bench_data's p1_n<n>.bin) and, per case, the file
deriv_n<n>_p<p>.bin that bench_ours writes (libwiberg's x*, its implicit
gradient and the finite-difference gradient), so every method works on the
same numbers. The parameters are the first p observation weights of
E(x; w) = sum_i w_i d^2 (sqrt(1 + r_i^2/d^2) - 1) + mu/2 |x|^2, r = A x - b,
and the loss is L = 1/2 |x*(w) - x_true|^2. Two ways to get dL/dw:

  unrolled Newton   Newton's method from x0 = 0 (exact Hessian, a
                    backtracking factor chosen without gradient tracking)
                    until |g|_inf <= 1e-10, then reverse mode through every
                    step: the time is forward + backward (compare with
                    libwiberg's solve + VJP);
  linalg.solve      one differentiable Newton step at libwiberg's x*:
                    x^ = x* - solve(H(x*), g(x*, w)) with H detached, whose
                    reverse mode is -B' H^-1 dL/dx (compare with libwiberg's
                    VJP, which also forms and factors H).

Prints RESULT lines like the C programs (see bench/run).
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # bench/run checks first; this is for direct use
    print("bench_torch: PyTorch is not installed (apt-get install python3-torch)",
          file=sys.stderr)
    sys.exit(3)


def read_p1(path):
    with open(path, "rb") as f:
        if f.read(4) != b"WBP1":
            raise ValueError(path + ": not a P1 file")
        n, m = struct.unpack("<ii", f.read(8))
        delta, mu, e0, estar = struct.unpack("<4d", f.read(32))
        a = np.fromfile(f, dtype="<f8", count=m * n).reshape(n, m).T  # column-major
        b = np.fromfile(f, dtype="<f8", count=m)
        w = np.fromfile(f, dtype="<f8", count=m)
        xtrue = np.fromfile(f, dtype="<f8", count=n)
        xstar = np.fromfile(f, dtype="<f8", count=n)
    return dict(n=n, m=m, delta=delta, mu=mu, A=np.ascontiguousarray(a), b=b, w=w,
                xtrue=xtrue, xstar=xstar, E0=e0, Estar=estar)


def read_deriv(path):
    with open(path, "rb") as f:
        if f.read(4) != b"WBD1":
            raise ValueError(path + ": not a derivative file")
        n, p = struct.unpack("<ii", f.read(8))
        xs = np.fromfile(f, dtype="<f8", count=n)
        gi = np.fromfile(f, dtype="<f8", count=p)
        gfd = np.fromfile(f, dtype="<f8", count=p)
    return xs, gi, gfd


def result(case, solver, time_s, reps, ok, **extra):
    d = {"group": "deriv", "case": case, "solver": solver, "time_s": time_s,
         "reps": reps, "ok": ok}
    d.update(extra)
    print("RESULT " + json.dumps(d), flush=True)


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


class P1:
    def __init__(self, data, p):
        self.A = torch.from_numpy(data["A"])
        self.b = torch.from_numpy(data["b"])
        self.w_rest = torch.from_numpy(data["w"][p:].copy())
        self.w0 = data["w"][:p].copy()
        self.xref = torch.from_numpy(data["xtrue"])
        self.d2 = data["delta"] ** 2
        self.mu = data["mu"]
        self.n = data["n"]
        self.eye = torch.eye(self.n, dtype=torch.float64)

    def weights(self, wp):
        return torch.cat([wp, self.w_rest])

    def energy(self, x, wt):
        r = self.A @ x - self.b
        return (wt * self.d2 * (torch.sqrt(1 + r * r / self.d2) - 1)).sum() + \
            0.5 * self.mu * (x * x).sum()

    def grad_hess(self, x, wt, hess=True):
        r = self.A @ x - self.b
        q = torch.sqrt(1 + r * r / self.d2)
        g = self.A.T @ (wt * r / q) + self.mu * x
        if not hess:
            return g, None
        H = self.A.T @ (self.A * (wt / q ** 3)[:, None]) + self.mu * self.eye
        return g, H

    def loss(self, x):
        d = x - self.xref
        return 0.5 * (d * d).sum()


def unrolled_newton(prob, max_iter=50, gtol=1e-10):
    wp = torch.tensor(prob.w0, requires_grad=True)
    wt = prob.weights(wp)
    x = torch.zeros(prob.n, dtype=torch.float64)
    iters = 0
    for _ in range(max_iter):
        g, H = prob.grad_hess(x, wt)
        if float(g.detach().abs().max()) <= gtol:
            break
        d = torch.linalg.solve(H, g)
        with torch.no_grad():  # the step length is a constant for autograd
            e = float(prob.energy(x, wt))
            slope = float(g @ d)
            t = 1.0
            for _ in range(60):
                et = float(prob.energy(x - t * d, wt))
                if et <= e - 1e-4 * t * slope or et <= e:
                    break
                t *= 0.5
        x = x - t * d
        iters += 1
    L = prob.loss(x)
    L.backward()
    return wp.grad.numpy().copy(), iters, x.detach().numpy()


def solve_at_xstar(prob, xs):
    wp = torch.tensor(prob.w0, requires_grad=True)
    wt = prob.weights(wp)
    x = torch.from_numpy(xs)
    g, H = prob.grad_hess(x, wt)
    xhat = x - torch.linalg.solve(H.detach(), g)
    L = prob.loss(xhat)
    L.backward()
    return wp.grad.numpy().copy()


# CLOCK_MONOTONIC on Linux; the process's CPU time with BENCH_CLOCK=cpu
# (as bp_now in bench_problems.h)
CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


def timed(fn, reps):
    ts, out = [], None
    for _ in range(reps):
        t0 = CLOCK()
        out = fn()
        ts.append(CLOCK() - t0)
    return float(np.median(ts)), out


def round_reps(dflt, cap):
    """bench/run's rounds (BENCH_ROUNDS): this round's share of dflt."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "0") or 0)
    reps = -(-dflt // rounds) if rounds > 1 else dflt
    return min(reps, cap) if cap else reps


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="bench-data",
                    help="folder of bench_data's and bench_ours's files")
    ap.add_argument("--cases", default="100:50,100:200,1000:50,1000:2000",
                    help="n:p pairs (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("VERSION torch " + torch.__version__, flush=True)
    cap = int(os.environ.get("BENCH_REPS", "0") or 0)
    data_cache = {}
    for item in args.cases.split(","):
        n, p = (int(v) for v in item.split(":"))
        if n not in data_cache:
            data_cache = {n: read_p1(os.path.join(args.data, "p1_n%d.bin" % n))}
        data = data_cache[n]
        dpath = os.path.join(args.data, "deriv_n%d_p%d.bin" % (n, p))
        if not os.path.exists(dpath):
            print("bench_torch: %s missing (run bench_ours --only deriv first)" % dpath,
                  file=sys.stderr)
            return 1
        xs, gi, gfd = read_deriv(dpath)
        have_fd = bool(np.all(np.isfinite(gfd)))
        ref, ref_name = (gfd, "fd") if have_fd else (gi, "implicit")
        prob = P1(data, p)
        case = "P1 n=%d p=%d" % (n, p)
        # the slow configuration (n = 1000) in the first of bench/run's rounds
        # only, with its 3 repetitions
        first = int(os.environ.get("BENCH_ROUND", "1") or 1) <= 1
        reps = round_reps(5, cap) if n <= 100 else (min(3, cap) if cap else 3)
        note = "" if n <= 100 else "3 repetitions (slow configuration)"
        if n <= 100 or first:
            t, (gu, iters, xu) = timed(lambda: unrolled_newton(prob), reps)
            result(case, "PyTorch autograd, unrolled Newton", t, reps, True,
                   iters=iters, rel_err_vs_fd=rel_err(gu, gfd) if have_fd else None,
                   rel_err_vs_implicit=rel_err(gu, gi),
                   x_err=float(np.abs(xu - xs).max()), reps_note=note)
            print("torch %s: unrolled Newton %.4f s (%d iterations), error vs %s %.2e" %
                  (case, t, iters, ref_name, rel_err(gu, ref)), file=sys.stderr)
        reps2 = round_reps(5, cap)
        t, gs = timed(lambda: solve_at_xstar(prob, xs), reps2)
        result(case, "PyTorch autograd, linalg.solve at x*", t, reps2, True,
               rel_err_vs_fd=rel_err(gs, gfd) if have_fd else None,
               rel_err_vs_implicit=rel_err(gs, gi))
        print("torch %s: linalg.solve at x* %.5f s, error vs %s %.2e" %
              (case, t, ref_name, rel_err(gs, ref)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
