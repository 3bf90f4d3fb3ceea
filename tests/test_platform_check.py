"""The pre-Qt platform check: ldd parsing, soname -> Debian package, install commands, messages (faked ldd/apt)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import platform_check as pc

PLUGIN = Path("/venv/PySide6/Qt/plugins/platforms/libqxcb.so")
# ldd on PySide6 6.10's libqxcb.so on a fresh Debian 12 machine (cut), as in issue 10.
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007fc9cdcec000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007fc9cd000000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007fc9cdb8d000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007fc9cdb3a000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007fc9cdb2b000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007fc9cdb12000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fc9cbe1e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fc9cdcee000)
"""
LDD_COMPLETE = "\n".join(line for line in LDD_MISSING.splitlines() if "not found" not in line)
DISPLAY = {"DISPLAY": ":0"}


class FakeSystem:
    """Answers ldd from the packages "installed" so far; apt-get installs when allowed to."""

    def __init__(self, apt_works=True, lists_stale=False):
        self.installed, self.commands = False, []
        self.apt_works, self.lists_stale = apt_works, lists_stale

    def __call__(self, command):
        self.commands.append(command)
        status = 0
        if "ldd" in command:
            return subprocess.CompletedProcess(command, 0, LDD_COMPLETE if self.installed else LDD_MISSING, "")
        if "update" in command:
            self.lists_stale = False
        elif "install" in command:
            status = 0 if self.apt_works and not self.lists_stale else 100
            self.installed = status == 0
        return subprocess.CompletedProcess(command, status, "", "")

    def apt_commands(self):
        return [c for c in self.commands if "apt-get" in c]


def test_not_found_lists_each_missing_soname_once_in_order():
    assert pc.not_found(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert pc.not_found(LDD_COMPLETE) == []


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-image.so.0", "libxcb-image0"), ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-randr.so.0", "libxcb-randr0"), ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-xinerama.so.0", "libxcb-xinerama0"), ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libEGL.so.1", "libegl1"), ("libGL.so.1", "libgl1"), ("libfontconfig.so.1", "libfontconfig1"),
    ("libdbus-1.so.3", "libdbus-1-3"), ("libX11-xcb.so.1", "libx11-xcb1"), ("libgcc_s.so.1", "libgcc-s1"),
    ("libglib-2.0.so.0", "libglib2.0-0"), ("libz.so.1", "zlib1g"), ("libpng16.so.16", "libpng16-16"),
])
def test_package_for_gives_the_debian_package(soname, package):
    assert pc.package_for(soname) == package


def test_missing_libraries_adds_xcb_cursor_when_the_loader_cannot_find_it():
    system = FakeSystem()
    assert pc.missing_libraries(PLUGIN, system, lambda soname: True) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert pc.missing_libraries(PLUGIN, system, lambda soname: soname != pc.XCB_CURSOR) == [
        "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"]
    assert system.commands[0] == ["ldd", str(PLUGIN)]


def test_check_installs_the_missing_packages_as_root():
    system = FakeSystem()
    assert pc.check(DISPLAY, PLUGIN, do_install=True, runner=system, can_load=lambda s: True, is_root=True) is None
    assert system.apt_commands() == [["apt-get", "install", "-y", "libxcb-icccm4", "libxcb-keysyms1"]]


def test_check_refreshes_stale_package_lists_once_and_uses_sudo_without_a_prompt():
    system = FakeSystem(lists_stale=True)
    assert pc.check(DISPLAY, PLUGIN, do_install=True, runner=system, can_load=lambda s: True, is_root=False) is None
    install = ["sudo", "-n", "apt-get", "install", "-y", "libxcb-icccm4", "libxcb-keysyms1"]
    assert system.apt_commands() == [install, ["sudo", "-n", "apt-get", "update"], install]


@pytest.mark.parametrize("is_root, command", [
    (True, "apt-get install -y libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0"),
    (False, "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0"),
])
def test_check_that_cannot_install_names_the_libraries_and_the_exact_command(is_root, command):
    system = FakeSystem(apt_works=False)
    message = pc.check(DISPLAY, PLUGIN, do_install=True, runner=system, can_load=lambda s: False, is_root=is_root)
    assert message == ("Qt's xcb platform plugin cannot load libxcb-icccm.so.4, libxcb-keysyms.so.1, "
                       f"libxcb-cursor.so.0. Install them with: {command}")
    assert "\n" not in message


def test_check_without_install_only_reports():
    system = FakeSystem()
    message = pc.check(DISPLAY, PLUGIN, runner=system, can_load=lambda s: True, is_root=True)
    assert message.endswith("Install them with: apt-get install -y libxcb-icccm4 libxcb-keysyms1")
    assert system.apt_commands() == []


def test_check_passes_when_nothing_is_missing():
    system = FakeSystem()
    system.installed = True
    assert pc.check(DISPLAY, PLUGIN, do_install=True, runner=system, can_load=lambda s: True) is None
    assert system.apt_commands() == []


def test_no_display_is_one_line_and_checks_nothing_else():
    system = FakeSystem()
    message = pc.check({}, PLUGIN, do_install=True, runner=system)
    assert message.startswith("no display: neither DISPLAY nor WAYLAND_DISPLAY is set") and "\n" not in message
    assert system.commands == []


@pytest.mark.parametrize("environ", [{"QT_QPA_PLATFORM": "offscreen"}, {"QT_QPA_PLATFORM": "minimal"},
                                     {"WAYLAND_DISPLAY": "wayland-0"}])
def test_offscreen_and_wayland_runs_need_no_xcb(environ):
    system = FakeSystem()
    assert pc.check(environ, PLUGIN, do_install=True, runner=system) is None
    assert system.commands == []


@pytest.mark.parametrize("program", ["/nonexistent/sudo", __file__])  # missing; not executable
def test_run_reports_a_program_that_cannot_start_as_status_127(program):
    assert pc.run([program, "apt-get", "install"]).returncode == 127


def test_app_without_a_display_says_so_in_one_line_before_qt_starts():
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "main.py")], env=environ, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no display:") and done.stderr.count("\n") == 1
