"""Whose numbers and which dates: the scope and period arguments the analytic tools share.

A manager asks about "Dana's forecast", "the team" or "the EMEA team", "Q3" or "March 1 to
April 15". The model passes names and dates; this module turns them into the scope answered
(the services decide what the acting user may see, and what is left out when they may not see
all they asked for) and a period, or a sentence saying what to fix.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from store.errors import ValidationFailed
from store.services import org
from store.services import pipeline as pipeline_service
from tools.base import ToolContext

ScopeName = Literal["mine", "team", "all"]
SCOPE_HELP = "Whose deals: mine, my team's, or all I can see. Default: a rep's own, a manager's team."
REP_HELP = ("One person's numbers instead: their name or email (\"Dana\", \"priya@...\"). A manager may name "
            "anyone in their team, an admin anyone; a rep only themselves.")
TEAM_HELP = ("A named team's numbers instead: its name (\"EMEA\", \"the West team\"). Anyone may name their own "
             "team, an admin any team; for another the tool says why not: tell the user.")
Period = Literal["this_month", "next_month", "last_month", "this_quarter", "next_quarter", "last_quarter",
                 "this_year", "last_year"]
START_HELP = "A custom period's first day (with end); replaces period."
END_HELP = "A custom period's last day (with start)."


def resolve_scope(ctx: ToolContext, scope: ScopeName | None, rep: str | None,
                  team: str | None = None) -> pipeline_service.Answered:
    """The scope to answer for: a named person wins over a named team, which wins over `scope`;
    nobody named: the role's default (a rep's own deals, a manager's team, an admin's all). A
    person or team the user may not see is refused, saying why; a scope wider than they may see
    is answered for the part they may see, saying what is left out (`with_heading`)."""
    session, actor = ctx.session, ctx.actor
    if rep:
        users = org.find_users(session, workspace_id=actor.workspace_id, query=rep)
        if not users:
            raise ValidationFailed(f"nobody called '{rep}' uses the CRM; ask the user for the person's full name "
                                   "or email")
        if len(users) > 1:
            names = ", ".join(f"{u.name} ({u.email})" for u in users[:6])
            raise ValidationFailed(f"'{rep}' could be {names}; ask the user which one they mean")
        return pipeline_service.answer_scope(session, actor=actor, user_id=users[0].id)
    if team:
        teams = org.find_teams(session, workspace_id=actor.workspace_id, query=team)
        if len(teams) != 1:
            known = ", ".join(t.name for t in org.find_teams(session, workspace_id=actor.workspace_id, query=""))
            what = f"'{team}' could be {', '.join(t.name for t in teams)}" if teams else f"there is no team '{team}'"
            raise ValidationFailed(f"{what}; the teams are {known or 'none yet'}: ask the user which one they mean")
        return pipeline_service.answer_scope(session, actor=actor, team_id=teams[0].id)
    return pipeline_service.answer_scope(session, actor=actor, scope=scope)


def with_heading(answered: pipeline_service.Answered, lines: list[str]) -> str:
    """A tool's answer, starting with what was not shown when the scope was narrowed."""
    heading = answered.heading()
    said = not heading or (bool(lines) and lines[0].startswith(heading))  # a chart quoting a summary's answer
    return "\n".join(lines if said else [heading, *lines])


def resolve_period(ctx: ToolContext, period: str, start: date | None, end: date | None) -> tuple[date, date, str]:
    """(first day, last day, label): the custom dates when given (both), else the named period
    counted from the user's today."""
    if (start is None) != (end is None):
        raise ValidationFailed("a custom period needs both start and end dates; ask the user for the missing one")
    if start is not None and end is not None:
        if end < start:
            raise ValidationFailed(f"the period ends ({end}) before it starts ({start}); ask the user to check")
        return start, end, f"{start} to {end}"
    which, _, unit = period.partition("_")
    offsets = {"this": 0, "next": 1, "last": -1}
    if which not in offsets or unit not in ("month", "quarter", "year"):
        raise ValidationFailed(f"unknown period '{period}': use this_, next_ or last_ with month, quarter or year")
    if unit == "year":
        year = ctx.today.year + offsets[which]
        first, last = date(year, 1, 1), date(year, 12, 31)
    else:
        bounds = pipeline_service.quarter_bounds if unit == "quarter" else pipeline_service.month_bounds
        first, last = bounds(ctx.today, offsets[which])
    return first, last, f"{period.replace('_', ' ')} ({first} to {last})"
