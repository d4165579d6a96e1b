"""I/O of the engagement service: the Redis store every process of it shares."""
