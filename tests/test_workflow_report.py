"""The HTML report (`snakemake --report report.html`) of the CI config's local run, opened in headless
Chromium: the landing text (workflow/report/workflow.rst) with the answer table, and the report's
own viewer showing the Answer results and a figure. Skipped where Chromium is not installed
(Debian: `apt-get install chromium`; .ci/run installs it as root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: chromium is not installed"),
]

# Opens the navigation at the figure's category and subcategory (Results > Answer) and shows the
# fitted-curve figure, as clicks there and on its eye button do (snakemake's report app: one
# app.setView, since React merges state updates made in one go from the same old state).
SHOW_FIGURE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const path = Object.keys(results).find((p) => p.endsWith("plots/scaling_fit.png"));
  const [category, subcategory] = Object.entries(categories).flatMap(([c, subs]) =>
    Object.entries(subs).filter(([, paths]) => paths.includes(path)).map(([s]) => [c, s]))[0];
  app.setView({navbarMode: "subcategory", category, subcategory,
               content: "img", contentPath: results[path].data_uri, resultPath: path});
}, 500));
</script>
</body>"""


def rendered_dom(html: Path) -> str:
    """The DOM after the report's scripts ran (their data blocks dropped: megabytes of JSON)."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    result = subprocess.run(
        [*command, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120, check=True
    )
    return re.sub(r"<script.*?</script>", "", result.stdout, flags=re.S)


@pytest.fixture(scope="module")
def report(ci_local_run) -> Path:
    repo = ci_local_run.parent / "repo"
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(ci_local_run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, "--report", "report.html"], cwd=ci_local_run, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return ci_local_run / "report.html"


def test_landing_page_shows_the_question_protocol_and_answer_table(report):
    dom = rendered_dom(report)
    landing = dom[dom.index('id="app"') :]  # rendered by the report's app, not the raw template
    assert "CausalMixFT: synthetic data from causal models for fine-tuning" in landing
    for heading in ("Question.", "Protocol", "How to read this report."):
        assert f"<strong>{heading}</strong>" in landing
    assert "outer folds 0 of\n2" in landing or "outer folds 0 of 2" in landing  # the config, filled in
    answer = landing[landing.index("<h1>Answer</h1>") :]
    table = answer[: answer.index("</table>")]
    header = re.findall(r'<th class="head">(\w+)</th>', table)
    # the v3 answer (effects.csv): paired gains with their bounds, no fitted peak
    assert {"real_budget", "method", "size", "metric", "mean_diff", "mde", "verdict"} <= set(header)
    assert "peak_size" not in header
    assert table.count("<tr>") >= 2 and "causalmixft" in table
    assert "effect_heatmap.png" in answer and "scaling_fit.png" in answer  # links to the figures


def test_report_viewer_shows_the_answer_results_and_a_figure(report):
    viewer = report.with_name("report-figure.html")
    head, _, tail = report.read_text().rpartition("</body>")  # the last: scripts quote "</body>" too
    viewer.write_text(head + SHOW_FIGURE + tail)
    dom = rendered_dom(viewer)
    listed = re.findall(r"<td[^>]*>results/[\w/]+/([\w.]+)</td>", dom)  # the navigation's file table
    for name in ("scaling_fit.png", "effects.csv", "effect_heatmap.png", "size_selection_chance.csv", "chance.csv"):
        assert name in listed, listed  # listed beside the figure (Results > Answer)
    # the content pane's image: data:image/png;charset=utf8;filename=scaling_fit.png;base64,...
    shown = re.search(r'<div class="p-3"><img src="data:image/png;([^",]*);base64,([A-Za-z0-9+/=]+)"', dom)
    assert shown and "filename=scaling_fit.png" in shown[1] and len(shown[2]) > 10_000, "the figure is not shown"
