"""The gRPC edge: the Open Inference Protocol (V2) service and gRPC health, in the app's loop."""
