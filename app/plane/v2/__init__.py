"""The Open Inference Protocol (V2: KServe, Triton, MLServer): tensors, metadata, inference.

No HTTP or gRPC framework code here: the REST routes and the gRPC servicer decode their wire
format into ``InferRequest``, call ``InferenceProtocol``, and encode its ``InferResponse``.
"""
