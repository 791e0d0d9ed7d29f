"""The validators of numeric settings (:mod:`samplers.validation`, built on :mod:`forward_models.errors`), and a sweep
over :data:`samplers.SAMPLERS`: every numeric setting refuses values outside its range."""

import inspect
import math
import re

import numpy as np
import pytest

from forward_models import ForwardModelError
from forward_models.errors import integer_at_least, number_in
from samplers import SAMPLERS, SamplerConfigError, get_sampler
from samplers.validation import (
    fraction_in,
    int_at_least,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

BAD = "error"
VALUES = (True, math.nan, math.inf, 2.5, 0, -1, 10**30)

#: each validator with the result expected for each of VALUES (BAD: SamplerConfigError)
CASES = {
    "positive_int": (positive_int, (BAD, BAD, BAD, BAD, BAD, BAD, BAD)),
    "non_negative_int": (non_negative_int, (BAD, BAD, BAD, BAD, 0, BAD, BAD)),
    "int_at_least_2": (lambda v, name: int_at_least(v, name, 2), (BAD,) * 7),
    "positive_float": (positive_float, (BAD, BAD, BAD, 2.5, BAD, BAD, 1e30)),
    "non_negative_float": (non_negative_float, (BAD, BAD, BAD, 2.5, 0.0, BAD, 1e30)),
    "fraction_in": (fraction_in, (BAD, BAD, BAD, BAD, 0.0, BAD, BAD)),
}


@pytest.mark.parametrize("validator, expected", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("index", range(len(VALUES)), ids=[repr(v) for v in VALUES])
def test_each_validator_on_the_edge_values(validator, expected, index):
    value, want = VALUES[index], expected[index]
    if want is BAD:
        with pytest.raises(SamplerConfigError, match=rf"^my_setting must .*, got {re.escape(repr(value))}$"):
            validator(value, "my_setting")
    else:
        got = validator(value, "my_setting")
        assert got == want and type(got) is type(want)


def test_accepted_forms_and_returned_types():
    for v in (3, 3.0, np.int64(3), np.float64(3.0)):
        got = positive_int(v, "n")
        assert got == 3 and type(got) is int
    assert int_at_least(2, "n", 2) == 2 and non_negative_int(0, "n") == 0
    got = positive_float(np.float32(0.5), "x")
    assert got == 0.5 and type(got) is float
    assert positive_float(7, "rho") == 7.0 and type(positive_float(7, "rho")) is float
    assert positive_int(2**63 - 1, "n") == 2**63 - 1
    for bad in (2**63, "3", None, [3], np.bool_(True), 3 + 0j):
        with pytest.raises(SamplerConfigError):
            positive_int(bad, "n")
    for bad in (10**400, "0.5", None, np.bool_(True), -math.inf):
        with pytest.raises(SamplerConfigError):
            non_negative_float(bad, "x")


def test_fraction_in_closed_ends_and_messages():
    assert fraction_in(1.0, "beta", closed="right") == 1.0
    assert fraction_in(0.0, "t", closed="left") == 0.0
    for v, closed in ((0.0, "right"), (1.0, "left"), (0.0, "neither"), (1.0, "neither"), (1.5, "both")):
        with pytest.raises(SamplerConfigError, match=r"must lie in [\[(]0, 1[\])]"):
            fraction_in(v, "beta", closed=closed)
    with pytest.raises(SamplerConfigError, match=r"^beta must lie in \(0, 1\], got 0$"):
        fraction_in(0, "beta", closed="right")
    with pytest.raises(SamplerConfigError, match=r"^x must lie in \[-2, 3\), got 3$"):
        fraction_in(3, "x", -2, 3, closed="left")
    with pytest.raises(ValueError, match="closed must be one of"):
        fraction_in(0.5, "beta", closed="open")
    with pytest.raises(SamplerConfigError, match=r"^rho must be a finite number > 0, got -1$"):
        positive_float(-1, "rho")
    with pytest.raises(SamplerConfigError, match=r"^n must be an integer >= 2, got 1$"):
        int_at_least(1, "n", 2)


def test_forward_models_checks_raise_their_own_error_type():
    with pytest.raises(ForwardModelError, match="^num_coils must be a positive integer, got 0$"):
        integer_at_least(0, "num_coils")
    with pytest.raises(ForwardModelError, match="^gain must be a finite number <= 1, got nan$"):
        number_in(math.nan, "gain", high=1.0)
    assert not issubclass(ForwardModelError, SamplerConfigError)
    from forward_models.coils import synthetic_coil_maps

    for bad in (0, 2.5, True):
        with pytest.raises(ForwardModelError, match="num_coils"):
            synthetic_coil_maps(bad, 4, 4)


#: numeric settings that may be zero (0 switches a feature off or is a valid bound)
MAY_BE_ZERO = {"zeta", "alpha", "guidance_scale", "num_updates", "kappa", "resample_threshold", "inflation", "warmup",
               "discrepancy",
               "eta"}
#: numeric settings whose default is not a number
ALSO_NUMERIC = {"batch_size", "operator_gain", "rho_max"}


def numeric_settings(cls) -> list[str]:
    """Names of the constructor's numeric settings, found from the signature's defaults."""
    params = inspect.signature(cls.__init__).parameters
    return [name for name, p in params.items()
            if (isinstance(p.default, (int, float)) and not isinstance(p.default, bool)) or name in ALSO_NUMERIC]


SETTINGS = [(name, setting) for name, cls in SAMPLERS.items() for setting in numeric_settings(SAMPLERS[name])]


def test_the_sweep_covers_every_sampler():
    assert {name for name, _ in SETTINGS} == set(SAMPLERS)
    assert len(SETTINGS) >= 40
    assert MAY_BE_ZERO <= {s for _, s in SETTINGS}


@pytest.mark.parametrize("name, setting", SETTINGS, ids=[f"{n}-{s}" for n, s in SETTINGS])
def test_every_sampler_refuses_out_of_range_settings(name, setting):
    cls = SAMPLERS[name]
    bad = [-1, -1.0, -0.5, math.nan, math.inf, True] + ([] if setting in MAY_BE_ZERO else [0, 0.0])
    for value in bad:
        with pytest.raises(SamplerConfigError, match=re.escape(setting)):
            cls(**{setting: value})
    if setting in MAY_BE_ZERO:
        cls(**{setting: 0})


def test_get_sampler_refuses_a_negative_rho():
    for name in ("dps", "mcg", "tds", "enkg"):
        with pytest.raises(SamplerConfigError, match=r"^rho must be a finite number > 0, got -1\.0$"):
            get_sampler(name, rho=-1.0)
