"""Composition featurisation edge cases, the exact ElemNet/IRNet layer stacks, and the benchmark's smoke test."""
import re

import numpy as np
import pytest
import torch
from torch import nn

from conftest import requires_mirror
from matdl_nb.composition import (ELEMNET_ELEMENTS, ElemNet, IRNet, UnsupportedElementError, element_fractions,
                                  magpie_features, predict, supported)
from matdl_nb.data import FormulaError

col = {el: i for i, el in enumerate(ELEMNET_ELEMENTS)}


@pytest.mark.parametrize("formula,expected", [
    ("CuSO4(H2O)5", {"Cu": 1 / 21, "S": 1 / 21, "O": 9 / 21, "H": 10 / 21}),  # parentheses
    ("FeOFe", {"Fe": 2 / 3, "O": 1 / 3}),  # repeated element
    ("La1Pb1Re2", {"La": 0.25, "Pb": 0.25, "Re": 0.5}),  # OQMD's explicit counts
    ("Fe0.62C0.001Ni0.379", {"Fe": 0.62, "C": 0.001, "Ni": 0.379}),  # steel-like fractions
    ("Pu", {"Pu": 1.0}), ("H", {"H": 1.0}),  # the ends of the list
])
def test_fractions(formula, expected):
    x = element_fractions([formula])[0]
    assert x.sum() == pytest.approx(1.0, abs=1e-6)
    for el, f in expected.items():
        assert x[col[el]] == pytest.approx(f, rel=1e-5)
    assert np.count_nonzero(x) == len(expected)


def test_order_and_scale_do_not_matter():
    a, b, c = element_fractions(["Fe2O3", "O3Fe2", "Fe4O6"])
    assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("formula,error,message", [
    ("Ne", UnsupportedElementError, "contains Ne"), ("Po2O3", UnsupportedElementError, "contains Po"),
    ("Am", UnsupportedElementError, "contains Am"), ("Qq2O", FormulaError, "unknown element(s): Qq"),
    ("Fe2O3(", FormulaError, "Cannot read formula"), ("", FormulaError, "Cannot read formula"),
])
def test_bad_formulas_name_the_problem(formula, error, message):
    with pytest.raises(error, match=re.escape(message)):
        element_fractions(["NaCl", formula])


def test_supported_mask_matches_the_errors():
    formulas = ["NaCl", "Ne", "Qq2O", "Fe2O3("]
    assert supported(formulas).tolist() == [True, False, False, False]


def test_magpie_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MATDL_HOME", str(tmp_path))
    first = magpie_features(["NaCl", "MgO"])
    assert first.shape == (2, 132) and list((tmp_path / "features").glob("magpie-*.npy"))
    assert np.array_equal(first, magpie_features(["NaCl", "MgO"]))


def _linear_widths(model):
    return [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]


def test_elemnet_layers_exactly_as_published():
    model = ElemNet()
    assert _linear_widths(model) == [1024] * 4 + [512] * 3 + [256] * 3 + [128] * 3 + [64] * 2 + [32, 1]
    seq = list(model.body)
    # every hidden linear layer is followed by a ReLU; dropout (0.2, 0.1, 0.3, 0.2) closes the first four blocks
    kinds = ["L" if isinstance(m, nn.Linear) else "R" if isinstance(m, nn.ReLU) else f"D{m.p}" for m in seq]
    assert "".join(k[0] for k in kinds) == "LR" * 4 + "D" + "LR" * 3 + "D" + "LR" * 3 + "D" + "LR" * 3 + "D" + "LR" * 3
    assert [k for k in kinds if k.startswith("D")] == ["D0.2", "D0.1", "D0.3", "D0.2"]


def test_irnet_layers_and_shortcuts():
    model = IRNet()
    units = list(model.body)
    assert [u.linear.out_features for u in units] == [1024] * 4 + [512] * 3 + [256] * 3 + [128] * 3 + [64] * 2 + [32]
    assert all(isinstance(u.norm, nn.BatchNorm1d) for u in units)
    projections = [i for i, u in enumerate(units) if not isinstance(u.shortcut, nn.Identity)]
    assert projections == [0, 4, 7, 10, 13, 15]  # exactly where the width changes
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


def test_residual_unit_adds_its_input():
    model = IRNet(blocks=((8, 2),), n_inputs=8).eval()
    unit = model.body[1]  # 8 -> 8: identity shortcut
    with torch.no_grad():
        unit.linear.weight.zero_(); unit.linear.bias.fill_(-1.0)  # the branch outputs ReLU(BN(-1)) = 0 in eval
        x = torch.randn(3, 8)
        assert torch.allclose(unit(x), x + torch.relu(unit.norm(torch.full((3, 8), -1.0))))


def test_output_scale_sets_the_units():
    model = ElemNet(target_mean=-400.0, target_std=300.0).eval()
    with torch.no_grad():
        for p in model.head.parameters(): p.zero_()
    assert np.allclose(predict(model, np.ones((2, 86), np.float32) / 86), -400.0)


@requires_mirror
def test_benchmark_smoke(run_benchmark):
    assert re.fullmatch(r"RESULT elemnet_mae=[\d.]+ irnet_mae=[\d.]+ rf_mae=[\d.]+ n_train=\d+", run_benchmark("elemnet"))
    last = run_benchmark("elemnet", "--data", "mp_e_form")
    assert re.fullmatch(r"RESULT elemnet_mae=[\d.]+ irnet_mae=[\d.]+ rf_mae=[\d.]+ n_train=\d+ crossover_rows=(\d+|none)", last)


def test_one_row_per_formula_keeps_the_median_or_the_lowest():
    import pandas as pd
    from matdl_nb.composition import one_row_per_formula
    polymorphs = pd.DataFrame({"formula": ["Fe2O3", "Fe4O6", "O3Fe2", "NaCl", "Na1Cl1"], "e": [-1.0, -1.6, -1.3, -2.0, -2.2]})
    lowest = one_row_per_formula(polymorphs, "e", keep="min").set_index("formula")["e"]
    assert lowest.to_dict() == {"Fe2O3": -1.6, "NaCl": -2.2}  # reduced formulas: Fe4O6 and O3Fe2 are Fe2O3
    assert one_row_per_formula(polymorphs, "e").set_index("formula")["e"].to_dict() == {"Fe2O3": -1.3, "NaCl": -2.1}
    with pytest.raises(ValueError, match="keep must be"):
        one_row_per_formula(polymorphs, "e", keep="max")
