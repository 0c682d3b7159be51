"""A relevance label on a story, from the API or a digest's one-click link: one row per
story in ``storyFeedback`` (the latest label wins), which the search's feedback model is
trained on (:mod:`core.relevance.feedback`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Story, StoryFeedback


def label_story(
    session: Session, organization_id: str, story: Story, label: str, actor_id: str | None
) -> StoryFeedback:
    """Set ``story``'s label (``relevant``/``not_relevant``) in the caller's transaction."""
    mine = select(StoryFeedback).where(
        StoryFeedback.organizationId == organization_id, StoryFeedback.storyId == story.id
    )
    feedback = session.scalar(mine)
    if feedback is None:
        feedback = StoryFeedback(
            organizationId=organization_id,
            newsId=story.newsId,
            storyId=story.id,
            label=label,
            actorId=actor_id,
        )
        try:
            with session.begin_nested():
                session.add(feedback)
        except IntegrityError:  # a concurrent first label won; overwrite it below
            feedback = session.scalars(mine).one()
    feedback.label = label
    feedback.actorId = actor_id
    session.flush()
    return feedback
