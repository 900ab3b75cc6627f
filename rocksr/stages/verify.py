"""Command `verify`: check tile and prediction stores against their digest manifests (no rule)."""

from __future__ import annotations

import argparse

COMMAND = "verify"
HELP = "check every file of a tile or prediction store against its digests"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("stores", nargs="+", metavar="STORE")
    s.add_argument(
        "--write-manifest",
        action="store_true",
        help="for a store written by an older rocksr without digests: decode it in full, check "
        "that no data file is missing, and record its digest manifest",
    )


def run(a: argparse.Namespace) -> None:
    from rocksr.data.tilestore import certify_store, verify_store

    for path in a.stores:
        if a.write_manifest:
            n = certify_store(path)
            print(f"{path}: decoded in full; digest manifest recorded for {n} files")
        else:
            verify_store(path, full=True)
            print(f"{path}: OK (every file present, with its recorded size and SHA-256)")
