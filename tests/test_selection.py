"""--host and --role: names, or globs that select every host or role they match."""

from __future__ import annotations

import pytest

from releasetui.config import ConfigError, load_config


def test_host_and_role_globs_select_what_they_match(tmp_path):
    main = tmp_path / "hosts.yml"
    main.write_text("project: shop\nroot: /srv/shop\nroles: {web: {}, web-canary: {}, db: {}}\n"
                    "hosts:\n  web1: {address: a, roles: [web]}\n  web10: {address: b, roles: [web-canary]}\n"
                    "  web2: {address: c}\n  db1: {address: d, roles: [db]}\n")
    config = load_config(main)
    assert [h.name for h in config.select(["web1*"])] == ["web1", "web10"]
    assert [h.name for h in config.select([], ["web*"])] == ["web1", "web10"]
    assert [h.name for h in config.select(["db?"], ["web"])] == ["web1", "db1"]
    with pytest.raises(ConfigError, match=r"--host: no host matches 'api\*'"):
        config.select(["api*"])
