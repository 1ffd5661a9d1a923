"""Starting the TUI: no config (where it looked, how to start, at 80 columns), a broken one (one line, no
traceback), and --host/--role choosing the hosts shown.
"""

from __future__ import annotations

from textual.widgets import Static

from releasetui.tui.app import ReleaseApp
from releasetui.tui.screens import NoConfigScreen

SIZE = (130, 40)


async def test_no_config_screen_says_where_it_looked_and_how_to_start(tmp_path):
    app = ReleaseApp(None, looked=["$RELEASETUI_CONFIG (not set)", str(tmp_path / "hosts.yml")])
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, NoConfigScreen)
        text = str(app.screen.query_one("#noconfig").render())
        assert str(tmp_path / "hosts.yml") in text
        assert "releasetui demo" in text and "releasetui init" in text
        assert "hosts.example.yml" not in text, "an installed package has no hosts.example.yml to copy"
        await pilot.press("q")
    assert app.return_code == 0


def test_run_app_without_config_opens_the_no_config_screen(tmp_path, monkeypatch):
    from releasetui.tui import app as app_module
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELEASETUI_CONFIG", raising=False)
    seen = {}

    def fake_run(self, *args, **kwargs):
        seen["config"], seen["looked"] = self.config, self.looked
    monkeypatch.setattr(app_module.ReleaseApp, "run", fake_run)
    from releasetui.cli import main
    assert main([]) == 0
    assert seen["config"] is None and str(tmp_path / "hosts.yml") in seen["looked"]


def test_run_app_with_role_and_host_shows_those_hosts(tmp_path, monkeypatch):
    from releasetui.tui import app as app_module
    config = tmp_path / "hosts.yml"
    config.write_text("project: x\nroot: /srv/x\nroles: {web: {}, worker: {}}\nhosts:\n"
                      + "".join(f"  {h}: {{address: {h}.example.com, roles: [{r}]}}\n"
                                for h, r in (("web1", "web"), ("web2", "web"), ("w1", "worker"), ("w2", "worker"))))
    seen = {}
    monkeypatch.setattr(app_module.ReleaseApp, "run", lambda self, *a, **k: seen.setdefault("hosts", self.hosts))
    from releasetui.cli import main
    assert main(["--config", str(config), "--role", "worker", "--host", "web2"]) == 0
    assert [h.name for h in seen["hosts"]] == ["web2", "w1", "w2"]


def test_bad_config_is_one_line_not_a_traceback(tmp_path, capsys):
    from releasetui.cli import main
    bad = tmp_path / "hosts.yml"
    bad.write_text("project: x\nroot: /srv/x\nhosts:\n  web1: {adress: typo}\n")
    assert main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hosts.yml:4" in err[0] and "adress" in err[0]


async def test_no_config_screen_fits_80_columns_without_wrapping():
    app = ReleaseApp(None, looked=["$RELEASETUI_CONFIG (not set)", "/home/someone/projects/site/hosts.yml"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.screen.query_one("#noconfig", Static)
        lines = str(text.content).splitlines()
        assert max(len(line) for line in lines) <= text.content_region.width, lines
