"""What others read: the relationship table (its schema, scoring in pandas and in Spark, the SQL
table) and the MLflow store (tracking, the registry's champions, the pyfunc wrappers). Imports from
``core``, ``data`` and the analysis packages, never from ``jobs`` or the command line."""
