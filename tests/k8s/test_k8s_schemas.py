"""Every rendered object validates against the vendored KubeRay / Kubernetes / Prometheus
Operator schemas (tests/k8s/schemas/SOURCES.md), in strict mode."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from tests.k8s.conftest import rendered
from tierserve.k8s import K8sValues
from tierserve.k8s.values import RedisValues

pytestmark = pytest.mark.k8s


def validate(obj: dict, schemas: dict) -> None:
    schema = schemas[(obj["apiVersion"], obj["kind"])]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(cls(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{obj['kind']}/{obj['metadata']['name']} {'.'.join(map(str, e.absolute_path))}: "
        f"{e.message}" for e in errors[:10])


def all_objects(manifests) -> list[dict]:
    return [*manifests.objects, *manifests.secrets]


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_shipped_configs_render_valid_objects(which, schemas, request):
    _, manifests = request.getfixturevalue(which)
    assert [o["kind"] for o in manifests.objects] == [
        "Namespace", "Service", "Deployment", "RayService"]
    secrets = {o["metadata"]["name"] for o in manifests.secrets}
    assert {"tierserve-api-keys", "tierserve-redis"} <= secrets
    assert {o["kind"] for o in manifests.secrets} == {"Secret"}
    for obj in all_objects(manifests):
        validate(obj, schemas)


def test_pod_monitor_and_external_redis_render_valid_objects(schemas):
    values = K8sValues(pod_monitor=True, namespace="llm",
                       redis=RedisValues(mode="external", address="redis.example:6379"))
    _, manifests = rendered("deepseek", values)
    kinds = [o["kind"] for o in manifests.objects]
    assert kinds == ["Namespace", "RayService", "PodMonitor"]
    for obj in all_objects(manifests):
        validate(obj, schemas)


@pytest.mark.parametrize(
    "path, value",
    [
        (["spec", "rayClusterConfig", "headGroupSpec", "rayStartParams"], {"x": 1}),  # not str
        (["spec", "rayClusterConfig", "workerGroupSpecs", 0, "replicaz"], 1),        # typo
        (["spec", "rayClusterConfig", "workerGroupSpecs", 0, "groupName"], None),
        (["spec", "serveConfigV2"], {"applications": []}),                            # not str
    ],
)
def test_the_schemas_catch_mistakes(deepseek, schemas, path, value):
    service = copy.deepcopy(next(o for o in deepseek[1].objects if o["kind"] == "RayService"))
    node = service
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(AssertionError):
        validate(service, schemas)


def test_a_misspelt_deployment_field_fails(deepseek, schemas):
    redis = copy.deepcopy(next(o for o in deepseek[1].objects if o["kind"] == "Deployment"))
    redis["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(AssertionError, match="imagePullPolicyy"):
        validate(redis, schemas)
