"""Finding audio devices through sounddevice, with errors a user can act on."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class AudioDeviceError(RuntimeError):
    """No PortAudio, no device, a busy device: one line with the fix."""


def sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio into a clear message."""
    try:
        import sounddevice as sd
    except OSError:
        raise AudioDeviceError(
            "PortAudio is not installed; fix: sudo apt-get install libportaudio2 (macOS: brew install portaudio)"
        ) from None
    _quiet_alsa()
    return sd


_ALSA_HANDLER: Any = None  # kept alive: ALSA holds a pointer to it


def _quiet_alsa() -> None:
    """Stop ALSA's C library writing to the terminal ("underrun occurred"): it tears the live
    view apart mid-redraw. Underruns and overruns are counted and reported instead."""
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None or not sys.platform.startswith("linux"):
        return
    try:
        asound = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2")
    except OSError:
        return  # no ALSA: nothing to quieten
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
    _ALSA_HANDLER = handler_type(lambda *_: None)
    asound.snd_lib_error_set_handler(_ALSA_HANDLER)


def list_devices() -> str:
    sd = sounddevice()
    lines = []
    default_in, default_out = sd.default.device
    for i, d in enumerate(sd.query_devices()):
        kinds = []
        if d["max_input_channels"] > 0:
            kinds.append("in" + ("*" if i == default_in else ""))
        if d["max_output_channels"] > 0:
            kinds.append("out" + ("*" if i == default_out else ""))
        lines.append(f"{i:3d}  {d['name']}  [{', '.join(kinds)}]  {int(d['default_samplerate'])} Hz")
    return "\n".join(lines) + "\n(* = default)"


def resolve_device(spec: str | None, kind: str) -> int | None:
    """A device index from an index or a name substring; None means the default."""
    sd = sounddevice()
    channels = "max_input_channels" if kind == "input" else "max_output_channels"
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None
    usable = [i for i, d in enumerate(devices) if d[channels] > 0]
    if not usable:
        raise AudioDeviceError(f"no audio {kind} device found; connect one, or check `voice-agent --list-devices`")
    if spec is None:
        return None
    if spec.isdigit():
        index = int(spec)
        if index not in usable:
            raise AudioDeviceError(f"device {index} is not an {kind} device; see `voice-agent --list-devices`")
        return index
    matches = [i for i in usable if spec.lower() in devices[i]["name"].lower()]
    if not matches:
        raise AudioDeviceError(f"no {kind} device matches '{spec}'; see `voice-agent --list-devices`")
    return matches[0]


def pick_rate(device: int | None, kind: str, preferred: int) -> int:
    """`preferred` if the device takes it, else the device's own default rate."""
    sd = sounddevice()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, samplerate=preferred, channels=1, dtype="float32")
        return preferred
    except sd.PortAudioError:
        pass
    try:
        info = sd.query_devices(device, kind)
        rate = int(info["default_samplerate"])
        check(device=device, samplerate=rate, channels=1, dtype="float32")
        return rate
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioDeviceError(f"the {kind} device supports neither {preferred} Hz nor its default rate: {exc}") from None


def start_stream(make: Callable[[], Any], what: str) -> Any:
    """Open and start a sounddevice stream; a refusal is one line naming the device."""
    sd = sounddevice()
    try:
        stream = make()
        stream.start()
        return stream
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot open the {what}: {exc} (is it busy or unplugged?)") from None


def stop_stream(stream: Any, what: str) -> None:
    """Stop and close a stream, whatever state a vanished device left it in."""
    if stream is None:
        return
    try:
        stream.abort()
        stream.close()
    except Exception as exc:  # noqa: BLE001 - closing a vanished device may fail any way
        log.debug("closing the %s: %s", what, exc)
