#!/usr/bin/env bash
# A virtual room for trying voice-agent without audio hardware.
#   source scripts/virtual_room.sh start   # private PulseAudio: default mic + speaker
#   paplay --device=micbus some_question.wav          # "speak" into the microphone
#   parec --device=speaker.monitor --file-format=wav out.wav   # record the agent
#   scripts/virtual_room.sh echo           # mix the speaker into the mic (laptop echo)
#   scripts/virtual_room.sh unplug|plug    # take the microphone away and bring it back
#   source scripts/virtual_room.sh stop
# Needs: apt-get install pulseaudio pulseaudio-utils libasound2-plugins libportaudio2
case "${1:-start}" in
  start)
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR_ROOM:-$(mktemp -d)}"
    pulseaudio --daemonize=yes --exit-idle-time=-1 -n \
      --load=module-native-protocol-unix \
      --load="module-null-sink sink_name=speaker" \
      --load="module-null-sink sink_name=micbus" \
      --load="module-remap-source source_name=mic master=micbus.monitor" 2>/dev/null
    # Where input goes when the mic is unplugged: a source that delivers nothing.
    pactl load-module module-pipe-source source_name=unplugged \
      file="$XDG_RUNTIME_DIR/unplugged.fifo" format=s16le rate=16000 channels=1 >/dev/null
    pactl set-default-sink speaker
    pactl set-default-source mic
    echo "virtual room up: XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR (mic <- micbus, speaker -> speaker.monitor)"
    ;;
  echo)
    pactl load-module module-loopback source=speaker.monitor sink=micbus latency_msec=20
    ;;
  unplug)
    pactl unload-module "$(pactl list short modules | awk '/source_name=mic /{print $1}')"
    ;;
  plug)
    pactl load-module module-remap-source source_name=mic master=micbus.monitor && pactl set-default-source mic
    ;;
  stop)
    pulseaudio --kill
    ;;
  *)
    echo "usage: $0 start|echo|unplug|plug|stop" >&2; exit 2 ;;
esac
