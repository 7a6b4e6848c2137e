"""`tierserve publish-weights` and `tierserve weights list|verify|audit`: the versioned
weight store from the command line (docs/weights.md)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path

from tierserve.platform.settings import DEFAULT_CONFIG, load_settings


def _context(config_path: str):
    from tierserve.config import load_config
    from tierserve.weights.audit import AuditLog
    from tierserve.weights.store import make_store

    config = load_config(config_path)
    redis_url = config.context.redis_url or load_settings().redis_url
    return config, make_store(config.weights.store, config.weights.root), \
        AuditLog(config.weights.audit_path, redis_url)


def _known_tracks(config) -> set[str]:
    from tierserve.weights.spec import track_of

    return set(config.tier_ids) | {track_of(t.id, v) for t, v in config.variants()}


def _check_track(config, track: str) -> None:
    from tierserve.errors import ConfigError
    from tierserve.weights.spec import tracks

    known = _known_tracks(config)
    if track not in known:
        raise ConfigError(f"--tier {track!r} is neither a tier nor a variant's weights.track "
                          f"in this config; known: {sorted(known)}")
    if track not in tracks(config):
        print(f"warning: no variant in this config has weights.hot_reload on for track "
              f"{track!r}; replicas will not pick this version up until one does",
              file=sys.stderr)


def _publish(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tierserve.weights.announce import make_announcer
    from tierserve.weights.audit import default_actor
    from tierserve.weights.errors import WeightsError
    from tierserve.weights.publish import publish_weights, source_bytes

    config, store, audit = _context(args.config)
    _check_track(config, args.tier)
    settings = load_settings()
    weights = config.weights
    announcer = make_announcer(weights.announce, config.context.redis_url or settings.redis_url,
                               weights.channel_prefix, weights.poll_interval_s,
                               weights.redis_poll_interval_s)
    source = Path(args.source).expanduser()
    try:
        with tqdm(total=source_bytes(source), unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"hashing {source.name}", disable=args.quiet) as bar:
            done = asyncio.run(publish_weights(
                store, audit, announcer, args.tier, source,
                publisher=args.publisher or default_actor(), version=args.version,
                model_id=args.model_id, progress=bar.update))
    except WeightsError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    manifest = done.manifest
    for warning in done.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"published {args.tier} v{manifest.version}: {len(manifest.files)} files, "
          f"{manifest.total_bytes / 2**20:.1f} MiB -> {store.fetch(args.tier, manifest.version)}")
    if done.announce_error:
        print(f"warning: announcement failed ({done.announce_error}); replicas will find the "
              f"version by polling within {weights.redis_poll_interval_s:g} s", file=sys.stderr)
    elif done.subscribers is not None:
        print(f"announced on Redis to {done.subscribers} subscriber(s)")
    else:
        print(f"replicas poll the store every {weights.poll_interval_s:g} s")
    return 0


def _list(args: argparse.Namespace) -> int:
    config, store, _ = _context(args.config)
    tracks = [args.tier] if args.tier else sorted(set(store.tracks()) | _known_tracks(config))
    for track in tracks:
        versions, rejected = store.versions(track), store.rejected(track)
        print(f"{track}: {len(versions)} version(s)" + ("" if versions else " (none published)"))
        for version in versions:
            m = store.manifest(track, version)
            state = f"REJECTED ({rejected[version][:60]})" if version in rejected else ""
            print(f"  v{version:<5} {m.created_at}  {m.total_bytes / 2**20:9.1f} MiB  "
                  f"{len(m.files):3d} files  {m.publisher:<24} {m.model_id}  {state}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tierserve.weights.errors import WeightsError
    from tierserve.weights.verify import verify_files

    _, store, _ = _context(args.config)
    try:
        manifest = store.manifest(args.tier, args.version)
        with tqdm(total=manifest.total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"verifying v{args.version}") as bar:
            verify_files(store.fetch(args.tier, args.version), manifest, bar.update)
    except WeightsError as err:
        print(f"FAILED: {err.message}", file=sys.stderr)
        return 1
    print(f"{args.tier} v{args.version}: all {len(manifest.files)} files match the manifest")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from tierserve.weights.audit import read_audit

    config, _, _ = _context(args.config)
    for entry in read_audit(config.weights.audit_path)[-args.tail:]:
        when = datetime.datetime.fromtimestamp(entry["unix"]).strftime("%Y-%m-%d %H:%M:%S")
        extra = entry.get("detail") or entry.get("trigger") or ""
        print(f"{when}  {entry['event']:<8} {entry['result']:<9} {entry['track']} "
              f"v{entry.get('version')}  {entry['actor']}  {extra}")
    return 0


def register(sub) -> None:
    publish = sub.add_parser("publish-weights", help="publish a checkpoint as a new weight "
                             "version of a tier (replicas hot-reload it)")
    publish.add_argument("--tier", required=True,
                         help="track to publish to: a tier id or a variant's weights.track")
    publish.add_argument("--from", dest="source", required=True, help="checkpoint directory")
    publish.add_argument("--config", default=str(DEFAULT_CONFIG))
    publish.add_argument("--version", type=int, default=None,
                         help="version number (default: latest + 1); must go up")
    publish.add_argument("--model-id", default=None, help="recorded in the manifest "
                         "(default: the directory name)")
    publish.add_argument("--publisher", default=None, help="who publishes (default: user@host)")
    publish.add_argument("--quiet", action="store_true", help="no progress bar")
    publish.set_defaults(func=_publish)

    weights = sub.add_parser("weights", help="inspect the versioned weight store")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True)
    listing = weights_sub.add_parser("list", help="versions per track")
    listing.add_argument("--tier", default=None)
    listing.add_argument("--config", default=str(DEFAULT_CONFIG))
    listing.set_defaults(func=_list)
    verify = weights_sub.add_parser("verify", help="check a version's files against its manifest")
    verify.add_argument("--tier", required=True)
    verify.add_argument("--version", type=int, required=True)
    verify.add_argument("--config", default=str(DEFAULT_CONFIG))
    verify.set_defaults(func=_verify)
    audit = weights_sub.add_parser("audit", help="the latest publish/reload audit records")
    audit.add_argument("--tail", type=int, default=20)
    audit.add_argument("--config", default=str(DEFAULT_CONFIG))
    audit.set_defaults(func=_audit)
