"""Widgets seen working in a real JupyterLab, in headless Chromium, one per topic: the 3-D structure view, the XRD, STEM and
composition explorers (their plots drawn, and redrawn when a slider moves), the reject-option slider and the word explorer
(its answer changes when a word is typed); and a broken widget caught; the
built docs pages over HTTP (equations typeset offline, figures decoded, a clean console), and broken pages caught. CI installs Chromium; elsewhere these skip without it."""
import os
import time
from pathlib import Path

import pytest

from matdl_nb.browser import (BrowserError, cell_image_digests, cell_images, cell_output_text, check_docs_in_browser, chromium_driver,
                              find_chromium, jupyter_lab, output_canvases, press_slider, run_in_lab, type_into, widget_problems,
                              write_notebook)

try:
    find_chromium()
    HAVE_CHROMIUM = True
except BrowserError:
    HAVE_CHROMIUM = False
if os.environ.get("CI") and not HAVE_CHROMIUM:
    raise RuntimeError("CI must run the browser checks: install chromium and chromium-driver (see .ci/run)")
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs chromium and chromedriver")
SHOTS = Path(os.environ.get("MATDL_SCREENSHOTS", Path(__file__).resolve().parents[1] / "_site" / "screenshots"))

WIDGETS = [
    # 21_gnn: nglview's 3-D view of a structure and its bonds
    "from matdl_nb.gnn import view_structure\nfrom matdl_nb.test_utils import rocksalt\n"
    "view_structure(rocksalt(conventional=True), cutoff=3.0)",
    # 30_xrd: the explorer (an untrained network is enough to see the pattern redraw)
    "import torch\nfrom matdl_nb.core import seed_everything\nfrom matdl_nb.xrd import XRDNet, xrd_explorer\n"
    "from matdl_nb.test_utils import rocksalt\nseed_everything(0)\n"
    "xrd_explorer({'NaCl': rocksalt(), 'KCl': rocksalt(6.29, ('K', 'Cl'))}, XRDNet().eval())",
    # 60_uncertainty: the reject-option slider
    "import numpy as np\nfrom matdl_nb.uncertainty import rejection_slider\nrng = np.random.default_rng(0)\n"
    "y = rng.normal(size=300); sigma = rng.uniform(0.1, 1.0, 300)\nrejection_slider(y, y + rng.normal(size=300) * sigma, sigma)",
    # 41_microscopy: the STEM explorer (an untrained U-Net is enough to see the image redraw)
    "from matdl_nb.core import seed_everything\nfrom matdl_nb.micrographs import STEMSimulator\n"
    "from matdl_nb.microscopy import UNet, stem_explorer\nseed_everything(0)\n"
    "stem_explorer(UNet(width=4).eval(), STEMSimulator(size=96))",
    # 10_composition: predictions between two compounds (an untrained ElemNet is enough to see the plot redraw)
    "from matdl_nb.core import seed_everything\nfrom matdl_nb.composition import ElemNet, composition_explorer\n"
    "seed_everything(0)\ncomposition_explorer(ElemNet().eval(), 'Bi2Te3', 'Sb2Te3', target='S_n', units='µV/K')",
    # 50_text: the word explorer (a few random vectors are enough to see the neighbours change)
    "import numpy as np\nfrom gensim.models import KeyedVectors\nfrom matdl_nb.text import word_explorer\n"
    "kv = KeyedVectors(8)\nwords = ['TiO2', 'ZnO', 'Ni', 'NiO', 'Zn', 'Fe', 'Fe2O3', 'cathode']\n"
    "kv.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32))\nword_explorer(kv)",
]


@pytest.fixture(scope="module")
def driver():
    d = chromium_driver()
    yield d
    d.quit()


