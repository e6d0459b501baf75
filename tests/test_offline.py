"""The default path never touches the network: the guard blocks it, and the notebooks' kernel
(used by the notebook tests, the build and the benchmark) has the guard on. Every path the
guard closes is tried here: TCP, UDP, name lookups, look-alike host names, programs started from
the kernel (`!pip`, `%pip`, `!wget`, subprocess, os.system) and Python programs it starts."""
import socket
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_lib.offline import _is_local, network_program
from course_lib.paths import OFFLINE_KERNEL, REPO_ROOT
from course_lib.runner import use_course_kernels

GUARDED = "from course_lib.offline import block_network; block_network(); import os, socket, subprocess\n"
BLOCKED = "NetworkBlocked: network access blocked"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", GUARDED + code], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=60)


@pytest.mark.parametrize("code, what", [
    ("socket.socket().connect(('93.184.216.34', 80))", "connect to"),
    ("socket.create_connection(('127.evil.com', 80), timeout=1)", "lookup of '127.evil.com'"),
    ("socket.getaddrinfo('huggingface.co', 443)", "lookup of 'huggingface.co'"),
    ("socket.gethostbyname('huggingface.co')", "lookup of 'huggingface.co'"),
    ("socket.gethostbyname('127.evil.com')", "lookup of '127.evil.com'"),
    ("socket.gethostbyname_ex('pypi.org')", "lookup of 'pypi.org'"),
    ("socket.gethostbyaddr('8.8.8.8')", "lookup of '8.8.8.8'"),
    ("socket.getnameinfo(('8.8.8.8', 53), 0)", "lookup of '8.8.8.8'"),
    ("socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))", "send to"),
    ("socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', ('2001:4860:4860::8888', 53))", "send to"),
    ("socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b'x'], [], 0, ('8.8.8.8', 53))", "send to"),
    ("import urllib.request; urllib.request.urlopen('http://10.0.0.1', timeout=1)", "lookup of '10.0.0.1'"),
])
def test_guard_blocks_remote_connections_datagrams_and_lookups(code, what):
    result = _run(code)
    assert f"{BLOCKED}: {what}" in result.stderr, result.stderr[-2000:]


def test_guard_allows_loopback_tcp_udp_and_lookups():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    result = _run(f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
                  f"socket.create_connection(('localhost', {port}), timeout=2).close()\n"
                  "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9))\n"
                  "socket.gethostbyname('localhost'); socket.getaddrinfo(None, 0)\nprint('ok')")
    server.close()
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("host, local", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True), ("localhost", True),
    ("0.0.0.0", True), ("", True), (None, True), (b"127.0.0.1", True), (2130706433, True),
    ("127.evil.com", False), ("127.0.0.1.nip.io", False), ("localhost.evil.com", False), ("10.0.0.1", False),
    ("::ffff:8.8.8.8", False), ("huggingface.co", False), ("fe80::1%eth0", False),
])
def test_only_this_machine_counts_as_local(host, local):
    assert _is_local(host) is local


@pytest.mark.parametrize("argv, tool", [
    (["pip", "install", "x"], "pip install x"),
    (["/usr/bin/wget", "https://x"], "wget https://x"),
    (["/bin/sh", "-c", "cd /tmp && nice -n 5 curl -O https://x"], "curl -O https://x"),
    (["/bin/sh", "-c", "'/venv/bin/python' -m pip install torch"], "python -m pip install torch"),
    (["git", "-C", "repo", "clone", "https://x"], "git -C repo clone https://x"),
    (["/bin/sh", "-c", "FOO=1 timeout 10 apt-get update"], "apt-get update"),
    (["git", "status"], None), (["ls", "-l"], None), (["/bin/sh", "-c", "echo pip"], None),
    (["python", "train.py"], None),
])
def test_network_programs_are_recognised(argv, tool):
    assert network_program(argv) == tool


@pytest.mark.parametrize("code", [
    "subprocess.run(['pip', 'download', 'six'])",
    "subprocess.run('wget -q https://example.com', shell=True)",
    "os.system('curl -s https://example.com')",
    "os.execvp('curl', ['curl', 'https://example.com'])",
    "os.posix_spawnp('wget', ['wget', 'https://example.com'], os.environ)",
])
def test_guard_refuses_network_programs(code):
    result = _run(code)
    assert f"{BLOCKED}: the course kernel does not run network tools" in result.stderr, result.stderr[-2000:]


def test_python_programs_started_from_a_guarded_process_are_guarded_too():
    child = "import socket; socket.getaddrinfo('pypi.org', 443)"
    result = _run(f"r = subprocess.run([{sys.executable!r}, '-c', {child!r}], capture_output=True, text=True)\n"
                  "print(r.stderr)\nsubprocess.run(['echo', 'local programs still run'])")
    assert f"{BLOCKED}: lookup of 'pypi.org'" in result.stdout and "local programs still run" in result.stdout


def test_notebook_kernel_blocks_the_network():
    use_course_kernels()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import urllib.request\nurllib.request.urlopen('https://huggingface.co', timeout=2)")])
    with pytest.raises(CellExecutionError, match="NetworkBlocked"):
        NotebookClient(nb, kernel_name=OFFLINE_KERNEL, timeout=60).execute()


def test_notebook_kernel_refuses_shell_escapes_to_network_tools():
    use_course_kernels()
    cells = ["!pip download six", "%pip install six", "!wget -q https://example.com", "!echo still here",
             "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name=OFFLINE_KERNEL, timeout=60, allow_errors=True).execute()
    texts = ["".join(o.get("text", "") + o.get("evalue", "") + o.get("ename", "") for o in c.outputs)
             for c in nb.cells]
    for text in texts[:3]:
        assert "network access blocked: the course kernel does not run network tools" in text, texts
    assert "still here" in texts[3]
    assert "NetworkBlocked" in texts[4] and "send to" in texts[4]
