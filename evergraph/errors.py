"""One error root, with the user's mistakes kept apart from failures at run time.

The CLI prints any `EvergraphError` as one message (cause and fix) without a traceback;
anything else is a bug and keeps its traceback.
"""


class EvergraphError(Exception):
    """Root of every error Evergraph raises on purpose."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class UsageError(EvergraphError):
    """The caller asked for something wrong: bad config, bad input, wrong file."""


class ConfigError(UsageError):
    """Settings or evergraph.toml are malformed."""


class StoreError(EvergraphError):
    """The store failed at run time (disk full, locked, corrupt)."""


class StoreFormatError(UsageError):
    """The store file is not Evergraph's, or was written by a newer schema."""


class ServiceError(EvergraphError):
    """An external service (LLM endpoint, embedder, model server) failed or is unreachable."""


class UnreachableError(ServiceError):
    """Nothing answers at the service's address: every further call would fail the same way,
    so batch jobs stop on it instead of recording each item as failed."""


class ModelNotFoundError(ServiceError):
    """The LLM endpoint is up but does not serve the configured model."""


class OutputValidationError(ServiceError):
    """The model kept returning output that does not fit the requested schema."""


class PlaybookConflictError(EvergraphError):
    """Another writer saved the playbook since it was read (optimistic concurrency)."""
