"""Agreement of fit metrics with listener ratings, checked against scipy on fixed data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.stats import AnalysisInputError
from analysis.stats.metric_agreement import (
    DEFAULT_METRIC_ATTRIBUTES,
    metric_agreement,
    weighted_spearman,
)
from hafm_core.fit import METRIC_NAMES

SYSTEMS = ("three-stage", "two-stage", "random", "ground-truth")
ATTRIBUTES = ("rhythmic alignment", "harmonic compatibility", "overall coherence")


def fixed_data(n_excerpts=14, n_listeners=5, seed=7):
    """Latent fit per item = excerpt effect + system effect; metrics are noisy (and partly
    tied) readings of it, ratings 1..5 from several listeners per item."""
    rng = np.random.default_rng(seed)
    excerpt_effect = rng.normal(0, 0.6, n_excerpts)
    system_effect = {"three-stage": 0.3, "two-stage": 0.1, "random": -1.0, "ground-truth": 0.4}
    metric_rows, rating_rows = [], []
    for e in range(n_excerpts):
        for system in SYSTEMS:
            latent = excerpt_effect[e] + system_effect[system]
            excerpt = f"{e:04d}"
            metric_rows += [
                (excerpt, system, "rhythm_score", latent + rng.normal(0, 0.5)),
                (excerpt, system, "harmony_score", np.round(latent + rng.normal(0, 0.8), 0)),  # ties
                (excerpt, system, "fit_score", latent + rng.normal(0, 0.3)),
            ]
            for listener in range(n_listeners):
                for attribute in ATTRIBUTES:
                    score = int(np.clip(np.rint(3 + latent + rng.normal(0, 0.9)), 1, 5))
                    rating_rows.append((f"p{listener}", excerpt, system, attribute, score))
    metrics = pd.DataFrame(metric_rows, columns=["excerpt", "system", "metric", "value"])
    ratings = pd.DataFrame(rating_rows, columns=["participant", "excerpt", "system", "attribute", "score"])
    return metrics, ratings


def joined(metrics, ratings, metric, attribute):
    """Reference join, written independently of the module: mean score per item."""
    means = (ratings[ratings.attribute == attribute].groupby(["excerpt", "system"])["score"].mean()
             .rename("rating").reset_index())
    values = metrics[metrics.metric == metric][["excerpt", "system", "value"]]
    return values.merge(means, on=["excerpt", "system"])


@pytest.fixture(scope="module")
def data():
    return fixed_data()


@pytest.fixture(scope="module")
def table(data):
    return metric_agreement(*data, n_boot=1000, seed=3).set_index("metric")


def test_rho_and_p_match_scipy_spearmanr(data, table):
    metrics, ratings = data
    assert set(table.index) == {"rhythm_score", "harmony_score", "fit_score"}
    for metric, row in table.iterrows():
        assert row.attribute == DEFAULT_METRIC_ATTRIBUTES[metric]
        ref = joined(metrics, ratings, metric, row.attribute)
        expected = stats.spearmanr(ref.value, ref.rating)
        assert row.n_items == len(ref) == 14 * 4
        assert row.n_excerpts == 14 and row.n_ratings == 14 * 4 * 5
        assert row.rho == pytest.approx(expected.statistic, abs=1e-12)
        assert row.p_value == pytest.approx(expected.pvalue, rel=1e-9)
        assert row.ci_low < row.rho < row.ci_high
        assert row.fisher_low < row.rho < row.fisher_high
        assert row.boot_degenerate == 0 and row.note == ""
    assert table.loc["fit_score", "rho"] > 0.5  # the fixture's metrics do follow the ratings


def test_fisher_interval_is_scipy_fisher_with_bonett_wright_variance(data, table):
    """scipy's Pearson CI on ranks is Fisher z with se 1/sqrt(n-3); ours scales that by
    sqrt(1 + rho^2 / 2) (Bonett & Wright 2000)."""
    metrics, ratings = data
    for metric, row in table.iterrows():
        ref = joined(metrics, ratings, metric, row.attribute)
        pearson = stats.pearsonr(stats.rankdata(ref.value), stats.rankdata(ref.rating))
        assert pearson.statistic == pytest.approx(row.rho, abs=1e-12)
        ci = pearson.confidence_interval(0.95)
        for ours, theirs in ((row.fisher_low, ci.low), (row.fisher_high, ci.high)):
            ratio = (np.arctanh(ours) - np.arctanh(row.rho)) / (np.arctanh(theirs) - np.arctanh(row.rho))
            assert ratio == pytest.approx(np.sqrt(1 + row.rho**2 / 2), rel=1e-9)


def test_weighted_ranks_equal_spearmanr_of_the_resampled_items():
    """One replicate = the items of the drawn excerpts, duplicates included: brute force."""
    rng = np.random.default_rng(0)
    n_excerpts, per_excerpt = 9, 3
    cluster = np.repeat(np.arange(n_excerpts), per_excerpt)
    x = np.round(rng.normal(size=cluster.size), 1)  # ties within and across excerpts
    y = np.round(x + rng.normal(size=cluster.size), 0)
    drawn = rng.integers(0, n_excerpts, size=(50, n_excerpts))
    multiplicity = np.stack([np.bincount(row, minlength=n_excerpts) for row in drawn]).astype(float)
    ours = weighted_spearman(x, y, multiplicity[:, cluster])
    for b, row in enumerate(drawn):
        items = np.concatenate([np.flatnonzero(cluster == g) for g in row])
        assert ours[b] == pytest.approx(stats.spearmanr(x[items], y[items]).statistic, abs=1e-12)


def test_bootstrap_ci_agrees_with_scipy_bootstrap_over_excerpts(data, table):
    metrics, ratings = data
    ref = joined(metrics, ratings, "fit_score", "overall coherence")
    codes, _ = pd.factorize(ref.excerpt, sort=True)
    x, y = ref.value.to_numpy(), ref.rating.to_numpy()
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]

    def rho_of(excerpts):
        items = np.concatenate([members[g] for g in excerpts])
        return stats.spearmanr(x[items], y[items]).statistic

    reference = stats.bootstrap((np.arange(len(members)),), rho_of, vectorized=False, n_resamples=3000,
                                method="percentile", random_state=11).confidence_interval
    ours = metric_agreement(metrics, ratings, {"fit_score": "overall coherence"}, n_boot=3000, seed=5).iloc[0]
    assert ours.ci_low == pytest.approx(reference.low, abs=0.03)
    assert ours.ci_high == pytest.approx(reference.high, abs=0.03)
    # Resampling excerpts, not items: 14 clusters give a wider interval than the 56 items' Fisher one.
    assert ours.ci_high - ours.ci_low > 0.8 * (ours.fisher_high - ours.fisher_low)


def test_seeded_and_the_same_draws_for_every_metric(data):
    first = metric_agreement(*data, n_boot=200, seed=1)
    again = metric_agreement(*data, n_boot=200, seed=1)
    other = metric_agreement(*data, n_boot=200, seed=2)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first.ci_low, other.ci_low)


def test_default_mapping_names_real_metrics_and_can_be_overridden(data):
    assert set(DEFAULT_METRIC_ATTRIBUTES) == set(METRIC_NAMES)
    assert set(DEFAULT_METRIC_ATTRIBUTES.values()) == set(ATTRIBUTES)
    metrics, ratings = data
    swapped = metric_agreement(metrics, ratings, {"rhythm_score": "harmonic compatibility"}, n_boot=50)
    assert swapped[["metric", "attribute"]].values.tolist() == [["rhythm_score", "harmonic compatibility"]]
    ref = joined(metrics, ratings, "rhythm_score", "harmonic compatibility")
    assert swapped.rho[0] == pytest.approx(stats.spearmanr(ref.value, ref.rating).statistic)
    with pytest.raises(AnalysisInputError, match="'tempo_agreement'"):
        metric_agreement(metrics, ratings, {"tempo_agreement": "rhythmic alignment"})
    with pytest.raises(AnalysisInputError, match="'groove'"):
        metric_agreement(metrics, ratings, {"rhythm_score": "groove"})


def test_items_without_both_are_left_out(data):
    metrics, ratings = data
    some = ratings[~ratings.excerpt.isin(["0000", "0001"]) & (ratings.system != "random")]
    row = metric_agreement(metrics, some, n_boot=50).set_index("metric").loc["fit_score"]
    ref = joined(metrics, some, "fit_score", "overall coherence")
    assert row.n_items == len(ref) == 12 * 3 and row.n_excerpts == 12
    assert row.rho == pytest.approx(stats.spearmanr(ref.value, ref.rating).statistic)


def test_bad_input_names_the_column_or_group(data):
    metrics, ratings = data
    with pytest.raises(AnalysisInputError, match="metrics: missing column.*'value'"):
        metric_agreement(metrics.drop(columns="value"), ratings)
    with pytest.raises(AnalysisInputError, match="ratings: missing column.*'score'"):
        metric_agreement(metrics, ratings.drop(columns="score"))
    renamed = metrics.assign(excerpt="song-" + metrics.excerpt)
    with pytest.raises(AnalysisInputError, match="share no \\(excerpt, system\\) item.*song-0000"):
        metric_agreement(renamed, ratings)
    constant = metrics.assign(value=np.where(metrics.metric == "fit_score", 0.5, metrics.value))
    with pytest.raises(AnalysisInputError, match="'fit_score'.*constant"):
        metric_agreement(constant, ratings)
    lenient = metric_agreement(constant, ratings, n_boot=50, strict=False).set_index("metric")
    assert np.isnan(lenient.loc["fit_score", "rho"]) and "constant" in lenient.loc["fit_score", "note"]
    assert np.isfinite(lenient.loc["rhythm_score", "rho"])
    with pytest.raises(AnalysisInputError, match="duplicated.*'0000', 'three-stage', 'rhythm_score'"):
        metric_agreement(pd.concat([metrics, metrics.head(1)]), ratings)
    with pytest.raises(AnalysisInputError, match="'value' must hold finite numbers.*row 3"):
        metric_agreement(metrics.assign(value=metrics.value.where(metrics.index != 3, np.nan)), ratings)
    few = metrics[metrics.excerpt == "0000"]
    with pytest.raises(AnalysisInputError, match="need at least 4 items and 2 excerpts"):
        metric_agreement(few, ratings)
    with pytest.raises(AnalysisInputError, match="no metric matches a rated attribute"):
        metric_agreement(metrics[metrics.metric == "fit_score"].assign(metric="loudness"), ratings)


def test_excerpt_bootstrap_keeps_its_coverage_when_an_excerpt_biases_every_system():
    """Simulation: the metric carries an excerpt-level bias shared by the excerpt's four
    systems, so items are not independent. The excerpt bootstrap should still cover the
    population rho (from one large sample) about 95% of the time (Fisher's, which assumes
    independent items, covers ~90% here)."""
    rng = np.random.default_rng(0)
    n_systems = 4

    def sample(n_excerpts):
        excerpt = np.repeat(np.arange(n_excerpts), n_systems)
        latent = rng.normal(0, 1, n_excerpts)[excerpt] + rng.normal(0, 0.5, excerpt.size)
        value = latent + rng.normal(0, 1, excerpt.size) + rng.normal(0, 1, n_excerpts)[excerpt]
        return excerpt, value, latent + rng.normal(0, 1, excerpt.size)

    _, x, y = sample(50_000)
    population_rho = stats.spearmanr(x, y).statistic
    covered, n_studies = 0, 200
    for study in range(n_studies):
        excerpt, value, rating = sample(15)
        labels = {"excerpt": excerpt.astype(str), "system": np.tile(SYSTEMS, 15)}
        row = metric_agreement(pd.DataFrame({**labels, "metric": "fit_score", "value": value}),
                               pd.DataFrame({**labels, "participant": "p", "attribute": "overall coherence",
                                             "score": rating}), n_boot=400, seed=study).iloc[0]
        covered += row.ci_low <= population_rho <= row.ci_high
    assert 0.91 <= covered / n_studies <= 0.99
