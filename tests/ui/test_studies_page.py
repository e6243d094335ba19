"""Tuning studies in the UI: the list and a study's Pareto front, from an Optuna study in the project database."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from llmops.ui import create_app
from llmops.ui.session import COOKIE

from .helpers import make_keys, write_run

optuna = pytest.importorskip("optuna")


def test_study_pages_show_trials_front_and_run_links(sqlite_url, tmp_path):
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from llmops.tune.storage import open_storage

    keys = make_keys(sqlite_url)
    runs = tmp_path / "runs"
    study = optuna.create_study(study_name="lr_cost", storage=open_storage(sqlite_url),
                                directions=["minimize", "minimize"])
    study.set_user_attr("objectives", ["eval_loss", "cost_usd"])
    # (loss, cost): trials 0 and 2 are on the front, 1 is dominated by 0.
    for i, (loss, cost) in enumerate([(1.0, 2.0), (1.5, 3.0), (2.0, 1.0)]):
        run_dir = write_run(runs / "study", f"trial-{i}", lr=1e-3 * (i + 1))
        study.add_trial(create_trial(params={"lr": 1e-3 * (i + 1)}, distributions={"lr": FloatDistribution(1e-4, 1e-2)},
                                     values=[loss, cost], user_attrs={"run_dir": str(run_dir)}))
    app = create_app(sqlite_url, runs_dirs=[runs])
    with TestClient(app, base_url="http://localhost") as c:
        c.cookies.set(COOKIE, app.state.codec.new(keys.rater)[0])
        listing = c.get("/runs/studies")
        assert listing.status_code == 200 and 'href="/runs/studies/lr_cost"' in listing.text
        page = c.get("/runs/studies/lr_cost")
        assert page.status_code == 200 and "2 on the Pareto front" in page.text
        fronts = re.findall(r'<tr class="front"><td class="num">(\d+)</td>', page.text)
        assert fronts == ["0", "2"]
        assert len(re.findall(r'href="/runs/\d+">trial-', page.text)) == 3  # each trial links to its run
        assert page.text.count('fill="#d62728"') == 2  # the front's points are highlighted in the chart
        assert c.get("/runs/studies/nope").status_code == 404


def test_no_tuning_file_means_no_studies_and_none_created(sqlite_url, tmp_path):
    keys = make_keys(sqlite_url)
    app = create_app(sqlite_url)
    with TestClient(app, base_url="http://localhost") as c:
        c.cookies.set(COOKIE, app.state.codec.new(keys.rater)[0])
        assert "No study in this database" in c.get("/runs/studies").text
    assert not list(tmp_path.glob("*-tune.db"))
