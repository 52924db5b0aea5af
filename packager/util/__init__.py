"""Domain-free helpers: atomic files, bounded JSON, hashing, time and size formats, schemas, the cache folder, the progress interface."""
