#!/usr/bin/env bash
# fasttext_data.sh CSV OUT: AG-News-style CSV -> fastText's "__label__N tokens" lines.
# The text is title + " " + description through `catwire tokenize` (torchtext's
# basic_english), so fastText sees the same lowercased, punctuation-split words
# catwire does: the comparison is between models, not tokenizers.
set -euo pipefail
csv=$1 out=$2
CATWIRE=${CATWIRE:-build/worker/catwire}
python3 - "$csv" > "$out.labels" <<'PY'
import csv, sys
for row in csv.reader(open(sys.argv[1], encoding="utf-8", newline="")):
    print(row[0])
PY
python3 - "$csv" | "$CATWIRE" tokenize > "$out.text" <<'PY'
import csv, sys
for row in csv.reader(open(sys.argv[1], encoding="utf-8", newline="")):
    print((" ".join(row[1:])).replace("\n", " "))
PY
paste -d' ' <(sed 's/^/__label__/' "$out.labels") "$out.text" > "$out"
rm -f "$out.labels" "$out.text"
