"""The `synthloop` command. One module per subcommand; each exposes `add_parser(subparsers)`
which registers itself and sets `func(args) -> int`. Library errors become one line on stderr;
`SYNTHLOOP_RAISE_ERRORS=1` re-raises them for debugging."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from synthloop.errors import SynthloopError

#: Subcommand modules, in `--help` order. A new command is one file here plus one name below.
COMMANDS = ["run", "classroom", "inspect", "backends", "curate", "collapse", "judge", "expand", "review", "publish", "audit", "compare"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthloop",
        description="Manufacture verified, curated, grounded synthetic training data.",
    )
    parser.add_argument("--version", action="version", version=f"synthloop {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"synthloop.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"synthloop.cli.{name}":
                continue  # command not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SynthloopError as e:
        if os.environ.get("SYNTHLOOP_RAISE_ERRORS") == "1":
            raise
        print(f"synthloop: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("synthloop: interrupted; everything finished so far is saved. Run the same command again to resume.", file=sys.stderr)
        return 130


def _version() -> str:
    from synthloop import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
