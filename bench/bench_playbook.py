#!/usr/bin/env python3
"""The seed's Ansible playbook against releasetui, on the same example stack, in one run.

    python bench/bench_playbook.py [--runs 3] [--user releasetui-sh]

The seed (``../shared/seed/flask-circleci-ansible-deploy.txt``) deploys with an Ansible role: date, mkdir,
rsync, two md5sums and a diff of them, a venv per build, ``pip wheel`` when the requirements changed,
``pip install --no-index``, the ``current`` symlink, ``supervisorctl restart uwsgi``, a cleanup; it rolls back
by pointing ``current`` at an older build and restarting.  This bench writes that playbook (its YAML lost lines
in publishing: the modules are restored, the rsync runs on the host, which only flatters the playbook, and the
build links the example's shared ``.env`` and ``instance/`` as the app needs), runs it with ``ansible-playbook``
against one loopback sshd host running the example stack (supervisord + uwsgi + Flask), then runs releasetui's
deploy and rollback with the example's own restart on a stack of its own, and prints both and their ratio.

Needs the ``stack`` extra and the Flask wheelhouse (as bench_stack.py), and ``ansible-playbook``: from PATH, or
installed once into ``~/.cache/releasetui/ansible`` (``pip install ansible-core``: the one step that needs an
index; tests never run this).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bench_stack  # noqa: E402
from tests.support.helpers import HOST_PYTHON  # noqa: E402
from tests.support.sshd import free_port, start_sshd  # noqa: E402
from tests.support.stackkit import Stack, find_wheelhouse, missing_stack_tools, stack_bin  # noqa: E402

DEPLOY = """
- name: Deploy to production
  hosts: web
  any_errors_fatal: true
  gather_facts: false
  tasks:
    - name: Register Build Time
      command: date +%Y%m%d%H%M%S
      run_once: true
      register: build_time
    - set_fact:
        build_dir: "{{ builds_dir }}/{{ build_time.stdout }}"
    - name: Create build directory
      file: {path: "{{ build_dir }}", state: directory, mode: "0755"}
    - name: Rsync repo content to build directory
      command: rsync -a --exclude-from={{ excludes_file }} {{ project_source }}/ {{ build_dir }}/
    - stat: {path: "{{ current_release_dir }}"}
      register: link
    - name: Create checksum from current requirements.txt file
      shell: md5sum {{ current_release_dir }}/requirements.txt | awk '{print $1}' > {{ project_root }}/old_requirements.checksum
      when: link.stat.islnk is defined and link.stat.islnk
    - name: Create checksum from new build requirements.txt file
      shell: md5sum {{ build_dir }}/requirements.txt | awk '{print $1}' > {{ project_root }}/new_requirements.checksum
      when: link.stat.islnk is defined and link.stat.islnk
    - name: Check for checksum changes
      shell: diff {{ project_root }}/old_requirements.checksum {{ project_root }}/new_requirements.checksum
      register: req_diff
      when: link.stat.islnk is defined and link.stat.islnk
      ignore_errors: true
    - name: Link the shared files the app needs
      shell: ln -sfn {{ project_root }}/shared/.env {{ build_dir }}/.env && rm -rf {{ build_dir }}/instance && ln -sfn {{ project_root }}/shared/instance {{ build_dir }}/instance
    - name: Create build virtualenv
      command: "{{ python }} -m venv {{ build_dir }}/env"
    - name: Pip wheel requirements
      command: "{{ python }} -m pip wheel --wheel-dir={{ project_root }}/wheels --no-index --find-links={{ wheelhouse }} -r {{ build_dir }}/requirements.txt"
      when: req_diff.rc is not defined or (req_diff.rc is defined and req_diff.rc == 1)
    - name: Install requirements on new build virtualenv
      command: "{{ build_dir }}/env/bin/pip install -q --no-index --find-links={{ project_root }}/wheels -r {{ build_dir }}/requirements.txt"
    - name: Update current release symlink
      file: {state: link, force: true, path: "{{ current_release_dir }}", src: "{{ build_dir }}"}
    - name: Reload UWSGI
      command: "{{ supervisorctl }} -c {{ project_root }}/supervisord.conf restart uwsgi"
    - name: Cleanup old releases
      shell: ls -1dt {{ builds_dir }}/* | tail -n +{{ keep_releases | int + 2 }} | xargs rm -rf
"""

ROLLBACK = """
- name: Revert the build
  hosts: web
  any_errors_fatal: true
  gather_facts: false
  tasks:
    - name: Determine penultimate build
      shell: ls -1d {{ builds_dir }}/* | sort | tail -n 2 | head -n 1
      register: penultimate_build
    - name: Update current release symlink
      file: {state: link, force: true, path: "{{ current_release_dir }}", src: "{{ penultimate_build.stdout }}"}
    - name: Restart uwsgi
      command: "{{ supervisorctl }} -c {{ project_root }}/supervisord.conf restart uwsgi"
"""


def ansible_playbook() -> str:
    """``ansible-playbook`` from PATH, else from a venv of its own made once (the only step that needs an index)."""
    found = shutil.which("ansible-playbook")
    if found:
        return found
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "releasetui" / "ansible"
    exe = home / "bin" / "ansible-playbook"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        subprocess.run([str(home / "bin" / "pip"), "install", "-q", "ansible-core"], check=True)
    return str(exe)


def write_playbooks(base: Path, stack: Stack, port: int, key: Path, known: Path, user: str) -> Path:
    """The inventory and the two playbooks; returns the inventory."""
    root = stack.root
    (base / "deploy.yml").write_text(DEPLOY)
    (base / "rollback.yml").write_text(ROLLBACK)
    excludes = base / "excludes"
    excludes.write_text("/.git/\n/env\n/instance\n/.env\n__pycache__/\n")
    variables = {
        "builds_dir": f"{root}/seed-builds", "current_release_dir": f"{root}/current", "project_root": str(root),
        "project_source": str(stack.source), "excludes_file": str(excludes), "keep_releases": 5,
        "python": HOST_PYTHON, "wheelhouse": str(find_wheelhouse()), "supervisorctl": str(stack_bin("supervisorctl")),
        "ansible_python_interpreter": HOST_PYTHON,
    }
    inventory = base / "hosts.ini"
    inventory.write_text(
        "[web]\n"
        f"web1 ansible_host=127.0.0.1 ansible_port={port} ansible_user={user} ansible_ssh_private_key_file={key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes'\n"
        "[web:vars]\n" + "".join(f"{k}={v}\n" for k, v in variables.items()))
    return inventory


def run_playbook(exe: str, inventory: Path, playbook: Path) -> float:
    """Seconds one ``ansible-playbook`` run takes (it must succeed)."""
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_RETRY_FILES_ENABLED": "False",
           "ANSIBLE_NOCOLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's ansible runs: with its bytecode
    started = time.monotonic()
    proc = subprocess.run([exe, "-i", str(inventory), str(playbook)], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"ansible-playbook {playbook.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def playbook_figures(runs: int, base: Path, server, key: Path, known: Path, user: str, exe: str) -> dict:
    """The seed's deploy and rollback ``runs`` times on a stack releasetui set up once (shared files, schema)."""
    from releasetui.config import load_config
    from releasetui.operations import Operations
    stack = Stack(base / "seed", free_port())
    stack.base.mkdir(parents=True)
    stack.write({"address": "127.0.0.1", "port": server.port, "user": user, "key_file": str(key),
                 "known_hosts": str(known)}, python=HOST_PYTHON, wheelhouse=find_wheelhouse(), restart="plain",
                health_timeout=30)
    stack.start()
    figures: dict = {"deploy": [], "rollback": []}
    try:
        config = load_config(stack.config)
        ops = Operations(config)
        first = ops.deploy(list(config.hosts))  # the shared .env, instance/ and its schema, uwsgi running
        ops.close()
        assert first.ok, first.to_dict()
        inventory = write_playbooks(base / "seed", stack, server.port, key, known, user)
        for _ in range(runs):
            (stack.source / "version.txt").write_text(f"{time.time()}\n")
            time.sleep(1.1)  # the seed names builds by the second: two deploys in one second would collide
            figures["deploy"].append(run_playbook(exe, inventory, base / "seed" / "deploy.yml"))
            figures["rollback"].append(run_playbook(exe, inventory, base / "seed" / "rollback.yml"))
    finally:
        stack.shutdown()
    return figures


def main() -> int:
    """Both tools on the example stack; the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--user", default="releasetui-sh" if os.geteuid() == 0 else os.environ.get("USER", ""))
    args = parser.parse_args()
    missing = missing_stack_tools()
    if missing:
        print("bench_playbook: needs " + "; ".join(missing), file=sys.stderr)
        return 2
    exe = ansible_playbook()
    bench_stack.LOGIN_USER[0] = args.user
    base = Path(tempfile.mkdtemp(prefix="releasetui-bench-playbook-"))
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    server = start_sshd(base, 0, (base / "id_ed25519.pub").read_text())
    known = base / "known_hosts"
    known.write_text(server.known_hosts_line + "\n")
    try:
        seed = playbook_figures(args.runs, base, server, key, known, args.user, exe)
        ours = bench_stack.bench_mode("fifo", args.runs, base, server, key, known)
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
    print(f"example stack, 1 host over loopback sshd, {args.runs} runs, user {args.user}, {os.cpu_count()} cores")
    for what in ("deploy", "rollback"):
        playbook, mine = statistics.median(seed[what]), statistics.median(ours[what])
        print(f"  {what:8}  seed playbook {playbook:6.2f} s   releasetui (FIFO reload) {mine:5.2f} s   "
              f"1/{playbook / mine:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
