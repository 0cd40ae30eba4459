"""Every cipher and key-derivation call in Tipline lives here.

Evidence blobs use chunked AES-256-GCM under a fresh data key per file; the data key is
stored wrapped (AES-256-GCM) by the master key. Chunk nonces are a counter plus a
"last chunk" flag, so chunks cannot be reordered, dropped or the blob truncated unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
CHUNK_BYTES = 64 * 1024
TAG_BYTES = 16
BLOB_MAGIC = b"TLB1"


class DecryptionError(Exception):
    """Ciphertext, tag or framing did not verify: the data was altered or is not ours."""


@dataclass(frozen=True)
class Keys:
    master: bytes
    pepper: bytes

    def derive(self, purpose: str) -> bytes:
        """A sub-key for one purpose, so no key is used for two jobs."""
        return hmac.new(self.master, b"tipline:" + purpose.encode(), hashlib.sha256).digest()


MASTER_KEY_FILE = "master.key"
PEPPER_FILE = "pepper.key"


def create_keys(keys_dir: Path) -> bool:
    """Create missing key files with 0600 permissions. Returns True if any was created."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    created = False
    for name in (MASTER_KEY_FILE, PEPPER_FILE):
        path = keys_dir / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
        created = True
    return created


def load_keys(keys_dir: Path) -> Keys:
    values = []
    for name in (MASTER_KEY_FILE, PEPPER_FILE):
        path = keys_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `tipline init` first")
        data = path.read_bytes()
        if len(data) != KEY_BYTES:
            raise ValueError(f"{path} is not a {KEY_BYTES}-byte key")
        values.append(data)
    return Keys(master=values[0], pepper=values[1])


# --- data keys -------------------------------------------------------------------------

def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_key(keys: Keys, data_key: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(keys.master).encrypt(nonce, data_key, b"tipline:data-key")


def unwrap_key(keys: Keys, wrapped: bytes) -> bytes:
    try:
        return AESGCM(keys.master).decrypt(wrapped[:12], wrapped[12:], b"tipline:data-key")
    except InvalidTag as exc:
        raise DecryptionError("data key does not unwrap with this master key") from exc


# --- chunked stream encryption ---------------------------------------------------------

def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class ChunkEncryptor:
    """Encrypts a stream in CHUNK_BYTES pieces; call `finish()` exactly once at the end."""

    def __init__(self, data_key: bytes) -> None:
        self._aead = AESGCM(data_key)
        self._index = 0
        self._pending = bytearray()

    def header(self) -> bytes:
        return BLOB_MAGIC + CHUNK_BYTES.to_bytes(4, "big")

    def update(self, data: bytes) -> bytes:
        self._pending += data
        out = bytearray()
        # Keep at least one byte back so the final chunk is never an empty surprise.
        while len(self._pending) > CHUNK_BYTES:
            piece = bytes(self._pending[:CHUNK_BYTES])
            del self._pending[:CHUNK_BYTES]
            out += self._aead.encrypt(_nonce(self._index, last=False), piece, None)
            self._index += 1
        return bytes(out)

    def finish(self) -> bytes:
        piece = bytes(self._pending)
        self._pending.clear()
        return self._aead.encrypt(_nonce(self._index, last=True), piece, None)


def decrypt_stream(data_key: bytes, handle: BinaryIO) -> Iterator[bytes]:
    """Yield the plaintext of a blob chunk by chunk; raises DecryptionError on any tamper."""
    header = handle.read(8)
    if len(header) != 8 or header[:4] != BLOB_MAGIC:
        raise DecryptionError("not a Tipline blob (bad header)")
    chunk_plain = int.from_bytes(header[4:], "big")
    if chunk_plain <= 0 or chunk_plain > 16 * 1024 * 1024:
        raise DecryptionError("bad chunk size in header")
    aead = AESGCM(data_key)
    size = chunk_plain + TAG_BYTES
    index = 0
    current = handle.read(size)
    while True:
        following = handle.read(size) if len(current) == size else b""
        last = not following
        if len(current) < TAG_BYTES:
            raise DecryptionError("blob is truncated")
        try:
            yield aead.decrypt(_nonce(index, last), current, None)
        except InvalidTag as exc:
            raise DecryptionError(f"chunk {index} does not verify") from exc
        if last:
            return
        current = following
        index += 1


# --- small sealed values (messages, contact details) ------------------------------------

def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def unseal(key: bytes, sealed: bytes, context: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], context)
    except InvalidTag as exc:
        raise DecryptionError("sealed value does not verify") from exc


# --- secrets that must be looked up and never stored in the clear ------------------------

@dataclass(frozen=True)
class Argon2Cost:
    time_cost: int
    memory_kib: int
    parallelism: int


def lookup_hash(keys: Keys, secret: str, cost: Argon2Cost) -> str:
    """Argon2id with a salt derived from the pepper: deterministic, so it can be indexed,
    and useless to anyone who has the database but not the key files."""
    salt = hmac.new(keys.pepper, b"tipline:codename-salt", hashlib.sha256).digest()[:16]
    raw = hash_secret_raw(
        secret.encode(),
        salt,
        time_cost=cost.time_cost,
        memory_cost=cost.memory_kib,
        parallelism=cost.parallelism,
        hash_len=32,
        type=Type.ID,
    )
    return raw.hex()


def token_digest(token: str) -> str:
    """Digest for high-entropy random tokens (sessions): no slow hash needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign(keys: Keys, purpose: str, value: str) -> str:
    return hmac.new(keys.derive(purpose), value.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


# --- signing referral packages (Ed25519) ---------------------------------------------------

SIGNING_KEY_FILE = "package-signing.key"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


def load_or_create_signing_key(keys_dir: Path) -> bytes:
    """The Ed25519 private key (32 raw bytes) that signs referral packages, created with
    0600 permissions on first use."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    path = keys_dir / SIGNING_KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise ValueError(f"{path} is not a {KEY_BYTES}-byte Ed25519 key")
    return data


def signing_public_key(private_key: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PrivateKey.from_private_bytes(private_key).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_detached(private_key: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


def verify_detached(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True only if `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw public key, in groups of four hex digits for reading aloud."""
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i:i + 4] for i in range(0, len(digest), 4))
