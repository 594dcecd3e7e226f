"""Benchmarks behind `sentryfuse bench ...`, and the measuring helpers they share."""
