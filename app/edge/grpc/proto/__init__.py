"""The Open Inference Protocol (V2) gRPC messages and service, generated from its .proto."""
