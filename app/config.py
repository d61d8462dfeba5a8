"""Service settings: one pydantic-settings class, read from ``TEXTCLS_*`` and ``.env``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

# Hard upper bounds of the integers a request may carry, declared in the API schemas: every
# integer that reaches the database or numpy is bounded where it is parsed, so an out-of-range
# value is a 422 naming the field, never an overflow inside a driver (a 500).
MAX_TEXTS_PER_REQUEST = 100_000  # TEXTCLS_MAX_TEXTS at most; a feedback index is below it
MAX_VERSION = 2**31 - 1  # versions are stored in 32-bit INTEGER columns (PostgreSQL's int4)
MAX_TOP_K = 10_000  # labels in one ranking (top_k is also capped at the model's labels)


REMOTE_SCHEMES = ("s3://", "gs://", "gcs://")  # model repositories in an object store


class ConfigError(Exception):
    """A setting is invalid; the message names the environment variable."""


class ModelBatching(pydantic.BaseModel):
    """One model's overrides of its measured batching plan (app.plane.plan); unset: measured."""

    model_config = pydantic.ConfigDict(extra="forbid")
    max_batch_size: int | None = Field(None, ge=1, le=4096)
    max_batch_wait_ms: float | None = Field(None, ge=0, le=1000)
    inference_threads: int | None = Field(None, ge=1, le=16)
    expensive: bool | None = None
    max_hold_ms: float | None = Field(None, ge=0, le=60_000)


