"""The manifest: YAML with source positions -> schema findings -> typed, immutable Manifest."""
