"""The engagement query API: the EngagementService over gRPC, read from the engagement state in Redis."""
