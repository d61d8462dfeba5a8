"""The edge: middleware, auth, rate limits, request ids, schemas, responses and routes over
HTTP, and the gRPC server (``app.edge.grpc``), which shares the keys, limits and request ids.

Parses, authorises and shapes; the work is the data plane's. May import ``app.plane``,
``app.predlog``, ``app.config``, ``app.errors``, ``app.metrics`` and ``training.artifact``;
nothing imports it but the app factory (``app.main``) and the serve command.
"""
