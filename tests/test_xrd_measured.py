"""Reading and preprocessing measured XRD patterns: real-world files (headers, odd steps, descending scans, NaNs,
truncation), every reader fed random bytes and random text (only PatternError comes out), and the model inputs."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matdl_nb.xrd import XRDNet, two_theta_grid
from matdl_nb.xrd_measured import (Diffractometer, PatternError, caglioti_fwhm, march_dollase, parse_pattern_text, snip_backgrounds,
                                   snip_half_window,
                                   preprocess_pattern, read_pattern, remove_background, render_banded,
                                   to_grid)

GRID = two_theta_grid(10, 80, 0.04)


def _pattern(start=10.0, stop=80.0, step=0.02):
    x = np.arange(start, stop + step / 2, step)
    y = 200 + 50 * np.exp(-(x - 20) ** 2 / 50) + 1000 * np.exp(-0.5 * ((x - 40) / 0.08) ** 2)
    return x, y


def test_headers_comments_and_extra_columns(tmp_path):
    x, y = _pattern()
    text = "# sample A, Cu Ka\nAngle (deg)\tCounts\tesd\n" + "\n".join(f"{a:.3f}\t{b:.1f}\t{np.sqrt(b):.2f}" for a, b in zip(x, y))
    path = tmp_path / "scan.xye"; path.write_text(text)
    two_theta, intensity = read_pattern(path)
    np.testing.assert_allclose(two_theta, np.round(x, 3)); np.testing.assert_allclose(intensity, np.round(y, 1))


def test_csv_crlf_latin1_and_descending(tmp_path):
    x, y = _pattern()
    text = "2θ (°),I\r\n" + "\r\n".join(f"{a:.3f},{b:.1f}" for a, b in zip(x[::-1], y[::-1]))
    path = tmp_path / "scan.csv"; path.write_bytes(text.encode("latin-1", errors="replace"))
    two_theta, intensity = read_pattern(path)
    assert np.all(np.diff(two_theta) > 0), "a descending scan comes back ascending"
    assert intensity[np.argmin(np.abs(two_theta - 40))] == pytest.approx(y.max(), rel=1e-3)


def test_odd_steps_and_repeated_angles_are_averaged():
    x = np.round(np.sort(np.concatenate([np.arange(10, 40, 0.013), np.arange(40.02, 80, 0.05)])), 3)
    lines = [f"{a} 1" for a in x] + ["50.5 1", "50.5 3"]  # one angle twice, out of order
    two_theta, intensity = parse_pattern_text("\n".join(lines))
    assert len(two_theta) == len(set(x) | {50.5}) and intensity[two_theta == 50.5] == 2.0


def test_nans_are_dropped_but_not_a_file_of_them():
    x, y = _pattern(); y = y.copy(); y[::10] = np.nan
    two_theta, _ = parse_pattern_text("\n".join(f"{a} {b}" for a, b in zip(x, y)))
    assert len(two_theta) == len(x) - len(x[::10])
    with pytest.raises(PatternError, match="NaN"):
        parse_pattern_text("\n".join(f"{a} nan" if i % 3 else f"{a} 1" for i, a in enumerate(x)))


def test_truncated_file_is_named(tmp_path):
    x, y = _pattern()
    text = "\n".join(f"{a:.3f} {b:.1f}" for a, b in zip(x, y)) + "\n80.02"
    path = tmp_path / "cut.xy"; path.write_text(text)
    with pytest.raises(PatternError, match="cut.xy.*truncated"): read_pattern(path)


@pytest.mark.parametrize("text, message", [
    ("", "0 rows"), ("2theta intensity\n", "0 rows"), ("\n".join(f"{i} 5" for i in range(30)), "0 to 29|same"),
    ("\n".join(f"{170 + i} {i}" for i in range(30)), "2-theta runs"), ("10 1\n11 2\nabc def\n", "not numbers")])
def test_clear_errors(text, message):
    with pytest.raises(PatternError, match=message): parse_pattern_text(text, "bad.xy")


def test_unsupported_and_binary_files(tmp_path):
    (tmp_path / "scan.xrdml").write_text("<xml/>")
    with pytest.raises(PatternError, match="XRDML.*not supported.*two columns"): read_pattern(tmp_path / "scan.xrdml")
    (tmp_path / "scan.xy").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(PatternError, match="binary"): read_pattern(tmp_path / "scan.xy")
    with pytest.raises(PatternError, match="no such file"): read_pattern(tmp_path / "missing.xy")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_random_bytes_give_only_pattern_errors(tmp_path, data):
    path = tmp_path / "random.xy"; path.write_bytes(data)
    try: two_theta, intensity = read_pattern(path)
    except PatternError: return
    assert np.all(np.diff(two_theta) > 0) and len(two_theta) >= 20


_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6)).map(str)
_lines = st.lists(st.one_of(st.text(max_size=30), st.lists(_numbers, min_size=0, max_size=4).map(" ".join)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(lines=_lines, separator=st.sampled_from(["\n", "\r\n", "\r"]))
def test_random_text_gives_only_pattern_errors(lines, separator):
    try: two_theta, intensity = parse_pattern_text(separator.join(lines), "random")
    except PatternError: return
    assert np.isfinite(two_theta).all() and np.isfinite(intensity).all() and np.all(np.diff(two_theta) > 0)


@settings(max_examples=60, deadline=None)
@given(x=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=0, max_size=60),
       y=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=60))
def test_preprocessing_random_arrays_gives_only_pattern_errors(x, y):
    try: out = preprocess_pattern(np.array(x), np.array(y), GRID)
    except PatternError: return
    assert out.shape == (2, len(GRID)) and torch.isfinite(out).all()


def test_background_removed_and_range_masked():
    x, y = _pattern(20, 60)
    corrected, background = remove_background(x, y)
    assert corrected.min() >= 0 and background[np.argmin(np.abs(x - 40))] < 300  # the peak is not background
    assert corrected[np.argmin(np.abs(x - 20))] < 20  # the hump is
    values, mask = to_grid(x, corrected, GRID)
    assert mask.sum() == ((GRID >= 20) & (GRID <= 60)).sum() and values[mask == 0].max() == 0
    out = preprocess_pattern(x, y, GRID)
    assert out.shape == (2, len(GRID)) and out[0].max() == 1 and abs(float(GRID[out[0].argmax()]) - 40) < 0.05
    with pytest.raises(PatternError, match="share"): preprocess_pattern(x + 100, y, GRID)
    with pytest.raises(ValueError, match="method"): remove_background(x, y, "magic")


def test_physics_helpers():
    axis = torch.tensor([[0.0, 0.0, 1.0]])
    direction = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]])
    factor = march_dollase(direction, axis, torch.tensor([0.5]))
    torch.testing.assert_close(factor, torch.tensor([[0.5 ** -3, 0.5 ** 1.5]]))  # along the plate normal: r^-3; in the plane: r^1.5
    torch.testing.assert_close(march_dollase(direction, axis, torch.tensor([1.0])), torch.ones(1, 2))
    torch.testing.assert_close(caglioti_fwhm(torch.tensor([90.0]), 0.01, 0.0, 0.0), torch.tensor([0.1]))


def test_banded_render_matches_a_peak():
    peaks = torch.tensor([[30.0, 50.0]]); out = render_banded(peaks, torch.tensor([[1.0, 0.5]]), torch.full((1, 2), 0.2), GRID)
    assert abs(float(GRID[out[0].argmax()]) - 30) < 0.05 and out.max() == 1
    assert float(out[0, int(round((50 - 10) / 0.04))]) == pytest.approx(0.5, abs=0.05)


def test_diffractometer_output_and_mask():
    torch.manual_seed(0)
    sim = Diffractometer(GRID, partial=1.0)
    two_theta = torch.tensor([[30.0, 45.0, 60.0, 0.0]]).repeat(8, 1)
    intensity = torch.tensor([[1.0, 0.6, 0.3, 0.0]]).repeat(8, 1)
    direction = torch.nn.functional.normalize(torch.randn(8, 4, 3), dim=-1)
    out = sim(two_theta, intensity, direction)
    assert out.shape == (8, 2, len(GRID)) and torch.isfinite(out).all()
    assert (out[:, 1] < 1).any(1).all(), "every scan is partial here"
    assert (out[:, 0] * (1 - out[:, 1])).abs().max() == 0, "nothing outside the measured range"


def test_batched_snip_is_pybaselines_snip():
    from pybaselines import Baseline
    torch.manual_seed(0)
    rows = (torch.rand(12, 800).double() + torch.linspace(1, 0, 800)) ** 3
    mask = torch.ones_like(rows)
    for i in range(6, 12): mask[i, :int(torch.randint(0, 200, ()))] = 0; mask[i, int(torch.randint(500, 800, ())):] = 0
    half = snip_half_window(0.04)
    ours = snip_backgrounds(rows, mask, half, 1)
    for row, inside, mine in zip(rows.numpy(), mask.bool().numpy(), ours.numpy()):
        reference, _ = Baseline(np.arange(inside.sum()) * 0.04).snip(row[inside], max_half_window=half, decreasing=True, smooth_half_window=1)
        np.testing.assert_allclose(mine[inside], reference, atol=1e-4 * row.max())
