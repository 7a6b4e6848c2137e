"""The RayService carries the same config tree, sized by the planner; output is deterministic
and the committed examples under k8s/ match what the renderer writes today."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from tests.k8s.conftest import CONFIGS, EXAMPLES, rendered
from tierserve.config import ApiKeyConfig, parse_config
from tierserve.errors import ConfigError
from tierserve.k8s import MAIN_FILE, SECRETS_FILE, K8sValues, load_values
from tierserve.k8s.cluster import changes, cluster_config
from tierserve.k8s.rayservice import SERVE_IMPORT_PATH
from tierserve.platform.cli import main
from tierserve.platform.serve_entry import app_builder, pod_settings, serve_deployments

pytestmark = pytest.mark.k8s


def ray_service(manifests) -> dict:
    return next(o for o in manifests.objects if o["kind"] == "RayService")


def serve_config(manifests) -> dict:
    return yaml.safe_load(ray_service(manifests)["spec"]["serveConfigV2"])


def groups(manifests) -> dict[str, dict]:
    specs = ray_service(manifests)["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    return {g["groupName"]: g for g in specs}


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_serve_config_is_valid_for_ray_serve(which, request):
    from ray.serve.schema import ServeDeploySchema

    _, manifests = request.getfixturevalue(which)
    schema = ServeDeploySchema.model_validate(serve_config(manifests))
    (app,) = schema.applications
    assert app.import_path == SERVE_IMPORT_PATH and app.route_prefix == "/"


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_serve_config_round_trips_through_the_config_model(which, request):
    config, manifests = request.getfixturevalue(which)
    (app,) = serve_config(manifests)["applications"]
    back = parse_config(app["args"]["config"])
    assert back == cluster_config(config)
    assert back.tiers == config.tiers and back.router == config.router
    assert back.server.host == "0.0.0.0" and back.security.auth == "required"


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_serve_config_deployments_are_what_the_app_builder_sets(which, request):
    config, manifests = request.getfixturevalue(which)
    (app,) = serve_config(manifests)["applications"]
    names = [d["name"] for d in app["deployments"]]
    assert names == ["router"] + [v.name for _, v in config.variants()]
    assert app["deployments"] == serve_deployments(cluster_config(config), pod_settings())


def test_app_builder_builds_the_same_deployments(deepseek, tmp_path, monkeypatch):
    from ray.serve._private.build_app import build_app
    from ray.serve.deployment import deployment_to_schema

    _, manifests = deepseek
    (app,) = serve_config(manifests)["applications"]
    keys = tmp_path / "api-keys.yaml"
    entry = ApiKeyConfig(id="ops", role="admin", sha256=hashlib.sha256(b"k").hexdigest())
    keys.write_text(yaml.safe_dump({"api_keys": [entry.model_dump()]}))
    args = yaml.safe_load(yaml.safe_dump(app["args"]))
    args["config"]["security"]["api_keys_file"] = str(keys)
    for name, value in {"TIERSERVE_CACHE_DIR": "/home/ray/.cache/tierserve",
                        "TIERSERVE_MODELS_DIR": "/models"}.items():
        monkeypatch.setenv(name, value)
    built = build_app(app_builder(args), name="tierserve")
    wanted = {d["name"]: d for d in app["deployments"]}
    for d in built.deployments:
        schema = deployment_to_schema(d).model_dump(mode="json", exclude_unset=True)
        assert {k: schema[k] for k in wanted[d.name]} == wanted[d.name]


def test_app_builder_rejects_a_bad_config():
    with pytest.raises(ConfigError, match="serveConfigV2 args.config"):
        app_builder({"config": {"tiers": []}})


def test_worker_groups_follow_the_planner(deepseek):
    _, manifests = deepseek
    g = groups(manifests)
    assert list(g) == ["router", "tier-7b", "tier-33b", "tier-236b"]
    big = g["tier-236b"]
    res = big["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert res["nvidia.com/gpu"] == "8"  # TP=4 x PP=2 in one 8-GPU pod
    assert big["template"]["spec"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert (big["minReplicas"], big["maxReplicas"]) == (1, 2)
    assert int(res["memory"].removesuffix("Gi")) > 471  # holds the 471 GB of weights
    assert g["tier-33b"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == "2"
    assert g["tier-7b"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in g["router"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]
    assert "tolerations" not in g["router"]["template"]["spec"]


def test_cpu_config_renders_cpu_groups(local):
    _, manifests = local
    for group in groups(manifests).values():
        spec = group["template"]["spec"]
        assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
        assert "nodeSelector" not in spec


def test_gcs_fault_tolerance_uses_redis(deepseek):
    cluster = ray_service(deepseek[1])["spec"]["rayClusterConfig"]
    ft = cluster["gcsFaultToleranceOptions"]
    assert ft["redisAddress"] == "tierserve-redis:6379"
    assert ft["redisPassword"]["valueFrom"]["secretKeyRef"] == {
        "name": "tierserve-redis", "key": "password"}
    env = {e["name"]: e for e in cluster["headGroupSpec"]["template"]["spec"]["containers"][0][
        "env"]}
    assert env["REDIS_URL"]["value"].startswith("redis://:$(REDIS_PASSWORD)@tierserve-redis.")


def test_external_redis_comes_from_a_secret():
    values = K8sValues.model_validate({"redis": {"mode": "external",
                                                 "address": "redis.example:6379"}})
    _, manifests = rendered("deepseek", values)
    assert "Deployment" not in [o["kind"] for o in manifests.objects]
    cluster = ray_service(manifests)["spec"]["rayClusterConfig"]
    assert cluster["gcsFaultToleranceOptions"]["redisAddress"] == "redis.example:6379"
    env = {e["name"]: e for e in cluster["headGroupSpec"]["template"]["spec"]["containers"][0][
        "env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "url"


def test_values_override_node_placement_and_memory():
    values = K8sValues.model_validate({"tiers": {"236b": {
        "node_selector": {"pool": "h100"}, "tolerations": [{"key": "dedicated"}],
        "memory": "1500Gi"}}})
    _, manifests = rendered("deepseek", values)
    spec = groups(manifests)["tier-236b"]["template"]["spec"]
    assert spec["nodeSelector"] == {"pool": "h100"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Exists",
                                    "effect": "NoSchedule"}]
    assert spec["containers"][0]["resources"]["limits"]["memory"] == "1500Gi"


def test_secrets_are_mounted_where_the_config_reads_them(deepseek):
    config, manifests = deepseek
    head = ray_service(manifests)["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    mounts = {m["mountPath"] for m in head["spec"]["containers"][0]["volumeMounts"]}
    assert "/etc/tierserve/secrets" in mounts and "/models" in mounts
    if config.security.audit.path.startswith("/"):
        assert config.security.audit.path.rsplit("/", 1)[0] in mounts


def test_cluster_changes_are_reported():
    from tierserve.config import load_config

    assert "security.auth: 'disabled' -> 'required'" in changes(load_config(CONFIGS["local"]))


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_rendering_is_deterministic(which):
    first = rendered(which)[1].files(f"configs/{which}.yaml")
    assert rendered(which)[1].files(f"configs/{which}.yaml") == first


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_committed_examples_do_not_drift(which, request):
    _, manifests = request.getfixturevalue(which)
    files = manifests.files(f"configs/{which}.yaml")
    for name in (MAIN_FILE, SECRETS_FILE):
        committed = (EXAMPLES / which / name).read_text()
        assert committed == files[name], (
            f"k8s/{which}/{name} is stale: run `make k8s-examples` and commit the result")


def test_cli_writes_the_examples(tmp_path, capsys):
    out = tmp_path / "deepseek"
    assert main(["k8s", "render", "--config", str(CONFIGS["deepseek"]), "--out", str(out),
                 "--source", "configs/deepseek.yaml"]) == 0
    assert "worker group tier-236b  8 GPU" in capsys.readouterr().out
    for name in (MAIN_FILE, SECRETS_FILE):
        assert (out / name).read_text() == (EXAMPLES / "deepseek" / name).read_text()


def test_values_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "values.yaml"
    bad.write_text("namespace: Not_A_Name\nredis: {mode: external}\n")
    with pytest.raises(ConfigError, match="namespace"):
        load_values(bad)
    bad.write_text("redis: {mode: external}\n")
    with pytest.raises(ConfigError, match="redis.address is required"):
        load_values(bad)
    bad.write_text("imagee: x\n")
    with pytest.raises(ConfigError, match="imagee"):
        load_values(bad)


@pytest.mark.parametrize("which", ["local", "deepseek"])
def test_every_ray_container_gets_the_serving_node_env(which, request):
    from tierserve.deployments.node_env import SERVING_NODE_ENV

    cluster = ray_service(request.getfixturevalue(which)[1])["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for pod in pods:
        for container in pod["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert {k: env.get(k) for k in SERVING_NODE_ENV} == SERVING_NODE_ENV
