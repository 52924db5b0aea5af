"""The bundle format: layout (names, media types, paths), assembly, archives, reading."""
