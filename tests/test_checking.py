"""The check engine itself: what it accepts, what it reports, what it hands back."""
import numpy as np
import pytest
import torch

from course_lib.checking import Case, Exercise, Mistake, describe_difference


def relu_square(x):
    return torch.relu(x) ** 2


def _cases():
    return [Case("random", lambda f: f(torch.linspace(-2, 2, 9))), Case("zeros (edge case)", lambda f: f(torch.zeros(3)))]


check_relu_square = Exercise("relu_square", relu_square, _cases,
                             mistakes=[Mistake("Did you forget the ReLU?", lambda x: x ** 2)],
                             hint="Square the rectified input.")


def test_describe_difference_names_what_differs():
    assert describe_difference(torch.ones(2, 3), torch.ones(2, 3)) is None
    assert "shape differs: expected (2, 3), got (3, 2)" in describe_difference(torch.ones(2, 3), torch.ones(3, 2))
    assert "dtype differs" in describe_difference(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert "values differ at index (1,)" in describe_difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))
    assert "expected an array/tensor" in describe_difference(torch.ones(2), [1.0, 1.0])
    assert "expected 0.5, got 0.6" in describe_difference(0.5, 0.6)
    assert describe_difference(0.5, torch.tensor(0.5)) is None
    assert "sequence of length 2" in describe_difference((1, 2), (1,))
    assert "[1]" in describe_difference((np.zeros(2), np.zeros(2)), (np.zeros(2), np.ones(2)))
    assert "keys" in describe_difference({"a": 1}, {"b": 1})


def test_pass_returns_the_students_function(capsys):
    assert check_relu_square(relu_square) is relu_square
    assert "✔ relu_square passed" in capsys.readouterr().out


def test_known_mistake_gets_its_hint_and_the_reference_is_used(capsys):
    def wrong(x):
        return x ** 2

    assert check_relu_square(wrong) is relu_square
    out = capsys.readouterr().out
    assert "✘ relu_square failed on case 'random'" in out and "values differ" in out
    assert "Hint: Did you forget the ReLU?" in out


def test_unknown_mistake_gets_the_general_hint(capsys):
    check_relu_square(lambda x: torch.relu(x))
    assert "Hint: Square the rectified input." in capsys.readouterr().out


def test_crash_is_reported_not_raised(capsys):
    check_relu_square(lambda x: x.no_such_method())
    assert "raised AttributeError" in capsys.readouterr().out


def test_stub_falls_back_to_the_reference(capsys):
    def stub(x):
        raise NotImplementedError("Exercise")

    assert check_relu_square(stub) is relu_square
    assert "not implemented yet" in capsys.readouterr().out


def test_reference_must_be_callable_input_checked():
    result = check_relu_square.evaluate(relu_square)
    assert result.passed and "2 cases" in result.message
    with pytest.raises(TypeError):
        Exercise("x")  # missing reference and cases
