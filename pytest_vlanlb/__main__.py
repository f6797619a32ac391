"""`vlanlb`: housekeeping outside a test run (build the node image, remove leftovers)."""

from __future__ import annotations

import argparse
import sys

from .errors import VlanlbError
from .image import ImageRecipe, ensure_image
from .lab import find_leftovers, remove_leftovers
from .session import podman_service, preflight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vlanlb", description=__doc__)
    parser.add_argument("--url", help="podman API URL (default: local, started if needed)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build-image", help="build the built-in node image if it is missing")
    cleanup = commands.add_parser(
        "cleanup", help="remove labs left by runs that died (kept labs only with --kept/--run)"
    )
    cleanup.add_argument("--run", help="remove this run's lab (e.g. one kept with --vlanlb-keep)")
    cleanup.add_argument("--kept", action="store_true", help="also remove kept labs")
    cleanup.add_argument("--dry-run", action="store_true", help="list, do not remove")
    args = parser.parse_args(argv)
    try:
        preflight()
        with podman_service(args.url) as service:
            client = service.client()
            if args.command == "build-image":
                print(ensure_image(client, ImageRecipe()))
                return 0
            if args.dry_run:
                items = find_leftovers(client)
            else:
                items = remove_leftovers(client, include_kept=args.kept, run_id=args.run)
            verb = "found" if args.dry_run else "removed"
            for item in items:
                kept = " (kept)" if item.kept else ""
                print(f"{verb} {item.kind} {item.name} of run {item.run_id}{kept}")
            if not items:
                print("nothing to remove")
            return 0
    except VlanlbError as exc:
        print(f"vlanlb: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
