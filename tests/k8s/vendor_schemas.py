"""Regenerate the vendored schemas under tests/k8s/schemas/ from their upstream files.

    python tests/k8s/vendor_schemas.py KUBERAY_REPO PROM_OPERATOR_REPO KUBERNETES_VALIDATE_WHEEL

KUBERAY_REPO and PROM_OPERATOR_REPO are git directories (clones or bare mirrors) holding the
tags in SOURCES; the wheel is kubernetes-validate's (pip download --no-deps
kubernetes-validate==1.37.0). The transformation is mechanical and described in
schemas/SOURCES.md: the CRDs' served version schemas are taken verbatim; the built-in kinds are
made self-contained (only the definitions they reach, refs rewritten to local $defs) and
their `description` strings dropped to keep the files small.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent / "schemas"
KUBERAY_TAG = "v1.7.0"
PROM_TAG = "v0.93.0"
KUBERNETES = "v1.34.0"
CRDS = [  # (repo arg index, tag, path in repo, version, output)
    (0, KUBERAY_TAG, "ray-operator/config/crd/bases/ray.io_rayservices.yaml", "v1",
     f"kuberay-{KUBERAY_TAG}/rayservice-ray.io-v1.json"),
    (1, PROM_TAG, "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml", "v1",
     f"prometheus-operator-{PROM_TAG}/podmonitor-monitoring.coreos.com-v1.json"),
]
KINDS = ["deployment-apps-v1", "service-v1", "secret-v1", "namespace-v1"]
REF_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")
"""How kind files and _definitions.json itself refer to a definition."""


def _target(ref) -> str | None:
    for prefix in REF_PREFIXES:
        if isinstance(ref, str) and ref.startswith(prefix):
            return ref[len(prefix):]
    return None


def git_show(repo: str, tag: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, "show", f"{tag}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def crd_schema(text: str, version: str) -> dict:
    crd = yaml.safe_load(text)
    (found,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return found["schema"]["openAPIV3Schema"]


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        target = _target(node.get("$ref"))
        if target is not None:
            found.add(target)
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def _rewrite(node):
    if isinstance(node, dict):
        out = {k: _rewrite(v) for k, v in node.items()}
        target = _target(out.get("$ref"))
        if target is not None:
            out["$ref"] = "#/$defs/" + target
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def standalone(kind: dict, definitions: dict) -> dict:
    needed: set[str] = set()
    todo = [kind]
    while todo:
        found: set[str] = set()
        _refs(todo.pop(), found)
        for name in sorted(found - needed):
            needed.add(name)
            todo.append(definitions[name])
    out = _rewrite(_strip(kind))
    out["$defs"] = {n: _rewrite(_strip(definitions[n])) for n in sorted(needed)}
    return out


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{path.relative_to(HERE)}: {path.stat().st_size} bytes")


def main(kuberay: str, prom: str, wheel: str) -> None:
    repos = [kuberay, prom]
    for index, tag, path, version, out in CRDS:
        write(HERE / out, crd_schema(git_show(repos[index], tag, path), version))
    base = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict/"
    with zipfile.ZipFile(wheel) as zf:
        definitions = json.loads(zf.read(base + "_definitions.json"))["$defs"]
        for kind in KINDS:
            schema = json.loads(zf.read(f"{base}{kind}.json"))
            write(HERE / f"kubernetes-{KUBERNETES}-strict/{kind}.json",
                  standalone(schema, definitions))


if __name__ == "__main__":
    main(*sys.argv[1:4])
