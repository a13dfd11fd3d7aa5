"""Text mining: the chemistry-aware tokeniser on tricky tokens, streamed corpora, the count baseline and the three
evaluations on tiny cases with known answers, word2vec training and saving, and the benchmark's smoke test. The
tokeniser is total: hypothesis feeds it arbitrary unicode and materials-like strings, and every registered corpus
goes through it in strict mode."""
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from gensim.models import KeyedVectors
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import requires_mirror
from matdl_nb.text import (NUMBER, TEXT_COLUMNS, SkippedDocuments, TokenizedCorpus, analogy_scores, apply_phrases, csv_column, element_similarity_correlation,
                           learn_phrases, load_word2vec, mat2vec_element_vectors, normalise_formula, normalise_word,
                           PAPER_SETTINGS, SMALL_CORPUS_SETTINGS, corpus_size_curve, element_corr_over_seeds,
                           parse_formula, ppmi_svd, split_sentences, text_files, thermoelectric_ranking, tokenize,
                           train_word2vec, process_text, registry_texts)


@pytest.mark.parametrize("token, expected", [
    ("TiO2", "TiO2"), ("O2Ti", "TiO2"), ("F2Mg", "MgF2"), ("ClLi", "LiCl"), ("Fe2O3", "Fe2O3"), ("O3Fe2", "Fe2O3"),
    ("Li(Ni1/3Co1/3Mn1/3)O2", "LiMn0.333Co0.333Ni0.333O2"), ("La0.6Sr0.4CoO3", "Sr0.4La0.6CoO3"),
    ("Sr0.4La0.6O3Co", "Sr0.4La0.6CoO3"), ("Ba[Ti]O3", "BaTiO3"), ("CuSO4·5H2O", "CuH10SO9"), ("H2O", "H2O"),
    ("NaCl", "NaCl"), ("CO", "CO"), ("Si2", "Si"),
])
def test_formulas_have_one_spelling(token, expected):
    assert normalise_formula(token) == expected


@pytest.mark.parametrize("token", ["Fe", "In", "SOFC", "UV", "CV", "XRD", "BCS", "The", "Fig", "Ni1/3)", "(TiO2", "banana",
                                   "Xy2O3", "Fe3+", "iron", "", "2", "H2O2x"])
def test_non_formulas(token):
    assert parse_formula(token) is None


@pytest.mark.parametrize("sentence, tokens", [
    # formulas whole, normalised; numbers and units
    ("La0.6Sr0.4CoO3−δ at 800 °C for 2 h", ["Sr0.4La0.6CoO3", "at", NUMBER, "°C", "for", NUMBER, "h"]),
    ("Li(Ni1/3Co1/3Mn1/3)O2, LiCoO2 and O2Ti.", ["LiMn0.333Co0.333Ni0.333O2", "LiCoO2", "and", "TiO2"]),
    ("a gap of 3.2 eV and 10 S/cm at 5 GPa", ["a", "gap", "of", NUMBER, "eV", "and", NUMBER, "S/cm", "at", NUMBER, "GPa"]),
    ("300K, 5nm and 1.5eV; 700–800 °C; 1,000 and 2e-3", [NUMBER, "K", NUMBER, "nm", "and", NUMBER, "eV", NUMBER, "°C",
                                                          NUMBER, "and", NUMBER]),
    # element names and ambiguous symbols
    ("iron and Iron, aluminum, aluminium, sulphur", ["Fe", "and", "Fe", "Al", "Al", "S"]),
    ("In this work In and In2O3 were used", ["in", "this", "work", "In", "and", "In2O3", "were", "used"]),
    ("As shown, As and Ga", ["as", "shown", "As", "and", "Ga"]),
    ("He said He gas", ["he", "said", "He", "gas"]),
    ("Be aware that Be is light", ["be", "aware", "that", "Be", "is", "light"]),
    ("I think I is iodine. No. 5 and No", ["i", "think", "i", "is", "I", "no", NUMBER, "and", "no"]),
    ("At 300 K the K and S atoms", ["at", NUMBER, "K", "the", "K", "and", "S", "atoms"]),
    ("A 5 A current and 2 V, V and W", ["a", NUMBER, "A", "current", "and", NUMBER, "V", "V", "and", "W"]),
    # acronyms, ions, hyphens, slashes, brackets
    ("The SOFC under UV light; CV curves; BN and CO", ["the", "sofc", "under", "uv", "light", "cv", "curves", "BN", "and", "CO"]),
    ("Fe3+ and Zn2+-doped", ["Fe", "3+", "and", "Zn", "2+", "doped"]),
    ("Co-doped, iron-doped and co-doped TiO2/graphene", ["Co", "doped", "Fe", "doped", "and", "co-doped", "TiO2", "graphene"]),
    ("(La0.6Sr0.4)CoO3 and (TiO2), (BTO)", ["Sr0.4La0.6CoO3", "and", "TiO2", "bto"]),
    ("(La,Sr)MnO3 [Ref. 3], e.g. X-ray", ["(La,Sr)MnO3", "ref", NUMBER, "e.g", "x-ray"]),
])
def test_tokenize_tricky_sentences(sentence, tokens):
    assert tokenize(sentence) == tokens


