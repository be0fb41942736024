"""Start Moonraker as it runs on a printer's Pi, although the rig may run in a container.

Moonraker refuses to halt a host it finds itself in a container of (by ``/proc/1/sched`` or
``/proc/1/cgroup``), and test machines often are one. The rig's Moonraker stands for one on a
Pi: it is told it runs on bare metal. Halting stays harmless: the rig's own ``sudo`` and
``systemctl`` come first on its PATH and only leave a marker.
"""

import sys
from typing import Any

from moonraker.components import machine  # type: ignore[import-not-found]
from moonraker.server import main  # type: ignore[import-not-found]


def _on_bare_metal(self: Any) -> dict[str, str]:
    self.inside_container = False
    return {"virt_type": "none", "virt_identifier": "none"}


machine.Machine._check_inside_container = _on_bare_metal

if __name__ == "__main__":
    sys.exit(main())
