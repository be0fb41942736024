# Shared by the scripts in this folder: where the environments live and how to find a Python.
# shellcheck shell=bash
VENVS=${OCTOPLUGOUT_VENVS:-$PWD/.venvs}
case $VENVS in /*) ;; *) VENVS=$PWD/$VENVS ;; esac
export OCTOPLUGOUT_VENVS=$VENVS
HA_VENV=$VENVS/ha
OCTOPRINT_VENV=$VENVS/octoprint
ESPHOME_VENV=$VENVS/esphome
KLIPPER_VENV=$VENVS/klipper

# find_python MIN MAX: prints the newest python between MIN and MAX (major.minor), looking on
# PATH first and then in pyenv's versions folder.
find_python() {
  local min=$1 max=$2 best="" best_key=0 candidate version key
  local candidates=()
  for candidate in python3.14 python3.13 python3.12 python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 && candidates+=("$(command -v "$candidate")")
  done
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3; do
    [[ -x $candidate ]] && candidates+=("$candidate")
  done
  for candidate in "${candidates[@]}"; do
    version=$("$candidate" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || continue
    "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1 || continue
    key=$(awk -F. '{printf "%d%03d%03d", $1, $2, $3}' <<<"$version")
    if [[ $key -ge $(awk -F. '{printf "%d%03d000", $1, $2}' <<<"$min") &&
          $key -le $(awk -F. '{printf "%d%03d999", $1, $2}' <<<"$max") && $key -gt $best_key ]]; then
      best=$candidate best_key=$key
    fi
  done
  [[ -n $best ]] && echo "$best"
}

# What the environments were made from: setup runs again when it changes.
requirements_stamp() {
  cat requirements_*.txt | sha256sum | cut -d' ' -f1
}

# The Debian programs the tests start, besides the virtual environments. Debian puts the
# broker in /usr/sbin, which is not on every user's PATH.
mosquitto_present() {
  [[ -x /usr/sbin/mosquitto ]] || command -v mosquitto >/dev/null
}

debian_tools_present() {
  command -v chromium >/dev/null && mosquitto_present
}

environments_ready() {
  [[ -f $VENVS/.ready && $(cat "$VENVS/.ready") == "$(requirements_stamp)" ]] && debian_tools_present
}

ha_version() {
  "$HA_VENV/bin/python" -c 'from homeassistant.const import __version__; print(__version__)'
}
