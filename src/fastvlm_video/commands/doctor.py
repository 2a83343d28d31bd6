"""fastvlm-video doctor: check this machine — versions, video decoders, GPU/CPU, disk, and a smoke run.

Each line is OK, WARN or FAIL with the fix. Exit status 1 when anything FAILs. Downloads nothing.

examples:
  fastvlm-video doctor
  fastvlm-video doctor --out runs/ --no_smoke       # disk where checkpoints go; skip the tiny run
"""

import argparse

NAME = "doctor"
HELP = "check the setup: versions, decoders, devices, disk, a tiny smoke run"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--out", default=".", help="folder where runs and checkpoints will go (its free disk is checked)"
    )
    parser.add_argument("--no_smoke", action="store_true", help="skip the tiny-model smoke run (~10 s)")


def run(args) -> int:
    from ..quiet import quiet_libraries

    quiet_libraries()  # no progress bars or library warnings in what a person reads
    from ..ship.doctor import run_checks

    checks = run_checks(args.out, smoke=not args.no_smoke, report=lambda c: print(c.line(), flush=True))
    failed = [c.name for c in checks if c.status == "FAIL"]
    print(f"\n{len(checks)} checks: " + (f"FAIL in {', '.join(failed)}" if failed else "ready"))
    return 1 if failed else 0
