"""The docker backend's particulars, against the real engine here (Podman's Docker-compatible API).

What every backend must do is in tests/contract/. These fail (not skip) when no engine answers;
AUTOFIX_SKIP_DOCKER=1 skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from pipeline.errors import InvalidInput, PermanentError, SandboxUnavailable, TransientError
from pipeline.ports import Limits
from sandbox.config import DockerConfig, make_sandbox
from sandbox.docker import RUN_LABEL, DockerSandbox
from sandbox.image import default_recipe_dir, find_image, load_recipe, recipe_digest

ROOT = Path(__file__).resolve().parents[1]
NO_ENGINE = "unix:///nonexistent/docker.sock"
DEFAULT = Limits()


@pytest.fixture(scope="module")
def docker(docker_config: DockerConfig) -> DockerSandbox:
    return docker_config.build()


def _sh(docker: DockerSandbox, workdir: Path, script: str, limits: Limits = DEFAULT) -> str:
    result = docker.run(workdir, ["sh", "-c", script], limits)
    assert result.exit_code == 0, result.output
    return result.output


# --- who runs, and who owns the workdir ------------------------------------------------------------


def test_a_root_owned_workdir_is_lent_to_the_sandbox_user_and_handed_back(
    docker: DockerSandbox, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    (workdir / "existing.txt").write_text("from the host\n")

    output = _sh(docker, workdir, "id -u; id -g; echo more >> existing.txt; mkdir made; echo new > made/new.txt")

    assert output.split()[:2] == [str(docker.config.uid), str(docker.config.gid)]
    assert (workdir / "existing.txt").read_text() == "from the host\nmore\n"
    for path in (workdir, workdir / "existing.txt", workdir / "made", workdir / "made" / "new.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0), path
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700  # never opened up to others


def test_a_workdir_owned_by_a_non_root_user_is_used_as_that_user(docker: DockerSandbox, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    os.chown(workdir, 4321, 4322)

    output = _sh(docker, workdir, "id -u; id -g; echo x > out.txt")

    assert output.split()[:2] == ["4321", "4322"]
    made = (workdir / "out.txt").stat()
    assert (made.st_uid, made.st_gid) == (4321, 4322)


def test_a_symlink_in_the_workdir_is_not_followed_when_ownership_moves(docker: DockerSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host only")
    secret.chmod(0o600)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "link").symlink_to(secret)

    result = docker.run(workdir, ["sh", "-c", "cat link || echo unreadable"])

    assert "host only" not in result.output  # the target is not mounted: the link dangles inside
    assert (secret.stat().st_uid, stat.S_IMODE(secret.stat().st_mode)) == (0, 0o600)


def test_a_read_only_path_the_sandbox_user_cannot_read_is_refused_with_the_reason(
    docker: DockerSandbox, tmp_path: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    workdir = tmp_path / "work"
    workdir.mkdir()

    with pytest.raises(InvalidInput, match="cannot read this read-only path"):
        docker.run(workdir, ["true"], ro_paths=[private])


# --- the container ---------------------------------------------------------------------------------


def test_commands_use_the_images_interpreter_and_host_paths_do_not_exist_inside(
    docker: DockerSandbox, tmp_path: Path
) -> None:
    inside = docker.run(tmp_path, [docker.python, "-c", "import sys; print(sys.executable)"])
    host = docker.run(tmp_path, [sys.executable, "-c", "print('ran')"])

    assert docker.python == "/usr/bin/python3" and inside.output.strip() == "/usr/bin/python3"
    assert host.exit_code == 127 and "ran" not in host.output


def test_the_container_has_no_new_privileges_a_read_only_root_and_the_runs_limits(
    docker: DockerSandbox, tmp_path: Path
) -> None:
    script = (
        "grep NoNewPrivs /proc/self/status; (echo x > /usr/local/x) 2>/dev/null || echo ROOT_READ_ONLY; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; "
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; "
        "df -m /tmp | tail -1"
    )

    output = _sh(docker, tmp_path, script, Limits(memory_mb=300, max_processes=77)).splitlines()

    assert output[0].split() == ["NoNewPrivs:", "1"]
    assert output[1] == "ROOT_READ_ONLY"
    assert output[2] == str(300 * 1024 * 1024)  # cgroup v1 here; memory.max on v2 reads the same
    assert output[3] == "77"
    assert output[4].split()[0] == "tmpfs" and int(output[4].split()[1]) == docker.config.tmp_size_mb


def test_no_container_is_left_after_runs_that_pass_fail_or_time_out(docker: DockerSandbox, tmp_path: Path) -> None:
    def ours() -> set[str]:
        return {c.id for c in docker.client.containers.list(all=True, filters={"label": RUN_LABEL})}

    before = ours()
    docker.run(tmp_path, ["true"])
    docker.run(tmp_path, ["sh", "-c", "exit 3"])
    timed = docker.run(tmp_path, ["sleep", "30"], Limits(timeout_s=1))

    assert timed.timed_out and timed.exit_code == 124
    assert ours() <= before


# --- choice and availability -----------------------------------------------------------------------


def test_a_chosen_docker_backend_without_an_engine_is_a_permanent_error_saying_so() -> None:
    with pytest.raises(SandboxUnavailable, match="no container engine answers") as raised:
        make_sandbox("docker", docker=DockerConfig(base_url=NO_ENGINE))

    assert NO_ENGINE in str(raised.value) and "podman system service" in str(raised.value)
    assert isinstance(raised.value, PermanentError) and not isinstance(raised.value, TransientError)


def test_a_configured_image_that_is_not_there_is_refused_never_pulled(docker_config: DockerConfig) -> None:
    with pytest.raises(SandboxUnavailable, match="never pulled"):
        docker_config.model_copy(update={"image": "autofix-sandbox:not-built-anywhere"}).build()


def test_a_recipe_without_its_image_names_the_command_that_builds_it(
    docker_config: DockerConfig, tmp_path: Path
) -> None:
    recipe = tmp_path / "recipe"
    shutil.copytree(default_recipe_dir(), recipe)
    with (recipe / "recipe.toml").open("a") as fh:
        fh.write("# changed, so its hash matches no image\n")

    with pytest.raises(SandboxUnavailable, match="autofix sandbox image"):
        docker_config.model_copy(update={"recipe": recipe}).build()


def test_auto_picks_docker_when_an_engine_answers_and_says_which(docker_config: DockerConfig) -> None:
    with capture_logs() as logs:
        sandbox = make_sandbox("auto", docker=docker_config)

    assert sandbox.name == "docker"
    chosen = next(e for e in logs if e["event"] == "sandbox.auto_selected")
    assert chosen["backend"] == "docker" and "answered" in chosen["reason"]
    assert chosen["image"] == load_recipe().tag


def test_the_cli_exits_3_when_the_chosen_backend_is_unavailable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env.update(AUTOFIX_HOME=str(tmp_path), DOCKER_HOST=NO_ENGINE)

    done = subprocess.run([sys.executable, "-m", "pipeline", "sandbox", "check", "--backend", "docker"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 3, done.stdout + done.stderr
    assert "no container engine answers" in done.stderr


# --- the image -------------------------------------------------------------------------------------


def test_the_recipe_hash_follows_the_recipe_but_not_its_readme(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe"
    shutil.copytree(default_recipe_dir(), recipe)
    first = recipe_digest(recipe)

    (recipe / "README.md").write_text("reworded\n")
    after_readme = recipe_digest(recipe)
    (recipe / "finish-rootfs.sh").write_text((recipe / "finish-rootfs.sh").read_text() + "\n# changed\n")

    assert after_readme == first
    assert recipe_digest(recipe) != first


def test_sandbox_image_finds_the_built_image_by_its_recipe_hash(docker: DockerSandbox, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env["AUTOFIX_HOME"] = str(tmp_path)
    if docker.config.base_url:
        env["DOCKER_HOST"] = docker.config.base_url

    done = subprocess.run([sys.executable, "-m", "pipeline", "sandbox", "image", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    recipe = load_recipe()
    found = find_image(docker.client, recipe)
    assert found is not None
    assert report["built"] is False and report["tag"] == recipe.tag and report["id"] == found.id
    labels = docker.client.images.get(recipe.tag).labels
    assert labels["org.autofix.sandbox.recipe"] == recipe.digest
