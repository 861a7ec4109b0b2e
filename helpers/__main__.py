"""Command line: ``python -m helpers {report,download,bench} ...`` (``--help`` on each)."""
from __future__ import annotations

import argparse
import sys

from helpers.errors import UserError


def _download(args) -> None:
    from helpers.download import download_corpora
    download_corpora(args.corpora or None, data_root=args.data_dir, base_url=args.base_url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="fetch every corpus from its public home into the data root")
    p.add_argument("--corpora", nargs="*", help="corpus names (default: all)")
    p.add_argument("--data-dir", help="data root (default: $CBV_DATA_DIR or data/raw/)")
    p.add_argument("--base-url", help="fetch from this mirror instead of the public homes")
    p.set_defaults(func=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
