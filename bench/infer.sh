#!/usr/bin/env bash
# bench/infer.sh: inference articles/s per core, raw text to label, catwire
# beside `fasttext predict` with a model of the same dimensions (dim, word
# n-grams, buckets) on the same articles, in the same run, both pinned to one
# core. fastText's model load is measured separately (a 1-line run) and
# subtracted, so both figures are steady-state throughput. Each round runs
# both, in alternating order; the summary is the median of the rounds'
# ratios (this machine's speed drifts by tens of percent between seconds).
# Usage: bash bench/infer.sh [REPEAT] [BATCH] [ROUNDS]
# Env: BUILD (default build), DATA (default ../shared/data/ag_news).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data/ag_news}
REPEAT=${1:-30}
BATCH=${2:-64}
ROUNDS=${3:-7}
export CATWIRE=$BUILD/worker/catwire
command -v fasttext >/dev/null || { echo "fasttext not installed (apt-get install fasttext)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""

"$BUILD/trainer/catwire-trainer" train --train "$DATA/train.csv" --registry "$tmp/reg" --model bench \
    --labels World,Sports,Business,Sci/Tec --quiet >/dev/null
desc=$("$BUILD/bench/bench_infer" --registry "$tmp/reg" --model bench --describe)
dim=$(sed -n 's/.*dim=\([0-9]*\).*/\1/p' <<<"$desc")
ngram=$(sed -n 's/.*ngram=\([0-9]*\).*/\1/p' <<<"$desc")
buckets=$(sed -n 's/.*buckets=\([0-9]*\).*/\1/p' <<<"$desc")
echo "catwire model: $desc"
[ "$buckets" -gt 0 ] || buckets=1

bash bench/fasttext_data.sh "$DATA/train.csv" "$tmp/train.txt"
fasttext supervised -input "$tmp/train.txt" -output "$tmp/ft" -dim "$dim" -wordNgrams "$ngram" \
    -bucket "$buckets" -lr 0.25 -minCount 1 -epoch 5 -thread "$(nproc)" -verbose 0
# fastText gets the raw text (title + " " + description), as catwire does.
python3 - "$DATA/test.csv" "$REPEAT" > "$tmp/test.txt" <<'PY'
import csv, sys
rows = [" ".join(r[1:]).replace("\n", " ") for r in csv.reader(open(sys.argv[1], encoding="utf-8", newline=""))]
for _ in range(int(sys.argv[2])):
    for t in rows: print(t)
PY
head -1 "$tmp/test.txt" > "$tmp/one.txt"
lines=$(wc -l < "$tmp/test.txt")
now() { date +%s.%N; }
ratios=()
run_ft() {
    local t0 t1 t2
    t0=$(now); $pin fasttext predict "$tmp/ft.bin" "$tmp/one.txt" >/dev/null; t1=$(now)
    $pin fasttext predict "$tmp/ft.bin" "$tmp/test.txt" >/dev/null; t2=$(now)
    rate=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$lines" 'BEGIN{d=(c-b)-(b-a); if (d<=0) d=1e-9; printf "%.0f", (n-1)/d}')
}
run_cw() {
    cw=$($pin "$BUILD/bench/bench_infer" --registry "$tmp/reg" --model bench --data "$DATA/test.csv" \
        --batch "$BATCH" --repeat "$REPEAT")
    cwrate=$(sed -n 's/.*articles_per_s=\([0-9]*\).*/\1/p' <<<"$cw")
}
for i in $(seq 1 "$ROUNDS"); do
    if [ $((i % 2)) -eq 1 ]; then run_ft; run_cw; else run_cw; run_ft; fi
    r=$(awk -v a="$cwrate" -v b="$rate" 'BEGIN{printf "%.2f", a/b}')
    ratios+=("$r")
    echo "round $i: fasttext predict ${rate} articles/s (load subtracted) | $cw"
    echo "round $i ratio catwire/fasttext per core = $r"
done
med=$(printf "%s\n" "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
echo "median ratio catwire/fasttext per core over $ROUNDS rounds = $med (min $(printf "%s\n" "${ratios[@]}" | sort -g | head -1), max $(printf "%s\n" "${ratios[@]}" | sort -g | tail -1))"