@needs_chromium
def test_widgets_work_in_jupyterlab(tmp_path, driver):
    write_notebook(tmp_path / "widgets.ipynb", WIDGETS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(tmp_path) as (url, token):
        run_in_lab(driver, url, token, "widgets.ipynb")
        time.sleep(2)  # let nglview draw its first frame
        driver.save_screenshot(str(SHOTS / "jupyterlab-widgets.png"))
        assert widget_problems(driver) == []
        assert any(w > 100 and h > 100 for w, h in output_canvases(driver)), "nglview drew no canvas"
        for cell, name in ((1, "XRD explorer"), (3, "STEM explorer"), (4, "composition explorer")):
            assert any(w > 200 and h > 100 for w, h in cell_images(driver, cell)), f"the {name} drew no plot"
        before = [cell_image_digests(driver, 1), cell_output_text(driver, 2), cell_image_digests(driver, 3),
                  cell_image_digests(driver, 4), cell_output_text(driver, 5)]
        assert "neighbours of TiO2" in before[4], before[4]
        press_slider(driver, cell=1, index=0, times=15)  # the XRD explorer's crystallite size
        press_slider(driver, cell=2, index=0, times=15)  # the reject threshold
        press_slider(driver, cell=3, index=0, times=15)  # the STEM explorer's dose
        press_slider(driver, cell=4, index=0, times=5)  # the composition explorer's x
        type_into(driver, cell=5, text="Fe")  # the word explorer's word
        time.sleep(3)
        after = [cell_image_digests(driver, 1), cell_output_text(driver, 2), cell_image_digests(driver, 3),
                 cell_image_digests(driver, 4), cell_output_text(driver, 5)]
        driver.save_screenshot(str(SHOTS / "jupyterlab-widgets-moved.png"))
        assert widget_problems(driver) == []
    assert after[0] != before[0], "the XRD explorer did not redraw its plot when its slider moved"
    assert after[1] != before[1], "the reject-option label did not change when its slider moved"
    assert after[2] != before[2], "the STEM explorer did not redraw its image when its dose slider moved"
    assert after[3] != before[3], "the composition explorer did not redraw its plot when its slider moved"
    assert "neighbours of Fe:" in after[4], f"the word explorer did not answer the word typed: {after[4]}"


@needs_chromium
def test_a_broken_widget_is_caught(tmp_path, driver):
    "The check fails when a widget's JavaScript is missing (as nglview 4.0.1's was): it can fail, so its pass means something."
    write_notebook(tmp_path / "broken.ipynb", [
        "import ipywidgets as widgets\nfrom traitlets import Unicode\n"
        "class Missing(widgets.DOMWidget):\n"
        "    _model_module = Unicode('no-such-widget-module').tag(sync=True)\n"
        "    _model_module_version = Unicode('9.9.9').tag(sync=True)\n"
        "    _model_name = Unicode('MissingModel').tag(sync=True)\n"
        "    _view_module = Unicode('no-such-widget-module').tag(sync=True)\n"
        "    _view_name = Unicode('MissingView').tag(sync=True)\n"
        "Missing()"])
    with jupyter_lab(tmp_path) as (url, token):
        run_in_lab(driver, url, token, "broken.ipynb")
        time.sleep(2)
        problems = widget_problems(driver)
    assert problems, "a widget whose JavaScript does not exist went unnoticed"


@needs_chromium
def test_docs_pages_render_in_a_browser(tmp_path, driver):
    "Every page of the built site, over HTTP: equations typeset by the MathJax the site serves, images decoded, a clean console."
    from matdl_nb.docs import _MATHJAX, render_site
    site = tmp_path / "site"
    render_site(site, process=not (Path(__file__).resolve().parents[1] / "_proc").is_dir())
    assert check_docs_in_browser(site, driver=driver, shots=SHOTS / "docs") == []
    assert all((SHOTS / "docs" / f"{name}.png").is_file() for name in ("index", "xrd", "phone-index", "phone-xrd"))
    # the check can fail: a page without its math engine, a broken figure, a bad equation, a page no link reaches,
    # a page too wide for a phone, a sidebar that scrolls away, a lost search box and pager
    xrd = (site / "xrd.html").read_text()
    (site / "xrd.html").write_text(xrd.replace(_MATHJAX, "").replace('src="data:image/png', 'src="missing.png" data-was="', 1))
    (site / "gnn.html").write_text((site / "gnn.html").read_text().replace("<main>", "<main><p>$$\\frac{1}$$</p>", 1))
    (site / "orphan.html").write_text("<!doctype html><p>not in the sidebar</p>")
    text = (site / "text.html").read_text()
    (site / "text.html").write_text(text.replace("<body>", '<body><div style="width:600px;flex:none">a box that does not fit a phone</div>', 1)
                                    .replace("position:sticky", "position:static").replace('class="pager"', 'class="gone"'))
    uq = (site / "uncertainty.html").read_text()
    (site / "uncertainty.html").write_text(uq.replace("<img ", "<span "))
    index = (site / "index.html").read_text()
    (site / "index.html").write_text(index.replace('id="search"', 'id="lost"'))
    problems = check_docs_in_browser(site, driver=driver)
    assert "xrd.html: raw LaTeX ($$) on the page" in problems
    assert any(p.startswith("xrd.html: an image did not decode (missing.png") for p in problems)
    assert any(p.startswith("gnn.html: an equation MathJax could not typeset (Missing argument for \\frac") for p in problems)
    assert "orphan.html: no sidebar link reaches it" in problems
    assert "text.html: wider than the window at 390 px (scroll it sideways) (phone)" in problems
    assert "text.html: wider than the window at 1400 px (scroll it sideways)" not in problems  # room enough on a desktop
    assert any(p.startswith("text.html: the sidebar scrolls away (position static)") for p in problems)
    assert "text.html: no previous/next links" in problems
    assert "index.html: no search box" in problems
    assert "uncertainty.html: a topic page that shows no figure" in problems
