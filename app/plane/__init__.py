"""The data plane, no HTTP: model repository, loaded models, batcher, classifier, ranking, device,
serving state (labels, canary share) and traffic (which version answers, which shadows).

May import ``app.predlog`` (it hands answered predictions to the log), ``app.config``,
``app.errors``, ``app.metrics`` and ``training.artifact``; never ``app.edge``, FastAPI or
Starlette, so another transport (gRPC, a batch job) can drive it as the HTTP routes do.
"""
