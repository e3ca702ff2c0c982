"""Benchmark records. One module per kind of record; each is imported here."""
