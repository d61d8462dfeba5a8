"""The model repository's storage: a local folder or an object store (``s3://``, ``gs://``).

One small interface (list, read, write, write-if-unchanged) with a local and an fsspec
implementation, the completion marker that makes an uploaded version count, and the local
cache that a replica loads verified copies from.
"""
