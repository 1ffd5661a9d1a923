"""The app's environment file: how values are resolved and written, and that no message ever holds one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from releasetui.config import ConfigError, load_config_text
from releasetui.secrets import EnvSpec, SecretError, parse_pairs, quote_value, render, resolve, run_secrets_command

CANARY = "canary-7d1f'\"$HOME\\n-value"


def test_values_are_written_so_dotenv_and_the_shell_read_them_back(tmp_path):
    values = {"PLAIN": "abc", "SPACES": "a b  c", "DOLLAR": "$HOME and ${HOME}", "QUOTE": "it's", "LINES": "a\nb",
              "DQ": 'say "hi"'}
    env_file = tmp_path / ".env"
    env_file.write_text(render(values))
    # The shell (set -a; . .env) reads each value back exactly: no expansion, no word splitting.
    script = f"set -a; . {shlex.quote(str(env_file))}; " + "; ".join(
        f'printf "%s\\0" "${name}"' for name in ("PLAIN", "SPACES", "DOLLAR", "QUOTE", "DQ"))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout.split("\0")[:-1]
    assert out == [values[n] for n in ("PLAIN", "SPACES", "DOLLAR", "QUOTE", "DQ")]
    assert quote_value("a\nb") == '"a\\nb"'
    assert parse_pairs(render({"A": "x y", "B": "1"}), "test") == {"A": "x y", "B": "1"}


def test_a_missing_secret_is_named_and_no_value_is(tmp_path):
    spec = EnvSpec(clear=(("MODE", "production"),), secret=("DATABASE_URL", "API_KEY"))
    with pytest.raises(SecretError) as caught:
        resolve(spec, tmp_path, {"DATABASE_URL": CANARY})
    assert str(caught.value) == "env: secret API_KEY is not set in this machine's environment"
    env = resolve(spec, tmp_path, {"DATABASE_URL": CANARY, "API_KEY": "k"})
    assert env.names == ("MODE", "DATABASE_URL", "API_KEY") and CANARY not in repr(env)
    assert env.content.splitlines()[1] == 'DATABASE_URL="canary-7d1f\'\\"$HOME\\\\n-value"'


def test_the_secrets_command_is_run_once_and_its_output_never_shown(tmp_path):
    (tmp_path / "vault.txt").write_text(f"# from the vault\nexport API_KEY={CANARY.replace(chr(39), '')}\n")
    spec = EnvSpec(secret=("API_KEY",), secrets_command="cat vault.txt")
    env = resolve(spec, tmp_path, {})
    assert "API_KEY=" in env.content
    for command, expected in (("echo oops {0}; exit 3", "failed with exit 3"), ("echo {0}", "line 1 is not KEY=VALUE"),
                              ("printf 'A=1\\n{0}\\n'", "line 2 is not KEY=VALUE")):
        with pytest.raises(SecretError) as caught:
            run_secrets_command(command.format("canary-leak"), tmp_path, dict(os.environ))
        assert expected in str(caught.value) and "canary-leak" not in str(caught.value)


def test_env_config_is_checked_in_one_line_per_mistake(tmp_path):
    base = "project: shop\nroot: /srv/shop\nhosts: {web1: {address: a}}\n"
    config = load_config_text(base + "env: {clear: {MODE: production, WORKERS: 4}, secret: [DATABASE_URL]}\n",
                              tmp_path / "hosts.yml")
    assert config.env == EnvSpec(".env", (("MODE", "production"), ("WORKERS", "4")), ("DATABASE_URL",))
    for extra, message in (("env: {secret: [9LIVES]}", "env.secret[0]: '9LIVES' is not a variable name"),
                           ("env: {file: ../x}", "env.file: must be a path inside the build"),
                           ("env: {secrets: [A]}", "env.secrets: unknown key; did you mean 'secret'?"),
                           ("env: {clear: {A: 1}, secret: [A]}", "A is also under env.clear"),
                           ("shared: {files: [.env]}\nenv: {secret: [A]}", "'.env' is also under shared")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config_text(base + extra + "\n", tmp_path / "hosts.yml")
