#!/usr/bin/env bash
# bench/train.sh: training wall time and test accuracy of catwire's default
# recipe beside fastText 0.9.2's paper recipe
#   fasttext supervised -dim 10 -lr 0.25 -wordNgrams 2 -minCount 1 -epoch 5
# on the same files with the same thread count, in the same run, printed as
# ratios. Usage: bash bench/train.sh [THREADS] [RUNS]
# Env: BUILD (default build), DATA (default ../shared/data/ag_news).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data/ag_news}
THREADS=${1:-$(nproc)}
RUNS=${2:-3}
export CATWIRE=$BUILD/worker/catwire
TRAINER=$BUILD/trainer/catwire-trainer
command -v fasttext >/dev/null || { echo "fasttext not installed (apt-get install fasttext)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

bash bench/fasttext_data.sh "$DATA/train.csv" "$tmp/train.txt"
bash bench/fasttext_data.sh "$DATA/test.csv" "$tmp/test.txt"

now() { date +%s.%N; }
echo "threads=$THREADS runs=$RUNS train=$DATA/train.csv test=$DATA/test.csv"
printf "%-4s %-9s %9s %9s\n" run system seconds accuracy
ft_t=() ft_a=() cw_t=() cw_a=()
for r in $(seq 1 "$RUNS"); do
    # Alternate the order so drift on a shared machine hits both alike.
    for sys in fasttext catwire; do
        [ $((r % 2)) -eq 0 ] && sys=$([ "$sys" = fasttext ] && echo catwire || echo fasttext)
        if [ "$sys" = fasttext ]; then
            t0=$(now)
            fasttext supervised -input "$tmp/train.txt" -output "$tmp/ft" -dim 10 -lr 0.25 \
                -wordNgrams 2 -minCount 1 -epoch 5 -thread "$THREADS" -verbose 0
            t1=$(now)
            acc=$(fasttext test "$tmp/ft.bin" "$tmp/test.txt" | awk '/^P@1/{print $2}')
            ft_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')") ft_a+=("$acc")
            printf "%-4s %-9s %9.2f %9.4f\n" "$r" fasttext "${ft_t[-1]}" "$acc"
        else
            rm -rf "$tmp/reg"
            t0=$(now)
            "$TRAINER" train --train "$DATA/train.csv" --registry "$tmp/reg" --model bench \
                --labels World,Sports,Business,Sci/Tec --threads "$THREADS" --seed "$r" --quiet >/dev/null
            t1=$(now)
            acc=$("$CATWIRE" evaluate --registry "$tmp/reg" --model bench --threads "$THREADS" \
                "$DATA/test.csv" | sed -n 's/^accuracy=//p')
            cw_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')") cw_a+=("$acc")
            printf "%-4s %-9s %9.2f %9.4f\n" "$r" catwire "${cw_t[-1]}" "$acc"
        fi
    done
done
median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
ft_tm=$(median "${ft_t[@]}") cw_tm=$(median "${cw_t[@]}")
ft_am=$(median "${ft_a[@]}") cw_am=$(median "${cw_a[@]}")
echo "median  fasttext ${ft_tm}s acc ${ft_am} | catwire ${cw_tm}s acc ${cw_am}"
awk -v ct="$cw_tm" -v ft="$ft_tm" -v ca="$cw_am" -v fa="$ft_am" \
    'BEGIN{printf "ratio   time catwire/fasttext = %.2f   accuracy catwire-fasttext = %+.4f\n", ct/ft, ca-fa}'
