"""A structure-aware fuzzer for the documents airgap reads: bundle descriptors, parts indexes,
manifests, trust policies, receipts and audit logs (``mutate``: the mutations; ``targets``: the
documents and the commands that read them; ``runner``: workers, outcomes and the report).

A case is named by (document kind, seed, number) and replays alone:
``python scripts/bench.py fuzz --replay KIND:SEED:NUMBER``.
"""
