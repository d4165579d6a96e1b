"""The engagement score, stated once: counters (`spec`), weights and figures (`config`, deploy/config/
scoring.yaml), what an event merges into whose state (`effects`, `state`), and the figures and their
explanation (`figures`). Pure: no I/O beyond reading the scoring file."""
