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
        help="for a store without digests (written by an older rocksr) whose data you know to be "
        "good: check that every data file is present and every chunk decodes, then record its "
        "digest manifest. Decoding cannot catch every changed byte, so this does not prove the "
        "store intact; rebuilding it with its stage is the safe path",
    )


def run(a: argparse.Namespace) -> None:
    from rocksr.data.tilestore import StoreError, certify_store, verify_store

    for path in a.stores:
        try:
            if a.write_manifest:
                n = certify_store(path)
                print(
                    f"{path}: every data file present and every chunk decodes; digest manifest "
                    f"recorded for {n} files (it vouches for the data as they are now)"
                )
            else:
                verify_store(path, full=True)
                print(f"{path}: OK (every file present, with its recorded size and SHA-256)")
        except OSError as exc:  # unreadable files, permissions: one line, not a traceback
            raise StoreError(f"{path}: cannot be read ({exc})") from exc
