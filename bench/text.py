"""mat2vec-style word embeddings on every registered materials corpus: word2vec against a PPMI-SVD count baseline.

1. Chemistry-aware processing of the SOFC-Exp papers, the synthesis paragraphs, the Matscholar NER sentences and the
   arXiv cond-mat sample (phrases by gensim); tokens and vocabulary.
2. The same grid of settings for both models, scored by the element-similarity correlation on the pairs among one
   fixed half of the elements (`element_halves`; the other half is kept for reporting): windows of 1, 2, 4 and 8
   words and 100 or 200 dimensions; for gensim skip-gram word2vec (10 epochs at gensim's usual learning rate of
   0.025, 2 worker threads) also negative sampling (15) against hierarchical softmax; for the count-based model,
   positive PMI within the window reduced by truncated SVD. It prints how far the library's `SMALL_CORPUS_SETTINGS`
   and `SMALL_CORPUS_PPMI` (the notebook's, and the headline rows below) score below the grid's best on that half
   (they are set to its best): the settings are chosen on the first half and every headline element score is
   measured on the second.
   Then the same grid on each corpus alone, leaving one corpus out in turn (`leave_one_corpus_out`): settings chosen by
   the mean score over the other corpora, both models trained on the corpus left out and scored on the reporting half
   over the seeds (is the winner the same on text the settings never saw?).
3. Those two, and word2vec with the paper's settings (200 dimensions, window 8, 15 negatives, subsampling 1e-4, 30 epochs at 0.01),
   untuned; training words per second. The two small-corpus models again with five seeds: the element-similarity
   correlation of the RESULT line is the mean over the seeds (a single run of word2vec on 2 threads moves by about
   0.005).
4. The three models scored the same way: the mat2vec analogy set (accuracy per section on the questions our vocabulary can
   answer), the Spearman correlation of all element-element similarities with the published mat2vec element vectors
   that matminer ships, and the rank correlation between similarity to "thermoelectric" and the computed power factor
   of the compounds of the transport database that the corpus mentions.

    python bench/text.py            # every corpus (2 CPU cores: a few minutes)
    python bench/text.py --quick    # a smoke test on a slice
    python bench/text.py --out bench/results/text

The last line is `RESULT tokens=<n> words_per_s=<w> analogy_acc=<a> element_corr=<r> te_spearman=<s>
baseline_element_corr=<b> baseline_analogy_acc=<c> report_elements=<k> element_corr_held_out_corpus=<h>
ppmi_corr_held_out_corpus=<p>`: element_corr and baseline_element_corr on the held-out half of the elements, means over
the seeds; the last two the means over the corpora left out of word2vec's and PPMI-SVD's means over the seeds.
"""
import argparse
import time

import numpy as np
import pandas as pd

from _common import Log
from matdl_nb.data import load_dataset
from matdl_nb.text import (PAPER_SETTINGS, SMALL_CORPUS_PPMI, SMALL_CORPUS_SETTINGS, TEXT_COLUMNS, TokenizedCorpus, analogy_scores,
                           apply_phrases, element_corr_over_seeds, element_halves, element_similarity_correlation,
                           leave_one_corpus_out, learn_phrases, ppmi_svd, registry_texts, thermoelectric_ranking,
                           train_word2vec)


