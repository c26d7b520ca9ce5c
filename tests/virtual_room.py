"""The virtual room lives in the package (measure/room.py): the live measurement uses it too."""

from voice_agent.measure.room import AgentProcess, VirtualRoom, volume_percent

__all__ = ["AgentProcess", "VirtualRoom", "volume_percent"]
