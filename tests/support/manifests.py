"""Manifest texts shared by tests: a small valid one, and hostile YAML."""

from __future__ import annotations

BASE = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {name: demo, version: 1.0.0}
model:
  name: org/model
  source: {path: ./weights}
  format: safetensors
  precision: fp16
target:
  platform: linux/amd64
  accelerator: {vendor: nvidia, chips: [h100], count: 2}
  stack: {cuda: "12.4", driver: ">=550.54.14"}
"""


def billion_laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijk"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return text
