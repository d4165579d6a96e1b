"""The web console: server-side rendered pages over the gRPC APIs of feed, engagement and recognition."""
