"""What every exercise check must do (shared by the notebooks' check tests): accept the reference,
reject plausible mistakes with their targeted hint, and hand back the reference for a stub."""


def _stub(*args, **kwargs):
    raise NotImplementedError


def assert_accepts_reference(name, check, reference, capsys):
    assert check(reference) is reference
    assert f"✔ {name} passed" in capsys.readouterr().out


def assert_rejects_with_hints(name, check, reference, wrongs, capsys):
    """``wrongs``: [(wrong implementation, expected hint fragment or None), ...], at least two."""
    assert len(wrongs) >= 2
    for wrong, hint in wrongs:
        assert check(wrong) is reference, "a failed check hands back the reference"
        out = capsys.readouterr().out
        assert f"✘ {name} failed" in out, out
        assert "Continuing with the reference implementation" in out
        # a known mistake gets its hint; otherwise the message still says what differs
        assert (hint in out) if hint is not None else ("differ" in out), out


def assert_stub_falls_back(check, reference, capsys, stub=_stub):
    assert check(stub) is reference
    assert "not implemented yet" in capsys.readouterr().out
