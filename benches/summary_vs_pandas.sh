#!/usr/bin/env bash
# latlab's summary (Rust + polars) against the same summary in pandas + numpy, side by side,
# on one results folder (default: a synthetic 10-million-span run, generated if absent).
#
#   benches/summary_vs_pandas.sh [DIR]
#
# Times whole commands (start-up and Parquet reading included): one warm-up run each, then
# the best wall time of 3, with peak memory. Then checks that both computed the same summary:
# the same groups, counts, errors and skipped, and the same p50/p90/p95/p99 and max values
# (compared as whole nanoseconds, see below). Bootstrap intervals are not compared: the two
# draw from different generators. Exits non-zero if they disagree.
#
# Needs: the latlab binary (LATLAB, default target/release/latlab:
#        cargo build --release --bin latlab) and the Python packages of
#        notebooks/requirements.txt (pip install -r notebooks/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/latlab-10m}
LATLAB=${LATLAB:-target/release/latlab}
RUNS=3

if [ ! -x "$LATLAB" ]; then
    echo "no latlab binary at $LATLAB: build it with" >&2
    echo "    cargo build --release --bin latlab" >&2
    echo "or point LATLAB at one." >&2
    exit 2
fi
if [ ! -f "$DIR/spans.parquet" ]; then
    echo "generating $DIR (10,000,000 spans)..."
    python3 benches/gen_spans.py --spans 10000000 --out "$DIR"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# best NAME CMD...: runs CMD once to warm up, then RUNS times; sets best_s and best_kb (the
# peak RSS of the fastest run). Output goes to $work/NAME.out, errors stop the script.
best() {
    local name=$1
    shift
    best_s="" best_kb=""
    for i in $(seq 0 "$RUNS"); do
        if [ -x /usr/bin/time ]; then
            /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
                { cat "$work/$name.err" >&2; echo "$name failed" >&2; exit 1; }
        else # bash's time keyword: wall time only
            TIMEFORMAT="%R -"
            { time "$@" >"$work/$name.out" 2>"$work/$name.err"; } 2>"$work/time" ||
                { cat "$work/$name.err" >&2; echo "$name failed" >&2; exit 1; }
        fi
        read -r s kb <"$work/time"
        [ "$i" -eq 0 ] && continue # warm-up
        if [ -z "$best_s" ] || awk "BEGIN { exit !($s < $best_s) }"; then
            best_s=$s best_kb=$kb
        fi
    done
}
mib() { [ "$1" = "-" ] && echo "?" || awk "BEGIN { printf \"%.0f\", $1 / 1024 }"; }

spans=$(python3 -c "import pyarrow.parquet as pq, sys; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)" "$DIR/spans.parquet")
echo "results: $DIR ($spans spans), $(nproc) CPUs; best of $RUNS after a warm-up"

best latlab "$LATLAB" show "$DIR"
latlab_s=$best_s latlab_kb=$best_kb
best pandas python3 benches/summary_pandas.py "$DIR"
pandas_s=$best_s pandas_kb=$best_kb

printf '%-44s %8s s  %6s MiB peak\n' "latlab show DIR (Rust, polars):" "$latlab_s" "$(mib "$latlab_kb")"
printf '%-44s %8s s  %6s MiB peak\n' "benches/summary_pandas.py DIR (pandas):" "$pandas_s" "$(mib "$pandas_kb")"
awk "BEGIN { printf \"ratio pandas / latlab: %.2fx\n\", $pandas_s / $latlab_s }"

# Same summary? latlab show --json prints the rows; the pandas script writes the same shape.
"$LATLAB" show "$DIR" --json >"$work/latlab.json" 2>"$work/latlab-json.err" ||
    { cat "$work/latlab-json.err" >&2; echo "latlab show --json failed" >&2; exit 1; }
python3 benches/summary_pandas.py "$DIR" --json "$work/pandas.json" >/dev/null
python3 - "$work/latlab.json" "$work/pandas.json" <<'PY'
import json
import sys

def rows(path):
    data = json.load(open(path))
    if isinstance(data, dict):  # tolerate a whole report object
        data = data["summary"]
    return {(r["run"], r["scenario"], r["profile"], r["backend"], r["stage"]): r for r in data}

def ns(estimate):
    """A latency in ms back to whole nanoseconds. Both sides pick the same integer-ns sample;
    its ms value can differ in the last bit (polars may divide by 1e6 as a multiplication by
    1e-6), so values are compared exactly at the nanosecond."""
    if estimate is None:
        return None
    v = estimate["value"] if isinstance(estimate, dict) else estimate
    return round(v * 1e6)

latlab, pandas = rows(sys.argv[1]), rows(sys.argv[2])
problems = []
if latlab.keys() != pandas.keys():
    problems.append(f"groups differ: only latlab {sorted(latlab.keys() - pandas.keys())}, "
                    f"only pandas {sorted(pandas.keys() - latlab.keys())}")
for key in sorted(latlab.keys() & pandas.keys()):
    a, b = latlab[key], pandas[key]
    for field in ("count", "errors", "skipped"):
        if a[field] != b[field]:
            problems.append(f"{'/'.join(key)} {field}: latlab {a[field]}, pandas {b[field]}")
    for field in ("p50", "p90", "p95", "p99", "max"):
        if ns(a[field]) != ns(b[field]):
            problems.append(f"{'/'.join(key)} {field}: latlab {a[field]}, pandas {b[field]}")
    ma, mb = (a["mean"] or {}).get("value"), (b["mean"] or {}).get("value")
    if (ma is None) != (mb is None) or (ma is not None and abs(ma - mb) > 1e-9 * max(1.0, abs(ma))):
        problems.append(f"{'/'.join(key)} mean: latlab {ma}, pandas {mb}")
if problems:
    print("the summaries DISAGREE:", *problems[:20], sep="\n  ")
    sys.exit(1)
print(f"summaries agree on all {len(latlab)} groups: counts, errors, skipped, "
      "p50/p90/p95/p99 and max exactly (to the ns), mean to 1e-9")
PY
