"""Security: API keys and roles, rate limits, request limits, audit log, weight encryption.

See docs/security.md. `keys`, `ratelimit` (decision math), `crypto` and `audit` import
neither Ray, vLLM nor FastAPI; `gate` is a plain ASGI middleware.
"""
