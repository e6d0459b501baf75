"""Network guard: an audit hook that refuses every connection that leaves this machine.

``python -m course_lib.offline -f CONNECTION_FILE`` starts an IPython kernel with the guard on;
the tests run every notebook in that kernel, which proves the default path never touches the
network (a download attempt fails loudly with :class:`NetworkBlocked`).
"""
import socket
import sys


class NetworkBlocked(RuntimeError):
    """Raised when code tries to reach a host other than this machine."""


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return host in (None, "", "localhost", "::1", "0.0.0.0") or str(host).startswith("127.")


def _guard(event: str, args: tuple) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family != getattr(socket, "AF_UNIX", None) and not _is_local(address[0]):
            raise NetworkBlocked(f"network access blocked: connect to {address!r}")
    elif event == "socket.getaddrinfo" and not _is_local(args[0]):
        raise NetworkBlocked(f"network access blocked: lookup of {args[0]!r}")


_installed = False


def block_network() -> None:
    """Install the guard in this process (audit hooks cannot be removed; calling twice is fine)."""
    global _installed
    if not _installed:
        sys.addaudithook(_guard)
        _installed = True


if __name__ == "__main__":
    block_network()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
