"""The default path never touches the network: the guard blocks it, and the notebooks' kernel
(used by nbval, the build and the benchmark) has the guard on."""
import socket
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_lib.paths import OFFLINE_KERNEL, REPO_ROOT
from course_lib.runner import use_course_kernels

GUARDED = "from course_lib.offline import block_network; block_network(); import socket\n"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", GUARDED + code], capture_output=True, text=True, cwd=REPO_ROOT)


def test_guard_blocks_remote_connections_and_lookups():
    remote = _run("socket.socket().connect(('93.184.216.34', 80))")
    assert "NetworkBlocked: network access blocked: connect" in remote.stderr
    lookup = _run("socket.getaddrinfo('huggingface.co', 443)")
    assert "NetworkBlocked: network access blocked: lookup of 'huggingface.co'" in lookup.stderr


def test_guard_allows_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    result = _run(f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); print('ok')")
    server.close()
    assert result.stdout.strip() == "ok", result.stderr


def test_notebook_kernel_blocks_the_network():
    use_course_kernels()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import urllib.request\nurllib.request.urlopen('https://huggingface.co', timeout=2)")])
    with pytest.raises(CellExecutionError, match="NetworkBlocked"):
        NotebookClient(nb, kernel_name=OFFLINE_KERNEL, timeout=60).execute()
