"""The console's I/O: gRPC to the services."""
