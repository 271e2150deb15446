"""Benchmarks that print numbers: sampling latency, the server, the add-on."""
