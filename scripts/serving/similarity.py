#!/usr/bin/env python3
"""Print the cosine similarity of sentences as an OpenAI-compatible embeddings server sees them.

    similarity.py URL SENTENCE SENTENCE [SENTENCE ...]

URL is the server's base (http://127.0.0.1:PORT). The first sentence is compared with each of the
others. Standard library only; no proxy is used (the server is on loopback).
"""

from __future__ import annotations

import json
import math
import sys
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, texts = argv[0].rstrip("/"), argv[1:]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(
        url + "/v1/embeddings",
        data=json.dumps({"input": texts}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with opener.open(req, timeout=60) as resp:
        doc = json.load(resp)
    vectors = [d["embedding"] for d in sorted(doc["data"], key=lambda d: d["index"])]

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b))
        return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    for text, vec in zip(texts[1:], vectors[1:]):
        print(f"similarity {cos(vectors[0], vec):.4f}: {texts[0]!r} ~ {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
