"""API keys per namespace, stored hashed (scrypt with a salt) in HOME/server-keys.json.

A key reads `eg_<id>_<secret>`: the id finds the record without trying every hash, the secret
(256 random bits) is shown once when the key is made and never stored. scrypt costs tens of
milliseconds by design, so a key that verified once is remembered in memory (by its SHA-256)
until the key file changes, e.g. when `evergraph serve keys revoke` runs in another process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from evergraph.errors import UsageError
from evergraph.graph.models import utcnow
from evergraph.server.tenancy import check_namespace

KEY_FILE = "server-keys.json"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class ApiKey(BaseModel):
    id: str
    namespace: str
    label: str = ""
    salt: str  # hex
    hash: str  # hex scrypt of the secret
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_KEYS = TypeAdapter(list[ApiKey])


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT).hex()


class KeyRing:
    """The key file, re-read whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None
        self._verified: dict[str, str] = {}  # sha256(token) -> key id

    def _load(self) -> dict[str, ApiKey]:
        """The keys as on disk now (caller holds the lock)."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            keys = _KEYS.validate_json(self.path.read_bytes()) if stamp else []
            self._keys = {k.id: k for k in keys}
            self._stamp = stamp
            self._verified.clear()
        return self._keys

    def _save(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_KEYS.dump_json(list(keys.values()), indent=2))
        os.replace(tmp, self.path)
        self._stamp = None  # re-read on next use

    def add(self, namespace: str, *, label: str = "") -> tuple[ApiKey, str]:
        """A new key for `namespace` and its token (shown once, never stored)."""
        check_namespace(namespace)
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        key = ApiKey(
            id=key_id,
            namespace=namespace,
            label=label,
            salt=salt.hex(),
            hash=_hash(secret, salt),
            created_at=utcnow(),
        )
        with self._lock:
            keys = dict(self._load())
            keys[key_id] = key
            self._save(keys)
        return key, f"eg_{key_id}_{secret}"

    def list(self, namespace: str | None = None) -> list[ApiKey]:
        with self._lock:
            keys = list(self._load().values())
        return [k for k in keys if namespace is None or k.namespace == namespace]

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            keys = dict(self._load())
            key = keys.get(key_id)
            if key is None:
                raise UsageError(
                    f"no key with id {key_id!r}", fix="`evergraph serve keys list` shows the ids"
                )
            keys[key_id] = key.model_copy(update={"revoked_at": key.revoked_at or utcnow()})
            self._save(keys)
            return keys[key_id]

    def required(self) -> bool:
        """Keys are required once any active key exists."""
        with self._lock:
            return any(k.active for k in self._load().values())

    def verify(self, token: str) -> ApiKey | None:
        """The active key this token is, or None."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != "eg" or not key_id or not secret:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            key = self._load().get(key_id)
            if key is None or not key.active:
                return None
            if self._verified.get(digest) == key_id:
                return key
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(key.salt)), key.hash):
            return None
        with self._lock:
            self._verified[digest] = key_id
        return key