def test_names_can_stay_names_and_punctuation_can_stay():
    assert tokenize("iron oxide", names_to_symbols=False) == ["iron", "oxide"]
    assert tokenize("Values (1, 2).", keep_punctuation=True) == ["values", "(", NUMBER, ",", NUMBER, ")", "."]


def test_sentences():
    text = "Films were grown (Fig. 2a, e.g. by PLD). The gap is 3.2 eV! Is it? Smith et al. agree. 5 samples"
    assert split_sentences(text) == ["Films were grown (Fig. 2a, e.g. by PLD).", "The gap is 3.2 eV!", "Is it?",
                                     "Smith et al. agree.", "5 samples"]


def test_evaluation_words_are_respelt():
    assert [normalise_word(w) for w in ("F2Mg", "iron", "In", "current_density", "fcc")] == \
        ["MgF2", "Fe", "In", "current_density", "fcc"]


def test_corpora_stream_from_folders_and_csv(tmp_path):
    (tmp_path / "a.txt").write_text("We doped O2Ti with iron. The films were annealed.")
    (tmp_path / "b.txt").write_text("LiFePO4 cathodes.")
    pd.DataFrame({"abstract": ["BaTiO3 is ferroelectric.", ""], "id": [1, 2]}).to_csv(tmp_path / "p.csv", index=False)
    corpus = TokenizedCorpus(text_files(tmp_path))
    assert list(corpus) == [["we", "doped", "TiO2", "with", "Fe"], ["the", "films", "were", "annealed"], ["LiFePO4", "cathodes"]]
    assert list(corpus) == list(corpus)  # re-iterable, as gensim needs
    assert list(TokenizedCorpus(csv_column(tmp_path / "p.csv", "abstract"))) == [["BaTiO3", "is", "ferroelectric"]]
    with pytest.raises(KeyError, match="no column 'text'; its columns: abstract, id"):
        csv_column(tmp_path / "p.csv", "text")
    with pytest.raises(FileNotFoundError, match="no files match"):
        text_files(tmp_path, pattern="*.md")
    (tmp_path / "c.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="c.txt: not utf-8 text"):
        list(TokenizedCorpus(text_files(tmp_path), strict=True))


def test_phrases_never_swallow_materials_or_numbers():
    sentences = [["solid", "oxide", "fuel", "cell", "LiCoO2", "cathode", NUMBER, "nm"]] * 30
    phrases = learn_phrases(sentences, min_count=2, threshold=0.1)
    joined = apply_phrases(phrases, sentences[0])
    assert "LiCoO2" in joined and NUMBER in joined and "nm" in joined
    assert any("_" in t for t in joined) and not any("LiCoO2" in t and "_" in t for t in joined)


def _kv(words, vectors):
    kv = KeyedVectors(len(vectors[0]))
    kv.add_vectors(words, np.asarray(vectors, np.float32))
    return kv


def test_analogies_on_a_tiny_case():
    kv = _kv(["Ni", "NiO", "Zn", "ZnO", "Fe", "FeO"], [[1, 0], [1, 1], [2, 0], [2, 1], [0, 2], [0.1, 2.1]])
    questions = pd.DataFrame({"section": ["oxides"] * 3 + ["other"], "a": ["Ni", "Fe", "Ni", "Ni"],
                              "b": ["NiO", "FeO", "NiO", "Ni"], "c": ["Zn", "Zn", "Xx", "Zn"], "d": ["ZnO", "ZnO", "XxO", "Zn"]})
    table = analogy_scores(kv, questions)
    assert table.loc["oxides", ["questions", "answerable", "correct"]].tolist() == [3, 2, 1]
    assert table.loc["other", "answerable"] == 0 and np.isnan(table.loc["other", "accuracy"])  # words not distinct
    assert table.loc["all sections", "accuracy"] == 0.5


def test_element_correlation_is_one_for_the_reference_and_near_zero_for_noise():
    reference = mat2vec_element_vectors()
    assert reference.shape == (103, 200)
    same = _kv(list(reference.index), reference.to_numpy())
    assert element_similarity_correlation(same)["spearman"] == pytest.approx(1.0)
    noise = _kv(list(reference.index), np.random.default_rng(0).normal(size=(103, 200)))
    assert abs(element_similarity_correlation(noise)["spearman"]) < 0.1


def test_thermoelectric_ranking_on_a_tiny_case():
    words = [normalise_word(w) for w in ("thermoelectric", "Bi2Te3", "PbTe", "NaCl", "Fe")]  # PbTe is spelt TePb
    kv = _kv(words, [[1, 0], [1, 0.1], [1, 0.5], [0, 1], [1, 0]])
    transport = pd.DataFrame({"formula": ["Bi2Te3", "PbTe", "NaCl", "Fe", "ZnO"], "PF_p": [30.0, 20.0, 1.0, 99.0, 5.0]})
    result = thermoelectric_ranking(kv, transport)
    assert result["compounds"] == 3 and result["table"].token.tolist() == words[1:4]  # Fe: not a compound; ZnO: unknown
    assert result["spearman"] == pytest.approx(1.0)
    with pytest.raises(KeyError, match="'thermoelectric' is not in the vocabulary"):
        thermoelectric_ranking(_kv(["a", "b"], [[1, 0], [0, 1]]), transport)


def _toy_corpus(seed=0, n=300):
    rng = np.random.default_rng(seed)
    families = [(["Fe", "Co", "Ni"], ["magnetic", "ferromagnetic", "alloy", "coercivity"]),
                (["TiO2", "ZnO", "SnO2"], ["bandgap", "photocatalyst", "transparent", "anatase"])]
    return [[str(rng.choice(m)), *map(str, rng.choice(w, 3, replace=False))] for m, w in families for _ in range(n)]


def test_both_models_find_the_families_of_a_toy_corpus(tmp_path):
    toy = _toy_corpus()
    small = dict(epochs=50, min_count=1, workers=1, progress=False, vector_size=16, window=3, negative=5, sample=0, alpha=0.025)
    model = train_word2vec(toy, **small)  # a tiny corpus: no subsampling of frequent words
    count = ppmi_svd(toy, vector_size=4, window=3, min_count=1)
    for kv in (model.wv, count):
        assert kv.similarity("Fe", "Ni") > kv.similarity("Fe", "ZnO") and kv.similarity("TiO2", "SnO2") > kv.similarity("TiO2", "Co")
    model.save(str(tmp_path / "w.model"))
    assert np.array_equal(load_word2vec(tmp_path / "w.model").wv["Fe"], model.wv["Fe"])
    again = train_word2vec(toy, **small)
    assert np.array_equal(again.wv["Fe"], model.wv["Fe"])  # one worker: reproducible


def test_seed_spread_and_corpus_curve_on_a_toy_corpus():
    toy = _toy_corpus()
    w2v = dict(epochs=5, vector_size=8, window=2, hs=1, negative=0, sample=0, workers=1)
    seeds = element_corr_over_seeds(toy, seeds=[0, 1], word2vec=w2v, ppmi=dict(window=2, vector_size=4), min_count=1)
    assert seeds.shape == (4, 3) and sorted(seeds.model.unique()) == ["PPMI-SVD", "word2vec"]
    assert seeds.element_corr.between(-1, 1).all()  # Fe, Co, Ni: three elements, three pairs
    curve = corpus_size_curve(toy, fractions=(0.5, 1.0), word2vec=w2v, ppmi=dict(window=2, vector_size=4), min_count=1)
    half = [toy[i] for i in np.random.default_rng(0).permutation(len(toy))[:300]]  # a random half (sample_seed=0)
    assert curve.tokens.tolist() == [sum(map(len, half))] * 2 + [sum(map(len, toy))] * 2
    in_order = corpus_size_curve(toy, fractions=(0.5,), word2vec=w2v, ppmi=dict(window=2, vector_size=4), min_count=1,
                                 sample_seed=None)
    assert in_order.tokens.tolist() == [sum(map(len, toy[:300]))] * 2
    assert SMALL_CORPUS_SETTINGS["hs"] == 1 and set(SMALL_CORPUS_SETTINGS) - {"epochs"} <= set(PAPER_SETTINGS)


@requires_mirror
def test_benchmark_smoke(run_benchmark):
    assert re.fullmatch(r"RESULT tokens=\d+ words_per_s=\d+ analogy_acc=[\d.na]+ element_corr=[-\d.na]+ "
                        r"te_spearman=[-\d.na]+ baseline_element_corr=[-\d.na]+ baseline_analogy_acc=[\d.na]+ report_elements=\d+ "
                        r"element_corr_held_out_corpus=[-\d.na]+ ppmi_corr_held_out_corpus=[-\d.na]+",
                        run_benchmark("text"))


# pieces real abstracts are made of: formulas, fractions, brackets, slashes, units, signs, mojibake, odd spaces
_PIECES = ["Fe", "O", "Ni", "Co", "La", "Sr", "H", "In", "I", "No", "iron", "(", ")", "[", "]", "{", "}", "/", "0", "1",
           "3", "0.5", "00", "99999999999", "-", "+", "−", "–", "±", "~", "·", "δ", ".", ",", ";", ":", " ", "\t", "\n",
           "\u00a0", "\u200b", "Ã©", "â€™", "ï¬", "µm", "K", "°C", "%", "wt%", "S/cm", "e", "x", "_", "'", "=", "^",
           "×", "Å", "ﬁ", "İ", "ß", "<nUm>", "Ho2O3/0.7", "[45/90/-45/0]"]
_MATERIALS_LIKE = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.one_of(st.text(max_size=200), _MATERIALS_LIKE))
def test_tokenizer_is_total(text):
    "No string makes the tokeniser raise; its tokens are non-empty strings without spaces."
    for tokens in [tokenize(text), tokenize(text, keep_punctuation=True), tokenize(text, names_to_symbols=False),
                   *process_text(text)]:
        assert all(isinstance(t, str) and t and not any(ch.isspace() for ch in t) for t in tokens), tokens
    normalise_word(text)


