"""Build tests/speech/noises/: real recordings of non-speech sounds, from Debian packages.

Sources (all real recordings shipped in Debian bookworm packages, licences in
tests/speech/noises/README.md):
- openttd-opensfx 1.0.3: OpenSFX, one WAV per sound inside `opensfx.cat`, each
  with its author and licence (CC0 / CC-BY 3.0) written in the catalogue;
- colobot-common-sounds 0.2.0: astronaut breathing, a mechanism opening and
  closing (GPL-3+);
- tuxtype-data: `tock.wav` (GPL, Bill Kendrick), repeated at a typing rhythm;
- sound-icons 0.1: instrument notes (GPL-2+, Brailcom), joined into a phrase.

Each is decoded to 16 kHz mono, cut to at most 3 s and scaled to a peak of
0.7, so it is as loud as the speech recordings. To rebuild:

    mkdir -p /tmp/debs && cd /tmp/debs && apt-get download openttd-opensfx colobot-common-sounds tuxtype-data sound-icons
    python scripts/make_noise_set.py /tmp/debs
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "speech" / "noises"
RATE = 16_000
MAX_S = 3.0

# name -> (package, path inside the package or "cat:<index>" in OpenSFX's catalogue)
SOURCES: dict[str, tuple[str, str]] = {
    "applause": ("openttd-opensfx", "cat:29"),
    "dropped_object": ("openttd-opensfx", "cat:15"),
    "dumpster_clatter": ("openttd-opensfx", "cat:16"),
    "crash": ("openttd-opensfx", "cat:17"),
    "cash_till": ("openttd-opensfx", "cat:20"),
    "kick_thud": ("openttd-opensfx", "cat:32"),
    "hammering": ("openttd-opensfx", "cat:39"),
    "breathing": ("colobot-common-sounds", "usr/share/games/colobot/sounds/sound026.wav"),
    "door_open": ("colobot-common-sounds", "usr/share/games/colobot/sounds/sound042.wav"),
    "door_close": ("colobot-common-sounds", "usr/share/games/colobot/sounds/sound043.wav"),
}
CAT = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
TYPING_CLICK = ("tuxtype-data", "usr/share/tuxtype/sounds/tock.wav")
TYPING_GAPS_MS = [140, 95, 180, 120, 260, 90, 150, 110, 310, 130, 100, 170, 140, 220, 105, 160]
MUSIC_NOTES = ("sound-icons", ["piano-3.wav", "guitar-12.wav", "cembalo-1.wav", "trumpet-1.wav", "violoncello-7.wav"])


def _decode(path: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    return np.asarray(decode_audio(str(path), sampling_rate=RATE), np.float32)


def _unpack(debs: Path, package: str, into: Path) -> Path:
    deb = next(iter(sorted(debs.glob(f"{package}_*.deb"))), None)
    if deb is None:
        sys.exit(f"no {package}_*.deb in {debs} (apt-get download {package})")
    target = into / package
    if not target.exists():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return target


def _from_catalogue(cat: Path, index: int, into: Path) -> Path:
    """One WAV of OpenTTD's .cat: a table of (offset, size), each entry a name then a RIFF file."""
    data = cat.read_bytes()
    offset, size = struct.unpack_from("<II", data, index * 8)
    offset &= 0x7FFFFFFF
    riff = data.find(b"RIFF", offset, offset + 1024)
    out = into / f"opensfx_{index:02d}.wav"
    out.write_bytes(data[riff : riff + size])
    return out


def _finish(audio: np.ndarray) -> np.ndarray:
    audio = audio[: int(MAX_S * RATE)]
    return (audio * (0.7 / max(1e-6, float(np.max(np.abs(audio)))))).astype(np.float32)


def build(debs: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for name, (package, where) in SOURCES.items():
            root = _unpack(debs, package, tmp)
            path = _from_catalogue(root / CAT, int(where[4:]), tmp) if where.startswith("cat:") else root / where
            sf.write(OUT / f"{name}.wav", _finish(_decode(path)), RATE, subtype="PCM_16")
        click = _decode(_unpack(debs, TYPING_CLICK[0], tmp) / TYPING_CLICK[1])
        typing = np.concatenate([np.concatenate([click, np.zeros(gap * RATE // 1000, np.float32)]) for gap in TYPING_GAPS_MS])
        sf.write(OUT / "typing.wav", _finish(typing), RATE, subtype="PCM_16")
        notes_root = _unpack(debs, MUSIC_NOTES[0], tmp) / "usr/share/sounds/sound-icons"
        music = np.concatenate([_decode(notes_root / note) for note in MUSIC_NOTES[1]])
        sf.write(OUT / "music.wav", _finish(music), RATE, subtype="PCM_16")
    print(f"wrote {len(list(OUT.glob('*.wav')))} files to {OUT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("debs", type=Path, help="a folder holding the four .deb files (apt-get download ...)")
    build(parser.parse_args().debs)


if __name__ == "__main__":
    main()
