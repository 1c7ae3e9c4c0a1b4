#!/usr/bin/env python3
"""Convert the UAVDT-SOT toolkit's raw OPE results and annotations into
tracker_fusion's CSV files (tracks.csv.gz, truth.csv.gz, truth_boxes.csv.gz,
trackers.txt), check them and print every tracker's figures.

    python3 uavdt_to_csv.py TOOLKIT_DIR OUT_DIR [--trackers A,B,...] [--all]

TOOLKIT_DIR is the UAVDT toolkit folder (tracker_benchmark_v1.0_UAVDT: anno/
S*_gt.txt, results/results_OPE/<tracker>/<seq>_<tracker>.mat and, for the
cross-check, perfMat/overall/*.mat). Needs numpy and scipy (scipy.io reads the
MATLAB files). No data are written into the repository.

Rules (see examples/tracker_fusion/README.md, "A second benchmark"):
  * boxes x,y,w,h in pixels; centre = x + w/2, y + h/2; frames from 0
    (line f+1 of the annotation = frame f);
  * results of type 'ivtAff' (FCNT) hold IVT's geometric parameters
    (cx, cy, scale, angle, aspect, skew) of a template of tmplsize pixels:
    the box is centred on (cx, cy), w = scale * tmplsize_w,
    h = scale * aspect * tmplsize_h (angle and skew are 0 in these files);
  * a box that is not 4 finite numbers or has w <= 0 or h <= 0 is a missing
    report (tracker_fusion fills it with the tracker's last report, as the
    toolkit does);
  * frame 0 of every tracker is the initial truth box (as the toolkit scores
    it);
  * the sequence SXXYY is written 'SXX-YY': the targets of one scene XX form
    one video for tracker_fusion's split by video (--group dash);
  * excluded: a sequence whose truth does not start at the trackers' common
    initial box (S1310), and tracker folders that are byte-for-byte copies
    of another tracker's results (reported, not guessed which is right).
"""
import argparse
import glob
import gzip
import os
import sys

import numpy as np
import scipy.io as sio

# The trackers of the UAVDT toolkit that use CNN features (the same kind as
# the OTB-100 set); the hand-crafted ones (CN, KCF, SRDCF, SRDCFdecon,
# staple_CA) are left out so that K <= 16. GOTURN and SINT are not listed:
# their folders are copies of ECO's and KCF's results.
DEEP = ["ADNet", "C-COT", "CF2", "CFNet", "CREST", "ECO", "FCNT", "HDT",
        "MCPF", "MDNet", "PTAV", "STCT", "SiamFC"]
# Folders whose .mat files are byte-for-byte those of another tracker (the
# fps field too: 14-18 fps, ECO's speed, not GOTURN's ~100 fps): the copy is
# refused, the folder whose name fits the files kept.
COPIES = {"GOTURN": "ECO", "SINT": "KCF"}


def read_result(path):
    m = sio.loadmat(path, squeeze_me=True, struct_as_record=False)["results"]
    if isinstance(m, np.ndarray):  # a cell of one run
        m = m.flat[0]
    res = np.atleast_2d(np.asarray(m.res, dtype=float))
    if m.type == "rect":
        if res.shape[1] != 4:
            raise ValueError("%s: rect results with %d columns" % (path, res.shape[1]))
        return res, int(m.len)
    if m.type == "ivtAff":
        tw, th = (float(v) for v in np.asarray(m.tmplsize).ravel()[:2])
        if res.shape[1] != 6:
            raise ValueError("%s: ivtAff results with %d columns" % (path, res.shape[1]))
        if np.any(res[:, 3] != 0) or np.any(res[:, 5] != 0):
            raise ValueError("%s: rotated or skewed IVT boxes" % path)
        w = res[:, 2] * tw
        h = res[:, 2] * res[:, 4] * th
        box = np.column_stack([res[:, 0] - w / 2, res[:, 1] - h / 2, w, h])
        return box, int(m.len)
    raise ValueError("%s: result type %r not handled" % (path, m.type))


def valid(b):
    return np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)


