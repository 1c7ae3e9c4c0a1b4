#!/bin/sh
# The real-data protocol of tracker_fusion: seeds 1..N of a split by video
# (30 % of the sequences held out), every method's OTB figures averaged per
# sequence, and their mean and spread over the seeds.
#
#   sh examples/tracker_fusion/otb_protocol.sh DATA_DIR [SEEDS] [FRACTION]
#
# DATA_DIR holds tracks.csv(.gz), truth_boxes.csv(.gz) and, optionally,
# trackers.txt (the OTB-100 conversion's files); SEEDS defaults to 6,
# FRACTION to 0.3. The binary is $TF_BIN, else
# build/examples/tracker_fusion/tracker_fusion (run from the repository
# root after sh scripts/run-tests.sh build or cmake --build build). Extra
# flags for every run: $TF_FLAGS (e.g. "--epochs 40"). The per-seed JSON
# files are kept in $TF_OUT when set; TF_REPORT_ONLY=1 prints the table
# from the JSON files already in $TF_OUT without running anything.
#
# Printed per method: CLE (px), P@20 and success AUC, each the mean +- the
# standard deviation over the seeds of the per-sequence averages; training
# seconds and inner solves (mean); and in how many seeds the method beats
# the oracle per metric (the best single tracker on the test sequences,
# picked for each metric on its own) and the train-chosen best single
# tracker, on CLE / P@20 / AUC (lower CLE, higher P@20 and AUC). Then the
# non-convex rows' training summed over the seeds (with --lambda-sweep in
# TF_FLAGS one line per lambda): skipped and refused derivatives, the
# curvature of H + lambda I, the basin search's training score.
set -eu
if [ $# -lt 1 ]; then
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
data=$1
seeds=${2:-6}
frac=${3:-0.3}
bin=${TF_BIN:-build/examples/tracker_fusion/tracker_fusion}
[ -x "$bin" ] || { echo "otb_protocol: no binary $bin (build first, or set TF_BIN)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
out=${TF_OUT:-$tmp}
mkdir -p "$out"
file() { # the plain or the gzipped copy of $1, as a plain file path
    if [ -f "$data/$1" ]; then echo "$data/$1"
    elif [ -f "$data/$1.gz" ]; then gzip -dc "$data/$1.gz" > "$tmp/$1"; echo "$tmp/$1"
    else echo "otb_protocol: $data has no $1 or $1.gz" >&2; exit 1
    fi
}
if [ "${TF_REPORT_ONLY:-0}" = 1 ]; then seeds_to_run=0; else seeds_to_run=$seeds; fi
tracks=$(file tracks.csv)
truth=$(file truth_boxes.csv)
names=""
[ -f "$data/trackers.txt" ] && names="--names $data/trackers.txt"
s=1
while [ "$s" -le "$seeds_to_run" ]; do
    rc=0
    # shellcheck disable=SC2086
    OPENBLAS_NUM_THREADS=1 "$bin" --tracks "$tracks" --truth "$truth" $names \
        --test-fraction "$frac" --seed "$s" --threshold 20 --quiet ${TF_FLAGS:-} \
        --json "$out/seed$s.json" > "$out/seed$s.txt" 2>&1 || rc=$?
    # 3: the figures are written but some test solves failed (counted in
    # the JSON's failed_solves); anything else is an error
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        echo "otb_protocol: seed $s failed (status $rc):" >&2
        tail -5 "$out/seed$s.txt" >&2
        exit 1
    fi
    echo "seed $s: done (status $rc)" >&2
    s=$((s + 1))
done

# one method a line in the JSON: {"name": KEY, "label": LABEL, ...}; single
# trackers are told apart by their label (the tracker's name), the other
# rows by their key (their labels name the tracker a seed picked)
s=1
files=""
while [ "$s" -le "$seeds" ]; do files="$files $out/seed$s.json"; s=$((s + 1)); done
# shellcheck disable=SC2086
awk -v seeds="$seeds" -v frac="$frac" '
function str(line, key,   i, rest, j) {
    i = index(line, "\"" key "\": \"")
    if (!i) return ""
    rest = substr(line, i + length(key) + 5)
    j = index(rest, "\", ")
    return substr(rest, 1, j - 1)
}
function num(line, key,   i, rest) {
    i = index(line, "\"" key "\": ")
    if (!i) return "null"
    rest = substr(line, i + length(key) + 4)
    sub(/[,}].*/, "", rest)
    return rest
}
function add(m, k, v) {
    if (v == "null") { bad[m, k]++; return }
    n[m, k]++; s1[m, k] += v; s2[m, k] += v * v
}
function ms(m, k, d,   c, mu, sd) {
    c = n[m, k]
    if (c == 0) return sprintf("%15s", "-")
    mu = s1[m, k] / c
    sd = c > 1 ? sqrt((s2[m, k] - c * mu * mu) / (c - 1)) : 0
    if (sd < 0 || sd != sd) sd = 0
    return sprintf("%7." d "f +- %5." d "f", mu, sd)
}
FNR == 1 { seed++ }
# the training of the robust rows (the "robust" array): derivatives skipped and
# refused, the curvature of H + lambda I at the learned theta, the search
/^    \{"row": / {
    rk = str($0, "row")
    if (!(rk in rseen)) { rseen[rk] = 1; rorder[++nr] = rk; rlam[rk] = num($0, "lambda") }
    rskip[rk] += num($0, "skipped"); rsol[rk] += num($0, "inner_solves")
    rref[rk] += num($0, "refused"); rchk[rk] += num($0, "checked")
    v = num($0, "sigma_min"); if (v != "null" && (!(rk in rsmin) || v + 0 < rsmin[rk])) rsmin[rk] = v + 0
    v = num($0, "sigma_median"); if (v != "null" && v > 0) { rslog[rk] += log(v); rsn[rk]++ }
    v = num($0, "search_after"); if (v != "null" && num($0, "search_evals") > 0) { rsa[rk] += v; rsb[rk] += num($0, "search_before"); rsc[rk]++ }
    rbe[rk] += num($0, "best_epoch"); rbn[rk]++
}
/^    \{"name": / {
    key = str($0, "name"); label = str($0, "label")
    m = key == "single" ? label : key
    if (!(m in seen)) { seen[m] = 1; order[++nm] = m; shown[m] = key == "single" ? label : (key == "best_single" ? "best single (train P@20)" : key == "best_single_cle" ? "best single (train CLE)" : key == "oracle" ? "oracle single (test P@20)" : key) }
    cle[seed, m] = num($0, "cle_px"); p20[seed, m] = num($0, "precision_20"); auc[seed, m] = num($0, "success_auc")
    add(m, "cle", cle[seed, m]); add(m, "p20", p20[seed, m]); add(m, "auc", auc[seed, m])
    add(m, "sec", num($0, "train_seconds")); add(m, "sol", num($0, "inner_solves"))
    fail[m] += num($0, "failed_solves")
    if (key == "best_single" || key == "oracle") pick[seed, key] = label
    if (key == "single") { # the per-metric oracle: the best single tracker on each metric
        if (cle[seed, m] != "null" && (!((seed, "om") in cle) || cle[seed, m] + 0 < cle[seed, "om"] + 0)) cle[seed, "om"] = cle[seed, m]
        if (p20[seed, m] != "null" && (!((seed, "om") in p20) || p20[seed, m] + 0 > p20[seed, "om"] + 0)) p20[seed, "om"] = p20[seed, m]
        if (auc[seed, m] != "null" && (!((seed, "om") in auc) || auc[seed, m] + 0 > auc[seed, "om"] + 0)) auc[seed, "om"] = auc[seed, m]
    }
}
END {
    # the per-metric oracle as a row after the oracle single tracker
    for (sd = 1; sd <= seeds; sd++) { add("om", "cle", cle[sd, "om"]); add("om", "p20", p20[sd, "om"]); add("om", "auc", auc[sd, "om"]) }
    shown["om"] = "oracle per metric"
    for (i = 1; i <= nm; i++) if (order[i] == "oracle") { for (j = nm; j > i; j--) order[j + 1] = order[j]; order[i + 1] = "om"; nm++; break }
    printf "%d seeds, %.0f %% of the sequences held out (split by video); figures on the held-out sequences,\n", seeds, 100 * frac
    printf "averaged per sequence (OTB); mean +- sd over the seeds. beats: in how many seeds CLE / P@20 / AUC beat the\n"
    printf "oracle per metric (in each seed the best single tracker on the test sequences for that metric: min CLE,\n"
    printf "max P@20, max AUC) and the train-chosen best single tracker (by train P@20).\n\n"
    printf "%-26s %15s %15s %15s %8s %8s %12s %12s\n", "method", "CLE px", "P@20", "AUC", "train s", "solves", "beats oracle", "beats best"
    for (i = 1; i <= nm; i++) {
        m = order[i]; bo = ""; bb = ""
        for (j = 1; j <= 3; j++) {
            co = 0; cb = 0
            for (sd = 1; sd <= seeds; sd++) {
                v = (j == 1 ? cle[sd, m] : j == 2 ? p20[sd, m] : auc[sd, m])
                o = (j == 1 ? cle[sd, "om"] : j == 2 ? p20[sd, "om"] : auc[sd, "om"])
                b = (j == 1 ? cle[sd, "best_single"] : j == 2 ? p20[sd, "best_single"] : auc[sd, "best_single"])
                if (v == "null" || v == "") continue
                if (o != "null" && o != "" && (j == 1 ? v + 0 < o + 0 : v + 0 > o + 0)) co++
                if (b != "null" && b != "" && (j == 1 ? v + 0 < b + 0 : v + 0 > b + 0)) cb++
            }
            bo = bo (j > 1 ? "/" : "") co; bb = bb (j > 1 ? "/" : "") cb
        }
        printf "%-26s %s %s %s %8.2f %8.0f %12s %12s%s\n", substr(shown[m], 1, 26), ms(m, "cle", 2), ms(m, "p20", 3), ms(m, "auc", 3),
            n[m, "sec"] ? s1[m, "sec"] / n[m, "sec"] : 0, n[m, "sol"] ? s1[m, "sol"] / n[m, "sol"] : 0, bo, bb,
            fail[m] ? sprintf("  (%d failed solves)", fail[m]) : ""
    }
    if (nr) {
        printf "\nthe non-convex rows\x27 training, summed over the seeds: examples skipped of the inner solves;\n"
        printf "derivatives refused at the learned theta of the training sequences; sigma: the smallest\n"
        printf "curvature of H + lambda I of the accepted ones (min over all; geometric mean of the runs\x27 medians);\n"
        printf "the basin search\x27s training score before -> after (mean); the epoch kept (mean)\n"
        printf "%-28s %8s %14s %10s %10s %10s %17s %6s\n", "row", "lambda", "skipped", "refused", "sigma min", "sigma med", "search", "epoch"
        for (i = 1; i <= nr; i++) {
            rk = rorder[i]
            printf "%-28s %8s %6d/%-7d %4d/%-5d %10.3g %10.3g %17s %6.1f\n", substr(rk, 1, 28), rlam[rk], rskip[rk], rsol[rk], rref[rk], rchk[rk],
                (rk in rsmin) ? rsmin[rk] : -1, rsn[rk] ? exp(rslog[rk] / rsn[rk]) : -1,
                rsc[rk] ? sprintf("%.4f -> %.4f", rsb[rk] / rsc[rk], rsa[rk] / rsc[rk]) : "off", rbe[rk] / rbn[rk]
        }
    }
    printf "\nchosen per seed (best single by train P@20 | oracle by test P@20):\n"
    for (sd = 1; sd <= seeds; sd++) printf "  seed %d: %s | %s\n", sd, pick[sd, "best_single"], pick[sd, "oracle"]
}' $files
