"""Power and judgments still needed against statsmodels.stats.power."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.stats.power import cohens_h, power_analysis


def test_required_judgments_and_power_match_statsmodels():
    pairs = pd.DataFrame({"system": ["a", "b"], "n": [300, 900], "deff": [1.0, 1.6]})
    out = power_analysis(pairs, target_rate=0.55, design_effect="deff")
    h = proportion_effectsize(0.55, 0.5)
    assert out.effect_size.iloc[0] == pytest.approx(h)
    assert cohens_h(0.55) == pytest.approx(h)
    required = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8, ratio=0)
    assert out.n_required.iloc[0] == int(np.ceil(required)) == 783  # LISTENING.md's figure
    for row in out.itertuples():
        reference = NormalIndPower().power(effect_size=h, nobs1=row.n / row.deff, alpha=0.05, ratio=0)
        assert row.power == pytest.approx(reference, rel=1e-9)
    assert out.judgments_needed.tolist() == [783 - 300, int(np.ceil(required * 1.6)) - 900]


def test_enough_judgments_need_no_more():
    out = power_analysis(pd.DataFrame({"n": [5000]}), target_rate=0.45)
    assert out.judgments_needed.iloc[0] == 0 and out.power.iloc[0] > 0.99
