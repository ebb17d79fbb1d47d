"""The jsPsych files a study uses: pinned npm versions, their CDN addresses with subresource-integrity hashes,
or a local npm install copied into the study folder (jsPsych is never part of this repository).

The hashes are of the files in the npm packages at these versions, which the CDN serves byte for byte;
``tests/test_study_browser.py`` installs the packages from the npm registry and checks every hash.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

CDN = "https://cdn.jsdelivr.net/npm"


@dataclasses.dataclass(frozen=True)
class Asset:
    """One jsPsych file.

    Attributes:
        package: npm package name.
        version: pinned version.
        path: path inside the package.
        integrity: ``sha384-...`` of the file.
        kind: ``"script"`` or ``"style"``.
    """

    package: str
    version: str
    path: str
    integrity: str
    kind: str = "script"

    @property
    def url(self) -> str:
        """The CDN address of the pinned file."""
        return f"{CDN}/{self.package}@{self.version}/{self.path}"

    @property
    def local(self) -> str:
        """Where the file goes inside a study folder."""
        return f"jspsych/{self.package.replace('@jspsych/', '')}/{Path(self.path).name}"


ASSETS = (
    Asset("jspsych", "8.3.0", "dist/index.browser.min.js",
          "sha384-PPMNzYQfqrWFhrOxhpwxXmKK+LDH//fBCLsvA/JIRHOfiuOcZ2j8wJhqo87V4R4B"),
    Asset("jspsych", "8.3.0", "css/jspsych.css",
          "sha384-+gGUkbtw2BJWSroKW2jzIEXGe7KxdycJ0Bo+CqzpIOSBHOYEHHRWETaV+v2mpdWX", "style"),
    Asset("@jspsych/plugin-html-button-response", "2.1.0", "dist/index.browser.min.js",
          "sha384-tPGtXEC8xEbInWvarnxvJ3fyzeXwRDS0QjGUts+TGQ9I8OCxiqsv9lxTS3mEN6um"),
    Asset("@jspsych/plugin-instructions", "2.1.0", "dist/index.browser.min.js",
          "sha384-wjSYNsw41Zo3TlpW5giDpSwTK0q3Un1NGPsh6gEqlAAKamdt7+TQ5gAL4dat+lT1"),
    Asset("@jspsych/plugin-preload", "2.1.0", "dist/index.browser.min.js",
          "sha384-BiUYHx4tdTYToceth936qf4Wkf+Ho2VZti/5bB5/nDiPRuTaZ37hrxkLsANkHGdp"),
    Asset("@jspsych/plugin-survey-html-form", "2.1.0", "dist/index.browser.min.js",
          "sha384-60fiNESvg3n32x9sx0QAOyIlVkUgaC20Fsuo/ROTm0DeXCwEfaJ0FfE674kO0F9n"),
    Asset("@jspsych/plugin-survey-text", "2.1.1", "dist/index.browser.min.js",
          "sha384-zsqp5G+ns0FQC22XQVyTA7zUWUP0trh2p9cvQlQhqen2al1J+llHID217LltT/WJ"),
)


def npm_install_command() -> str:
    """The npm command that installs exactly the pinned packages (for ``--jspsych DIR``)."""
    pins = sorted({f"{a.package}@{a.version}" for a in ASSETS})
    return "npm install --prefix DIR " + " ".join(pins)


def copy_local(npm_dir: str | Path, study: Path) -> list[str]:
    """Copy the pinned files from a local npm install (``DIR/node_modules/...``) into ``study/jspsych/``.

    Returns:
        The tags (``<script>`` / ``<link>``) that load them.

    Raises:
        ValueError: a file is missing or of another version, naming the npm command that fixes it.
    """
    import json

    root = Path(npm_dir)
    modules = root / "node_modules" if (root / "node_modules").is_dir() else root
    tags = []
    for a in ASSETS:
        pkg = modules / a.package
        try:
            version = json.loads((pkg / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            version = None
        src = pkg / a.path
        if version != a.version or not src.is_file():
            found = "missing" if version is None else f"version {version}"
            raise ValueError(f"--jspsych {str(root)!r}: {a.package} is {found}, the study needs {a.version}; run "
                             f"`{npm_install_command().replace('DIR', str(root))}`.")
        dest = study / a.local
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        tags.append(_tag(a.local, a.kind))
    return tags


def cdn_tags() -> list[str]:
    """Tags that load the pinned files from the CDN, each with its integrity hash."""
    return [_tag(a.url, a.kind, a.integrity) for a in ASSETS]


def _tag(src: str, kind: str, integrity: str | None = None) -> str:
    sri = f' integrity="{integrity}" crossorigin="anonymous"' if integrity else ""
    if kind == "style":
        return f'<link rel="stylesheet" href="{src}"{sri}>'
    return f'<script src="{src}"{sri}></script>'
