"""The Spark engine (`--engine spark`): session, tables, dataset, split, training and publish.

Only these modules (and recsys/models/spark_als.py, when it fits) import pyspark, and only when a
Spark job runs: the CLI and the local engine never load it (docs/spark.md).
"""
