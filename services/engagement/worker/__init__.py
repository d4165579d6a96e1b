"""The engagement worker: consumes interactions, merges them into each employee's state in Redis."""
