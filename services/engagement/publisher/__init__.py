"""The ScoreChanged publisher: a process of its own beside the worker."""
