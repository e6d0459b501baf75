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


# ----------------------------------------------------------------------------- the engine's guarantees
from course_lib.checking import check_model, gradient_case, randomize_parameters  # noqa: E402


def test_general_hint_is_required():
    with pytest.raises(ValueError, match="general hint"):
        Exercise("x", relu_square, _cases)


def test_a_crash_shows_the_students_line_and_the_inputs(capsys):
    def student(x):
        y = x.reshape(2, 2)  # the student's own line
        return y

    check_relu_square(student)
    out = capsys.readouterr().out
    assert "raised RuntimeError" in out
    assert "In your code, line" in out and "x.reshape(2, 2)" in out
    assert "It was called with: Tensor of shape [9] (float32)" in out


def test_scalar_tensor_and_float_are_interchangeable(capsys):
    mean = Exercise("mean", lambda x: float(x.mean()), lambda: [Case("r", lambda f: f(torch.arange(4.0)))],
                    hint="average")
    assert mean.evaluate(lambda x: x.mean()).passed
    mean0 = Exercise("mean0", lambda x: x.mean(), lambda: [Case("r", lambda f: f(torch.arange(4.0)))], hint="average")
    assert mean0.evaluate(lambda x: float(x.mean())).passed
    assert not mean0.evaluate(lambda x: float(x.sum())).passed


def test_hint_only_when_the_mistake_matches_every_case():
    # both mistakes agree with each other on the first case; only the second matches the student everywhere
    cases = lambda: [Case("ones", lambda f: f(torch.ones(3))), Case("ramp", lambda f: f(torch.arange(3.0)))]
    ex = Exercise("double", lambda x: 2 * x, cases,
                  mistakes=[Mistake("first", lambda x: x + 1), Mistake("second", lambda x: x ** 2 + 1)], hint="general")
    assert ex.evaluate(lambda x: x ** 2 + 1).hint == "second"
    assert ex.evaluate(lambda x: x + 1).hint == "first"
    assert ex.evaluate(lambda x: 3 * x).hint == "general"


def _grad_run(impl):
    w = torch.linspace(-1, 1, 6).reshape(2, 3).requires_grad_()
    return impl(torch.ones(4, 2), w), {"W": w}


check_matmul = Exercise("matmul_relu", lambda x, w: torch.relu(x @ w), lambda: [gradient_case("g", _grad_run)],
                        hint="ReLU of x @ W")


def test_gradient_case_catches_a_detached_output():
    assert check_matmul.evaluate(lambda x, w: torch.relu(x @ w)).passed
    result = check_matmul.evaluate(lambda x, w: torch.relu(x @ w.detach()))
    assert not result.passed and "no gradient flows back to W" in result.message
    # same values, different gradient (a straight-through trick): caught as well
    result = check_matmul.evaluate(lambda x, w: (x @ w) - (x @ w).detach() + torch.relu(x @ w).detach())
    assert not result.passed and "gradient w.r.t. W" in result.message


@check_model
def _tiny_model():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=8, n_heads=2, d_head=4, d_mlp=16, n_ctx=4, d_vocab=5,
                                  act_fn="gelu", normalization_type="LN", seed=0, device="cpu")
    return randomize_parameters(HookedTransformer(cfg).eval(), seed=1)


def _logits(model):
    return model(torch.tensor([[0, 1, 2]]))


check_logits = Exercise("logits", _logits, lambda: [Case("m", lambda f: f(_tiny_model()))], hint="run the model")


def test_check_models_have_every_parameter_randomised():
    model = _tiny_model()
    assert not torch.allclose(model.ln_final.w, torch.ones_like(model.ln_final.w))
    assert not torch.allclose(model.ln_final.b, torch.zeros_like(model.ln_final.b))
    assert not torch.allclose(model.b_U, torch.zeros_like(model.b_U))


def test_leftover_hook_is_reported_and_removed(capsys):
    def leaky(model):
        model.add_hook("blocks.0.hook_resid_pre", lambda x, hook: x * 0)
        return _logits(model)

    result = check_logits.evaluate(leaky)
    assert not result.passed and "left 1 hook(s) on the model" in result.message
    assert check_logits.evaluate(_logits).passed, "the check model is clean again"


def test_in_place_edits_of_a_check_model_do_not_leak():
    def vandal(model):
        with torch.no_grad():
            model.W_U.zero_()
        return _logits(model)

    assert not check_logits.evaluate(vandal).passed
    assert check_logits.evaluate(_logits).passed


def test_not_implemented_on_a_later_case_is_a_crash_not_a_stub(capsys):
    def partial(x):
        if (x == 0).all():
            raise NotImplementedError("zeros not supported")
        return torch.relu(x) ** 2

    assert check_relu_square(partial) is relu_square
    out = capsys.readouterr().out
    assert "✘" in out and "not implemented yet" not in out and "NotImplementedError on this case" in out


@pytest.mark.parametrize("change, name", [
    (lambda: torch.set_grad_enabled(False), "gradient mode"),
    (lambda: torch.set_default_dtype(torch.float64), "default dtype"),
])
def test_a_changed_global_torch_setting_fails_and_is_restored(capsys, change, name):
    def sneaky(x):
        change()
        return torch.relu(x) ** 2

    assert check_relu_square(sneaky) is relu_square
    out = capsys.readouterr().out
    assert "✘" in out and name in out
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32


def test_exit_in_a_students_function_does_not_end_the_check(capsys):
    import sys

    assert check_relu_square(lambda x: sys.exit(1)) is relu_square
    assert "raised SystemExit" in capsys.readouterr().out


def test_a_missing_gradient_names_an_indexed_leaf():
    from course_lib.checking import GRADIENT_PREFIX, NO_GRADIENT

    message = describe_difference(torch.ones(2), NO_GRADIENT, where=GRADIENT_PREFIX + "W_dec[0]")
    assert "no gradient flows back to W_dec[0]:" in message
