"""AES-256-GCM encryption of weight files at rest; clear text only in memory or on tmpfs.

An encrypted model directory holds each weight file as `<name>.tsenc` and every other
file (config, tokenizer) in clear, plus `tierserve-encryption.json`: per file its size
and the SHA-256 of its clear bytes, authenticated with an HMAC of the key. Loading
decrypts into a fresh directory on tmpfs (`decrypt_tree`), checking every GCM tag, every
digest and the manifest's MAC; any mismatch removes what was written and raises
WeightIntegrityError naming the file. Nothing clear is ever written to persistent disk:
`decrypt_file` refuses a destination that is not tmpfs.

File format (`.tsenc`): MAGIC, a 4-byte header length, a JSON header (version, chunk
size, clear size, file name, nonce prefix, key id), then chunks of `chunk` clear bytes,
each sealed with AES-256-GCM under nonce = prefix(8) || index(4) and associated data =
SHA-256(header) || index || last-chunk flag, so chunks can be neither edited, reordered,
dropped nor moved between files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import shutil
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tierserve.errors import ConfigError, TierServeError

log = logging.getLogger(__name__)

MAGIC = b"TSENC1\n"
SUFFIX = ".tsenc"
MANIFEST = "tierserve-encryption.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".npz")
CHUNK_BYTES = 8 << 20
TAG_BYTES = 16
KEY_BYTES = 32
TMPFS_TYPES = ("tmpfs", "ramfs")


class WeightIntegrityError(TierServeError):
    """Weights failed verification (tampered, corrupted or wrong key): refused."""

    error_type = "weight_integrity_error"


# --- keys -------------------------------------------------------------------------------

def _subkey(key: bytes, purpose: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"tierserve-weights-v1 " + purpose).derive(key)


def key_id(key: bytes) -> str:
    """A public fingerprint of the key, stored with the data to name the key it needs."""
    return hashlib.sha256(_subkey(key, b"id")).hexdigest()[:16]


def load_key(path: str | os.PathLike[str]) -> bytes:
    """The 32-byte key in `path` (hex or base64 text); warn when others may read it."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read weight key {path}: {err}") from None
    if mode & 0o077:
        log.warning("weight key %s is readable by group/others (mode %o)", path, mode & 0o777)
    for decode in (bytes.fromhex, base64.b64decode, base64.urlsafe_b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == KEY_BYTES:
            return key
    raise ConfigError(f"weight key {path} must hold {KEY_BYTES} bytes as hex or base64")


def write_new_key(path: str | os.PathLike[str]) -> bytes:
    """Create `path` (mode 600, never overwriting) with a new random key; return it."""
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(Path(path).expanduser(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    return key


# --- one file ---------------------------------------------------------------------------

def _aad(header_digest: bytes, index: int, last: bool) -> bytes:
    return header_digest + struct.pack(">QB", index, 1 if last else 0)


def _chunk_count(size: int, chunk: int) -> int:
    return max(1, -(-size // chunk))


def encrypt_file(src: str | os.PathLike[str], dest: str | os.PathLike[str], key: bytes,
                 name: str | None = None, chunk: int = CHUNK_BYTES) -> str:
    """Encrypt `src` into `dest` (written atomically); return the clear bytes' SHA-256."""
    src, dest = Path(src), Path(dest)
    size = src.stat().st_size
    header = json.dumps({"v": 1, "alg": "AES-256-GCM", "chunk": chunk, "size": size,
                         "name": name or src.name, "nonce": os.urandom(8).hex(),
                         "key_id": key_id(key)}, sort_keys=True).encode()
    aead, prefix = AESGCM(_subkey(key, b"enc")), bytes.fromhex(json.loads(header)["nonce"])
    digest, header_digest = hashlib.sha256(), hashlib.sha256(header).digest()
    count = _chunk_count(size, chunk)
    part = dest.with_name(dest.name + ".part")
    with open(src, "rb") as reader, open(part, "wb") as writer:
        writer.write(MAGIC + struct.pack(">I", len(header)) + header)
        for index in range(count):
            clear = reader.read(chunk)
            digest.update(clear)
            nonce = prefix + struct.pack(">I", index)
            writer.write(aead.encrypt(nonce, clear, _aad(header_digest, index, index == count - 1)))
        writer.flush()
        os.fsync(writer.fileno())
    part.replace(dest)
    return digest.hexdigest()


def _read_header(handle, src: Path, key: bytes) -> tuple[dict, bytes]:
    magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise WeightIntegrityError(f"{src}: not a tierserve encrypted file (bad magic)")
    (length,) = struct.unpack(">I", handle.read(4))
    raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WeightIntegrityError(f"{src}: corrupted header") from None
    if header.get("key_id") != key_id(key):
        raise WeightIntegrityError(f"{src}: encrypted with key {header.get('key_id')}, not "
                                   f"with the configured key {key_id(key)}")
    return header, raw


def iter_decrypted(src: str | os.PathLike[str], key: bytes,
                   expected_name: str | None = None) -> Iterator[bytes]:
    """The clear chunks of `src`; WeightIntegrityError on any tampering."""
    src = Path(src)
    with open(src, "rb") as handle:
        header, raw = _read_header(handle, src, key)
        if expected_name is not None and header["name"] != expected_name:
            raise WeightIntegrityError(f"{src}: holds '{header['name']}', not '{expected_name}'")
        aead, prefix = AESGCM(_subkey(key, b"enc")), bytes.fromhex(header["nonce"])
        header_digest, chunk = hashlib.sha256(raw).digest(), header["chunk"]
        count = _chunk_count(header["size"], chunk)
        for index in range(count):
            last = index == count - 1
            want = (header["size"] - index * chunk if last else chunk) + TAG_BYTES
            sealed = handle.read(want)
            try:
                yield aead.decrypt(prefix + struct.pack(">I", index), sealed,
                                   _aad(header_digest, index, last))
            except InvalidTag:
                raise WeightIntegrityError(
                    f"{src}: chunk {index} failed authentication (modified, truncated or "
                    "corrupted)") from None
        if handle.read(1):
            raise WeightIntegrityError(f"{src}: unexpected bytes after the last chunk")


def decrypt_bytes(src: str | os.PathLike[str], key: bytes) -> bytes:
    """The whole clear file, in memory."""
    return b"".join(iter_decrypted(src, key))


def is_tmpfs(path: str | os.PathLike[str]) -> bool:
    """Whether `path` (or its nearest existing parent) lives on a RAM file system."""
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    best, fstype = "", ""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, fields[2]
    return fstype in TMPFS_TYPES


def decrypt_file(src: str | os.PathLike[str], dest: str | os.PathLike[str], key: bytes,
                 expected_name: str | None = None) -> str:
    """Decrypt `src` to `dest` on tmpfs (mode 600); return the clear SHA-256. On failure
    nothing is left behind."""
    dest = Path(dest)
    if not is_tmpfs(dest.parent):
        raise ConfigError(f"refusing to write decrypted weights to {dest.parent}: not tmpfs")
    digest = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as writer:
            for clear in iter_decrypted(src, key, expected_name):
                digest.update(clear)
                writer.write(clear)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


# --- a model directory ------------------------------------------------------------------

def _manifest_mac(body: dict, key: bytes) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_subkey(key, b"manifest"), canonical, hashlib.sha256).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_weight_file(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES)


def is_encrypted_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / MANIFEST).is_file()


def encrypt_tree(src: str | os.PathLike[str], dest: str | os.PathLike[str], key: bytes) -> dict:
    """Encrypt a model directory's weight files into `dest` (others copied); return the
    manifest written to `dest`/tierserve-encryption.json."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise ConfigError(f"{src} is not a directory")
    files: dict[str, dict] = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        if rel == MANIFEST or any(part.startswith(".") for part in Path(rel).parts):
            continue  # hidden files (caches, markers) are not part of a checkpoint
        target = dest / (rel + SUFFIX if is_weight_file(rel) else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_weight_file(rel):
            sha = encrypt_file(path, target, key, name=rel)
        else:
            shutil.copyfile(path, target)
            sha = _file_sha256(path)
        files[rel] = {"encrypted": is_weight_file(rel), "size": path.stat().st_size, "sha256": sha}
    body = {"version": 1, "alg": "AES-256-GCM", "key_id": key_id(key), "files": files}
    manifest = {**body, "mac": _manifest_mac(body, key)}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def read_manifest(src: str | os.PathLike[str], key: bytes) -> dict:
    """The directory's manifest, after checking its MAC against `key`."""
    path = Path(src) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        body = {k: v for k, v in manifest.items() if k != "mac"}
        mac = manifest["mac"]
    except (OSError, ValueError, KeyError, AttributeError) as err:
        raise WeightIntegrityError(f"{path}: unreadable encryption manifest ({err})") from None
    if body.get("key_id") != key_id(key):
        raise WeightIntegrityError(f"{src}: encrypted with key {body.get('key_id')}, not with "
                                   f"the configured key {key_id(key)}")
    if not hmac.compare_digest(mac, _manifest_mac(body, key)):
        raise WeightIntegrityError(f"{path}: manifest authentication failed (edited)")
    return body


def _restore(src: Path, out: Path, rel: str, item: dict, key: bytes) -> None:
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if item["encrypted"]:
        sha = decrypt_file(src / (rel + SUFFIX), target, key, expected_name=rel)
    else:
        shutil.copyfile(src / rel, target)
        sha = _file_sha256(target)
    if sha != item["sha256"] or target.stat().st_size != item["size"]:
        raise WeightIntegrityError(f"{src / rel}: content does not match the manifest's sha256")


def sweep_stale(tmpfs_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove clear copies left by processes that died without releasing them (a killed
    replica); `decrypt_tree` names each copy <name>-<pid>-<random>. Returns what went."""
    root, removed = Path(tmpfs_dir), []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        parts = entry.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def decrypt_tree(src: str | os.PathLike[str], key: bytes,
                 tmpfs_dir: str | os.PathLike[str] = "/dev/shm/tierserve") -> Path:
    """Verify and decrypt an encrypted model directory into a new directory on tmpfs;
    return it. On any failure the partial copy is removed and WeightIntegrityError raised."""
    src, root = Path(src), Path(tmpfs_dir)
    if not is_tmpfs(root):
        raise ConfigError(f"security.weights.tmpfs_dir {root} is not on tmpfs")
    manifest = read_manifest(src, key)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    out = root / f"{src.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    out.mkdir(mode=0o700)
    try:
        for rel, item in sorted(manifest["files"].items()):
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise WeightIntegrityError(f"{src}: manifest names a path outside it: {rel}")
            try:
                _restore(src, out, rel, item, key)
            except FileNotFoundError:
                raise WeightIntegrityError(f"{src}: '{rel}' is missing") from None
    except BaseException as err:
        shutil.rmtree(out, ignore_errors=True)
        if isinstance(err, WeightIntegrityError):
            log.error("refused weights in %s: %s", src, err.message)
        raise
    return out