def loco_summary(loco: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    "One row per corpus left out (both models' settings, mean and spread over the seeds, the winner) and the means over corpora."
    rows = []
    for name, part in loco.groupby("corpus", sort=False):
        row = dict(corpus=name, tokens=int(part.tokens.iloc[0]), report_pairs=int(part.report_pairs.iloc[0]))
        stats = {}
        for model in ("word2vec", "PPMI-SVD"):
            g = part[part.model == model]
            stats[model] = (g.element_corr.mean(), g.element_corr.std(ddof=1), len(g))
            row.update({f"{model} settings": g.settings.iloc[0], f"{model} mean": stats[model][0], f"{model} std": stats[model][1]})
        (mw, sw, nw), (mp, sp, n_p) = stats["word2vec"], stats["PPMI-SVD"]
        lead, se = mw - mp, np.sqrt(sw ** 2 / nw + sp ** 2 / n_p)
        row["word2vec lead"] = lead
        row["winner"] = "within noise" if not abs(lead) > 2 * se else ("word2vec" if lead > 0 else "PPMI-SVD")
        rows.append(row)
    table = pd.DataFrame(rows)
    return table, dict(word2vec=float(table["word2vec mean"].mean()), **{"PPMI-SVD": float(table["PPMI-SVD mean"].mean())},
                       word2vec_wins=int((table.winner == "word2vec").sum()), ppmi_wins=int((table.winner == "PPMI-SVD").sum()),
                       ties=int((table.winner == "within noise").sum()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the run with the paper's settings")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 2, 4, 8], help="windows of the grid")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200], help="vector sizes of the grid")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the small-corpus models")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    log, start = Log(__file__, argv), time.time()

    # 1. the corpus, processed once and kept as lists for the two models
    t0 = time.time()
    by_corpus = {name: list(TokenizedCorpus(registry_texts((name,)), strict=True)) for name in TEXT_COLUMNS}
    grid_epochs = SMALL_CORPUS_SETTINGS["epochs"]
    if args.quick:
        by_corpus = {name: s[:800] for name, s in by_corpus.items()}
        args.epochs, grid_epochs, args.windows, args.sizes, args.seeds = 2, 2, [2, 8], [100], 2
    sentences = [s for part in by_corpus.values() for s in part]  # the registry's order: every corpus in turn
    phrases = learn_phrases(sentences)  # unsupervised, learnt on the pooled text (no score is involved)
    by_corpus = {name: [apply_phrases(phrases, s) for s in part] for name, part in by_corpus.items()}
    sentences = [s for part in by_corpus.values() for s in part]
    tokens = sum(map(len, sentences))
    log(f"\n## Corpus\n\n{', '.join(TEXT_COLUMNS)}: {len(sentences):,} sentences, {tokens:,} tokens, processed in "
        f"{time.time() - t0:.0f} s; {sum('_' in t for s in sentences for t in s):,} phrase tokens")

    # 2. the same grid for both models, scored on the pairs among one half of the elements only
    tune_elements, report_elements = element_halves()
    log(f"\nelements: {len(tune_elements)} to choose settings on, {len(report_elements)} to report on "
        f"({', '.join(report_elements)})")
    t0, grid = time.time(), []
    w2v_fixed = {k: v for k, v in SMALL_CORPUS_SETTINGS.items() if k not in ("window", "vector_size", "hs", "negative")}
    w2v_fixed["epochs"] = grid_epochs
    for window in args.windows:
        for size in args.sizes:
            for output, layer in (("negative sampling", dict(hs=0, negative=15)), ("hierarchical softmax", dict(hs=1, negative=0))):
                kv = train_word2vec(sentences, min_count=args.min_count, workers=args.workers, progress=False, window=window,
                                    vector_size=size, **w2v_fixed, **layer).wv
                grid.append(dict(model="word2vec", output=output, window=window, vector_size=size,
                                 element_corr=element_similarity_correlation(kv, elements=tune_elements)["spearman"], **layer))
            kv = ppmi_svd(sentences, window=window, vector_size=size, min_count=args.min_count)
            grid.append(dict(model="PPMI-SVD", output="SVD", window=window, vector_size=size,
                             element_corr=element_similarity_correlation(kv, elements=tune_elements)["spearman"]))
    grid_table = pd.DataFrame(grid)
    log(f"\n## The grid (element-similarity Spearman on the tuning half; word2vec {grid_epochs} epochs at {w2v_fixed['alpha']}), "
        f"{time.time() - t0:.0f} s\n")
    log(grid_table.pivot_table(index=["model", "output"], columns=["window", "vector_size"], values="element_corr")
        .to_markdown(floatfmt=".3f"))
    best = grid_table.loc[grid_table.groupby("model").element_corr.idxmax()].set_index("model")
    b = best.loc["word2vec"]
    best_w2v = dict(window=int(b.window), vector_size=int(b.vector_size), hs=int(b.hs), negative=int(b.negative))
    best_ppmi = dict(window=int(best.loc["PPMI-SVD"].window), vector_size=int(best.loc["PPMI-SVD"].vector_size))
    ours_w2v = dict(window=SMALL_CORPUS_SETTINGS["window"], vector_size=SMALL_CORPUS_SETTINGS.get("vector_size", PAPER_SETTINGS["vector_size"]),
                    hs=SMALL_CORPUS_SETTINGS["hs"], negative=SMALL_CORPUS_SETTINGS["negative"])
    ours_ppmi = dict(window=SMALL_CORPUS_PPMI["window"], vector_size=SMALL_CORPUS_PPMI["vector_size"])
    gaps = {}
    for name, found, ours in (("word2vec", best_w2v, ours_w2v), ("PPMI-SVD", best_ppmi, ours_ppmi)):
        rows = grid_table[(grid_table.model == name) & (grid_table.window == ours["window"]) &
                          (grid_table.vector_size == ours["vector_size"]) & (grid_table.hs.fillna(0) == ours.get("hs", 0))]
        gaps[name] = float(best.loc[name].element_corr - rows.element_corr.iloc[0]) if len(rows) else float("nan")
        log(f"best {name}: {found} (Spearman {best.loc[name].element_corr:.3f}); the library's {ours} score "
            f"{gaps[name]:.3f} below it" + (" (they are the best)" if found == ours else ""))

    # 2b. leave one corpus out: settings chosen on the other corpora, scores on the corpus left out
    t0 = time.time()
    loco_grid, loco = leave_one_corpus_out(by_corpus, tune_elements, report_elements, seeds=range(args.seeds),
                                           min_count=args.min_count, windows=args.windows, sizes=args.sizes,
                                           epochs=grid_epochs, workers=args.workers)
    loco_table, held_out = loco_summary(loco)
    for name, part in by_corpus.items():  # the same corpora with the pool's settings (chosen with this corpus's text in the pool)
        pooled = element_corr_over_seeds(part, seeds=range(args.seeds), elements=report_elements, min_count=args.min_count,
                                         word2vec={**SMALL_CORPUS_SETTINGS, "epochs": grid_epochs})
        for model in ("word2vec", "PPMI-SVD"):
            loco_table.loc[loco_table.corpus == name, f"{model}, pool's settings"] = pooled[pooled.model == model].element_corr.mean()
    log(f"\n## Leave one corpus out ({time.time() - t0:.0f} s)\n\nFor each corpus in turn: the grid above run on every "
        "other corpus alone, the settings with the best mean score over those corpora (tuning half of the elements) "
        f"chosen, then both models trained on the corpus left out, {args.seeds} seeds each, scored on the reporting half. "
        "'winner' is the model ahead by more than twice the standard error of the difference of the means; "
        "report_pairs is how many element pairs of the reporting half the corpus mentions (each element at least "
        f"{args.min_count} times). The last two columns: the same corpus with the library's settings, which were chosen on "
        "the pooled corpora (this one's text included, so not a held-out score): they separate what the corpus's size "
        "costs from what settings chosen elsewhere cost.\n")
    log(loco_table.to_markdown(index=False, floatfmt=".4f"))
    log(f"\nMean over the {len(loco_table)} corpora left out: word2vec {held_out['word2vec']:.4f}, PPMI-SVD "
        f"{held_out['PPMI-SVD']:.4f}; word2vec ahead on {held_out['word2vec_wins']}, PPMI-SVD on "
        f"{held_out['ppmi_wins']}, within noise on {held_out['ties']}.")

    # 3. the best of each, and the paper's settings untuned
    embeddings, seconds = {}, {}
    runs = (("word2vec", {**SMALL_CORPUS_SETTINGS, "epochs": grid_epochs}), ("word2vec, paper's settings", dict(alpha=0.01, epochs=args.epochs)))
    for name, settings in runs:
        t0 = time.time()
        embeddings[name] = train_word2vec(sentences, min_count=args.min_count, workers=args.workers, progress=False,
                                          **settings).wv
        seconds[name] = time.time() - t0
    words_per_s = tokens * args.epochs / seconds["word2vec, paper's settings"]
    t0 = time.time()
    embeddings["PPMI-SVD"] = ppmi_svd(sentences, min_count=args.min_count, **SMALL_CORPUS_PPMI)
    seconds["PPMI-SVD"] = time.time() - t0
    log(f"\nword2vec, the paper's settings (skip-gram, 200 d, window 8, 15 negatives, {args.epochs} epochs at 0.01, "
        f"{args.workers} workers): {len(embeddings['word2vec']):,} words in {seconds[runs[1][0]]:.0f} s, "
        f"{words_per_s:,.0f} words/s; the library's small-corpus settings in {seconds['word2vec']:.0f} s; PPMI-SVD: "
        f"{len(embeddings['PPMI-SVD']):,} words in {seconds['PPMI-SVD']:.0f} s")

    seed_scores = element_corr_over_seeds(sentences, seeds=range(args.seeds), elements=report_elements,
                                          word2vec={**SMALL_CORPUS_SETTINGS, "epochs": grid_epochs}, min_count=args.min_count)
    spread = seed_scores.groupby("model").element_corr.agg(["mean", "std", "min", "max"])
    log(f"\n## Element-similarity Spearman on the held-out half of the elements, over {args.seeds} seeds "
        "(the small-corpus settings)\n")
    log(spread.to_markdown(floatfmt=".4f"))
    log(f"\nOne word2vec run moves by {spread.loc['word2vec', 'std']:.4f} (standard deviation over the seeds; on 2 threads "
        f"not even one seed is reproducible): differences in the grid smaller than that are noise.")

    # 4. evaluation, all models the same way
    analogies, transport = load_dataset("mat2vec_analogies"), load_dataset("mp_transport")
    tables, rows = {}, []
    for name, kv in embeddings.items():
        tables[name] = analogy_scores(kv, analogies)
        elements = element_similarity_correlation(kv, elements=report_elements)
        te = thermoelectric_ranking(kv, transport) if "thermoelectric" in kv.key_to_index else {}
        rows.append(dict(model=name, vocabulary=len(kv.key_to_index), analogy_answerable=int(tables[name].loc["all sections", "answerable"]),
                         analogy_acc=float(tables[name].loc["all sections", "accuracy"]), elements=elements["elements"],
                         element_corr=elements["spearman"],
                         element_corr_all_pairs=element_similarity_correlation(kv)["spearman"], te_compounds=te.get("compounds", 0),
                         te_spearman=te.get("spearman", np.nan), te_top10_median_pf=te.get("top10_median_pf", np.nan),
                         median_pf=te.get("median_pf", np.nan)))
    summary = pd.DataFrame(rows)
    log("\n## Scores\n")
    log(summary.to_markdown(index=False, floatfmt=".4f"))
    sections = pd.concat({k: v[["answerable", "accuracy"]] for k, v in tables.items() if k in ("word2vec", "PPMI-SVD")}, axis=1)
    sections.columns = [f"{model} {score}" for model, score in sections.columns]
    sections.insert(0, "questions", tables["word2vec"]["questions"])
    log("\n## Analogies per section (accuracy on the answerable questions)\n")
    log(sections.to_markdown(floatfmt=".3f"))
    log(f"\nword2vec and PPMI-SVD: the library's small-corpus settings ({SMALL_CORPUS_SETTINGS} and {SMALL_CORPUS_PPMI}), "
        f"chosen on the grid above, on the tuning half of the elements; element_corr is on the other half "
        f"(element_corr_all_pairs on all elements, the tuning half included); word2vec, paper's settings: {args.epochs} "
        f"epochs at 0.01, untuned.")
    log("\nReference (Tshitoyan et al., Nature 571, 95, 2019): 3.3 million abstracts, about 500 million tokens; the "
        "published element vectors are the target of element_corr. Targets here: element_corr >= 0.2 and above the "
        "baseline's (means over the seeds).")

    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    w, b = summary.set_index("model").loc["word2vec"], summary.set_index("model").loc["PPMI-SVD"]
    w_corr, b_corr = float(spread.loc["word2vec", "mean"]), float(spread.loc["PPMI-SVD", "mean"])
    result = (f"RESULT tokens={tokens} words_per_s={words_per_s:.0f} analogy_acc={w.analogy_acc:.4f} "
              f"element_corr={w_corr:.4f} te_spearman={w.te_spearman:.4f} baseline_element_corr={b_corr:.4f} "
              f"baseline_analogy_acc={b.analogy_acc:.4f} report_elements={len(report_elements)} "
              f"element_corr_held_out_corpus={held_out['word2vec']:.4f} ppmi_corr_held_out_corpus={held_out['PPMI-SVD']:.4f}")
    log(result)
    log.save(args.out, dict(summary=rows, grid=grid, best_word2vec=best_w2v, best_ppmi=best_ppmi,
                            library_settings_gap=gaps, sections=sections.reset_index().to_dict("records"), tokens=tokens,
                            sentences=len(sentences), words_per_s=words_per_s, minutes=round(elapsed / 60, 1),
                            result=dict(tokens=tokens, words_per_s=words_per_s, analogy_acc=w.analogy_acc,
                                        element_corr=w_corr, te_spearman=w.te_spearman,
                                        baseline_element_corr=b_corr, baseline_analogy_acc=b.analogy_acc,
                                        report_elements=len(report_elements),
                                        element_corr_held_out_corpus=held_out["word2vec"],
                                        ppmi_corr_held_out_corpus=held_out["PPMI-SVD"]),
                            leave_one_corpus_out=dict(table=loco_table.to_dict("records"), scores=loco.to_dict("records"),
                                                      grid=loco_grid.to_dict("records"), **held_out),
                            elements=dict(tune=tune_elements, report=report_elements),
                            seeds=seed_scores.to_dict("records"), quick=args.quick))


if __name__ == "__main__":
    main()