class Settings(BaseSettings):
    """Every ``TEXTCLS_*`` setting, with its default. Passed in, never read as a global."""

    model_config = SettingsConfigDict(
        env_prefix="TEXTCLS_", env_file=".env", extra="ignore", protected_namespaces=()
    )

    # Models
    model_dir: Path = Field(Path("./models"), description="Model repository root.")
    default_model: str | None = Field(
        None,
        description="Model used when a request names none, overriding the repository's "
        "recorded default (textcls models default NAME; the first model published or served).",
    )
    pinned_versions: dict[str, int] = Field(
        default_factory=dict,
        description='Serve these versions instead of the newest, as JSON: {"name": 3}.',
    )
    poll_interval_s: float = Field(
        10.0, ge=0, description="How often to look for new versions; 0 turns polling off."
    )
    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="Where inference runs; 'gpu' without a GPU is a start-up error."
    )
    tf_intra_op_threads: int = Field(
        0, ge=0, description="TensorFlow threads inside one op; 0 means one per CPU core (1 "
        "serves an expensive model, e5, faster: a batch per core).",
    )  # fmt: skip
    tf_inter_op_threads: int = Field(
        0, ge=0, description="TensorFlow ops run in parallel; 0 means min(2, CPU cores)."
    )

    # Batching and limits
    max_batch_size: int = Field(32, ge=1, le=4096, description="Texts per model call, at most.")
    max_batch_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long a batch waits to fill once it has one text."
    )
    inference_threads: int = Field(
        2, ge=1, le=16, description="Model calls in flight at once per model: with 2, a batch "
        "fills and starts while the previous one runs.",
    )  # fmt: skip
    expensive_ms_per_text: float = Field(
        2.0, gt=0, description="A model costing this much per text or more at warm-up is served "
        "as expensive: a batch per intra-op pool, smaller batches, after cheap models' texts.",
    )  # fmt: skip
    model_batching: dict[str, ModelBatching] = Field(
        default_factory=dict,
        description='Per-model overrides of the measured plan, as JSON: {"e5": '
        '{"max_batch_size": 16, "inference_threads": 1, "expensive": true, "max_hold_ms": 500}}.',
    )
    max_queue_texts: int = Field(
        4096, ge=1, description="Texts waiting per model before /classify answers 503."
    )
    shadow_max_queue_texts: int = Field(
        256,
        ge=1,
        description="Texts waiting for a shadow version; over it a request is not shadowed "
        "(counted in textcls_shadow_dropped_total), never delayed.",
    )
    max_text_chars: int = Field(5000, ge=1, description="Longest accepted text, in characters.")
    max_texts: int = Field(
        256, ge=1, le=MAX_TEXTS_PER_REQUEST, description="Most texts in one request."
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest accepted request body (413 above)."
    )
    default_top_k: int = Field(
        3, ge=1, le=MAX_TOP_K, description="Labels in each ranking unless asked."
    )
    explain_max_tokens: int = Field(
        64,
        ge=1,
        le=512,
        description="/explain weighs at most this many tokens of a text (one model row each); "
        "the answer says when a text had more.",
    )
    fallback_margin: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fallback also when the top two confidences are closer than this, for "
        "every model; unset: each model's own margin, chosen at training (0 if it has none).",
    )

    # Prediction log
    database_url: str = Field(
        "sqlite:///./textcls.db", description="SQLAlchemy URL of the prediction log."
    )
    log_predictions: bool = Field(True, description="Write every prediction to the database.")
    log_text: Literal["full", "redacted", "hash", "none"] = Field(
        "full", description="How much of each text the prediction log keeps."
    )
    auto_migrate: bool = Field(True, description="Upgrade a SQLite database's schema at start-up.")
    log_batch_size: int = Field(500, ge=1, description="Rows per INSERT, at most.")
    log_buffer_rows: int = Field(
        100_000, ge=1, description="Rows held in memory during an outage before spilling."
    )
    log_spill_path: Path = Field(
        Path("./textcls.spill.jsonl"), description="Where rows go while the database is down."
    )
    log_retry_max_s: float = Field(
        5.0, gt=0, description="Longest wait between retries while the database is down."
    )

    # Prediction log lifecycle: retention, sampling
    log_retention_days: float = Field(
        90,
        ge=0,
        description="Delete prediction rows older than this many days (rows with feedback "
        "excepted, see TEXTCLS_FEEDBACK_RETENTION_DAYS); 0 keeps them forever.",
    )
    log_text_retention_days: float = Field(
        30,
        ge=0,
        description="Blank the text (and its hash) of prediction rows older than this many "
        "days, keeping label, confidence, model and version; 0 keeps texts as long as rows.",
    )
    feedback_retention_days: float = Field(
        0,
        ge=0,
        description="Rows that carry feedback (training data) are kept, text and all, until "
        "the feedback is this many days old; then the feedback is deleted and its rows follow "
        "the other retention settings. 0 keeps them forever.",
    )
    log_prune_interval_s: float = Field(
        3600,
        ge=0,
        description="How often the server applies the retention in the background (it also "
        "does at start-up); 0 prunes at start-up only.",
    )
    log_prune_batch_rows: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        description="Rows deleted or blanked per transaction while pruning, so inserts never "
        "wait behind one long statement.",
    )
    log_sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of confident answered predictions logged; hand-offs (fallback) and "
        "shadow rows are always logged. Counted in textcls_log_rows_sampled_out_total.",
    )

    # Security and HTTP
    # Secrets are SecretStr so a logged or printed Settings never shows them.
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated name:key pairs; empty (and no keys file) means open.",
    )
    api_keys_file: Path | None = Field(
        None, description="File of name:sha256(key) lines, one per client."
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="Key of the /admin routes (labels, traffic, rollback); unset turns them "
        "off (403). Separate from the client keys, never logged.",
    )
    metrics_api_key: SecretStr | None = Field(
        None, description="Key required by /metrics, if set; /metrics is open otherwise."
    )
    rate_limit_per_s: float = Field(0.0, ge=0, description="Requests/s per client; 0 is off.")
    rate_limit_burst: int = Field(50, ge=1, description="Token bucket size per client.")
    rate_limits: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description='Per-client requests/s overriding the default, as JSON: {"chat": 200}; '
        "0 is unlimited. Names are API key names.",
    )
    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port of the Open Inference Protocol (V2) gRPC server (Triton's 8001 by "
        "default); 0 turns gRPC off.",
    )
    grpc_host: str = Field(
        "127.0.0.1", description="Address the gRPC server binds (textcls serve: its --host)."
    )
    cors_origins: str = Field("", description="Comma-separated allowed origins; empty is off.")
    shutdown_grace_s: float = Field(20.0, ge=0, description="Time to drain on SIGTERM.")
    otel: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans and metrics, sent to the providers you "
        "configure; off saves its per-request checks.",
    )

    # Drift: live traffic per version compared with its trainer's reference statistics
    drift_window: int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="Answered texts in each version's drift window (the latest ones); 0 is off.",
    )
    drift_min_texts: int = Field(
        500,
        ge=1,
        description="Texts the window needs before textcls_drift is exported (fewer are noise).",
    )

    # Fleet: several replicas behind a load balancer
    redis_url: SecretStr | None = Field(
        None,
        description="Redis holding the per-client rate limits of every replica and worker "
        "(redis://[:password@]host:6379/0); unset, each process limits on its own.",
    )
    redis_timeout_ms: float = Field(
        100.0,
        gt=0,
        le=10_000,
        description="Longest wait for Redis per request; past it the request is limited locally.",
    )
    redis_retry_s: float = Field(
        1.0,
        gt=0,
        description="After Redis fails, how long a replica limits locally before trying it again.",
    )
    redis_key_prefix: str = Field(
        "textcls:", description="Prefix of the keys textcls writes in Redis."
    )
    model_store: str | None = Field(
        None,
        description="The object store serving models (set from TEXTCLS_MODEL_DIR when that is "
        "an s3:// or gs:// URL; model_dir is then its verified local mirror in cache_dir).",
    )
    cache_dir: Path = Field(
        Path("./.textcls-cache"),
        description="Local copies of versions from an object-store model repository.",
    )
    cache_max_bytes: int = Field(
        10 * 2**30,
        ge=0,
        description="Bound of cache_dir; past it the least recently used versions not in use "
        "are removed.",
    )

    @model_validator(mode="before")
    @classmethod
    def _model_dir_in_a_store(cls, data: Any) -> Any:
        """An s3:// or gs:// TEXTCLS_MODEL_DIR: the store is ``model_store``, and the models
        are served from its mirror under ``cache_dir`` (the path StoreMirror keeps)."""
        if isinstance(data, dict):
            url = str(data.get("model_dir") or "")
            if url.startswith(REMOTE_SCHEMES):
                url = url.rstrip("/")
                digest = hashlib.sha256(url.encode()).hexdigest()[:16]
                cache = Path(data.get("cache_dir") or "./.textcls-cache")
                data = {**data, "model_store": url, "model_dir": cache / digest}
        return data

    @field_validator("default_model")
    @classmethod
    def _empty_is_none(cls, v: str | None) -> str | None:
        return v or None


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment; raise ConfigError with the variable's name."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            problems.append(f"TEXTCLS_{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from exc
    except SettingsError as exc:  # a JSON setting that is not JSON: name its variable
        name = re.sub(r'.*field "(\w+)".*', lambda m: f"TEXTCLS_{m[1].upper()}", str(exc))
        raise ConfigError(f"invalid configuration:\n  {name}: not valid JSON") from exc
