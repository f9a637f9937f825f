"""``python -m pynas.data fetch TASK --dest DIR``: fetch and convert data pynas does not ship.

Penn Treebank ships inside pynas (nothing to fetch). CIFAR-10 is downloaded from Krizhevsky's
page, its MD5 verified and converted to ``DIR/cifar10_full.npz`` (``--variant full``).
"""

from __future__ import annotations

import argparse
import sys

from pynas.argtypes import run_main
from pynas.tasks.data import FetchError
from pynas.tasks.registry import TASKS

FETCHABLE = [name for name, task in TASKS.items() if task.fetchable]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pynas.data",
        description="Fetch the data pynas does not ship. Penn Treebank is inside the package; "
        "CIFAR-10 (163 MB) is fetched by this command.",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = commands.add_parser(
        "fetch",
        help="download a dataset, verify its checksum and convert it",
        description="Download the CIFAR-10 python archive, verify its MD5 and write "
        "DEST/cifar10_full.npz (50,000 training and 10,000 test images; use it with "
        "--variant full --data-dir DEST) and DEST/cifar10_small.npz (the default subset, if it "
        "comes out identical to the published one). Nothing is left behind if a step fails.",
    )
    fetch.add_argument("dataset", choices=FETCHABLE)
    fetch.add_argument("--dest", required=True, metavar="DIR", help="where to write the .npz")
    fetch.add_argument(
        "--url",
        help="where to get the archive (http(s):// or file://; default: where the dataset is "
        "published, e.g. cifar-10-python.tar.gz on Krizhevsky's page)",
    )
    fetch.add_argument("--md5", help="expected MD5 of the archive (default: the published one)")
    return p


def main_body(args: argparse.Namespace) -> int:
    say = lambda message: print(message, file=sys.stderr)  # noqa: E731
    TASKS[args.dataset].fetch(args.dest, args.url, args.md5, say=say)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), main_body, argv, usage_errors=(FetchError,))


if __name__ == "__main__":
    sys.exit(main())
