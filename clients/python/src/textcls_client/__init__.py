"""textcls-client: call a textcls service from Python without TensorFlow.

from textcls_client import Client
with Client("http://textcls:8000") as client:
    p = client.classify("I still have not received my card")
    print(p.label, p.confidence, p.fallback)
"""

from textcls_client.client import AsyncClient, Client
from textcls_client.errors import (
    APIError,
    BadRequest,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TextclsError,
    TransportError,
    Unauthorized,
)
from textcls_client.results import Classification, Feedback, ModelInfo, Prediction, RankedLabel
from textcls_client.retry import RetryPolicy

__all__ = [
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Classification",
    "Client",
    "Feedback",
    "Forbidden",
    "InvalidInput",
    "ModelInfo",
    "NotFound",
    "PayloadTooLarge",
    "Prediction",
    "RankedLabel",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "TextclsError",
    "TransportError",
    "Unauthorized",
]
__version__ = "0.1.0"
