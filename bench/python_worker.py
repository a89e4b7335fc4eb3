#!/usr/bin/env python3
"""python_worker.py: the Python baseline of bench_e2e.

A worker written the way one would in Python: confluent-kafka (librdkafka)
consumer and producer, msgpack, and a numpy model of the same shape as
catwire's (words + hashed bigrams -> EmbeddingBag mean -> Linear -> softmax).
It reads article messages, classifies them in batches of up to
--max-articles, and produces result messages with catwire's fields, keyed
like catwire's, so bench_e2e measures it with the same driver.

It does less than catwire's worker (no dead-letter topic, offsets are
auto-committed after produce instead of after acknowledgement), so the
comparison flatters Python, if anything. The weights are random: throughput
does not depend on their values. The vocabulary is built from --vocab-from
(the training CSV) with torchtext's basic_english rules.

Prints "ready" on stdout once the model is built; stops on SIGTERM/SIGINT.
"""
import argparse
import csv
import re
import signal
import socket
import sys
import time

import msgpack
import numpy as np
from confluent_kafka import Consumer, KafkaError, Producer

_RULES = [
    (re.compile(r"'"), " '  "),
    (re.compile(r'"'), ""),
    (re.compile(r"\."), " . "),
    (re.compile(r"<br \/>"), " "),
    (re.compile(r","), " , "),
    (re.compile(r"\("), " ( "),
    (re.compile(r"\)"), " ) "),
    (re.compile(r"!"), " ! "),
    (re.compile(r"\?"), " ? "),
    (re.compile(r";"), " "),
    (re.compile(r":"), " "),
    (re.compile(r"\s+"), " "),
]


def tokenize(text):
    text = text.lower()
    for rx, rep in _RULES:
        text = rx.sub(rep, text)
    return text.split()


def build_vocab(path):
    counts = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            for tok in tokenize(" ".join(row[1:])):
                counts[tok] = counts.get(tok, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {"<unk>": 0}
    for w in words:
        vocab[w] = len(vocab)
    return vocab


class Model:
    def __init__(self, vocab, dim, nlabels, nbuckets, labels):
        rng = np.random.default_rng(1)
        self.vocab = vocab
        self.nbuckets = nbuckets
        self.nrows = len(vocab) + nbuckets
        self.emb = rng.uniform(-0.1, 0.1, (self.nrows, dim)).astype(np.float32)
        self.fc_w = rng.uniform(-0.1, 0.1, (nlabels, dim)).astype(np.float32)
        self.fc_b = np.zeros(nlabels, np.float32)
        self.labels = labels

    def featurize(self, text, ids):
        toks = tokenize(text)
        v = self.vocab
        n0 = len(ids)
        ids.extend(v.get(t, 0) for t in toks)
        if self.nbuckets:
            base = len(v)
            nb = self.nbuckets
            ids.extend(base + hash((a, b)) % nb for a, b in zip(toks, toks[1:]))
        if len(ids) == n0:
            ids.append(0)  # keep every bag non-empty for reduceat

    def forward(self, ids, offsets):
        ids = np.asarray(ids, np.int64)
        offsets = np.asarray(offsets, np.int64)
        sums = np.add.reduceat(self.emb[ids], offsets, axis=0)
        counts = np.diff(np.append(offsets, len(ids))).astype(np.float32)
        mean = sums / counts[:, None]
        logits = mean @ self.fc_w.T + self.fc_b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--vocab-from", required=True)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--nbuckets", type=int, default=0)
    ap.add_argument("--labels", default="World,Sports,Business,Sci/Tec")
    ap.add_argument("--max-articles", type=int, default=1024)
    ap.add_argument("--max-wait-ms", type=int, default=5)
    ap.add_argument("-X", action="append", default=[], help="consumer property KEY=VALUE")
    args = ap.parse_args()

    labels = args.labels.split(",")
    model = Model(build_vocab(args.vocab_from), args.dim, len(labels), args.nbuckets, labels)
    worker_id = "py-%s-%d" % (socket.gethostname(), __import__("os").getpid())

    cconf = {
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "partition.assignment.strategy": "cooperative-sticky",
    }
    for kv in args.X:
        k, v = kv.split("=", 1)
        cconf[k] = v
    consumer = Consumer(cconf)
    producer = Producer({"bootstrap.servers": args.brokers, "linger.ms": 5,
                         "enable.idempotence": True})
    consumer.subscribe([args.input])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("ready", flush=True)

    out = args.output
    timeout = args.max_wait_ms / 1000.0
    while not stop:
        msgs = consumer.consume(num_messages=args.max_articles, timeout=timeout)
        if not msgs:
            producer.poll(0)
            continue
        arts, ids, offsets = [], [], []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print("consume error: %s" % m.error(), file=sys.stderr)
                continue
            try:
                a = msgpack.unpackb(m.value(), raw=False)
                text = (a.get("title") or "") + " " + (a.get("body") or "")
                aid = a["id"]
            except Exception:  # a dead letter in catwire; skipped here
                continue
            offsets.append(len(ids))
            model.featurize(text, ids)
            arts.append((m, aid))
        if not arts:
            continue
        probs = model.forward(ids, offsets)
        best = probs.argmax(axis=1)
        now = int(time.time() * 1000)
        for (m, aid), p, k in zip(arts, probs, best):
            k = int(k)
            res = {"id": aid, "label": labels[k], "label_id": k, "confidence": float(p[k]),
                   "scores": [float(x) for x in p], "model": "numpy", "model_version": 1,
                   "worker": worker_id, "processed_at": now}
            val = msgpack.packb(res, use_single_float=True)
            while True:
                try:
                    producer.produce(out, val, key=m.key() or aid.encode())
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.poll(0)
    producer.flush(10)
    consumer.close()


if __name__ == "__main__":
    main()
