"""Does the Fast DDS profile in use let camera-sized best-effort messages through shared memory?

Fast DDS's default shared-memory segment is 0.5 MB; a best-effort 640x480 bgr8 frame (921 KB)
from another process then arrives almost never (0 of 300 measured). `sentryfuse info` uses
this to say whether FASTDDS_DEFAULT_PROFILES_FILE is set and gives the shared-memory transport
room for such frames, on this side; the camera driver's side needs the same profile.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from sentryfuse_ros.launch_plan import fastdds_profile

ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
VGA_BGR8_BYTES = 640 * 480 * 3


def shm_segment_bytes(path: Path) -> int:
    """The largest SHM transport segment the profile declares; ValueError if unreadable."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ValueError(f"{path} is not a readable XML file ({error})") from error
    sizes = []
    for descriptor in root.iter():
        if not descriptor.tag.endswith("transport_descriptor"):
            continue
        fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in descriptor}
        if fields.get("type") == "SHM" and fields.get("segment_size", "").isdigit():
            sizes.append(int(fields["segment_size"]))
    return max(sizes, default=0)


def profile_status() -> tuple[str, bool]:
    """(what `sentryfuse info` prints, whether it is a problem)."""
    value = os.environ.get(ENV, "")
    if not value:
        return (f"not set here; sentryfuse bringup and the launch file set it to {fastdds_profile()} "
                "(set it for your camera driver too)", False)
    try:
        segment = shm_segment_bytes(Path(value))
    except ValueError as error:
        return str(error), True
    if segment < 2 * VGA_BGR8_BYTES:
        return (f"{value}: no shared-memory segment of at least {2 * VGA_BGR8_BYTES / 1e6:.1f} MB; best-effort "
                "640x480 frames from another process may not arrive (see config/fastdds_large_frames.xml)", True)
    return f"{value} (shared-memory segment {segment / 1e6:.1f} MB)", False
