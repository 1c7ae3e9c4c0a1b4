#!/usr/bin/env python3
"""report.py: turns the RESULT lines of the benchmark programs into
bench/results.json, a ratio table on stdout and docs/BENCHMARKS.md.
Called by bench/run; standard library only.

bench/run interleaves the programs in rounds; every RESULT line carries its
round. A row's time is the median over the rounds of the per-round medians,
and a ratio ours/theirs is the median over the rounds of the per-round
ratios (both measured in the same round), with their range.

  report.py --raw RAW.jsonl --env ENV.json --json OUT.json --md OUT.md
"""
import argparse
import datetime
import json
import sys

TARGETS_TEXT = {
    "p1_ceres": "Inner solve, P1 n=1000: at most 0.5x Ceres' best time",
    "p1_gsl": "Inner solve, P1 n=1000: at most 0.7x GSL's time",
    "nist": "NIST: all 38 starts passed, average LRE >= 9",
    "adj_solve": "Implicit adjoint (factor reused) at most 0.1x the inner solve, n=1000",
    "adj_fd": "Implicit adjoint at least 50x faster than finite differences, p=50",
    "dense": "Implicit Jacobian n=p=2000 at >= 60% of measured dgemm/dpotrf GFLOP/s",
    "i13_default": "Issue 13: the default (AUTO, every callback) at most 1.0x libLBFGS's "
                   "time on P1, P2, P4 (n = 1000) and P3",
    "i13_vg": "Issue 13: value_grad only at most 3x libLBFGS's time on P1, P2, P4 "
              "(n = 1000) and P3",
    "i13_adjoint": "Issue 13: solve + dL/dw at most 0.7x libLBFGS + the best CG adjoint, "
                   "P1 n = 1000, p = 50, at equal accuracy of dL/dw",
    "i13_sparse": "Issue 13: P3 sparse path at most 0.7x Ceres SPARSE_NORMAL_CHOLESKY",
    "i13_lead": "Issue 13: every earlier row keeps its lead over Ceres and GSL "
                "(dense libwiberg on P1, P2; NIST 38/38)",
}

OURS_DENSE = "libwiberg dense (exact Hessian)"
OURS_DEFAULT = "libwiberg default (AUTO, all callbacks)"
OURS_VG = "libwiberg value_grad only (AUTO)"
OURS_MF = "libwiberg matrix-free (hvp)"
OURS_SPARSE = "libwiberg sparse (CHOLMOD)"
ISSUE_CASES = ("P1 n=1000", "P2 vardim n=1000", "P4 Rosenbrock n=1000", "P3 TV 256x256")


