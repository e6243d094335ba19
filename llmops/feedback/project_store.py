"""In-process API over projects and assignment (e.g. simulated raters in the quickstart, scripts).

`ProjectStore` is a `FeedbackStore` (items, ratings, ...) plus the rater workflow, with
one transaction per call, the same functions the HTTP API runs:

>>> ps = ProjectStore("sqlite:///fb.db")
>>> ps.create_project({"name": "chat", "overlap_k": 3, "routing": {"models": ["*@prod"]},
...                    "questions": [{"type": "rating", "name": "quality"},
...                                  {"type": "correction", "name": "fix", "required": False}]})
>>> rater = ps.rater("sim-rater-1")
>>> item = ps.next_item("chat", rater)          # claimed for this rater, or None
>>> ps.answer("chat", item.id, rater, {"ratings": [{"response_id": item.responses[0].id, "score": 4}],
...           "corrections": [{"response_id": item.responses[0].id, "text": "...", "metadata": {"simulated": True}}]})
"""

from __future__ import annotations

from typing import Any

from llmops.feedback import answers, assignment, projects
from llmops.feedback.project_schemas import (
    AnswerIn,
    AnswerOut,
    CorrectionIn,
    GoldIn,
    ProgressOut,
    ProjectIn,
    ProjectOut,
    ProjectUpdate,
)
from llmops.feedback.schemas import ItemOut
from llmops.feedback.store import FeedbackStore, get_item


def _model(cls, value):
    return value if isinstance(value, cls) else cls.model_validate(value)


class ProjectStore(FeedbackStore):
    """`FeedbackStore` plus projects, the rater queue, answers, corrections, progress and quality."""

    def create_project(self, project: ProjectIn | dict[str, Any]) -> ProjectOut:
        body = _model(ProjectIn, project)
        return self._write(lambda s: projects.create_project(s, body))

    def update_project(self, name: str, changes: ProjectUpdate | dict[str, Any]) -> ProjectOut:
        body = _model(ProjectUpdate, changes)
        return self._write(lambda s: projects.update_project(s, name, body))

    def get_project(self, name: str) -> ProjectOut:
        with self._sessions() as session:
            return projects.project_out(projects.get_project(session, name))

    def add_to_project(self, name: str, item_ids: list[int]) -> list[int]:
        """Put existing items into the project; raises the first element's error, if any."""
        results = self._write(lambda s: projects.add_items(s, name, item_ids))
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise failed[0]
        return results

    def next_item(self, name: str, rater_id: int) -> ItemOut | None:
        """Claim the rater's next item (their open claim first); None when nothing is left for them.

        The full item (model names included): in-process callers are trusted code, not raters.
        """

        def claim(s):
            c = assignment.claim_next(s, projects.get_project(s, name), rater_id)
            return None if c is None else get_item(s, c.item_id)

        return self._write(claim)

    def skip(self, name: str, item_id: int, rater_id: int) -> None:
        def write(s):
            project = projects.get_project(s, name)
            projects.project_item(s, project, item_id)
            assignment.skip(s, project, item_id, rater_id)

        self._write(write)

    def answer(self, name: str, item_id: int, rater_id: int, answer: AnswerIn | dict[str, Any]) -> AnswerOut:
        body = _model(AnswerIn, answer)
        return self._write(lambda s: answers.submit_answer(s, name, item_id, body, rater_id))

    def add_correction(self, response_id: int, text: str, rater_id: int,
                       metadata: dict[str, Any] | None = None) -> int:
        body = CorrectionIn(response_id=response_id, text=text, metadata=metadata)
        return self._write(lambda s: answers.add_correction(s, body, rater_id))

    def set_gold(self, name: str, item_id: int, gold: GoldIn | dict[str, Any] | None) -> dict[str, Any] | None:
        body = None if gold is None else _model(GoldIn, gold)
        return self._write(lambda s: projects.set_gold(s, name, item_id, body))

    def progress(self, name: str, rater_id: int | None = None) -> ProgressOut:
        with self._sessions() as session:
            return assignment.progress(session, projects.get_project(session, name), rater_id)

    def quality(self, name: str) -> dict[str, Any]:
        from llmops.feedback.quality import project_quality

        with self._sessions() as session:
            return project_quality(session, name)