def iou_centre(a, b):
    """IoU of boxes given as x, y, w, h (continuous, as tracker_fusion)."""
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def filled(b, g):
    """frame 0 = truth; invalid boxes replaced by the last valid one."""
    b = b.copy()
    b[0] = g[0]
    ok = valid(b)
    for i in range(1, len(b)):
        if not ok[i]:
            b[i] = b[i - 1]
    return b


def figures_program(b, g):
    """tracker_fusion's per-sequence figures: CLE, P@20, success AUC."""
    c = b[:, :2] + b[:, 2:] / 2
    cg = g[:, :2] + g[:, 2:] / 2
    e = np.hypot(*(c - cg).T)
    iou = iou_centre(b, g)
    auc = np.mean([(iou > t).mean() for t in np.arange(21) / 20])
    return e.mean(), (e <= 20).mean(), auc


def figures_toolkit(b, g):
    """The UAVDT toolkit's rules: centres x + (w-1)/2, pixel-inclusive
    overlap; a truth box with any entry <= 0 is invalid (centre error -1, a
    hit at every threshold; overlap -1, a miss); all frames in the
    denominator."""
    c = b[:, :2] + (b[:, 2:] - 1) / 2
    cg = g[:, :2] + (g[:, 2:] - 1) / 2
    e = np.hypot(*(c - cg).T)
    r1 = b[:, :2] + b[:, 2:] - 1
    r2 = g[:, :2] + g[:, 2:] - 1
    inter = (np.clip(np.minimum(r1[:, 0], r2[:, 0]) - np.maximum(b[:, 0], g[:, 0]) + 1, 0, None)
             * np.clip(np.minimum(r1[:, 1], r2[:, 1]) - np.maximum(b[:, 1], g[:, 1]) + 1, 0, None))
    iou = inter / (b[:, 2] * b[:, 3] + g[:, 2] * g[:, 3] - inter)
    ok = (g > 0).all(axis=1)
    e = np.where(ok, e, -1.0)
    iou = np.where(ok, iou, -1.0)
    auc = np.mean([(iou > t).mean() for t in np.arange(21) / 20])
    return (e <= 20).mean(), auc