def median(v):
    v = sorted(v)
    k = len(v)
    return v[k // 2] if k % 2 else 0.5 * (v[k // 2 - 1] + v[k // 2])


def merge_rounds(lines):
    """One result per (group, case, solver): the fields of its first round,
    time_s and every other '*_s' / '*gflops' number the median over the
    rounds, reps summed, ok only when every round reached it; '_t' maps
    round -> time_s (for the per-round ratios)."""
    order, by = [], {}
    for r in lines:
        key = (r["group"], r["case"], r["solver"])
        if key not in by:
            by[key] = []
            order.append(key)
        by[key].append(r)
    out = []
    for key in order:
        rs = by[key]
        m = dict(rs[0])
        for k, v in rs[0].items():
            if k == "time_s" or ((k.endswith("_s") or k.endswith("gflops")) and
                                 isinstance(v, (int, float)) and not isinstance(v, bool)):
                vals = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
                if vals:
                    m[k] = median(vals)
        m["reps"] = sum(r["reps"] for r in rs)
        m["rounds"] = len(rs)
        m["ok"] = all(r["ok"] for r in rs)
        m["_t"] = {r.get("round", 1): r["time_s"] for r in rs}
        out.append(m)
    return out


def ratio_stats(ours, theirs, ours_key="time_s", theirs_key="time_s"):
    """(median, min, max, rounds) of ours/theirs over the rounds both ran;
    falls back to the medians' ratio."""
    if ours_key == "time_s" and theirs_key == "time_s":
        common = sorted(set(ours["_t"]) & set(theirs["_t"]))
        rs = [ours["_t"][k] / theirs["_t"][k] for k in common if theirs["_t"][k] > 0]
        if rs:
            return median(rs), min(rs), max(rs), len(rs)
    if not theirs[theirs_key]:
        return None, None, None, 0
    v = ours[ours_key] / theirs[theirs_key]
    return v, v, v, 1


def fmt_ratio(st):
    med, lo, hi, k = st
    if med is None:
        return "-"
    if k <= 1 or abs(hi - lo) < 5e-4 * max(abs(med), 1e-12):
        return "%.3f" % med
    return "%.3f (%.3f-%.3f)" % (med, lo, hi)


def load(raw_path):
    """the merged results (merge_rounds) and the versions"""
    results, versions = load_lines(raw_path)
    return merge_rounds(results), versions


def load_lines(raw_path):
    results, versions = [], {}
    with open(raw_path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("RESULT "):
                results.append(json.loads(line[len("RESULT "):]))
            elif line.startswith("VERSION "):
                _, name, rest = line.split(" ", 2)
                versions.setdefault(name, rest)
    return results, versions


def find(results, group, case=None, solver=None, prefix=None):
    out = []
    for r in results:
        if r["group"] != group:
            continue
        if case is not None and r["case"] != case:
            continue
        if solver is not None and r["solver"] != solver:
            continue
        if prefix is not None and not r["solver"].startswith(prefix):
            continue
        out.append(r)
    return out


def one(results, *a, **k):
    r = find(results, *a, **k)
    return r[0] if r else None


def fmt_s(t):
    if t is None:
        return "-"
    if t >= 100:
        return "%.0f" % t
    if t >= 1:
        return "%.2f" % t
    if t >= 1e-3:
        return "%.4f" % t
    return "%.2e" % t


def fmt_e(v):
    return "-" if v is None else "%.1e" % v


def reps_note(r):
    n = r.get("reps_note") or ""
    return n if n else "%d repetition%s" % (r["reps"], "" if r["reps"] == 1 else "s")


def adjoint_match(results, ours):
    """The peer (libLBFGS + CG adjoint) row to compare a libwiberg solve +
    dL/dw row with: the accuracy level is the larger of libwiberg's error
    and the best error any peer configuration reached (neither side is
    asked for digits it did not deliver); the fastest peer configuration
    whose error is within 2x of that level. Returns (peer, level)."""
    peers = [r for r in find(results, "adjoint", ours["case"], prefix="libLBFGS")]
    if not peers:
        return None, None
    level = max(ours["rel_err"], min(r["rel_err"] for r in peers))
    ok = [r for r in peers if r["rel_err"] <= 2 * level]
    return (min(ok, key=lambda r: r["time_s"]) if ok else None), level


def adjoint_equal(results, case="P1 n=1000 p=50"):
    """Equal accuracy for the target: the level is the finest accuracy both
    sides reach (the larger of the two sides' best errors); on each side
    the fastest configuration whose error is within 2x of it. Returns
    (ours, peer, level) or None."""
    ours = find(results, "adjoint", case, prefix="libwiberg")
    peers = find(results, "adjoint", case, prefix="libLBFGS")
    if not ours or not peers:
        return None
    level = max(min(r["rel_err"] for r in ours), min(r["rel_err"] for r in peers))
    o = min((r for r in ours if r["rel_err"] <= 2 * level), key=lambda r: r["time_s"])
    p = min((r for r in peers if r["rel_err"] <= 2 * level), key=lambda r: r["time_s"])
    return o, p, level


def build_rows(results):
    rows = []

    # ---- inner solves: the default against every peer; the dense solver
    # against Ceres and GSL (the earlier rows); value_grad only and
    # matrix-free against the first-order peers; sparse against Ceres
    cases = []
    for r in find(results, "inner"):
        if r["case"] not in cases:
            cases.append(r["case"])
    first_order = ("libLBFGS", "GSL multimin", "Ceres GradientProblem")
    pairs = ((OURS_DEFAULT, lambda s: True),
             (OURS_DENSE, lambda s: s.startswith("Ceres LM") or s.startswith("GSL LM")),
             (OURS_VG, lambda s: s.startswith(first_order)),
             (OURS_MF, lambda s: s.startswith(first_order)),
             (OURS_SPARSE, lambda s: s.startswith("Ceres LM")))
    for case in cases:
        target = ("E - E* <= 1e-10 (E0 - E*)" if case.startswith(("P1", "P3"))
                  else "E <= 1e-20 (E* = 0)")
        for oname, pick in pairs:
            ours = one(results, "inner", case, oname)
            if not ours:
                continue
            for peer in find(results, "inner", case):
                if peer["solver"].startswith("libwiberg") or not pick(peer["solver"]):
                    continue
                note = "inner solve to %s; libwiberg (%s) %d it%s; peer %d it, %s; %s" % (
                    target, ours.get("kind", "?"), ours.get("iters", 0),
                    "" if ours["ok"] else " (TARGET NOT REACHED)", peer.get("iters", 0),
                    "reached the target" if peer["ok"] else "DID NOT REACH THE TARGET",
                    reps_note(peer))
                rows.append({"case": "inner " + case, "ours": oname, "peer": peer["solver"],
                             "ours_s": ours["time_s"], "theirs_s": peer["time_s"],
                             "ratio": ratio_stats(ours, peer), "note": note,
                             "_ok": peer["ok"] and ours["ok"]})

    # ---- solve + dL/dw: every libwiberg configuration against the fastest
    # libLBFGS + CG configuration at its accuracy (adjoint_match)
    for ours in find(results, "adjoint", prefix="libwiberg"):
        peer, level = adjoint_match(results, ours)
        if not peer:
            continue
        rows.append({"case": "solve + dL/dw " + ours["case"], "ours": ours["solver"],
                     "peer": peer["solver"], "ours_s": ours["time_s"],
                     "theirs_s": peer["time_s"], "ratio": ratio_stats(ours, peer),
                     "note": "solve from x0 = 0 and dL/dw; accuracy level %s (rel. error "
                             "vs the dense reference: libwiberg %s, peer %s)" % (
                                 fmt_e(level), fmt_e(ours["rel_err"]),
                                 fmt_e(peer["rel_err"])),
                     "_ok": ours["ok"]})

    # ---- NIST
    ours = one(results, "nist", solver="libwiberg (Gauss-Newton Hessian)")
    ours_fd = one(results, "nist", solver="libwiberg (difference Hessian)")
    if ours:
        for peer in find(results, "nist"):
            if peer["solver"].startswith("libwiberg"):
                continue
            note = ("total time of the 38 solves; libwiberg (Gauss-Newton Hessian) "
                    "%d/38 passed, avg LRE %.2f; peer %d/38 passed, avg LRE %.2f%s" % (
                        ours["passed"], ours["avg_lre"], peer["passed"], peer["avg_lre"],
                        (" (failed: %s)" % peer["failures"]) if peer["failures"] else ""))
            rows.append({"case": "NIST 19 problems x 2 starts",
                         "ours": "libwiberg (Gauss-Newton Hessian)", "peer": peer["solver"],
                         "ours_s": ours["time_s"], "theirs_s": peer["time_s"],
                         "ratio": ratio_stats(ours, peer), "note": note, "_ok": True})

    # ---- derivatives
    dcases = []
    for r in find(results, "deriv"):
        if r["case"] not in dcases:
            dcases.append(r["case"])
    for case in dcases:
        vjp = one(results, "deriv", case, "libwiberg implicit VJP")
        if not vjp:
            continue
        solve_s = vjp["solve_s"]
        fwd_bwd = solve_s + vjp["time_s"]
        for peer in find(results, "deriv", case):
            s = peer["solver"]
            if s.startswith("libwiberg"):
                continue
            err_fd = peer.get("rel_err_vs_fd", peer.get("rel_err_implicit_vs_fd"))
            err_im = peer.get("rel_err_vs_implicit")
            if s == "central finite differences":
                ours_s = vjp["time_s"]
                note = ("derivative only (the forward solve, %s s, is common to both); "
                        "%d warm-started solves, h = %g; implicit vs FD rel. error %s; %s"
                        % (fmt_s(solve_s), peer["solves"], peer["h"], fmt_e(err_fd),
                           reps_note(peer)))
            elif s.startswith("unrolled gradient descent"):
                ours_s = fwd_bwd
                note = ("forward + backward: libwiberg solve + VJP vs K GD steps and "
                        "their reverse pass; unrolled vs %s rel. error %s (truncation: "
                        "|x_K - x*| = %s); %s" % (
                            "FD" if peer.get("fd_available") else "implicit",
                            fmt_e(err_fd if peer.get("fd_available") else err_im),
                            fmt_e(peer.get("xK_err")), reps_note(peer)))
            elif "unrolled Newton" in s:
                ours_s = fwd_bwd
                note = ("forward + backward: libwiberg solve + VJP vs torch Newton (%d it) "
                        "+ backward; torch vs FD %s, vs implicit %s; %s" % (
                            peer.get("iters", 0), fmt_e(err_fd), fmt_e(err_im),
                            reps_note(peer)))
            elif "linalg.solve" in s:
                ours_s = vjp["time_s"]
                note = ("derivative only at the same x*: libwiberg VJP (forms and factors "
                        "H) vs torch graph of one Newton step + backward; torch vs FD %s, "
                        "vs implicit %s; %s" % (fmt_e(err_fd), fmt_e(err_im),
                                                reps_note(peer)))
            else:
                ours_s, note = vjp["time_s"], ""
            rows.append({"case": "dL/dw " + case,
                         "ours": "libwiberg " + ("VJP" if ours_s == vjp["time_s"]
                                                 else "solve + VJP"),
                         "peer": s, "ours_s": ours_s,
                         "theirs_s": peer["time_s"], "note": note, "_ok": True})
        rows.append({"case": "dL/dw " + case, "ours": "libwiberg VJP",
                     "peer": "libwiberg inner solve (itself)",
                     "ours_s": vjp["time_s"], "theirs_s": solve_s,
                     "note": "first VJP after the solve (forms H and factors: factor "
                             "reused = %d) / the solve to |g| <= 1e-10 (%d it)"
                             % (vjp["reused_factor_first"], vjp["solve_iters"]),
                     "_ok": True})
        rows.append({"case": "dL/dw " + case, "ours": "libwiberg VJP, cached factor",
                     "peer": "libwiberg inner solve (itself)",
                     "ours_s": vjp["vjp_cached_s"], "theirs_s": solve_s,
                     "note": "a second VJP at the same x* (factor reused = %d) / the solve"
                             % vjp["reused_factor_second"], "_ok": True})

    # ---- dense throughput
    jac = one(results, "dense", "implicit Jacobian n=2000 p=2000", "libwiberg")
    gemm = one(results, "dense", "machine", "dgemm")
    potrf = one(results, "dense", "machine", "dpotrf")
    if jac and gemm and potrf:
        for name, rate in (("dgemm", gemm["gflops"]), ("dpotrf", potrf["gflops"])):
            rows.append({
                "case": "implicit Jacobian n=2000 p=2000 (throughput)",
                "ours": "libwiberg wb_implicit_jacobian",
                "peer": "%s rate of this machine (%.1f GFLOP/s)" % (name, rate),
                "ours_s": jac["time_s"], "theirs_s": jac["flops"] / rate / 1e9,
                "note": "theirs = the same %.3g flops at the %s rate; libwiberg %.1f "
                        "GFLOP/s = %.0f%% of %s (callbacks included; library alone %.1f "
                        "GFLOP/s = %.0f%%); with a cached factor %.1f GFLOP/s = %.0f%%"
                        % (jac["flops"], name, jac["gflops"], 100 * jac["gflops"] / rate,
                           name, jac["library_gflops"], 100 * jac["library_gflops"] / rate,
                           jac["cached_gflops"], 100 * jac["cached_gflops"] / rate),
                "_ok": True})
    return rows


def targets(results):
    out = []
    ours = one(results, "inner", "P1 n=1000", OURS_DENSE)
    ceres = [r for r in find(results, "inner", "P1 n=1000", prefix="Ceres") if r["ok"]]
    gsl = one(results, "inner", "P1 n=1000", "GSL LM cholesky")
    if ours and ceres:
        best = min(ceres, key=lambda r: r["time_s"])
        ratio = ours["time_s"] / best["time_s"]
        out.append(("p1_ceres", ratio <= 0.5,
                    "%s s / %s s (%s) = %.2fx" % (fmt_s(ours["time_s"]), fmt_s(best["time_s"]),
                                                 best["solver"], ratio)))
    else:
        out.append(("p1_ceres", None, "Ceres not measured"))
    if ours and gsl and gsl["ok"]:
        ratio = ours["time_s"] / gsl["time_s"]
        out.append(("p1_gsl", ratio <= 0.7, "%s s / %s s = %.2fx" % (
            fmt_s(ours["time_s"]), fmt_s(gsl["time_s"]), ratio)))
    else:
        out.append(("p1_gsl", None, "GSL not measured"))
    nist = one(results, "nist", solver="libwiberg (Gauss-Newton Hessian)")
    if nist:
        out.append(("nist", nist["passed"] == 38 and nist["avg_lre"] >= 9,
                    "%d/38 passed, average LRE %.2f (min %.2f)" % (
                        nist["passed"], nist["avg_lre"], nist["min_lre"])))
    v = one(results, "deriv", "P1 n=1000 p=50", "libwiberg implicit VJP")
    if v:
        rc = v["vjp_cached_s"] / v["solve_s"]
        rf = v["time_s"] / v["solve_s"]
        out.append(("adj_solve", rc <= 0.1,
                    "VJP with the cached factor %s s = %.3fx the solve (%s s); the first VJP "
                    "after a solve (H formed and factored again, factor reused = %d) %s s = "
                    "%.3fx" % (fmt_s(v["vjp_cached_s"]), rc, fmt_s(v["solve_s"]),
                               v["reused_factor_first"], fmt_s(v["time_s"]), rf)))
    fd_parts, fd_ok = [], True
    for case in ("P1 n=100 p=50", "P1 n=1000 p=50"):
        v = one(results, "deriv", case, "libwiberg implicit VJP")
        fd = one(results, "deriv", case, "central finite differences")
        if v and fd:
            sp = fd["time_s"] / v["time_s"]
            fd_ok &= sp >= 50
            fd_parts.append("%s: FD %s s / VJP %s s = %.0fx" % (
                case, fmt_s(fd["time_s"]), fmt_s(v["time_s"]), sp))
    if fd_parts:
        out.append(("adj_fd", fd_ok, "; ".join(fd_parts)))
    jac = one(results, "dense", "implicit Jacobian n=2000 p=2000", "libwiberg")
    gemm = one(results, "dense", "machine", "dgemm")
    potrf = one(results, "dense", "machine", "dpotrf")
    if jac and gemm and potrf:
        g, p = gemm["gflops"], potrf["gflops"]
        ok = jac["library_gflops"] >= 0.6 * g and jac["library_gflops"] >= 0.6 * p
        out.append(("dense", ok,
                    "dgemm %.1f, dpotrf %.1f GFLOP/s; implicit Jacobian %.1f GFLOP/s with the "
                    "Hessian callback (%.0f%% of dgemm, %.0f%% of dpotrf), library's own work "
                    "%.1f GFLOP/s (%.0f%% / %.0f%%), cached factor %.1f GFLOP/s (%.0f%% / "
                    "%.0f%%); judged on the library's own work" % (
                        g, p, jac["gflops"], 100 * jac["gflops"] / g, 100 * jac["gflops"] / p,
                        jac["library_gflops"], 100 * jac["library_gflops"] / g,
                        100 * jac["library_gflops"] / p, jac["cached_gflops"],
                        100 * jac["cached_gflops"] / g, 100 * jac["cached_gflops"] / p)))
    out.extend(issue13_targets(results))
    return out


def issue13_targets(results):
    out = []
    for key, oname, bound in (("i13_default", OURS_DEFAULT, 1.0), ("i13_vg", OURS_VG, 3.0)):
        parts, ok_all, seen = [], True, False
        for case in ISSUE_CASES:
            ours = one(results, "inner", case, oname)
            lb = one(results, "inner", case, "libLBFGS m=20")
            if not ours or not lb:
                continue
            seen = True
            med = ratio_stats(ours, lb)
            good = ours["ok"] and med[0] <= bound
            ok_all &= good
            parts.append("%s: %s s / %s s = %sx (%s)%s" % (
                case, fmt_s(ours["time_s"]), fmt_s(lb["time_s"]), fmt_ratio(med),
                ours.get("kind", "?"), "" if ours["ok"] else " NOT REACHED"))
        out.append((key, ok_all if seen else None, "; ".join(parts) or "not measured"))
    eq = adjoint_equal(results)
    if eq:
        ours, peer, level = eq
        med = ratio_stats(ours, peer)
        out.append(("i13_adjoint", med[0] <= 0.7,
                    "at the accuracy level %s (rel. error of dL/dw; the finest both sides "
                    "reach): %s s (%s, rel. error %s) / %s s (%s, rel. error %s) = %sx" % (
                        fmt_e(level), fmt_s(ours["time_s"]), ours["solver"],
                        fmt_e(ours["rel_err"]), fmt_s(peer["time_s"]), peer["solver"],
                        fmt_e(peer["rel_err"]), fmt_ratio(med))))
    else:
        out.append(("i13_adjoint", None, "not measured"))
    sp = one(results, "inner", "P3 TV 256x256", OURS_SPARSE)
    ce = one(results, "inner", "P3 TV 256x256", "Ceres LM SPARSE_NORMAL_CHOLESKY")
    if sp and ce:
        med = ratio_stats(sp, ce)
        out.append(("i13_sparse", sp["ok"] and med[0] <= 0.7, "%s s / %s s = %sx" % (
            fmt_s(sp["time_s"]), fmt_s(ce["time_s"]), fmt_ratio(med))))
    else:
        d = one(results, "inner", "P3 TV 256x256", OURS_DEFAULT)
        extra = ""
        if d and ce:
            extra = ("; for reference, the default (%s) %s s / Ceres LM %s s = %sx" % (
                d.get("kind", "?"), fmt_s(d["time_s"]), fmt_s(ce["time_s"]),
                fmt_ratio(ratio_stats(d, ce))))
        out.append(("i13_sparse", None, "no sparse mode in this build" + extra))
    parts, ok_all, seen = [], True, False
    for case in ("P1 n=10", "P1 n=100", "P1 n=1000", "P2 vardim n=1000"):
        ours = one(results, "inner", case, OURS_DENSE)
        peers = [r for r in find(results, "inner", case)
                 if r["solver"].startswith(("Ceres", "GSL")) and r["ok"]]
        if not ours or not peers:
            continue
        seen = True
        worst = max(ratio_stats(ours, r)[0] for r in peers)
        ok_all &= ours["ok"] and worst < 1
        parts.append("%s: at most %.2fx" % (case, worst))
    nist = one(results, "nist", solver="libwiberg (Gauss-Newton Hessian)")
    if nist:
        seen = True
        ok_all &= nist["passed"] == 38
        parts.append("NIST %d/38" % nist["passed"])
    out.append(("i13_lead", ok_all if seen else None, "; ".join(parts) or "not measured"))
    return out


def row_ratio(r):
    if r.get("ratio"):
        txt = fmt_ratio(r["ratio"])
    else:
        txt = "%.3f" % (r["ours_s"] / r["theirs_s"]) if r["theirs_s"] else "-"
    return txt + ("" if r["_ok"] else "*")


def table_text(rows):
    hdr = ("case", "ours", "peer", "ours s", "theirs s", "ours/theirs (range)")
    lines = []
    w = [max(len(hdr[0]), max((len(r["case"]) for r in rows), default=0)),
         max(len(hdr[1]), max((len(r["ours"]) for r in rows), default=0)),
         max(len(hdr[2]), max((len(r["peer"]) for r in rows), default=0)), 10, 10, 19]
    fmt = "%-{0}s  %-{1}s  %-{2}s  %{3}s  %{4}s  %-{5}s".format(*w)
    lines.append((fmt % hdr).rstrip())
    lines.append("-" * (sum(w) + 10))
    for r in rows:
        lines.append((fmt % (r["case"], r["ours"], r["peer"], fmt_s(r["ours_s"]),
                             fmt_s(r["theirs_s"]), row_ratio(r))).rstrip())
    return "\n".join(lines)


def md_table(head, body):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in body:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def write_md(path, results, versions, env, rows, tg, table):
    L = []
    L.append("# Benchmarks: libwiberg against its peers")
    L.append("")
    L.append("Written by `bench/run` on %s (UTC). Not run in CI." % env.get(
        "date", datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")))
    L.append("")
    L.append("## How to run")
    L.append("")
    L.append("```sh")
    L.append("bench/setup   # once, as root or with sudo: Ceres, GSL, libLBFGS, PyTorch")
    L.append(env.get("command", "bench/run") + "   # this file's figures")
    L.append("```")
    L.append("")
    L.append("`bench/run` configures a Release build with `-DWIBERG_BUILD_BENCH=ON` in "
             "`build-bench/`, builds, generates the data (`bench_data`), then runs "
             "`bench_ours`, `bench_ceres`, `bench_gsl`, `bench_lbfgs` and `bench_torch.py` "
             "(a peer that is not installed is skipped with a message) **interleaved**: "
             "round 1 runs every program once, round 2 again, and so on (`--rounds R`, 5 "
             "by default); a round of a program does its share of the repetitions, and the "
             "slow configurations (a few repetitions of several seconds) run in round 1 "
             "only. It records the load average before the first round and after the "
             "last, writes `bench/results.json` and this file, and prints the ratio table. "
             "`bench/run --help` lists the options: `--quick` (one round, one repetition; "
             "a smoke test), `--only SECTION` (inner, p3, p4, adjoint, nist, deriv, dense) "
             "and `--cpu-time` (time by the process's CPU time instead of wall time, for a "
             "machine with more runnable jobs than cores); `--quick` and `--only` write "
             "their report into `build-bench/`, never over this file.")
    L.append("")
    L.append("## Machine and versions")
    L.append("")
    L.append("* CPU: %s, %s cores (%s); %s" % (env.get("cpu", "?"), env.get("cores", "?"),
                                               env.get("arch", "?"), env.get("os", "")))
    L.append("* one thread everywhere: `OPENBLAS_NUM_THREADS=1`, Ceres `num_threads = 1`, "
             "`torch.set_num_threads(1)`; compiler %s, CMake Release (`-O3`)" %
             env.get("cc", "?"))
    vv = [("libwiberg", versions.get("libwiberg")), ("OpenBLAS", versions.get("openblas")),
          ("Ceres Solver", versions.get("ceres")), ("GSL", versions.get("gsl")),
          ("libLBFGS", env.get("lbfgs")), ("PyTorch", versions.get("torch")),
          ("Eigen", env.get("eigen"))]
    for name, v in vv:
        L.append("* %s: %s" % (name, v if v else "not installed (skipped)"))
    if env.get("load_before"):
        L.append("* load average (1, 5, 15 min) before the first round: %s; after the last: "
                 "%s. The machine was shared with other jobs during the run: "
                 "single-thread timings then vary by 10-30%% or more between runs, which "
                 "the interleaving (every ratio is a median of ratios measured in the same "
                 "round) is there to absorb" % (env["load_before"], env["load_after"]))
    L.append("* %d round%s, %s s in all; clock: %s" % (
        env.get("rounds", 1), "" if env.get("rounds", 1) == 1 else "s",
        env.get("seconds", "?"),
        "the process's CPU time (`--cpu-time`, CLOCK_PROCESS_CPUTIME_ID; every program "
        "is single-threaded)" if env.get("clock") == "cpu"
        else "wall time (CLOCK_MONOTONIC)"))
    L.append("")
    L.append("## Method")
    L.append("")
    L.append(
        "* **Same problems, data and starts.** `bench_data` generates the data once "
        "(seeded splitmix64, `bench/bench_problems.h`) and writes a binary file that every "
        "program reads (C, C++ and Python). The reference minimizer x* and E* come from an "
        "independent damped Newton method (OpenBLAS `dsyrk` + LAPACK `dposv`, "
        "|g|_inf <= 1e-12), not from libwiberg.")
    L.append(
        "* **P1**, robust fusion: E(x; w) = sum_i w_i d^2 (sqrt(1 + r_i^2/d^2) - 1) + mu/2 "
        "|x|^2, r = A x - b, A 2n x n with U(-1,1)/sqrt(n) entries, b = A x_true + "
        "U(-0.01, 0.01) with exactly 10% of the entries shifted by +-3, w_i in [0.5, 1.5], "
        "d = 0.1, mu = 1e-3, x0 = 0. libwiberg gets E, grad and the exact Hessian "
        "A' diag(w/q^3) A + mu I (`dsyrk`), and in the default configuration also H v "
        "(two `dgemv`) and diag H; Ceres and GSL get the least-squares form "
        "f_i = r_i sqrt(2 w_i/(q_i+1)), f_{m+j} = sqrt(mu) x_j with its analytic dense "
        "Jacobian (Ceres also the native variant `ScaledLoss(SoftLOneLoss(d), w_i)` on "
        "r_i); libLBFGS gets E and grad.")
    L.append(
        "* **P2**, More-Garbow-Hillstrom #25 (variably dimensioned), n = 1000, standard x0; "
        "exact Hessian I + (1 + 6 S^2) v v' for libwiberg, the (n+2) x n Jacobian for Ceres "
        "and GSL.")
    L.append(
        "* **P3**, smoothed-TV denoising on a 256 x 256 grid (n = 65536): E(x) = sum_p "
        "(x_p - y_p)^2/2 + wt sum_p sqrt(eps^2 + |grad x|_p^2), forward differences with "
        "the Neumann boundary, wt = 0.1, eps = 0.05, y = a piecewise-constant image (a "
        "rectangle, two disks) plus U(-0.1, 0.1) noise, x0 = y; H = I + sum_p D_p' M_p D_p "
        "has band kd = 256 and 4 entries a column in its lower triangle. E* from "
        "`bench_data`'s Newton method with LAPACK's banded Cholesky (`dpbtrf`), "
        "|g|_inf <= 1e-11. libwiberg gets value_grad, hvp, hess_diag and the band "
        "(kd = 256, `hess_band`); **Ceres** gets the least-squares form: a residual "
        "x_p - y_p and a residual sqrt(2 wt) (eps^2 + |g_p|^2)^(1/4) per pixel (1/2 f^2 = "
        "wt phi_p; analytic Jacobians, one parameter block per pixel) with LM and "
        "SPARSE_NORMAL_CHOLESKY (SuiteSparse), the configuration issue 13 names -- its "
        "Gauss-Newton model drops the TV term's curvature across the gradient, which "
        "costs it iterations -- and, as a second row, `GradientProblem` (Ceres' "
        "line-search L-BFGS, m = 20) on E and grad E, which is the fairer form for a "
        "smooth non-least-squares energy; **libLBFGS** gets E and grad E. A sparse "
        "libwiberg row (CHOLMOD) is one call in `bench_ours.c` (`section_p3`) once the "
        "library takes a sparsity pattern: `bp_p3_csc_pattern` / `bp_p3_csc_values` in "
        "`bench/bench_problems.h` give H's lower triangle in CSC, checked against the "
        "band and the products by `bench_data`.")
    L.append(
        "* **P4**, extended Rosenbrock, n = 1000, x0 = (-1.2, 1, ...), E* = 0: libwiberg "
        "gets value_grad, hvp, hess_diag and the 2x2-block band (kd = 1); Ceres LM "
        "SPARSE_NORMAL_CHOLESKY on the residuals sqrt(2) (10 (b - a^2), 1 - a) per pair "
        "and `GradientProblem` L-BFGS; GSL `multimin` `vector_bfgs2` (step 0.01, line "
        "tolerance 0.1) on E and grad E; libLBFGS.")
    L.append(
        "* **libwiberg's configurations**: *default (AUTO, all callbacks)* -- "
        "`WB_HESS_AUTO` with every callback the problem has (P1: hess, hvp, hess_diag, "
        "mixed; P2: hess, hvp, hess_diag; P3, P4: hvp, hess_diag, kd and hess_band); the "
        "path AUTO took is in the 'path' column. *value_grad only (AUTO)* -- the README's "
        "quick start. *dense (exact Hessian)* -- `WB_HESS_DENSE` with the exact Hessian: "
        "the row the earlier Ceres/GSL comparisons and targets use. *matrix-free (hvp)* "
        "-- `WB_HESS_MATRIX_FREE` with the exact products (P3, P4).")
    L.append(
        "* **Target** (More-Wild): E - E* <= 1e-10 (E0 - E*) for P1 and P3; E <= 1e-20 "
        "for P2 and P4 (E* = 0 and E0 = 6e21 (P2) make the relative target meaningless "
        "there). Every solver "
        "runs with tight tolerances and is stopped by its own per-iteration hook (libwiberg "
        "`settings.progress`, Ceres `IterationCallback`, GSL's iterate loop, libLBFGS "
        "`progress`) as soon as E reaches the target; the time is that of the solve call "
        "(setup - data, problem and workspace construction - excluded): a round reports the "
        "median of its repetitions, a row the median over the rounds (5 or more "
        "repetitions in all unless a row says otherwise). Every round starts each "
        "program afresh, so a row with one repetition a round includes its first-touch "
        "costs, alike for every program. Clock: `CLOCK_MONOTONIC`, or with `--cpu-time` "
        "the process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`).")
    L.append(
        "* **Ceres** gets every dense configuration: LM with DENSE_NORMAL_CHOLESKY (Eigen "
        "and LAPACK), DENSE_QR (Eigen and LAPACK) and the native SoftLOne loss; the target "
        "is judged against the fastest one that reached the target. **GSL**: "
        "`multifit_nlinear`, trust-region LM, Cholesky, on OpenBLAS's CBLAS. **libLBFGS**: "
        "m = 20, More-Thuente line search.")
    L.append(
        "* **NIST**: the 19 StRD problems of Ceres' NIST example (lower and average "
        "difficulty), both starts, judged as Ceres judges (LRE = min_j -log10 |b_j - c_j| / "
        "|c_j|, clipped to [0, 11]; a start passes at LRE >= 4). libwiberg: the "
        "Gauss-Newton Hessian J'J from the analytic Jacobian (and, as a second row, no "
        "Hessian at all: the library's difference Hessian), `max_iter` 10000, `grad_tol` 0, "
        "`step_tol` 1e-13. Ceres: as `examples/nist.cc` (tolerances = machine epsilon, "
        "10000 iterations) with one analytic-Jacobian residual block per problem. GSL: the "
        "driver at tolerances 1e-15. libLBFGS: E and J'r, epsilon 1e-16.")
    L.append(
        "* **Derivatives**: P1 with w = the first p observation weights (p = 50, or p = 2n "
        "= all of them), L = 1/2 |x*(w) - x_true|^2. libwiberg: `wb_solve` on the dense "
        "path (`WB_HESS_DENSE`, grad_tol 1e-10) then `wb_implicit_vjp` with lambda = 0. (a) central differences of L, 2p "
        "solves warm-started from x*, h = 1e-3, grad_tol 1e-13 (looser re-solves make the "
        "difference quotient wrong in the 3rd digit); (b) reverse-mode unrolling of K "
        "gradient-descent steps from x0 = 0 with step 1/L (Domke 2012; Hessian-vector and "
        "mixed products only, written in C with BLAS); (c) PyTorch autograd (float64): "
        "through an unrolled Newton solve, and through one `torch.linalg.solve` Newton step "
        "at libwiberg's x* (H detached). The relative errors are |g - g_ref| / |g_ref| "
        "against (a), or against the implicit gradient where (a) is not run (p = 2000 would "
        "take 4000 solves).")
    L.append(
        "* **Solve + dL/dw** (issue 13), P1 n = 1000, p = 50, L as above, from x0 = 0: "
        "libwiberg `wb_solve` to grad_tol (1e-8, the default, or 1e-10) then "
        "`wb_implicit_vjp`, in the default configuration (AUTO with every callback: "
        "matrix-free at n = 1000, the adjoint by the library's CG) and dense. Peer: "
        "libLBFGS (m = 20) stopped at |g|_inf <= 1e-6, 1e-8 or 1e-10, then plain "
        "conjugate gradients on exact Hessian-vector products (two `dgemv` each, x = 0 "
        "start) to relative residual 1e-6, 1e-8 or 1e-10, and dL/dw = -B'v. The accuracy "
        "is the relative error of dL/dw against a dense reference (`bench_data`: "
        "LAPACK `dposv` on the exact H at the reference x*, |g| <= 1e-12). Equal "
        "accuracy: the level is the larger of libwiberg's error and the best error any "
        "peer configuration reached, and libwiberg is compared with the fastest peer "
        "configuration whose error is within 2x of that level (the rows of the ratio "
        "table); the target compares, at the finest level both sides reach, the fastest "
        "configuration of each side within 2x of it. libwiberg's loose configuration "
        "(grad_tol 1e-6, cg_tol 1e-6) is there to meet the peer's accuracy.")
    L.append(
        "* **Dense throughput**: dgemm (2n^3 flops) and dpotrf (n^3/3) at n = 2000 measure "
        "the machine, one of each in every repetition of the Jacobian's loop (so that a load "
        "change on a shared machine moves both sides of the ratio alike); "
        "`wb_implicit_jacobian` at n = p = 2000 runs on a fresh solver state at "
        "x* (a warm re-solve that stops at once) so it forms H (the user's dsyrk callback, "
        "m n^2 flops), factors it (n^3/3, dpotrf) and solves for p right-hand sides "
        "(2 n^2 p, recursive blocked triangular solves: dgemm plus dtrsm on diagonal blocks "
        "of order <= 96). "
        "GFLOP/s = those flops / time; 'library alone' leaves the callbacks' time and flops "
        "out.")
    L.append("")
    L.append("## Results")
    L.append("")
    L.append("ours/theirs < 1: libwiberg is faster. A `*` marks a row where a solver did not "
             "reach the target. The notes in `bench/results.json` say what each time "
             "covers.")
    L.append("")

    # inner table
    inner = find(results, "inner")
    if inner:
        L.append("### Inner solve (seconds to the target)")
        L.append("")
        cases = []
        for r in inner:
            if r["case"] not in cases:
                cases.append(r["case"])
        body = []
        for case in cases:
            ours = one(results, "inner", case, OURS_DEFAULT)
            for r in find(results, "inner", case):
                ratio = (fmt_ratio(ratio_stats(ours, r))
                         if ours and r["solver"] != OURS_DEFAULT else "")
                reached = "yes" if r["ok"] else "**no** (E = %.3g)" % r.get("E", float("nan"))
                body.append((case, r["solver"], r.get("kind", ""), fmt_s(r["time_s"]), ratio,
                             r.get("iters", ""), reached,
                             reps_note(r) + ("" if r.get("rounds", 1) == 1
                                             else " in %d rounds" % r["rounds"])))
        L.append("'default/this' is the median over the rounds of the default "
                 "configuration's time over this row's, measured in the same round (range "
                 "in brackets).")
        L.append("")
        L.append(md_table(("case", "solver", "path", "time s", "default/this", "iterations",
                           "target reached", "repetitions"), body))
        L.append("")
    adj = find(results, "adjoint")
    if adj:
        L.append("### Solve + dL/dw, P1 n = 1000, p = 50 (seconds)")
        L.append("")
        body = []
        for r in adj:
            body.append((r["solver"], fmt_s(r["time_s"]), fmt_s(r["solve_s"]),
                         fmt_s(r["vjp_s"]), fmt_e(r["rel_err"]), r.get("iters", ""),
                         r.get("adj_cg_iters", ""), "%.1e" % r.get("grad_norm", 0),
                         "yes" if r["ok"] else "**no**"))
        L.append(md_table(("configuration", "solve + dL/dw s", "solve s", "dL/dw s",
                           "rel. error of dL/dw", "solver iterations",
                           "adjoint CG iterations", "final |g|_inf",
                           "tolerances met"), body))
        L.append("")
    nist = find(results, "nist")
    if nist:
        L.append("### NIST StRD, 19 problems x 2 starts")
        L.append("")
        body = []
        for r in nist:
            body.append((r["solver"], "%d/38" % r["passed"], "%.2f" % r["avg_lre"],
                         "%.2f" % r["min_lre"], fmt_s(r["time_s"]), r["iters"],
                         r["failures"] or "-"))
        L.append(md_table(("solver", "passed (LRE >= 4)", "avg LRE", "min LRE",
                           "time for all 38 s", "iterations", "failed starts"), body))
        L.append("")
    deriv = find(results, "deriv")
    if deriv:
        L.append("### Derivatives dL/dw (seconds per gradient)")
        L.append("")
        body = []
        for r in deriv:
            err = r.get("rel_err_vs_fd", r.get("rel_err_implicit_vs_fd"))
            if r["solver"] == "libwiberg implicit VJP":
                extra = "cached factor: %s s; solve %s s (%d it)" % (
                    fmt_s(r["vjp_cached_s"]), fmt_s(r["solve_s"]), r["solve_iters"])
            elif r["solver"].startswith("libwiberg solve"):
                continue
            elif r["solver"] == "central finite differences":
                extra = "%d solves" % r["solves"]
            elif "unrolled gradient" in r["solver"]:
                extra = "|x_K - x*| = %s" % fmt_e(r.get("xK_err"))
            elif "unrolled Newton" in r["solver"]:
                extra = "%d Newton steps" % r.get("iters", 0)
            else:
                extra = ""
            im = r.get("rel_err_vs_implicit")
            if r["solver"] == "central finite differences":
                im = r.get("rel_err_implicit_vs_fd")
            body.append((r["case"], r["solver"], fmt_s(r["time_s"]),
                         fmt_e(err) if r["solver"] != "libwiberg implicit VJP" else "-",
                         fmt_e(im) if r["solver"] != "libwiberg implicit VJP" else "-",
                         extra, reps_note(r)))
        L.append(md_table(("case", "method", "time s", "rel. error vs FD",
                           "rel. error vs implicit", "", "repetitions"), body))
        L.append("")
    dense = find(results, "dense")
    if dense:
        L.append("### Dense throughput (n = 2000, one thread)")
        L.append("")
        body = []
        for r in dense:
            if r["case"] == "machine":
                body.append((r["solver"], fmt_s(r["time_s"]), "%.1f" % r["gflops"], ""))
            else:
                body.append(("wb_implicit_jacobian, p = 2000 (first call)",
                             fmt_s(r["time_s"]), "%.1f" % r["gflops"],
                             "library alone %.1f GFLOP/s (callbacks %s s); cached factor "
                             "%s s = %.1f GFLOP/s" % (r["library_gflops"],
                                                      fmt_s(r["callback_s"]),
                                                      fmt_s(r["cached_s"]),
                                                      r["cached_gflops"])))
        L.append(md_table(("operation", "time s", "GFLOP/s", ""), body))
        L.append("")
    L.append("### All comparisons (`bench/results.json`)")
    L.append("")
    L.append("```")
    L.append(table)
    L.append("```")
    L.append("")
    L.append("## Targets")
    L.append("")
    body = []
    for key, ok, text in tg:
        body.append((TARGETS_TEXT[key], "met" if ok else ("**missed**" if ok is False
                                                           else "not measured"), text))
    L.append(md_table(("target", "status", "measured"), body))
    L.append("")
    L.append("## Where the time goes")
    L.append("")
    L.append("Every program takes `--help`; `--only SECTION` runs one part. To profile "
             "libwiberg's side:")
    L.append("")
    L.append("```sh")
    L.append("OPENBLAS_NUM_THREADS=1 perf record -g build-bench/bench/bench_ours "
             "--data build-bench/data --only p3   # or inner, p4, adjoint, deriv, dense, nist")
    L.append("perf report --stdio --no-children | head -40")
    L.append("```")
    L.append("")
    L.append("Raw RESULT lines (one per round; iterations, evaluations, final E, statuses, "
             "errors) are in `build-bench/raw.jsonl`, the programs' output in "
             "`build-bench/logs/<program>.round<r>.log`. `python3 bench/report.py --raw "
             "build-bench/raw.jsonl --env build-bench/env.json --json OUT.json --md OUT.md` "
             "rebuilds the report from them.")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md")
    args = ap.parse_args()
    results, versions = load(args.raw)
    with open(args.env) as f:
        env = json.load(f)
    rows = build_rows(results)
    with open(args.json, "w") as f:
        out = []
        for r in rows:
            d = {k: r[k] for k in ("case", "ours", "peer", "ours_s", "theirs_s", "note")}
            if r.get("ratio") and r["ratio"][0] is not None:
                d["ratio_median"], d["ratio_min"], d["ratio_max"], d["ratio_rounds"] = \
                    r["ratio"]
            out.append(d)
        json.dump({"machine": env, "rows": out}, f, indent=1)
        f.write("\n")
    table = table_text(rows)
    print(table)
    tg = targets(results)
    print("\nTargets:")
    for key, ok, text in tg:
        print("  [%s] %s: %s" % ("met" if ok else ("MISSED" if ok is False else "n/a"),
                                 TARGETS_TEXT[key], text))
    if args.md:
        write_md(args.md, results, versions, env, rows, tg, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