@pytest.mark.parametrize("text, tokens", [
    ("Ho2O3/0.7 glass", ["Ho2O3", NUMBER, "glass"]), ("Er2O3/0.25 and ZnO", ["Er2O3", NUMBER, "and", "ZnO"]),
    ("a [45/90/-45/0] lay-up", ["a", "45/90/-45/0", "lay-up"]), ("Ni1/3Co1/3Mn1/3 is NMC", ["Mn0.333Co0.333Ni0.333", "is", "nmc"]),
])
def test_the_abstracts_that_crashed(text, tokens):
    "A ratio after a formula and a laminate lay-up (a zero denominator each) once raised ZeroDivisionError."
    assert tokenize(text) == tokens


def test_a_bad_document_is_left_out_and_named(tmp_path):
    (tmp_path / "a.txt").write_text("TiO2 films.")
    (tmp_path / "b.txt").write_bytes("caf\xe9".encode("latin-1"))
    corpus = TokenizedCorpus([*text_files(tmp_path)(), 42, "LiCoO2."])  # 42: not a text at all
    with pytest.warns(SkippedDocuments, match="2 of 4 documents left out"):
        assert list(corpus) == [["TiO2", "films"], ["LiCoO2"]]
    assert [n.rsplit("/", 1)[-1] for n, _ in corpus.skipped] == ["b.txt", "document 3"]
    with pytest.raises(ValueError, match="b.txt: not utf-8 text"):
        list(TokenizedCorpus(text_files(tmp_path), strict=True))


@requires_mirror
@pytest.mark.parametrize("name", list(TEXT_COLUMNS))
def test_every_registered_corpus_tokenizes(name):
    "Every document of every registered corpus goes through the tokeniser in strict mode (none fails)."
    corpus = TokenizedCorpus(registry_texts((name,)), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedDocuments)
        tokens = sum(len(s) for s in corpus)
    assert corpus.skipped == [] and corpus.documents > 40 and tokens > 10_000, (corpus.documents, tokens)
