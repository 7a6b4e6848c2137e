"""The planner and the k8s renderer are pure: they pull in neither Ray, vLLM nor FastAPI."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.planner.conftest import ARCHITECTURES, DEEPSEEK

CODE = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('ray', 'vllm', 'fastapi', 'torch'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from pathlib import Path
from tierserve.config import load_config
from tierserve.planner import plan_config, validate_deployment
from tierserve.k8s import K8sValues, render
config = load_config({str(DEEPSEEK)!r})
validate_deployment(config, Path({str(ARCHITECTURES)!r}))
render(config, K8sValues(), lambda c: [], Path({str(ARCHITECTURES)!r}))
print(len(plan_config(config, Path({str(ARCHITECTURES)!r}))))
"""


def test_planner_and_k8s_import_no_ray_vllm_or_fastapi():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5"
