"""The Debian packages the benchmark is built from: download with `apt-get download`, extract
the few files needed with `dpkg-deb`, no root and no installation.

Each package lands in <sources>/debs/ and its needed files in <sources>/extracted/<package>/,
so a second run reuses them and a fresh clone on the same machine never downloads again.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class SourceError(RuntimeError):
    """A source package could not be fetched or unpacked; the message says what to do."""


@dataclass(frozen=True)
class DebianSource:
    package: str
    # Shell-style patterns (fnmatch) of the files to extract, relative to the package root.
    members: tuple[str, ...]
    licence: str
    what: str


_ASTERISK = "usr/share/asterisk/sounds"
SOURCES: tuple[DebianSource, ...] = (
    DebianSource(
        "opencv-doc",
        ("usr/share/doc/opencv-doc/examples/data/digits.png", "usr/share/doc/opencv-doc/copyright"),
        "MNIST digits (LeCun, Cortes, Burges; CC BY-SA 3.0) as shipped in OpenCV's samples (Apache-2.0)",
        "5000 handwritten digits, 20x20, camera train/val/test",
    ),
    DebianSource(
        "python3-sklearn",
        ("usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz", "usr/share/doc/python3-sklearn/copyright"),
        "UCI Optical Recognition of Handwritten Digits (Alpaydin, Kaynak; CC BY 4.0), shipped in scikit-learn (BSD-3)",
        "1797 handwritten digits, 8x8, unseen writers for test_sklearn",
    ),
    DebianSource(
        "asterisk-core-sounds-en-wav",
        (f"{_ASTERISK}/en_US_f_Allison/digits/[0-9].wav", "usr/share/doc/*/copyright"),
        "CC BY-SA 3.0 (Allison Smith, Digium)",
        "spoken digits, English, Allison Smith",
    ),
    DebianSource(
        "asterisk-core-sounds-es-wav",
        (f"{_ASTERISK}/es_MX_f_Allison/digits/[0-9].wav", "usr/share/doc/*/copyright"),
        "CC BY-SA 3.0 (Allison Smith, Digium)",
        "spoken digits, Spanish, Allison Smith",
    ),
    DebianSource(
        "asterisk-core-sounds-fr-wav",
        (f"{_ASTERISK}/fr_CA_f_June/digits/[0-9].wav", "usr/share/doc/*/copyright"),
        "CC BY-SA 3.0 (June Wallack, Digium)",
        "spoken digits, Canadian French, June Wallack",
    ),
    DebianSource(
        "asterisk-core-sounds-it-wav",
        (f"{_ASTERISK}/it_IT_m_Carlo/digits/[0-9].wav", "usr/share/doc/*/copyright"),
        "CC BY 3.0 (Carlo Flora)",
        "spoken digits, Italian, Carlo Flora",
    ),
    DebianSource(
        "asterisk-core-sounds-ru-wav",
        (f"{_ASTERISK}/ru_RU_f_IvrvoiceRU/digits/[0-9].wav", "usr/share/doc/*/copyright"),
        "CC BY 3.0 (Maxim Topal, ivrvoice.ru)",
        "spoken digits, Russian, IvrvoiceRU",
    ),
    DebianSource(
        "asterisk-prompt-it-menardi-wav",
        (f"{_ASTERISK}/it_IT_f_Menardi/digits/[0-9].wav", "usr/share/doc/*/copyright"),
        "CC BY-SA 3.0 Italian (Marco Menardi, Paola Dal Zot; attribution: http://www.voip.ammdomus.it)",
        "spoken digits, Italian, Paola Dal Zot",
    ),
    DebianSource(
        "asterisk-prompt-fr-armelle",
        (f"{_ASTERISK}/fr/digits/[0-9].gsm", "usr/share/doc/*/copyright"),
        "BSD-style permissive licence (Michel Gutierrez; voice Armelle Desjardins)",
        "spoken digits, French, Armelle Desjardins",
    ),
    DebianSource(
        "asterisk-prompt-es-co",
        (f"{_ASTERISK}/es/digits/[0-9].gsm", "usr/share/doc/*/copyright"),
        "GPL-2 (Avatar Ltda., Colombia)",
        "spoken digits, Colombian Spanish, Avatar Ltda.",
    ),
)


def fetch_sources(sources_dir: Path, log=print) -> dict[str, str]:
    """Download and extract every package that is not there yet; return package -> deb version."""
    debs_dir, extracted_dir = sources_dir / "debs", sources_dir / "extracted"
    debs_dir.mkdir(parents=True, exist_ok=True)
    missing = [source.package for source in SOURCES if _find_deb(debs_dir, source.package) is None]
    if missing:
        log(f"downloading {len(missing)} Debian packages into {debs_dir}: {' '.join(missing)}")
        _apt_get_download(missing, debs_dir)
    versions = {}
    for source in SOURCES:
        deb = _find_deb(debs_dir, source.package)
        if deb is None:
            raise SourceError(f"apt-get download reported success but no {source.package}_*.deb is in {debs_dir}")
        target = extracted_dir / source.package
        stamp = target / ".extracted-from"
        if not stamp.is_file() or stamp.read_text() != deb.name:
            shutil.rmtree(target, ignore_errors=True)
            _extract(deb, source.members, target)
            stamp.write_text(deb.name)
        versions[source.package] = _deb_version(deb)
    return versions


def extracted_root(sources_dir: Path, package: str) -> Path:
    return sources_dir / "extracted" / package


def _find_deb(debs_dir: Path, package: str) -> Path | None:
    candidates = sorted(debs_dir.glob(f"{package}_*.deb"))
    return candidates[-1] if candidates else None


def _apt_get_download(packages: list[str], debs_dir: Path) -> None:
    if shutil.which("apt-get") is None:
        raise SourceError("apt-get not found: the benchmark sources are Debian packages (Debian 12 or derivative)")
    command = ["apt-get", "download", *packages]
    if os.geteuid() == 0:
        # As root apt fetches as the `_apt` user, which cannot write into a private data dir.
        command[2:2] = ["-o", "APT::Sandbox::User=root"]
    result = subprocess.run(command, cwd=debs_dir, capture_output=True, text=True)
    if result.returncode != 0:
        raise SourceError(
            f"`{' '.join(command)}` failed:\n{result.stderr.strip()}\n"
            "If the packages are unknown or their files are gone (404), the package lists are stale: "
            "run `sudo apt-get update` and retry."
        )


def _extract(deb: Path, patterns: tuple[str, ...], target: Path) -> None:
    """Stream the deb's data archive through dpkg-deb and write only the matching regular files."""
    target.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    matched = set()
    with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
        for member in archive:
            name = PurePosixPath(member.name.lstrip("./"))
            if not member.isfile() or ".." in name.parts:
                continue
            pattern = next((p for p in patterns if fnmatch.fnmatchcase(str(name), p)), None)
            if pattern is None:
                continue
            matched.add(pattern)
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.extractfile(member).read())
    if process.wait() != 0:
        raise SourceError(f"dpkg-deb could not read {deb}; delete it and rerun to download it again")
    unmatched = set(patterns) - matched
    if unmatched:
        raise SourceError(f"{deb.name} lacks expected files {sorted(unmatched)}; was the package restructured?")


def _deb_version(deb: Path) -> str:
    result = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True)
    return result.stdout.strip()
