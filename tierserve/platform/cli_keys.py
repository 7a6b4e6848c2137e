"""`tierserve keys ...` and `tierserve audit ...`: API keys, the weight key, the audit log.

    tierserve keys create --id alice --role inference   print a new key once + its entry
    tierserve keys hash --id alice --role admin < key   the entry of an existing key
    tierserve keys weights-key --out FILE               a new AES-256 weight key (mode 600)
    tierserve keys encrypt-weights SRC DEST --key-file FILE
    tierserve audit verify [PATH]                       check the log's hash chain
    tierserve audit tail [PATH] [-n N]                  the latest records
"""

from __future__ import annotations

import argparse
import json
import sys

from tierserve.platform.settings import DEFAULT_CONFIG


def _entry_yaml(entry) -> str:
    import yaml

    data = {k: v for k, v in entry.model_dump().items() if v is not None}
    return yaml.safe_dump([data], sort_keys=False).rstrip()


def _create(args: argparse.Namespace) -> int:
    from tierserve.security.keys import generate_key, key_entry

    key = generate_key()
    entry = key_entry(args.id, args.role, key, requests_per_min=args.requests_per_min,
                      tokens_per_min=args.tokens_per_min)
    print("API key (shown once; store it now, the server keeps only its digest):")
    print(f"  {key}\n")
    print("Add this entry under security.api_keys (or to the file named by "
          "security.api_keys_file / TIERSERVE_API_KEYS_FILE):")
    print(_entry_yaml(entry))
    _audit_cli(args, "keys.create", f"{args.id} ({args.role})")
    return 0


def _hash(args: argparse.Namespace) -> int:
    from tierserve.security.keys import key_entry

    key = sys.stdin.readline().strip()
    if not key:
        print("error: no key on standard input", file=sys.stderr)
        return 2
    print(_entry_yaml(key_entry(args.id, args.role, key, requests_per_min=args.requests_per_min,
                                tokens_per_min=args.tokens_per_min)))
    return 0


def _weights_key(args: argparse.Namespace) -> int:
    from tierserve.security.crypto import write_new_key

    write_new_key(args.out)
    print(f"wrote a new AES-256 weight key to {args.out} (mode 600); keep it in a secret store")
    return 0


def _encrypt_weights(args: argparse.Namespace) -> int:
    from tierserve.security.crypto import encrypt_tree, load_key

    manifest = encrypt_tree(args.src, args.dest, load_key(args.key_file))
    for name, item in sorted(manifest["files"].items()):
        mark = "encrypted" if item["encrypted"] else "copied"
        print(f"  {mark:<9} {name} ({item['size']} bytes)")
    print(f"{args.dest}: {len(manifest['files'])} file(s), key id {manifest['key_id']}")
    _audit_cli(args, "weights.encrypt", f"{args.src} -> {args.dest}")
    return 0


def _audit_log(args: argparse.Namespace):
    from tierserve.config import load_config
    from tierserve.security.audit import AuditLog

    if getattr(args, "path", None):
        return AuditLog(args.path, None)
    audit = load_config(args.config).security.audit
    return AuditLog(audit.path, None)


def _audit_cli(args: argparse.Namespace, action: str, target: str) -> None:
    from tierserve.security.audit import AuditEvent, cli_actor

    actor, host = cli_actor()
    _audit_log(args).record_sync(AuditEvent(actor, action, "ok", target=target, source=host))


def _audit_verify(args: argparse.Namespace) -> int:
    from tierserve.security.audit import verify_chain

    log = _audit_log(args)
    if not log.path.exists():
        print(f"{log.path}: no audit log yet")
        return 0
    report = verify_chain(log.path)
    if report.intact:
        print(f"{log.path}: {report.records} record(s), hash chain intact")
        return 0
    print(f"{log.path}: chain BROKEN at line {report.broken_at} ({report.reason}); "
          f"{report.records} record(s) before it verify", file=sys.stderr)
    return 1


def _audit_tail(args: argparse.Namespace) -> int:
    for record in _audit_log(args).tail(args.n):
        print(json.dumps(record, ensure_ascii=False))
    return 0


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", required=True, help="who holds the key (not secret)")
    parser.add_argument("--role", required=True, choices=("inference", "admin"))
    parser.add_argument("--requests-per-min", type=int, default=None)
    parser.add_argument("--tokens-per-min", type=int, default=None)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="config whose audit log records the creation")


def register(sub) -> None:
    keys = sub.add_parser("keys", help="API keys and the weight-encryption key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create an API key; print it once + its entry")
    _key_options(create)
    create.set_defaults(func=_create)
    hash_ = keys_sub.add_parser("hash", help="the config entry of an existing key (stdin)")
    _key_options(hash_)
    hash_.set_defaults(func=_hash)
    wkey = keys_sub.add_parser("weights-key", help="write a new AES-256 weight key file")
    wkey.add_argument("--out", required=True)
    wkey.set_defaults(func=_weights_key)
    enc = keys_sub.add_parser("encrypt-weights",
                              help="encrypt a model directory's weight files (AES-256-GCM)")
    enc.add_argument("src")
    enc.add_argument("dest")
    enc.add_argument("--key-file", required=True)
    enc.add_argument("--config", default=str(DEFAULT_CONFIG))
    enc.set_defaults(func=_encrypt_weights)

    audit = sub.add_parser("audit", help="the audit log of admin actions")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    for name, func, text in (("verify", _audit_verify, "check the hash chain"),
                             ("tail", _audit_tail, "print the latest records")):
        cmd = audit_sub.add_parser(name, help=text)
        cmd.add_argument("path", nargs="?", default=None, help="log file (default: config's)")
        cmd.add_argument("--config", default=str(DEFAULT_CONFIG))
        if name == "tail":
            cmd.add_argument("-n", type=int, default=20)
        cmd.set_defaults(func=func)
