"""The dashboard builds on an empty data folder and on a full one, and its figures are the ledger's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pop_nb.widgets.dashboard import COSTS_TAB, Dashboard
from tests.conftest import Project
from tests.unit.test_analytics import write_job


@pytest.fixture
def board_of(project: Project):
    boards: list[Dashboard] = []

    def make(data: Path) -> Dashboard:
        board = Dashboard(data, refresh_s=3600, root=project.root)
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.stop()


def test_builds_on_an_empty_data_folder(project: Project, board_of) -> None:
    board = board_of(project.root / "empty-data")
    assert "0 job(s)" in board.jobs_table.value
    assert board.job_pick.options == () and "no job selected" in board.job_markup
    assert board.job_list.options == ()
    assert board.figures == [] and board.summary.value == ""  # the Costs tab is drawn when first shown
    board.tabs.selected_index = COSTS_TAB
    assert "<b>$0.0000</b> over 0 calls" in board.summary.value and len(board.figures) == 5


def test_filters_detail_and_cost_figures_on_a_full_folder(project: Project, board_of) -> None:
    data = project.data
    for i in range(1500):
        place, state = ("failed", "failed") if i % 10 == 0 else ("complete", "done")
        write_job(data, place, f"job-{i:04d}", state, cost=0.001 * (i + 1))
    board = board_of(data)
    assert len(board.job_list.options) == 200
    assert "1500 job(s), the latest 200 shown" in board.jobs_table.value
    board.state.value = "failed"
    assert "150 job(s);" in board.jobs_table.value
    board.state.value = "all"
    board.search.value = "job-005"
    assert len(board.job_list.options) == 10 and "10 job(s); click" in board.jobs_table.value
    # a click on a row opens the job in the Job tab, its grid rendered by Lab (an Output, not an HTML widget)
    board.job_list.value = "job-0050"
    assert board.tabs.selected_index == 1 and board.job_pick.value == "job-0050"
    assert "Boom" in board.job_markup and 'data-stage="inference"' in board.job_markup
    assert board.job_view.outputs[0]["data"]["text/html"] == board.job_markup
    assert board.from_task.options == ("a", "b")
    board.tabs.selected_index = COSTS_TAB
    by_model = board.figures[0].data[0]
    assert list(by_model.x) == ["m"] and by_model.y[0] == pytest.approx(
        sum(0.001 * (i + 1) for i in range(1500))
    )
    assert "over 1500 calls" in board.summary.value


@pytest.mark.parametrize("elsewhere", [False, True])
def test_cancel_from_the_dashboard(project: Project, board_of, elsewhere: bool) -> None:
    """Its buttons act on the folder it shows, the project's own or another given as data_dir."""
    from pop_nb.config import load_settings
    from pop_nb.models.seed import parse_seed
    from pop_nb.service import create_job

    data = project.root / "other-data" if elsewhere else project.data
    project.pipeline("tiny", {"a": {}})
    settings = load_settings(project.root, data_dir=data)
    create_job(settings, parse_seed({"pipeline": "tiny"}, "t"), "queued-1")
    board = board_of(data)
    board.job_pick.value = "queued-1"
    board.cancel()
    assert "cancelled queued-1" in board.message.value, board.message.value
    assert (data / "failed" / "queued-1").is_dir()
    assert "cancelled" in board.job_list.options[0][0]


def test_unpriced_spend_and_a_failed_job_read_as_they_are(project: Project, board_of) -> None:
    import json

    folder = write_job(project.data, "failed", "half", "failed", cost=0.0)
    status = json.loads((folder / "tasks-status.json").read_text())
    status["totals"].update(calls=2, attempts=3, unpriced_calls=2)
    (folder / "tasks-status.json").write_text(json.dumps(status))
    board = board_of(project.data)
    row = board.job_list.options[0][0]
    assert "unknown (2 unpriced" in row and "$0.0000" not in row
    assert row.split()[3] == "50"  # task a done, b failed: half way, not 100%
    board.job_pick.value = "half"
    assert board.cancel_button.disabled and not board.resume_button.disabled  # it has ended: resume only


def test_the_job_list_says_where_each_job_ran(project: Project, board_of) -> None:
    import json

    for job_id, where in (("here", {"executor": "local", "host": "box-a"}), ("far", {"worker": "w2@box-b"})):
        folder = write_job(project.data, "complete", job_id, "done")
        status = json.loads((folder / "tasks-status.json").read_text())
        status.update(where)
        (folder / "tasks-status.json").write_text(json.dumps(status))
    old = write_job(project.data, "complete", "old", "done") / "tasks-status.json"
    status = json.loads(old.read_text())
    for key in ("executor", "host", "worker"):  # as written before jobs said where they ran
        del status[key]
    old.write_text(json.dumps(status))
    board = board_of(project.data)
    rows = {label.split()[0]: label for label, _ in board.job_list.options}
    assert "box-a" in rows["here"] and "w2@box-b" in rows["far"]
    assert "ran on" in board.jobs_table.value and "box" not in rows["old"]


def test_the_pipelines_tab_shows_intention_architecture_and_findings(project: Project, board_of) -> None:
    from tests.conftest import pop

    project.copy_example("code-generation")
    project.pipeline("broken", {"a": {"neds": ["typo"]}})
    board = board_of(project.data)
    assert board.pipelines is None  # nothing read until the tab is shown
    board.tabs.selected_index = 3
    assert list(board.pipelines) == ["broken", "code-generation"]
    assert board.pipeline_pick.value == "broken" and "does not load" in board.pipeline_view.value
    board.pipeline_pick.value = "code-generation"
    view = board.pipeline_view.value
    assert "Not explained yet" in view and "<b>generate</b> (tasks/generate.ipynb); after plan" in view
    assert "code.zip (zip of the files generate wrote" in view

    assert pop("compile", "code-generation", "--explain").returncode == 0
    board.refresh()
    view = board.pipeline_view.value
    assert "Intention · <span style='color:#2e7d32'>aligned</span>" in view
    assert "Turns a one-paragraph specification" in view and "explained by mock/gpt-4o-mini" in view
    assert "<b style='color:#ef6c00'>warning</b> The generated tests are written by the same model" in view
    board.pipeline_pick.value = "broken"
    assert "does not load" in board.pipeline_view.value


def test_explanation_text_is_escaped_but_bold_and_code_show() -> None:
    from pop_nb.widgets.pipelines import inline

    assert (
        inline("**a** <script>x</script> `b<c>`")
        == "<b>a</b> &lt;script&gt;x&lt;/script&gt; <code>b&lt;c&gt;</code>"
    )
