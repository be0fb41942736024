"""A real rig for OctoPlugout, on loopback.

OctoPrint with its virtual printer, the plug firmware as a Linux program, a virtual Pi power
line between them, and Home Assistant as a real process. The end-to-end tests, the benchmarks
and ``scripts/demo`` all run on it. Every server binds to 127.0.0.1 and every process the rig
starts, it stops.
"""
