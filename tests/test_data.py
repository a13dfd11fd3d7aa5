"""The data layer: registry errors, structure parsing errors, and every pinned dataset through the mirror."""
import re

import pandas as pd
import pytest

from conftest import requires_mirror
from matdl_nb.data import (DatasetOptionError, FormulaError, StructureParseError, UnknownDatasetError, fetch_source, grouped_split,
                           group_overlap, list_datasets, load_dataset, parse_composition, parse_structures,
                           source_urls, _pinned_sources)


def test_unknown_dataset_suggests_the_right_name():
    with pytest.raises(UnknownDatasetError, match="Did you mean 'mp_transport'"):
        load_dataset("mp_transprot")


def test_unknown_option_is_refused_before_any_work():
    with pytest.raises(DatasetOptionError, match="has no option parse"):
        load_dataset("oqmd_formation_enthalpy", parse=True)


@pytest.mark.parametrize("formula,message", [("Xx2O3", "unknown element(s): Xx"), ("Fe2O3)", "Cannot read formula"),
                                             ("", "Cannot read formula")])
def test_bad_formulas_are_named(formula, message):
    with pytest.raises(FormulaError, match=re.escape(message)):
        parse_composition(formula)  # noqa


def test_unparsable_structure_names_its_row():
    good = "Si\n5.43\n0 0.5 0.5\n0.5 0 0.5\n0.5 0.5 0\nSi\n2\ndirect\n0 0 0\n0.25 0.25 0.25\n"
    with pytest.raises(StructureParseError, match=r"mp-2 \(row 1\) as POSCAR"):
        parse_structures([good, "Si\n5.43\nnot a lattice\n"], fmt="poscar", labels=["mp-149 (row 0)", "mp-2 (row 1)"])


def test_embedded_datasets_load_offline():
    sizes = {name: len(load_dataset(name)) for name in list_datasets("embedded").index}
    assert sizes == {"mp_transport": 47_737, "exp_formation_enthalpy": 2_135, "aflow_prototypes": 288,
                     "atomap_stem_images": 2, "mat2vec_element_vectors": 103}


def test_grouped_split_has_no_leakage():
    df = load_dataset("exp_formation_enthalpy")
    train, test = grouped_split(df, seed=1)
    assert group_overlap(train, test) == 0.0 and len(train) + len(test) == len(df)


@requires_mirror
def test_every_pinned_file_matches_its_hash():
    # fetch_source checks the SHA-256 of each file as it copies it from the mirror into the (empty) cache
    for url in sorted(_pinned_sources()):
        assert fetch_source(url).stat().st_size >= 0


@requires_mirror
@pytest.mark.parametrize("name,options,rows", [
    ("oqmd_formation_enthalpy", {"split": "train"}, 51_255), ("oqmd_formation_enthalpy", {"split": "test"}, 51_255),
    ("oqmd_published_predictions", {"model": "crabnet"}, 51_255), ("matbench_expt_gap", {}, 4_604),
    ("matbench_steels_yield", {}, 312), ("castelli_perovskites", {"split": "test"}, 3_785),
    ("jarvis_sample", {}, 50), ("sofc_exp_corpus", {}, 45), ("synthesis_paragraphs", {}, 230),
    ("cond_mat_abstracts", {}, 180), ("mat2vec_analogies", {}, 35_104)])
def test_downloadable_datasets(name, options, rows):
    df = load_dataset(name, **options)
    assert isinstance(df, pd.DataFrame) and len(df) == rows
    assert df.attrs["source"] == name


@requires_mirror
def test_perovskite_structures_are_five_atom_cells():
    df = load_dataset("castelli_perovskites", split="test")
    assert set(df.structure.map(len)) == {5}
    assert df.heat_ref.notna().all()
