from pathlib import Path

import pytest

from evergraph.config import StructuredMode, load_settings
from evergraph.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("EVERGRAPH_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no stray ./evergraph.toml


def test_defaults_point_at_local_loopback() -> None:
    s = load_settings()
    assert s.llm.base_url.startswith("http://127.0.0.1")
    assert s.store_location.endswith("evergraph.db")
    assert s.cache_path == s.home / "cache"


def test_env_overrides_toml_which_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "evergraph.toml"
    toml.write_text('store = "x.db"\n[llm]\nmodel = "m-toml"\nmax_tokens = 77\n')
    monkeypatch.setenv("EVERGRAPH_LLM__MODEL", "m-env")
    monkeypatch.setenv("EVERGRAPH_LLM__STRUCTURED_MODE", "json_object")
    s = load_settings()  # ./evergraph.toml is picked up
    assert (s.llm.model, s.llm.max_tokens, s.store) == ("m-env", 77, "x.db")
    assert s.llm.structured_mode is StructuredMode.JSON_OBJECT
    assert load_settings(toml, concurrency=9).concurrency == 9


def test_settings_are_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVERGRAPH_CONCURRENCY", "7")
    assert load_settings().concurrency == 7
    monkeypatch.setenv("EVERGRAPH_CONCURRENCY", "3")
    assert load_settings().concurrency == 3


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("llm = [\n", {}, "cannot read"),
        ("bogus = 1\n", {}, "bogus"),
        ("", {"EVERGRAPH_CONCURRENCY": "0"}, "concurrency"),
        ("", {"EVERGRAPH_LLM__BASE_URL": "localhost:8000"}, "llm.base_url"),
        ("", {"EVERGRAPH_LLM__STRUCTURED_MODE": "xml"}, "structured_mode"),
        ("", {"EVERGRAPH_SERVER__MAX_PENDING_JOBS": "0"}, "server.max_pending_jobs"),
    ],
)
def test_malformed_config_is_one_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    env: dict[str, str],
    message: str,
) -> None:
    (tmp_path / "evergraph.toml").write_text(content)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message) as e:
        load_settings()
    assert e.value.fix


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
