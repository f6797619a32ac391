"""scripts/vm-check reads a guest's console: the checks' results, and a guest kernel that
failed under TCG (its checks are booted once more, and the table says so)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vm-check"

# What a debian-13 guest printed when multi-threaded TCG broke its kernel's code patching.
CONSOLE = """\
VLANLB-GUEST kernel=6.12.118+deb13-amd64 podman=5.4.2 8021q=yes
VLANLB-BEGIN main
[vlanlb] podman 5.4.2, netavark backend, started for this run at unix:///run/x/podman.sock
[   61.831205] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[   61.831591] CPU: 1 UID: 0 PID: 314 Comm: podman Not tainted 6.12.118+deb13-amd64 #1
[   61.837338] Kernel panic - not syncing: Fatal exception in interrupt
"""


def vm_check():
    loader = importlib.machinery.SourceFileLoader("vm_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("vm_check", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vm_check"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


def test_a_guest_kernels_oops_is_read_from_the_console():
    vm = vm_check()
    result = vm.Result("debian-13")
    for line in CONSOLE.splitlines():
        vm.read_line(line, result)
    assert result.panic == "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"
    assert result.kernel == "6.12.118+deb13-amd64"
    assert result.backend == "netavark"
    assert result.checks == {}  # main began and never ended


def test_the_checks_a_kernel_failure_cut_short_are_booted_once_more(tmp_path, monkeypatch):
    vm = vm_check()
    log = tmp_path / "debian-13.log"
    log.write_text(CONSOLE)
    first = vm.Result("debian-13", "tcg", log=log, panic="Oops: int3")
    first.checks = {"wire": ("passed", 50.0), "main": ("not run", 0.0)}
    booted = []

    def boot(guest, image, accel, checks, limit):
        booted.append(checks)
        log.write_text("second boot")
        return vm.Result("debian-13", "tcg", checks={"main": ("passed", 140.0)}, log=log)

    monkeypatch.setattr(vm, "boot", boot)
    result = vm.boot_again(vm.GUESTS["debian-13"], tmp_path, "tcg", first, ["main"], 100)
    assert booted == [["main"]]
    assert result.passed
    assert result.checks["wire"] == ("passed", 50.0)
    assert "kernel failed" in result.note
    assert "Oops: int3" in result.earlier_failure
    kept = tmp_path / "debian-13-kernel-failure.log"
    assert kept.read_text() == CONSOLE  # the first console is kept beside the second
