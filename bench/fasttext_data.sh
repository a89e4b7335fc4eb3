#!/usr/bin/env bash
# fasttext_data.sh CSV OUT: AG-News-style CSV -> fastText's "__label__N tokens" lines.
# The text is title + " " + description through `catwire tokenize` (torchtext's
# basic_english), so fastText sees the same lowercased, punctuation-split words
# catwire does: the comparison is between models, not tokenizers.
set -euo pipefail
csv=$1 out=$2
CATWIRE=${CATWIRE:-build/worker/catwire}
# (The Python goes in -c: a heredoc would feed the last command of a pipe.)
python3 -c '
import csv, sys
for row in csv.reader(open(sys.argv[1], encoding="utf-8", newline="")):
    print(row[0])
' "$csv" > "$out.labels"
python3 -c '
import csv, sys
for row in csv.reader(open(sys.argv[1], encoding="utf-8", newline="")):
    print((" ".join(row[1:])).replace("\n", " "))
' "$csv" | "$CATWIRE" tokenize > "$out.text"
paste -d' ' <(sed 's/^/__label__/' "$out.labels") "$out.text" > "$out"
rm -f "$out.labels" "$out.text"
