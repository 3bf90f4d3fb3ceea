"""Before Qt starts (Linux): is a display reachable, and can PySide6's xcb platform plugin load?

Qt aborts with a terse message when its xcb plugin cannot load a system library
(libxcb-icccm4, libxcb-cursor0, ...). This module finds those libraries with ``ldd`` on the
plugin, names the Debian/Ubuntu packages that hold them, installs them when asked (``make run``:
apt-get as root, ``sudo -n`` otherwise) and else says in one line what to run. It imports no Qt.

    python -m app.platform_check [--install]     exit 0 when Qt can start, else 1 with a message
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]

# Loaded with dlopen by Qt >= 6.5, so ldd need not list it.
XCB_CURSOR = "libxcb-cursor.so.0"
# Libraries whose package name does not follow Debian's soname rule (see package_for).
PACKAGE_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libGLdispatch.so.0": "libglvnd0",
    "libz.so.1": "zlib1g",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libm.so.6": "libc6",
    "libpthread.so.0": "libc6",
    "libdl.so.2": "libc6",
}
NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command without a terminal prompt, capturing its output (status 127 when it cannot start)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:  # not installed, or not executable by this user
        return subprocess.CompletedProcess(command, 127, "", str(exc))


def not_found(ldd_output: str) -> list[str]:
    """The sonames ldd reported as 'not found', each once, in order."""
    return list(dict.fromkeys(NOT_FOUND.findall(ldd_output)))


def package_for(soname: str) -> str:
    """Debian/Ubuntu package holding a library: libxcb-icccm.so.4 -> libxcb-icccm4.

    Debian names a library package after its soname (lower case, version appended, with a
    hyphen when the name ends in a digit: libdbus-1.so.3 -> libdbus-1-3); a few differ.
    """
    if soname in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[soname]
    name, _, version = soname.partition(".so.")
    name = name.lower().replace("_", "-")
    version = version.split(".")[0]
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def install_command(packages: list[str], sudo: tuple[str, ...] = ()) -> list[str]:
    """The apt-get command that installs packages, behind sudo (and its options) when given."""
    return [*sudo, "apt-get", "install", "-y", *packages]


def display_problem(environ: Mapping[str, str]) -> str | None:
    """One line when Qt would find no display to open a window on, else None."""
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display: neither DISPLAY nor WAYLAND_DISPLAY is set. Run the app inside a desktop "
            "session (or under Xvfb with DISPLAY set); QT_QPA_PLATFORM=offscreen runs without a window.")


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, found without importing PySide6."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.exists() else None


def loadable(soname: str) -> bool:
    """Whether the dynamic loader finds a library, as Qt's dlopen would."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(plugin: Path, runner: Runner = run, can_load: Callable[[str], bool] = loadable) -> list[str]:
    """Sonames the xcb plugin needs and this machine lacks: ldd's 'not found' lines plus xcb-cursor."""
    missing = not_found(runner(["ldd", str(plugin)]).stdout)
    if XCB_CURSOR not in missing and not can_load(XCB_CURSOR):
        missing.append(XCB_CURSOR)
    return missing


def install(packages: list[str], is_root: bool, runner: Runner = run) -> bool:
    """apt-get install the packages (as root, else with sudo -n: never a password prompt); if that
    fails, refresh the package lists and try once more."""
    sudo = () if is_root else ("sudo", "-n")
    command = install_command(packages, sudo)
    if runner(command).returncode == 0:
        return True
    return runner([*sudo, "apt-get", "update"]).returncode == 0 and runner(command).returncode == 0


def check(environ: Mapping[str, str] = os.environ, plugin: Path | None = None, do_install: bool = False,
          runner: Runner = run, can_load: Callable[[str], bool] = loadable, is_root: bool | None = None) -> str | None:
    """None when Qt can open a window here, else one line saying why and what to run."""
    is_root = os.geteuid() == 0 if is_root is None else is_root
    platform = environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if platform in ("offscreen", "minimal"):
        return None
    problem = display_problem(environ)
    if problem or not environ.get("DISPLAY") or plugin is None:
        return problem
    missing = missing_libraries(plugin, runner, can_load)
    if not missing:
        return None
    packages = list(dict.fromkeys(package_for(soname) for soname in missing))
    if do_install:
        print(f"Qt's xcb plugin needs {', '.join(missing)}: installing {' '.join(packages)} with apt-get",
              file=sys.stderr)
        if install(packages, is_root, runner) and not missing_libraries(plugin, runner, can_load):
            return None
    return (f"Qt's xcb platform plugin cannot load {', '.join(missing)}. Install them with: "
            f"{' '.join(install_command(packages, () if is_root else ('sudo',)))}")


def main(argv: list[str]) -> int:
    """Command line: check (and with --install, install); print the problem and exit 1 if any."""
    if not sys.platform.startswith("linux"):
        return 0
    plugin = xcb_plugin() if shutil.which("ldd") else None
    problem = check(plugin=plugin, do_install="--install" in argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
