"""Statistics of listening tests, as pure functions on pandas DataFrames (no Django).

Each statistic takes the export tables (see `validation.PREFERENCE_COLUMNS`,
`validation.RATING_COLUMNS`) and returns a tidy DataFrame; each module cites its method.

    preference     rates with Wilson CIs, exact binomial tests, non-inferiority, side bias
    bootstrap      two-way cluster bootstrap over listeners and excerpts
    mixed          mixed-effects logistic model (listener and excerpt random intercepts)
    bradley_terry  Bradley-Terry scores for all systems with bootstrap CIs
    ratings        Friedman, Wilcoxon signed-rank with Holm, rank-biserial, Kendall's W
    agreement      Krippendorff's alpha (ordinal)
    metric_agreement  Spearman's rho of fit metrics with listener ratings, excerpt bootstrap CI
    power          power and the judgments still needed
    exclusions     catch-trial and screening filters, recorded
    quality        catch-trial accuracy and listener quality
    study          the whole analysis of a study in one call
"""

from analysis.stats.validation import AnalysisInputError

__all__ = ["AnalysisInputError"]
