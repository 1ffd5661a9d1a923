"""Which jump hosts a host is reached through, and with which user, keys and known_hosts (no SSH here).

``jump:`` in hosts.yml wins over the ssh config's ProxyJump; each jump host's settings fall back from its
own, to its ssh config entry's, to the host's, to the defaults.
"""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from releasetui.config import HostConfig, JumpHost
from releasetui.executors import Hop, HostUnreachable, jump_route, parse_proxy_jump

DEFAULT_KNOWN = Path("~/.ssh/known_hosts").expanduser()


def route(host: HostConfig, ssh_config: str = "") -> tuple[Hop, ...]:
    config = paramiko.SSHConfig.from_text(ssh_config)
    return jump_route(host, config.lookup(host.address or host.name), config.lookup)


def test_no_jump_means_direct():
    assert route(HostConfig("web1", "/srv", address="10.0.0.5")) == ()
    assert route(HostConfig("box", "/srv", transport="local", jump=JumpHost("bastion"))) == ()


def test_hosts_yml_jump_falls_back_on_the_hosts_user_key_and_known_hosts(tmp_path):
    key = tmp_path / "id"
    key.write_text("k")
    host = HostConfig("web1", "/srv", address="10.0.0.5", user="deploy", key_file=key,
                      known_hosts=tmp_path / "known", jump=JumpHost("bastion.example.com"))
    assert route(host) == (Hop("bastion.example.com", "bastion.example.com", 22, "deploy", (key,), tmp_path / "known"),)


def test_hosts_yml_jump_own_settings_win_over_its_ssh_config_entry(tmp_path):
    own_key, config_key = tmp_path / "own", tmp_path / "cfg"
    own_key.write_text("k")
    config_key.write_text("k")
    ssh_config = f"Host bastion\n  HostName 192.0.2.1\n  User ops\n  Port 2200\n  IdentityFile {config_key}\n"
    host = HostConfig("web1", "/srv", address="10.0.0.5", user="deploy",
                      jump=JumpHost("bastion", user="admin", port=2222, key_file=own_key,
                                    known_hosts=tmp_path / "jump_known"))
    assert route(host, ssh_config) == (Hop("bastion", "192.0.2.1", 2222, "admin", (own_key,), tmp_path / "jump_known"),)
    # Without its own values the jump host takes its ssh config entry's (not the host's user).
    host = HostConfig("web1", "/srv", address="10.0.0.5", user="deploy", jump=JumpHost("bastion"))
    (hop,) = route(host, ssh_config)
    assert (hop.hostname, hop.port, hop.user, hop.key_files, hop.known_hosts) == (
        "192.0.2.1", 2200, "ops", (config_key,), DEFAULT_KNOWN)
    assert hop.label == "jump host bastion (192.0.2.1:2200)"


def test_an_identity_file_that_does_not_exist_is_skipped_like_ssh_does(tmp_path):
    host_key = tmp_path / "host"
    host_key.write_text("k")
    host = HostConfig("web1", "/srv", address="10.0.0.5", key_file=host_key, jump=JumpHost("bastion"))
    (hop,) = route(host, f"Host bastion\n  IdentityFile {tmp_path}/missing\n")
    assert hop.key_files == (host_key,)


def test_proxy_jump_from_the_ssh_config_with_its_aliases_resolved(tmp_path):
    ssh_config = ("Host app\n  HostName 10.0.0.5\n  ProxyJump ops@bastion:2200\n"
                  "Host bastion\n  HostName 192.0.2.1\n  User nobody\n  Port 9999\n")
    host = HostConfig("web1", "/srv", address="app", user="deploy", known_hosts=tmp_path / "known")
    # ProxyJump's own user@ and :port win over the alias's entry; HostName still applies.
    assert route(host, ssh_config) == (Hop("bastion", "192.0.2.1", 2200, "ops", (), tmp_path / "known"),)


def test_hosts_yml_jump_wins_over_proxy_jump():
    host = HostConfig("web1", "/srv", address="app", jump=JumpHost("other"))
    assert [hop.name for hop in route(host, "Host app\n  ProxyJump bastion\n")] == ["other"]


def test_multi_hop_and_a_jump_hosts_own_proxy_jump():
    ssh_config = ("Host app\n  ProxyJump b2,b3\n"
                  "Host b2\n  ProxyJump b1\n"
                  "Host b3\n  ProxyJump elsewhere\n")  # only the first hop's own ProxyJump counts (as with ssh)
    host = HostConfig("web1", "/srv", address="app")
    assert [hop.name for hop in route(host, ssh_config)] == ["b1", "b2", "b3"]


def test_a_proxy_jump_for_every_host_does_not_loop_through_the_bastion_itself():
    host = HostConfig("web1", "/srv", address="app")
    assert [hop.name for hop in route(host, "Host *\n  ProxyJump bastion\n")] == ["bastion"]
    assert route(HostConfig("web1", "/srv", address="app"), "Host app\n  ProxyJump none\n") == ()


def test_too_many_hops_is_refused():
    host = HostConfig("web1", "/srv", address="app")
    with pytest.raises(HostUnreachable, match="more than 8 jump hosts"):
        route(host, "Host app\n  ProxyJump " + ",".join(f"b{i}" for i in range(9)) + "\n")


def test_proxy_command_is_refused_with_a_clear_message():
    host = HostConfig("web1", "/srv", address="app")
    with pytest.raises(HostUnreachable, match="app a ProxyCommand .*does not run ProxyCommand.*ProxyJump"):
        route(host, "Host app\n  ProxyCommand ssh -W %h:%p bastion\n")
    assert route(host, "Host app\n  ProxyCommand none\n") == ()
    # A jump host reached through a ProxyCommand is refused too, naming it.
    with pytest.raises(HostUnreachable, match="jump host bastion a ProxyCommand"):
        route(host, "Host app\n  ProxyJump bastion\nHost bastion\n  ProxyCommand nc %h %p\n")
    # ... but hosts.yml's jump: wins over a ProxyCommand for the host.
    with_jump = HostConfig("web1", "/srv", address="app", jump=JumpHost("bastion"))
    assert [hop.name for hop in route(with_jump, "Host app\n  ProxyCommand nc %h %p\n")] == ["bastion"]


def test_parse_proxy_jump():
    assert parse_proxy_jump("a,ops@b:2200,ssh://root@c:22,[::1]:2222") == [
        JumpHost("a"), JumpHost("b", user="ops", port=2200), JumpHost("c", user="root", port=22),
        JumpHost("::1", port=2222)]
    for bad in ("", "a,,b", "a:99999", "a b"):
        with pytest.raises(HostUnreachable, match="ProxyJump"):
            parse_proxy_jump(bad, "app")
