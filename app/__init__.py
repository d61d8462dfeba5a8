"""textcls's HTTP service, by concern; arrows point one way, edge -> plane -> predlog.

- ``app.edge``: HTTP only (middleware, auth, rate limits, request ids, schemas, routes).
- ``app.plane``: the data plane without HTTP (repository, batcher, classifier, ranking).
- ``app.predlog``: the prediction log (writer, spill file, redaction, tables, migrations).
- ``app.cli``: the ``textcls`` command, every command group; the one place that joins the
  service and the trainer.
- top level: ``main`` (app factory, the middleware list), ``config`` (settings), ``errors``
  (domain errors, no HTTP statuses), ``metrics``.
Top-level ``config``, ``errors`` and ``metrics`` import no subpackage. tests/app/test_layout.py
walks the imports to keep it so.
"""
