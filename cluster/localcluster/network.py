"""The pods' network: a bridge whose address is the node's, and the cleanup of what pods leave.

The bridge is made before anything starts, with the gateway address the CNI bridge plugin would
give it, because the API server, the kubelet and CoreDNS listen on that address. kube-proxy and the
CNI plugins add iptables chains (KUBE-*, CNI-*); `clean_iptables` removes exactly those, with the
rules that jump to them, and leaves every other chain (Docker's) alone.
"""

import json
import shlex
import subprocess

from localcluster.layout import BRIDGE, NODE_IP, POD_SUBNET

OUR_CHAINS = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")


def create_bridge() -> None:
    prefix = POD_SUBNET.split("/")[1]
    if not _link_exists(BRIDGE):
        _ip("link", "add", BRIDGE, "type", "bridge")
    addresses = json.loads(_ip("-j", "addr", "show", "dev", BRIDGE))[0].get("addr_info", [])
    if not any(entry.get("local") == NODE_IP for entry in addresses):
        _ip("addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def remove_bridge() -> None:
    """The bridge, and any veth still attached to it (their pods' namespaces are gone by now)."""
    if not _link_exists(BRIDGE):
        return
    for port in json.loads(_ip("-j", "link", "show", "master", BRIDGE)):
        _ip("link", "del", port["ifname"], check=False)
    _ip("link", "del", BRIDGE)


def links() -> list[str]:
    """The bridge and the veths attached to it, if they are there."""
    if not _link_exists(BRIDGE):
        return []
    return [BRIDGE, *(port["ifname"] for port in json.loads(_ip("-j", "link", "show", "master", BRIDGE)))]


def chains() -> list[str]:
    """Our chains (KUBE-*, CNI-*) in every table of iptables and ip6tables, as "command table chain"."""
    found = []
    for command in ("iptables", "ip6tables"):
        for table in TABLES:
            listed = subprocess.run(
                [command, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
            )
            found += [
                f"{command} {table} {line.split()[1]}"
                for line in listed.stdout.splitlines()
                if line.startswith("-N ") and _is_ours(line.split()[1])
            ]
    return found


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


def _ip(*args: str, check: bool = True) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check).stdout


def clean_iptables() -> None:
    for command in ("iptables", "ip6tables"):
        for table in TABLES:
            _clean_table(command, table)


def _clean_table(command: str, table: str) -> None:
    listed = subprocess.run([command, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        return  # no such table in this kernel, or no ip6tables
    ours = [
        line.split()[1]
        for line in listed.stdout.splitlines()
        if line.startswith("-N ") and _is_ours(line.split()[1])
    ]
    for line in listed.stdout.splitlines():
        words = shlex.split(line)  # comments are quoted: "-m comment --comment \"kubernetes ...\""
        if words[:1] == ["-A"] and not _is_ours(words[1]) and _jumps_to_ours(words):
            subprocess.run([command, "-w", "-t", table, "-D", *words[1:]], capture_output=True, check=False)
    for action in ("-F", "-X"):
        for chain in ours:
            subprocess.run([command, "-w", "-t", table, action, chain], capture_output=True, check=False)


def _is_ours(chain: str) -> bool:
    return chain.startswith(OUR_CHAINS)


def _jumps_to_ours(words: list[str]) -> bool:
    return any(
        word in ("-j", "-g") and index + 1 < len(words) and _is_ours(words[index + 1])
        for index, word in enumerate(words)
    )
