"""The hostile-input corpus: small files written by generators, each with the outcome it must
have (tests/test_hostile_inputs.py; the id files also in tests/test_spark.py's parity test)."""
