//! The `--streams` terminal view (stub).
