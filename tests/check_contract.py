"""What every exercise check must do (shared by the notebooks' check tests): accept the reference,
reject plausible mistakes with their targeted hint, and hand back the reference for a stub.

A test module defines ``CASES = {name: (check, reference, wrongs)}`` (or ``(check, reference, stub,
wrongs)``), with ``wrongs = [(wrong implementation, expected hint fragment or None), ...]``, and gets the
three tests with::

    test_reference_passes, test_mistakes_get_their_hint, test_stub_falls_back = contract_tests(CASES)
"""
import pytest


def _stub(*args, **kwargs):
    raise NotImplementedError


def contract_tests(cases: dict):
    def unpack(name):
        entry = cases[name]
        return entry[0], entry[1], (entry[2] if len(entry) == 4 else _stub), entry[-1]

    @pytest.mark.parametrize("name", list(cases))
    def test_reference_passes(name, capsys):
        check, reference, _, _ = unpack(name)
        assert check(reference) is reference
        assert f"✔ {name} passed" in capsys.readouterr().out

    @pytest.mark.parametrize("name", list(cases))
    def test_mistakes_get_their_hint(name, capsys):
        check, reference, _, wrongs = unpack(name)
        assert len(wrongs) >= 2
        for wrong, hint in wrongs:
            assert check(wrong) is reference, "a failed check hands back the reference"
            out = capsys.readouterr().out
            assert f"✘ {name} failed" in out, out
            assert "Continuing with the reference implementation" in out
            # a known mistake gets its hint; otherwise the message still says what differs
            assert (hint in out) if hint is not None else ("differ" in out), out

    @pytest.mark.parametrize("name", list(cases))
    def test_stub_falls_back(name, capsys):
        check, reference, stub, _ = unpack(name)
        assert check(stub) is reference
        assert "not implemented yet" in capsys.readouterr().out

    return test_reference_passes, test_mistakes_get_their_hint, test_stub_falls_back
