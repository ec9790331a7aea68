"""Data in: the data contract, reading and parsing a user's files without guessing, validation,
the Parquet contract for files read as they are, erasure, the shipped data sets, campaign
files, the simulators and each data set's economics. Imports only from ``core``."""
