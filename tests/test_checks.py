"""The self-check framework (islteach.checks): reports, hints, the fallback, and argument errors."""
import pytest

from islteach import checks


@pytest.fixture
def toy_check():
    label = "ex-99-toy"

    @checks.register(label, name="double", reference="islteach.checks.close", hint="multiply by two")
    def cases(fn):
        yield checks.Case("double(2) is 4", fn(2) == 4, hint="what is 2 + 2?")
        yield checks.Case("double(-1) is -2", fn(-1) == -2, hint="negative numbers too")

    yield label
    del checks.CHECKS[label]


def test_a_right_function_passes(toy_check):
    report = checks.evaluate(toy_check, lambda x: 2 * x)
    assert report.passed and len(report.cases) == 2
    assert "passes all 2 cases" in str(report)


def test_a_wrong_function_gets_hints_but_not_the_answer(toy_check):
    report = checks.evaluate(toy_check, lambda x: x + 2)
    assert not report.passed
    text = str(report)
    assert "passes 1 of 2" in text and "negative numbers too" in text and "what is 2 + 2" not in text


def test_a_stub_is_reported_as_not_written_with_the_hint(toy_check, capsys):
    def double(x):
        raise NotImplementedError

    report = checks.evaluate(toy_check, double)
    assert report.not_done and not report.passed and "multiply by two" in str(report)
    assert checks.run(toy_check, double) is checks.close  # the fallback
    out = capsys.readouterr().out
    assert "not written yet" in out and "islteach.checks.close" in out


def test_an_exception_names_the_line_of_the_learners_function(toy_check):
    def double(x):
        return x / 0

    report = checks.evaluate(toy_check, double)
    assert not report.passed and "ZeroDivisionError" in str(report) and "line" in str(report)


def test_run_returns_the_learners_function_when_it_passes(toy_check, capsys):
    def double(x):
        return x * 2

    assert checks.run(toy_check, double) is double
    assert "✓" in capsys.readouterr().out


def test_bad_arguments_are_named(toy_check):
    with pytest.raises(TypeError, match="fn must be the function 'double'"):
        checks.evaluate(toy_check, 3)
    with pytest.raises(KeyError, match="no such exercise check"):
        checks.evaluate("ex-99-nope", abs)
    with pytest.raises(ValueError, match="ex-NN-name"):
        checks.register("toy", name="f", reference="x.y")
    with pytest.raises(ValueError, match="registered twice"):
        checks.register(toy_check, name="f", reference="x.y")(lambda fn: iter(()))


def test_close():
    assert checks.close([1.0, 2.0], [1.0, 2.0 + 1e-9])
    assert not checks.close([1.0, 2.0], [1.0])
    assert not checks.close(None, [1.0])
