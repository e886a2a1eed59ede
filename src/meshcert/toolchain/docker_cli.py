"""Minimal wrapper over the `docker` CLI for image builds.

The CLI (not the SDK) is used here because `docker import`, `docker cp` of 150 MB binaries and
`docker commit --change` are one-liners on the CLI and streaming chores through the SDK; the
engine layer owns engine health, this module only runs build steps and reports failures as
`ToolchainError` naming the step.
"""

from __future__ import annotations

import subprocess

from meshcert.errors import ToolchainError


def docker(step: str, *args: str, stdin: bytes | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    except OSError as e:
        raise ToolchainError(step, f"cannot run docker: {e}; run `meshcert engine up`") from e
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines() or ["(no output)"]
        raise ToolchainError(step, f"docker {args[0]} failed: {err[-1]}")
    return proc.stdout.decode(errors="replace")


def image_exists(ref: str) -> bool:
    return bool(docker("inspect image", "image", "inspect", "--format", "{{.Id}}", ref, check=False).strip())


def exec_in(step: str, container: str, *cmd: str, detach: bool = False) -> str:
    return docker(step, "exec", *(["-d"] if detach else []), container, *cmd)
