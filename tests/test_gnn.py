"""Crystal graphs and graph networks: edge cases, physics invariances, batching, forces, the benchmark's smoke test."""
import re

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from conftest import requires_mirror
from matdl_nb.core import seed_everything
from matdl_nb.gnn import ALIGNN, CGCNN, emt_alloys, model_forces, predict_structures
from matdl_nb.graphs import GraphError, angle_pairs, collate_graphs, neighbor_edges, structure_to_graph
from matdl_nb.test_utils import rocksalt



def _random_structure(seed: int) -> Structure:
    rng = np.random.default_rng(seed)
    lattice = Lattice.from_parameters(*rng.uniform(3.5, 5.5, 3), *rng.uniform(80, 100, 3))
    return Structure(lattice, ["Sr", "Ti", "O", "O", "N"], rng.uniform(0, 1, (5, 3)))


@pytest.mark.parametrize("model_class", [CGCNN, ALIGNN])
@pytest.mark.parametrize("seed", [1, 2])
def test_invariances(model_class, seed):
    seed_everything(seed)
    model = model_class().eval()
    s = _random_structure(seed)
    rotated = s.copy(); rotated.apply_operation(SymmOp.from_axis_angle_and_translation([0.3, -1, 2], 123.0))
    translated = s.copy(); translated.translate_sites(list(range(len(s))), [0.5, 0.25, -0.4])
    permuted = Structure.from_sites([s[i] for i in np.random.default_rng(seed).permutation(len(s))])
    predictions = predict_structures(model, [s, rotated, translated, permuted, s * (2, 1, 1), s * (1, 2, 2)])
    np.testing.assert_allclose(predictions, predictions[0], rtol=1e-4, atol=1e-5)


def test_supercell_graph_is_the_same_around_every_atom():
    s = rocksalt()
    small, big = structure_to_graph(s, cutoff=6.0, max_neighbors=8), structure_to_graph(s * (2, 2, 1), cutoff=6.0, max_neighbors=8)
    assert big.n_atoms == 4 * small.n_atoms and big.n_edges == 4 * small.n_edges
    assert big.angle_index.shape[1] == 4 * small.angle_index.shape[1]


def test_one_atom_and_isolated_atoms_work():
    one = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    g = structure_to_graph(one, cutoff=3.5, max_neighbors=None)
    assert g.n_atoms == 1 and g.n_edges == 6  # simple cubic: six images at 3.0 A
    lonely = Structure(Lattice.cubic(30.0), ["Ar"], [[0, 0, 0]])
    with pytest.warns(UserWarning, match="no two atoms are within the cutoff of 8.0"):  # said aloud, not an error
        g = structure_to_graph(lonely, cutoff=8.0)
    assert g.n_edges == 0 and g.angle_index.shape[1] == 0
    for model_class in (CGCNN, ALIGNN):
        with pytest.warns(UserWarning, match="no two atoms"):
            assert np.isfinite(predict_structures(model_class().eval(), [lonely, one], cutoff=8.0)).all()


def test_large_cell():
    big = rocksalt(conventional=True) * (4, 4, 4)  # 512 atoms
    g = structure_to_graph(big, cutoff=6.0, max_neighbors=12)
    assert g.n_atoms == 512 and set(np.bincount(g.edge_index[1].numpy()).tolist()) == {18}  # 6 + 12 tied


def test_bad_structures_are_refused_clearly():
    with pytest.raises(GraphError, match="partially occupied"):
        structure_to_graph(Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]]))
    with pytest.raises(GraphError, match="no atoms"):
        structure_to_graph(Structure(Lattice.cubic(3.0), [], []))


def test_neighbor_ties_are_kept_together():
    src, dst, _, dist = neighbor_edges(rocksalt(), cutoff=6.0, max_neighbors=7)
    assert np.bincount(dst).tolist() == [18, 18]  # the 7th neighbour is tied with 11 others


def test_angle_pairs_count():
    dst = np.array([0, 0, 0, 0, 1, 1, 2])
    assert angle_pairs(dst, 3).shape == (2, 4 * 3 + 2 * 1)


def test_forces_have_no_net_component_and_match_finite_differences():
    seed_everything(0)
    model = ALIGNN().eval()
    s = _random_structure(3)
    options = dict(cutoff=6.0, max_neighbors=None)  # no k-nearest selection that could switch under a small move
    forces = model_forces(model, s, **options)
    assert np.allclose(forces.sum(0), 0, atol=1e-3)
    i, axis, h = 2, 1, 1e-2
    def energy(shift):
        moved = s.copy(); moved.translate_sites([i], np.eye(3)[axis] * shift, frac_coords=False, to_unit_cell=False)
        return predict_structures(model, [moved], **options)[0] * len(s)
    assert forces[i, axis] == pytest.approx(-(energy(h) - energy(-h)) / (2 * h), rel=0.05, abs=5e-3)


def test_emt_alloys_are_reproducible_and_physical():
    a, b = emt_alloys(20, seed=3, progress=False), emt_alloys(20, seed=3, progress=False)
    assert a.energy_per_atom.tolist() == b.energy_per_atom.tolist()
    assert a.energy_per_atom.between(-1.0, 2.0).all()  # EMT energies relative to the elemental fcc references
    assert all(np.allclose(f.sum(0), 0, atol=1e-6) for f in a.forces)


def test_collate_offsets():
    g1, g2 = structure_to_graph(rocksalt(), cutoff=5.0), structure_to_graph(rocksalt(conventional=True), cutoff=5.0)
    batch, y = collate_graphs([(g1, torch.tensor(1.0)), (g2, torch.tensor(2.0))])
    assert batch["edge_index"][:, g1.n_edges:].min() >= g1.n_atoms
    assert batch["angle_index"][:, g1.angle_index.shape[1]:].min() >= g1.n_edges
    assert y.tolist() == [1.0, 2.0]


@requires_mirror
def test_benchmark_smoke(run_benchmark):
    assert re.fullmatch(r"RESULT cgcnn_mae=[\d.]+ alignn_mae=[\d.]+ mean_mae=[\d.]+ graph_speedup=[\d.]+", run_benchmark("gnn"))
