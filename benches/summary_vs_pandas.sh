#!/usr/bin/env bash
# latlab's summary (polars, Rust) against the same summary in pandas, side by side, on one
# 10-million-span results folder. Usage: benches/summary_vs_pandas.sh [DIR]
# Needs: cargo build --release --bin latlab; pip install -r notebooks/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/latlab-10m}
LATLAB=${LATLAB:-target/release/latlab}
[ -x "$LATLAB" ] || { echo "build latlab first: cargo build --release --bin latlab" >&2; exit 2; }
[ -f "$DIR/spans.parquet" ] || python3 benches/gen_spans.py --spans 10000000 --out "$DIR"

best() { # best wall time in seconds of 3 runs after a warm-up
    "$@" >/dev/null
    local best=999999
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
        best=$(python3 -c "print(min($best, $t1 - $t0))")
    done
    echo "$best"
}

latlab_s=$(best "$LATLAB" show "$DIR")
pandas_s=$(best python3 benches/summary_pandas.py "$DIR")
echo "spans:  $(python3 -c "import pyarrow.parquet as pq; print(pq.ParquetFile('$DIR/spans.parquet').metadata.num_rows)")"
echo "latlab show (polars): ${latlab_s} s"
echo "pandas + numpy:       ${pandas_s} s"
python3 -c "print(f'ratio pandas / latlab: {$pandas_s / $latlab_s:.1f}x')"

# The two must agree on counts and every percentile's value.
"$LATLAB" show "$DIR" --json > /tmp/latlab-summary.json
python3 benches/summary_pandas.py "$DIR" --json /tmp/pandas-summary.json >/dev/null
python3 - <<'PY'
import json
key = lambda r: (r["run"], r["scenario"], r["profile"], r["backend"], r["stage"])
a = {key(r): r for r in json.load(open("/tmp/latlab-summary.json"))}
b = {key(r): r for r in json.load(open("/tmp/pandas-summary.json"))}
assert a.keys() == b.keys(), (a.keys() ^ b.keys())
for k in a:
    for f in ("count", "errors", "skipped"):
        assert a[k][f] == b[k][f], (k, f, a[k][f], b[k][f])
    for f in ("p50", "p90", "p95", "p99"):
        assert abs(a[k][f]["value"] - b[k][f]["value"]) < 1e-6, (k, f, a[k][f], b[k][f])
print(f"summaries agree on {len(a)} groups (counts and percentile values)")
PY