def crosscheck(toolkit):
    """Every stored curve of perfMat/overall/aveSuccessRatePlot_*alg_*_OPE.mat
    (tracker x sequence x threshold) against the same curve computed here from
    the raw results, all 50 sequences, with the toolkit's rules: the first
    frame scored as the truth, invalid boxes replaced by the previous one,
    figures_toolkit's centres and overlap, thresholds as MATLAB's colon
    0:0.05:1 makes them (k*0.05 up to the middle, 1-(20-k)*0.05 after) and
    0:50 px, the toolkit's reading of FCNT's parameters as an affine matrix
    [p1 p3 p4; p2 p5 p6] on the template's corners, floored."""
    anno = os.path.join(toolkit, "anno")
    seqs = sorted(os.path.basename(f)[:-7] for f in glob.glob(os.path.join(anno, "S*_gt.txt")))
    thr_o = [k * 0.05 if k <= 10 else 1 - (20 - k) * 0.05 for k in range(21)]
    resdir = os.path.join(toolkit, "results", "results_OPE")
    dirs = {d.lower().replace("-", "").replace("_", ""): d for d in os.listdir(resdir)}
    cache = {}

    def curves(t, q):
        if (t, q) in cache:
            return cache[t, q]
        g = np.loadtxt(os.path.join(anno, q + "_gt.txt"), delimiter=",", ndmin=2)
        m = sio.loadmat(os.path.join(resdir, t, "%s_%s.mat" % (q, t)), squeeze_me=True, struct_as_record=False)["results"]
        r = np.atleast_2d(np.asarray(m.res, dtype=float))
        if m.type == "ivtAff":
            tw, th = (float(v) for v in np.asarray(m.tmplsize).ravel()[:2])
            M = np.stack([r[:, [0, 2, 3]], r[:, [1, 4, 5]]], axis=1)  # n x 2 x 3
            c1 = np.floor(M @ np.array([1, -tw / 2, -th / 2]))
            c3 = np.floor(M @ np.array([1, tw / 2, th / 2]))
            r = np.column_stack([c1, c3 - c1])
        r = r.copy()
        for i in range(1, len(r)):
            if not valid(r[i:i + 1])[0] and not np.isnan(g[i]).any():
                r[i] = r[i - 1]
        r[0] = g[0]
        c = r[:, :2] + (r[:, 2:] - 1) / 2
        cg = g[:, :2] + (g[:, 2:] - 1) / 2
        e = np.hypot(*(c - cg).T)
        r1 = r[:, :2] + r[:, 2:] - 1
        r2 = g[:, :2] + g[:, 2:] - 1
        inter = (np.clip(np.minimum(r1[:, 0], r2[:, 0]) - np.maximum(r[:, 0], g[:, 0]) + 1, 0, None)
                 * np.clip(np.minimum(r1[:, 1], r2[:, 1]) - np.maximum(r[:, 1], g[:, 1]) + 1, 0, None))
        iou = inter / (r[:, 2] * r[:, 3] + g[:, 2] * g[:, 3] - inter)
        ok = (g > 0).all(axis=1)
        e = np.where(ok, e, -1.0)
        iou = np.where(ok, iou, -1.0)
        n = len(r) + np.spacing(1)
        cache[t, q] = (np.array([(iou > x).sum() for x in thr_o]) / n, np.array([(e <= x).sum() for x in range(51)]) / n)
        return cache[t, q]

    for f in sorted(glob.glob(os.path.join(toolkit, "perfMat", "overall", "aveSuccessRatePlot_*alg_overlap_OPE.mat"))):
        fe = f.replace("_overlap_", "_error_")
        so = sio.loadmat(f, squeeze_me=True)
        se = sio.loadmat(fe, squeeze_me=True)
        names = [str(x) for x in np.atleast_1d(so["nameTrkAll"])]
        po = np.asarray(so["aveSuccessRatePlot"], dtype=float).reshape(len(names) if len(names) > 2 else 1, len(seqs), 21)
        pe = np.asarray(se["aveSuccessRatePlot"], dtype=float).reshape(po.shape[0], len(seqs), 51)
        if len(names) != po.shape[0]:
            names = ["".join(names)]
        print(os.path.basename(f))
        for k, nm in enumerate(names):
            d = dirs.get(nm.lower().replace("-", "").replace("_", ""))
            if d is None:
                print("  %-11s no results folder" % nm)
                continue
            co = np.array([curves(d, q)[0] for q in seqs])
            ce = np.array([curves(d, q)[1] for q in seqs])
            print("  %-11s stored AUC %.4f P@20 %.4f, recomputed %.4f %.4f; largest difference of a curve point %.1e"
                  % (nm, po[k].mean(), pe[k][:, 20].mean(), co.mean(), ce[:, 20].mean(),
                     max(np.abs(po[k] - co).max(), np.abs(pe[k] - ce).max())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("toolkit")
    ap.add_argument("out")
    ap.add_argument("--trackers", default=",".join(DEEP))
    ap.add_argument("--all", action="store_true", help="check every tracker folder (no output)")
    ap.add_argument("--crosscheck", action="store_true",
                    help="recompute the toolkit's stored curves (perfMat) from the raw results")
    a = ap.parse_args()
    if a.crosscheck:
        crosscheck(a.toolkit)
        return
    resdir = os.path.join(a.toolkit, "results", "results_OPE")
    seqs = sorted(os.path.basename(f)[:-7] for f in glob.glob(os.path.join(a.toolkit, "anno", "S*_gt.txt")))
    folders = sorted(os.listdir(resdir))
    trackers = folders if a.all else a.trackers.split(",")
    truth = {q: np.loadtxt(os.path.join(a.toolkit, "anno", q + "_gt.txt"), delimiter=",", ndmin=2) for q in seqs}

    # copies: folders whose files are identical, sequence by sequence
    raw = {t: {q: read_result(os.path.join(resdir, t, "%s_%s.mat" % (q, t)))[0] for q in seqs} for t in folders}
    copies = []
    for i, t in enumerate(folders):
        for u in folders[i + 1:]:
            if all(raw[t][q].shape == raw[u][q].shape and np.array_equal(raw[t][q], raw[u][q]) for q in seqs):
                copies.append((t, u))
    for t, u in copies:
        print("copy: %s and %s hold identical results in all %d sequences" % (t, u, len(seqs)))
    for t in trackers:
        if t in COPIES and not a.all:
            sys.exit("tracker %s holds a copy of %s's results; leave it out" % (t, COPIES[t]))

    # the common initial box: a sequence whose truth does not start there is dropped
    keep = []
    for q in seqs:
        g0 = truth[q][0]
        starts = [raw[t][q][0] for t in folders if t != "FCNT"]
        agree = sum(np.allclose(s, g0, atol=0.5) for s in starts)
        if agree == 0:
            print("dropped %s: no tracker starts at its first truth box %s (they start at %s)"
                  % (q, g0.tolist(), starts[0].tolist()))
            continue
        if agree < len(starts):
            print("note %s: %d of %d trackers start at the first truth box" % (q, agree, len(starts)))
        keep.append(q)

    frames = sum(len(truth[q]) for q in keep)
    print("%d sequences, %d frames; trackers: %s" % (len(keep), frames, ", ".join(trackers)))
    inval = sum(int((~(truth[q] > 0).all(axis=1)).sum()) for q in keep)
    print("truth boxes with an entry <= 0 (the toolkit's invalid frames): %d" % inval)

    rows = []
    print("\n%-11s %6s %6s %6s | %6s %6s | %s" % ("tracker", "CLE", "P@20", "AUC", "tk P20", "tk AUC", "checks"))
    for k, t in enumerate(trackers):
        fig = []
        tk = []
        nbad = 0
        first_off = []
        for q in keep:
            g = truth[q]
            b = raw[t][q]
            if len(b) != len(g):
                sys.exit("%s %s: %d boxes, truth %d" % (t, q, len(b), len(g)))
            if valid(b[:1])[0]:
                d = np.abs(b[0] - g[0])
                d[:2] += d[2:] / 2  # the largest distance between corners
                first_off.append(d[:2].max())
            nbad += int((~valid(b[1:])).sum())
            f = filled(b, g)
            fig.append(figures_program(f, g))
            tk.append(figures_toolkit(f, g))
            if not a.all:
                ok = valid(b)
                ok[0] = True
                bb = b.copy()
                bb[0] = g[0]
                for i in np.flatnonzero(ok):
                    x, y, w, h = bb[i]
                    rows.append("%s,%d,%d,%.2f,%.2f,%.6g,%.6g" % (q[:3] + "-" + q[3:], i, k, x + w / 2, y + h / 2, w, h))
        fig = np.array(fig)
        tk = np.array(tk)
        fo = np.array(first_off)
        print("%-11s %6.2f %6.3f %6.3f | %6.3f %6.3f | %d invalid boxes; first box = truth within 0.5 px in %d/%d,"
              " 1.5 px in %d (max %.1f px; %d first boxes invalid)"
              % (t, fig[:, 0].mean(), fig[:, 1].mean(), fig[:, 2].mean(), tk[:, 0].mean(), tk[:, 1].mean(),
                 nbad, int((fo <= 0.5).sum()), len(keep), int((fo <= 1.5).sum()), fo.max(), len(keep) - len(fo)))
    if a.all:
        return
    os.makedirs(a.out, exist_ok=True)

    def write(name, header, lines):
        with open(os.path.join(a.out, name), "wb") as raw_f:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw_f, mtime=0) as z:
                z.write((header + "\n" + "\n".join(lines) + "\n").encode())

    write("tracks.csv.gz", "sequence,frame,tracker,x,y,w,h", rows)
    tl, tb = [], []
    for q in keep:
        for i, (x, y, w, h) in enumerate(truth[q]):
            name = q[:3] + "-" + q[3:]
            tl.append("%s,%d,%.2f,%.2f" % (name, i, x + w / 2, y + h / 2))
            tb.append("%s,%d,%.2f,%.2f,%g,%g" % (name, i, x + w / 2, y + h / 2, w, h))
    write("truth.csv.gz", "sequence,frame,x,y", tl)
    write("truth_boxes.csv.gz", "sequence,frame,x,y,w,h", tb)
    with open(os.path.join(a.out, "trackers.txt"), "w") as f:
        f.write("id,name\n" + "".join("%d,%s\n" % (k, t) for k, t in enumerate(trackers)))
    print("\nwrote %s: %d reports, %d truth frames" % (a.out, len(rows), len(tl)))


if __name__ == "__main__":
    main()
