"""The test rig's Klipper extra: heaters that heat and cool, and a wait in real time.

Klippy runs in its file-output mode on the rig (no microcontroller): heaters then read
nothing and moves take no time. This extra, loaded with an ``[octoplugout_rig]`` section before
the heaters, gives every heater with ``sensor_type: octoplugout_rig`` a temperature from a
first-order model of the power Klippy's own heater control gives it, and adds ``RIG_WAIT`` (a
wait in real time, so that a print lasts) and ``RIG_WAIT_HOT`` (until a heater reaches its
target, which ``M109`` skips in this mode), and lets Klippy's idle_timeout turn "Ready" once
nothing is left to do. Copied into Klippy's extras by the rig.
"""

import time
from typing import Any

REPORT_TIME = 0.5
# How far the virtual microcontroller is past the toolhead's plan once nothing is left to plan:
# more than idle_timeout's 0.5 s, so that Klippy turns "Ready" after a print.
CAUGHT_UP = 1.0


class VirtualHeat:
    """A heater's temperature from its own power."""

    def __init__(self, config: Any) -> None:
        self.printer = config.get_printer()
        self.reactor = self.printer.get_reactor()
        self.name = config.get_name().split()[-1]
        self.room = config.getfloat("room_temperature", 25.0)
        # Degrees per second at full power, and the share of the excess over the room lost
        # per second.
        self.heat_rate = config.getfloat("heat_rate", 8.0, above=0.0)
        self.loss_rate = config.getfloat("loss_rate", 0.02, above=0.0)
        self.temperature = self.room
        # Where each reading is written with its wall-clock time, to the millisecond (the
        # benchmark's cool-down moment), or None.
        self.reading_log = config.get("reading_log", None)
        self.min_temp = self.max_temp = 0.0
        self._callback: Any = None
        self._heater: Any = None
        self._timer = self.reactor.register_timer(self._sample)
        # A shut-down microcontroller powers every heater off; Klippy's last power stays set.
        self._shut_down = False
        self.printer.register_event_handler("klippy:connect", self._connect)
        self.printer.register_event_handler("klippy:shutdown", self._on_shutdown)

    def _connect(self) -> None:
        self._heater = self.printer.lookup_object("heaters").lookup_heater(self.name)
        self.reactor.update_timer(self._timer, self.reactor.NOW)

    def _on_shutdown(self) -> None:
        self._shut_down = True

    def setup_minmax(self, min_temp: float, max_temp: float) -> None:
        """Klippy's range for this sensor (the model stays within it by itself)."""
        self.min_temp, self.max_temp = min_temp, max_temp

    def setup_callback(self, callback: Any) -> None:
        """Where each reading goes: the heater's control."""
        self._callback = callback

    def get_report_time_delta(self) -> float:
        """Seconds between two readings."""
        return REPORT_TIME

    def _sample(self, eventtime: float) -> float:
        power = 0.0
        if self._heater is not None and not self._shut_down:
            power = self._heater.last_pwm_value
        excess = self.temperature - self.room
        self.temperature += REPORT_TIME * (power * self.heat_rate - self.loss_rate * excess)
        if self._callback is not None:
            self._callback(eventtime, self.temperature)
        if self.reading_log:
            with open(self.reading_log, "a") as log:
                log.write(f"{time.time():.3f} {self.temperature:.2f}\n")
        return eventtime + REPORT_TIME


class RigCommands:
    """Waits in real time, which Klippy's file-output mode has none of."""

    def __init__(self, config: Any) -> None:
        self.printer = config.get_printer()
        gcode = self.printer.lookup_object("gcode")
        gcode.register_command("RIG_WAIT", self.cmd_RIG_WAIT, desc="Wait SECONDS in real time")
        gcode.register_command(
            "RIG_WAIT_HOT", self.cmd_RIG_WAIT_HOT, desc="Wait until HEATER reaches its target"
        )
        self.printer.register_event_handler("klippy:connect", self._connect)

    def _connect(self) -> None:
        # Without a microcontroller the toolhead's estimate of the time it has reached stays
        # behind the time it has planned to, so Klippy's idle_timeout would say "Printing"
        # forever. With nothing left to plan, the virtual microcontroller has caught up.
        # A print keeps a real one's planner busy all along; so it does here.
        toolhead = self.printer.lookup_object("toolhead")
        sdcard = self.printer.lookup_object("virtual_sdcard", None)
        check_busy = toolhead.check_busy

        def caught_up(eventtime: float) -> tuple[float, float, bool]:
            print_time, estimated, lookahead_empty = check_busy(eventtime)
            if lookahead_empty and not (sdcard is not None and sdcard.is_active()):
                estimated = max(estimated, print_time + CAUGHT_UP)
            return print_time, estimated, lookahead_empty

        toolhead.check_busy = caught_up

    def _busy(self, eventtime: float) -> None:
        # What a real move tells Klippy: the toolhead works (idle_timeout says "Printing").
        print_time, estimated, _ = self.printer.lookup_object("toolhead").check_busy(eventtime)
        self.printer.send_event("toolhead:sync_print_time", eventtime, estimated, print_time)

    def cmd_RIG_WAIT(self, gcmd: Any) -> None:
        """RIG_WAIT SECONDS=<s>: the print goes on after that many seconds."""
        seconds = gcmd.get_float("SECONDS", 1.0, minval=0.0)
        reactor = self.printer.get_reactor()
        self._busy(reactor.monotonic())
        reactor.pause(reactor.monotonic() + seconds)

    def cmd_RIG_WAIT_HOT(self, gcmd: Any) -> None:
        """RIG_WAIT_HOT HEATER=<name>: the print goes on once the heater is at its target."""
        name = gcmd.get("HEATER", "extruder")
        heater = self.printer.lookup_object("heaters").lookup_heater(name)
        reactor = self.printer.get_reactor()
        eventtime = reactor.monotonic()
        self._busy(eventtime)
        while not self.printer.is_shutdown():
            temperature, target = heater.get_temp(eventtime)
            if target <= 0.0 or temperature >= target - 1.0:
                return
            eventtime = reactor.pause(eventtime + 0.5)


def load_config(config: Any) -> RigCommands:
    """Klippy's entry point for the ``[octoplugout_rig]`` section."""
    heaters = config.get_printer().load_object(config, "heaters")
    heaters.add_sensor_factory("octoplugout_rig", VirtualHeat)
    return RigCommands(config)
