"""The ground floor: what every layer may use and that knows nothing of the data or the models.

Time units, the package's errors, where things live (paths), how outputs are written (io), the
team settings, redaction of secrets, pseudonyms, the refresh lock, and the SQL and Spark engines.
"""
