"""The demo: OctoPrint, a virtual plug and Home Assistant with OctoPlugout, ready to watch.

Run it with ``scripts/demo``. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from types import FrameType

from .paths import ROOT
from .rig import Rig

DEMO_DIR = ROOT / ".demo"


def main(argv: list[str] | None = None) -> int:
    """Start the demo and keep it running until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant's port")
    parser.add_argument("--print", action="store_true", help="start the demo print at once")
    parser.add_argument(
        "--seconds", type=float, default=0, help="stop after this many seconds (0: never)"
    )
    args = parser.parse_args(argv)

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    rig = Rig(DEMO_DIR)
    rig.ha.port = args.port
    stop = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print("Starting OctoPrint, the virtual plug and Home Assistant (a minute or two)...")
    try:
        rig.start()
        plug = (
            "the OctoPlugout ESPHome plug (Linux build)"
            if rig.plug_kind == "esphome"
            else ("a template switch (this Home Assistant is too old for the ESPHome plug)")
        )
        print(
            f"""
OctoPlugout demo is running.

  Home Assistant:  {rig.ha.url}   (no login on this machine)
  OctoPrint:       {rig.octoprint.url}   (virtual printer; API key {rig.octoprint.admin_key})
  The plug:        {plug}

On the dashboard press "Start demo print" and watch: print started -> power off after print
-> cooling -> halting the host -> powering off -> off, in about a minute (the demo uses short
timings). "Cancel power-off" keeps the power on; the Power switch powers everything up again.
Logs are in {DEMO_DIR}. Press Ctrl-C to stop.
""",
            flush=True,
        )
        if args.print:
            rig.start_print()
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.5)
    finally:
        print("Stopping...", flush=True)
        rig.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
